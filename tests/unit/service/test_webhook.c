/* Webhooks (core/service/webhook.c), what a subscriber and an operator see:
 *   - signatures: Standard Webhooks' "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with the
 *     base64-decoded whsec_ key, against vectors computed independently (Python's hmac, below);
 *   - URLs: schemes, user information, control characters and blanks (refused even when private
 *     targets are allowed), loopback and private addresses (refused unless allowed);
 *   - event lists: "*" and arrays of known names;
 *   - subscriptions: the secret shown once, owners kept apart, 410 disables;
 *   - the outbox driven end to end through the real delivery thread and libcurl, against a
 *     loopback HTTP receiver started inside the test: fan-out by event filter and source, the
 *     signature each receiver can verify, the policy's headers, retries with the same webhook-id
 *     on the configured schedule (and its jitter bounds), dropping when the schedule is used up,
 *     private addresses refused at connect time, policy errors failing closed, and the header
 *     rule applied again to deliveries queued before it.
 * ac_webhook_header_check itself is covered by tests/unit/lua/test_plugin.c. */
#define _GNU_SOURCE /* nftw */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/uuid.h"
#include "lua/config.h"
#include "service/webhook.h"
#include "store/hooks.h"
#include "store/jobs.h"
#include "store/store.h"

#include "check.h"

#define DEADLINE_MS 120000 /* generous: the machine may be busy (polls end as soon as the condition holds) */

/* ---- an independent signature check (OpenSSL directly, not ac_webhook_sign) -------------------- */

static int verify_signature(const char *secret, const char *id, const char *ts, const char *body, size_t blen,
                            const char *header)
{
    unsigned char key[256], mac[EVP_MAX_MD_SIZE];
    const char *b64 = secret + strlen("whsec_");
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)strlen(b64));
    size_t n = strlen(b64);
    klen -= (n > 0 && b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
    char *msg = malloc(strlen(id) + strlen(ts) + blen + 3);
    size_t mlen = (size_t)sprintf(msg, "%s.%s.", id, ts);
    memcpy(msg + mlen, body, blen);
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, klen, (unsigned char *)msg, mlen + blen, mac, &maclen);
    free(msg);
    char want[128] = "v1,";
    EVP_EncodeBlock((unsigned char *)want + 3, mac, (int)maclen);
    return header != NULL && strcmp(header, want) == 0;
}

/* ---- a loopback HTTP receiver ------------------------------------------------------------------- */

#define MAX_REQ 256

typedef struct request {
    char path[128];
    char headers[4096]; /* raw header block, names as sent */
    char *body;
    size_t blen;
    int status;     /* what the receiver answered */
    int64_t at_ms;  /* when it answered */
} request_t;

typedef struct receiver {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    request_t req[MAX_REQ];
    int n;
} receiver_t;

/* A header's value (first match, case-insensitive name) copied into out; 0 when absent. */
static int header_of(const char *block, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = block; p != NULL && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *end = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            size_t len = end ? (size_t)(end - v) : strlen(v);
            snprintf(out, n, "%.*s", (int)len, v);
            return 1;
        }
    }
    return 0;
}

/* What the receiver answers: /ok 200, /fail 500, /gone 410, /flaky 500 to the first attempt of a
 * webhook-id and 200 to the next ones. Called with the lock held. */
static int status_for(receiver_t *r, const char *path, const char *headers)
{
    if (strcmp(path, "/fail") == 0)
        return 500;
    if (strcmp(path, "/gone") == 0)
        return 410;
    if (strcmp(path, "/flaky") == 0) {
        char id[128] = "", other[128];
        header_of(headers, "webhook-id", id, sizeof id);
        for (int i = 0; i < r->n; i++)
            if (header_of(r->req[i].headers, "webhook-id", other, sizeof other) && strcmp(other, id) == 0)
                return 200;
        return 500;
    }
    return 200;
}

static void serve_one(receiver_t *r, int c)
{
    char buf[65536];
    size_t got = 0;
    char *end = NULL;
    struct timeval tv = {10, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (end == NULL && got < sizeof buf - 1) {
        ssize_t k = recv(c, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0)
            return;
        got += (size_t)k;
        buf[got] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    size_t hlen = (size_t)(end - buf) + 4;
    char cl[32] = "0", expect[64] = "";
    header_of(buf, "content-length", cl, sizeof cl);
    size_t want = (size_t)strtoul(cl, NULL, 10);
    if (header_of(buf, "expect", expect, sizeof expect) && strcasecmp(expect, "100-continue") == 0)
        send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
    while (got - hlen < want && got < sizeof buf - 1) {
        ssize_t k = recv(c, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0)
            return;
        got += (size_t)k;
    }
    buf[got] = 0;
    request_t q = {0};
    sscanf(buf, "%*s %127s", q.path);
    const char *line_end = strstr(buf, "\r\n");
    snprintf(q.headers, sizeof q.headers, "%.*s", (int)(hlen - (size_t)(line_end + 2 - buf)), line_end + 2);
    q.blen = got - hlen < want ? got - hlen : want;
    q.body = malloc(q.blen + 1);
    memcpy(q.body, buf + hlen, q.blen);
    q.body[q.blen] = 0;
    pthread_mutex_lock(&r->lock);
    q.status = status_for(r, q.path, q.headers);
    q.at_ms = ac_clock_now_ms();
    if (r->n < MAX_REQ)
        r->req[r->n++] = q;
    else
        free(q.body);
    pthread_mutex_unlock(&r->lock);
    char resp[128];
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", q.status);
    send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void *receiver_main(void *arg)
{
    receiver_t *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(r, c);
        close(c);
    }
    return NULL;
}

static int receiver_start(receiver_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(r->fd, 64) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    r->port = ntohs(a.sin_port);
    return pthread_create(&r->thread, NULL, receiver_main, r);
}

static void receiver_stop(receiver_t *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (int i = 0; i < r->n; i++)
        free(r->req[i].body);
    pthread_mutex_destroy(&r->lock);
}

/* Copies of the requests made to `path`, in arrival order (at most max); returns how many. */
static int requests_to(receiver_t *r, const char *path, request_t *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->req[i].path, path) == 0 && k < max)
            out[k++] = r->req[i]; /* the body stays owned by the receiver */
    pthread_mutex_unlock(&r->lock);
    return k;
}

static receiver_t the_receiver; /* 1 MiB of requests: not on the stack */

static void url_of(char *out, size_t n, const receiver_t *r, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", r->port, path);
}

/* ---- the store: events in, the outbox read back ------------------------------------------------ */

/* The jobs and the webhook tables of the current test's store (fresh_store opens them,
 * close_store closes them). */
static ac_jobs_t *the_jobs;
static ac_hooks_t *the_hooks;
static ac_train_config_t train_cfg;
static json_t *train_data;

static int event_update(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    const char *const *names = ud;
    for (const char *const *n = names; *n; n++)
        if (ac_jobs_txn_event(t, job, *n, json_pack("{s:s}", "job_id", job->id), ac_clock_now_ms(), err) != 0)
            return -1;
    return 0;
}

/* Records events of a job the way the runner does (ac_jobs_txn_event: the job's log and its
 * outbox entry), all in one transaction: the delivery thread then fans them out in one pass. */
static int record_events(json_t *job, const char *const *names)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_jobs_update(the_jobs, json_string_value(json_object_get(job, "job_id")), event_update, (void *)names,
                            NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  record_events: %s\n", err.message);
    ac_err_clear(&err);
    return rc;
}

static int record_event(json_t *job, const char *name)
{
    const char *names[] = {name, NULL};
    return record_events(job, names);
}

/* A queued job of `owner` in the current store, with its own webhooks (stolen; NULL: none):
 * {job_id, owner}, or NULL. */
static json_t *new_job(const char *owner, json_t *webhooks)
{
    json_t *empty = json_array(), *out = NULL;
    ac_job_new_t nj = {owner, "calculator", &train_cfg, train_data, empty, NULL, ac_clock_now_ms(), -1, webhooks};
    ac_job_t job;
    ac_err_t err = AC_ERR_INIT;
    if (the_jobs != NULL && ac_jobs_create(the_jobs, &nj, &job, &err) == 0) {
        out = json_pack("{s:s, s:s}", "job_id", job.id, "owner", owner);
        ac_job_free(&job);
    } else {
        fprintf(stderr, "  new_job: %s\n", err.message);
    }
    ac_err_clear(&err);
    json_decref(empty);
    json_decref(webhooks);
    return out;
}

static int outbox_one(uint64_t seq, json_t *work, void *ud, ac_err_t *err)
{
    (void)seq, (void)err;
    json_array_append_new(ud, work);
    return 0;
}

static int outbox_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    return ac_outbox_each(t, outbox_one, ud, err);
}

/* Every outbox entry (events not yet fanned out, deliveries not yet done). New reference. */
static json_t *outbox(void)
{
    json_t *a = json_array();
    ac_hooks_read(the_hooks, outbox_txn, a, NULL);
    return a;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int outbox_empty(void)
{
    json_t *a = outbox();
    int empty = json_array_size(a) == 0;
    json_decref(a);
    return empty;
}

/* Polls until the outbox is empty (every delivery done or dropped): 1, or 0 at the deadline. */
static int wait_outbox_empty(void)
{
    for (int64_t end = ac_clock_now_ms() + DEADLINE_MS; ac_clock_now_ms() < end; sleep_ms(20))
        if (outbox_empty())
            return 1;
    return 0;
}

/* Polls until `n` deliveries in the outbox have made at least `attempts` attempts. */
static json_t *wait_deliveries(int n, int attempts)
{
    for (int64_t end = ac_clock_now_ms() + DEADLINE_MS; ac_clock_now_ms() < end; sleep_ms(20)) {
        json_t *a = outbox(), *d;
        size_t i;
        int k = 0;
        json_array_foreach(a, i, d)
        {
            k += strcmp(json_string_value(json_object_get(d, "kind")), "delivery") == 0 &&
                 json_integer_value(json_object_get(d, "attempt")) >= attempts;
        }
        if (k >= n)
            return a;
        json_decref(a);
    }
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------------- */

static char tmp_dir[] = "/tmp/ac-test-webhook-XXXXXX";
static int run_no;

/* Secrets: SECRET signs config subscriptions, JOB_SECRET a job's own webhook (33 and 32 bytes). */
#define SECRET "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYw"
#define JOB_SECRET "whsec_am9iLXNlY3JldC1qb2Itc2VjcmV0LWpvYi1zZWNyZXQh"

/* The test policy (plugins/webhooks/unit.lua in the test's own plugin directory): by the path
 * of the target, it raises, sets a header the delivery owns, routes to a URL with a blank, or
 * adds x-policy: <source> to the delivery. */
static const char *const POLICY =
    "return {\n"
    "  name = 'unit', version = '1', description = 'test policy',\n"
    "  route = function(event, target)\n"
    "    local path = string.match(target.url, '^https?://[^/]+(/.*)$') or ''\n"
    "    if path == '/policy-raises' then error('refuses ' .. event.event) end\n"
    "    if path == '/policy-host' then return { headers = { Host = 'evil.example' } } end\n"
    "    if path == '/policy-blank' then return { url = target.url .. ' x' } end\n"
    "    return { headers = { ['x-policy'] = target.source } }\n"
    "  end,\n"
    "}\n";

static void base_config(ac_config_t *cfg, int allow_private, const double *schedule, int n, double jitter)
{
    char dirs[1024];
    ac_config_defaults(cfg);
    snprintf(dirs, sizeof dirs, "%s/plugins:%s", tmp_dir, cfg->plugins_dir);
    ac_config_set_str(&cfg->plugins_dir, dirs);
    ac_config_set_str(&cfg->webhook_secret, SECRET);
    ac_config_set_str(&cfg->webhook_policy, "unit");
    cfg->webhook_allow_private = allow_private;
    cfg->webhook_timeout_ms = 30000; /* a loopback answer, however busy the machine: never a timeout */
    cfg->n_webhook_retries = n;
    memcpy(cfg->webhook_retry_s, schedule, sizeof(double) * (size_t)n);
    cfg->webhook_jitter = jitter;
}

static ac_store_t *fresh_store(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/store%d", tmp_dir, ++run_no);
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    the_jobs = s != NULL ? ac_jobs_open_lmdb(s, &err) : NULL;
    the_hooks = the_jobs != NULL ? ac_hooks_open_lmdb(s, &err) : NULL;
    if (the_hooks == NULL)
        fprintf(stderr, "  store: %s\n", err.message);
    ac_err_clear(&err);
    return s;
}

static void close_store(ac_store_t *s)
{
    ac_hooks_close(the_hooks);
    the_hooks = NULL;
    ac_jobs_close(the_jobs);
    the_jobs = NULL;
    ac_store_close(s);
}

static ac_webhooks_t *start(const ac_config_t *cfg)
{
    ac_err_t err = AC_ERR_INIT;
    ac_webhooks_t *w = ac_webhooks_start(cfg, the_hooks, &err);
    if (w == NULL)
        fprintf(stderr, "  ac_webhooks_start: %s\n", err.message);
    ac_err_clear(&err);
    return w;
}

/* ---- pure functions ----------------------------------------------------------------------------- */

static int sign_is(const char *secret, const char *id, int64_t ts, const char *body, const char *want)
{
    char out[128] = "";
    int rc = ac_webhook_sign(secret, id, ts, body, strlen(body), out, sizeof out);
    if (rc != 0 || strcmp(out, want) != 0)
        fprintf(stderr, "  sign(%s): rc %d, '%s', want '%s'\n", id, rc, out, want);
    return rc == 0 && strcmp(out, want) == 0;
}

static void test_signing(void)
{
    /* The vectors, computed with Python's standard library:
     *   key = base64.b64decode(secret[6:])
     *   "v1," + base64.b64encode(hmac.new(key, f"{id}.{ts}.".encode() + body, hashlib.sha256).digest())
     * The first is Standard Webhooks' own example (its specification and reference libraries). */
    CHECK(sign_is("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                  "{\"test\": 2432232314}", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
          "signature: Standard Webhooks' published example");
    /* key = bytes(range(1, 101)): 100 bytes, base64 ending in "==", longer than SHA-256's 64-byte
     * block (so HMAC hashes it, and a key length counting the padding would change the result:
     * with one zero byte more it is v1,pNJPjOrSRZgP/YddW+vtB3sJuyciJQ1u5Nm+wJiM3Kw=) */
    CHECK(sign_is("whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RF"
                  "RkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZA==",
                  "msg_2", 1700000000, "{\"event\":\"training.job.completed\"}",
                  "v1,0PHPr20DORjFV9Kfit9zB84JDPtFfO4DklWauz/R2PI="),
          "signature: a 100-byte key with base64 padding");
    CHECK(sign_is(SECRET, "msg_x", 0, "", "v1,OsuIYu5uq5m7P4WnKz2+9uHs580d+HXQKPuyAVhH6Ig="),
          "signature: timestamp 0 and an empty body");
    char out[128];
    CHECK(ac_webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}", 2, out, sizeof out) == -1 &&
              ac_webhook_sign("whsec_", "m", 1, "{}", 2, out, sizeof out) == -1 &&
              ac_webhook_sign("whsec_abc", "m", 1, "{}", 2, out, sizeof out) == -1,
          "a secret without whsec_, empty, or not base64-sized is refused");
    CHECK(ac_webhook_sign(SECRET, "m", 1, "{}", 2, out, 20) == -1, "an output buffer too small is refused");

    char s1[64], s2[64];
    unsigned char raw[64];
    int ok = ac_webhook_new_secret(s1, sizeof s1) == 0 && ac_webhook_new_secret(s2, sizeof s2) == 0;
    ok = ok && strncmp(s1, "whsec_", 6) == 0 && strlen(s1) == 6 + 32 && strcmp(s1, s2) != 0 &&
         EVP_DecodeBlock(raw, (const unsigned char *)s1 + 6, 32) == 24;
    ok = ok && ac_webhook_sign(s1, "msg_1", 5, "{}", 2, out, sizeof out) == 0 &&
         verify_signature(s1, "msg_1", "5", "{}", 2, out);
    CHECK(ok, "new secrets: whsec_ + 24 random bytes, different each time, usable to sign");
    CHECK(ac_webhook_new_secret(s1, 38) == -1, "new secret: a buffer too small is refused");
}

static int url_ok(const ac_config_t *cfg, const char *url)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_url_check(cfg, url, "url", &err);
    if (rc != 0)
        fprintf(stderr, "  %s: refused: %s\n", url, json_string_value(json_object_get(err.data, "error")));
    ac_err_clear(&err);
    return rc == 0;
}

/* refused with AC_ERR_INVALID_PARAMS, data {field: "url", error containing `why`} */
static int url_refused(const ac_config_t *cfg, const char *url, const char *why)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_url_check(cfg, url, "url", &err);
    const char *field = json_string_value(json_object_get(err.data, "field"));
    const char *e = json_string_value(json_object_get(err.data, "error"));
    int good = rc == -1 && err.code == AC_ERR_INVALID_PARAMS && field && strcmp(field, "url") == 0 && e &&
               strstr(e, why) != NULL;
    if (!good)
        fprintf(stderr, "  %s: rc %d, error '%s' (wanted '%s')\n", url, rc, e ? e : "", why);
    ac_err_clear(&err);
    return good;
}

static void test_urls(void)
{
    ac_config_t strict, open;
    ac_config_defaults(&strict);
    ac_config_defaults(&open);
    open.webhook_allow_private = 1;

    CHECK(url_ok(&strict, "https://93.184.216.34/hooks?x=1") && url_ok(&strict, "http://8.8.8.8:8080/h") &&
              url_ok(&strict, "https://[2606:4700:4700::1111]:443/h"),
          "public addresses over http and https (IPv6 literal and ports too) are accepted");
    CHECK(url_refused(&open, "ftp://93.184.216.34/x", "http:// or https://") &&
              url_refused(&open, "javascript:alert(1)", "http:// or https://") &&
              url_refused(&open, "file:///etc/passwd", "http:// or https://") &&
              url_refused(&open, "//93.184.216.34/x", "http:// or https://"),
          "other schemes are refused");
    CHECK(url_refused(&open, "http://user:pw@93.184.216.34/x", "no user information") &&
              url_refused(&open, "http:///x", "must name a host") && url_refused(&open, "https://", "must name a host"),
          "a URL must name a host, without user information");
    CHECK(url_refused(&open, "http://[::1/x", "unterminated IPv6"), "an unterminated IPv6 literal is refused");
    char long_url[2100] = "https://93.184.216.34/";
    memset(long_url + strlen(long_url), 'a', 2049 - strlen(long_url));
    long_url[2049] = '\0';
    CHECK(url_refused(&open, long_url, "longer than 2048"), "URLs longer than 2048 characters are refused");

    /* control characters and blanks: refused whatever allow_private says (header injection) */
    const char *bad[] = {"http://127.0.0.1/a\r\nX-Injected: 1", "http://127.0.0.1/a\nb", "http://127.0.0.1/a b",
                         "http://127.0.0.1/a\tb", "http://127.0.0.1/a\x7f", "http://127.0.0.1/a\xc2\x85",
                         "http://127.0.0.1/a\x01", NULL};
    int all = 1;
    for (const char **u = bad; *u; u++)
        all &= url_refused(&open, *u, "control character or a space") &&
               url_refused(&strict, *u, "control character or a space");
    CHECK(all, "CR, LF, blanks, tab, DEL, C1 and other controls are refused even with allow_private");
    CHECK(url_ok(&open, "http://127.0.0.1/caf\xc3\xa9"), "UTF-8 that is not a C1 control passes");

    /* loopback and private addresses: refused unless allowed */
    const char *private_urls[] = {"http://127.0.0.1:9/x",      "http://127.255.0.9/x",  "http://localhost/x",
                                  "http://10.1.2.3/x",         "http://172.16.0.1/x",   "http://172.31.255.254/x",
                                  "http://192.168.1.1/x",      "http://169.254.169.254/latest/meta-data",
                                  "http://100.64.0.1/x",       "http://100.127.255.254/x", "http://0.0.0.0/x",
                                  "http://[::1]:8080/x",       "http://[::]/x",         "http://[fc00::1]/x",
                                  "http://[fd12:3456::1]/x",   "http://[fe80::1]/x",    "http://[::ffff:127.0.0.1]/x",
                                  "http://[::ffff:10.0.0.1]/x", NULL};
    all = 1;
    int all_open = 1;
    for (const char **u = private_urls; *u; u++) {
        all &= url_refused(&strict, *u, "loopback or private address: refused");
        all_open &= url_ok(&open, *u);
    }
    CHECK(all, "loopback, private, link-local (cloud metadata), CGNAT, unspecified, ULA and v4-mapped "
               "addresses are refused by default");
    CHECK(all_open, "... and accepted with webhooks.allow_private");
    CHECK(url_ok(&strict, "http://172.15.255.254/x") && url_ok(&strict, "http://172.32.0.1/x") &&
              url_ok(&strict, "http://100.63.255.254/x") && url_ok(&strict, "http://100.128.0.1/x") &&
              url_ok(&strict, "http://11.0.0.1/x") && url_ok(&strict, "http://192.169.0.1/x"),
          "the neighbours of those ranges are public and accepted");
    CHECK(url_refused(&strict, "http://no-such-host.invalid/x", "does not resolve"),
          "a host that does not resolve is refused (without allow_private)");
    ac_config_free(&strict);
    ac_config_free(&open);
}

static int events_ok(const char *json)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_events_check(v, "events", &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", json, json_string_value(json_object_get(err.data, "error")));
    ac_err_clear(&err);
    json_decref(v);
    return rc == 0;
}

static int events_refused(const char *json, const char *why)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_events_check(v, "webhooks[0].events", &err);
    const char *field = json_string_value(json_object_get(err.data, "field"));
    const char *e = json_string_value(json_object_get(err.data, "error"));
    int good = rc == -1 && err.code == AC_ERR_INVALID_PARAMS && field && strcmp(field, "webhooks[0].events") == 0 &&
               e && strstr(e, why) != NULL;
    if (!good)
        fprintf(stderr, "  %s: rc %d, '%s'\n", json, rc, e ? e : "");
    ac_err_clear(&err);
    json_decref(v);
    return good;
}

static void test_events(void)
{
    CHECK(events_ok("\"*\"") && events_ok("[\"*\"]") && events_ok("[\"training.job.completed\"]") &&
              events_ok("[\"training.job.started\", \"training.job.progress\", \"training.job.completed\", "
                        "\"training.job.failed\", \"training.job.cancelled\", \"training.budget.warning\", "
                        "\"training.validation\", \"training.zero_variance_stall\", \"*\"]"),
          "events: \"*\", [\"*\"] and arrays of the eight event names");
    CHECK(events_refused("[]", "non-empty array") && events_refused("\"training.job.completed\"", "non-empty array") &&
              events_refused("null", "non-empty array") && events_refused("{}", "non-empty array") &&
              events_refused("\"all\"", "non-empty array"),
          "events: an empty array, a string other than \"*\", null or an object are refused, naming the field");
    CHECK(events_refused("[\"training.job.completed\", \"training.job.done\"]", "unknown event training.job.done") &&
              events_refused("[\"Training.Job.Completed\"]", "unknown event") &&
              events_refused("[1]", "unknown event (not a string)") && events_refused("[\"\"]", "unknown event"),
          "events: unknown names, other cases and non-strings are refused");
}

/* ---- subscriptions ------------------------------------------------------------------------------ */

static json_t *sub_by_url(json_t *list, const char *url)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "url")), url) == 0)
            return s;
    }
    return NULL;
}

static void test_subscriptions(void)
{
    ac_config_t cfg;
    const double schedule[] = {0};
    base_config(&cfg, 0, schedule, 1, 0);
    ac_store_t *s = fresh_store();
    ac_err_t err = AC_ERR_INIT;
    json_t *events = json_string("*"), *a = NULL, *b = NULL, *list = NULL;
    int rc = ac_webhooks_subscribe(the_hooks, &cfg, "alice", "https://93.184.216.34/a", events, 1000, &a, &err);
    const char *secret = json_string_value(json_object_get(a, "secret"));
    CHECK(rc == 0 && secret && strncmp(secret, "whsec_", 6) == 0 &&
              strlen(json_string_value(json_object_get(a, "subscription_id"))) == AC_UUID_LEN &&
              json_object_get(a, "owner") == NULL && json_is_false(json_object_get(a, "disabled")),
          "subscribe: the answer has the id and the whsec_ secret, not the owner");
    rc = ac_webhooks_subscribe(the_hooks, &cfg, "bob", "https://93.184.216.34/b", events, 1000, &b, &err);
    CHECK(rc == 0 && ac_webhooks_list(the_hooks, "alice", &list, &err) == 0 && json_array_size(list) == 1 &&
              sub_by_url(list, "https://93.184.216.34/a") != NULL &&
              json_object_get(json_array_get(list, 0), "secret") == NULL &&
              json_integer_value(json_object_get(json_array_get(list, 0), "deliveries")) == 0,
          "list: an owner sees only their subscriptions, without the secret");
    json_decref(list);

    json_t *bad = json_pack("[s]", "training.job.exploded");
    CHECK(ac_webhooks_subscribe(the_hooks, &cfg, "alice", "http://127.0.0.1:1/x", events, 1000, &list, &err) == -1 &&
              err.code == AC_ERR_INVALID_PARAMS && strstr(json_string_value(json_object_get(err.data, "error")),
                                                          "loopback or private") != NULL,
          "subscribe: a loopback URL is refused without allow_private");
    ac_err_clear(&err);
    CHECK(ac_webhooks_subscribe(the_hooks, &cfg, "alice", "https://93.184.216.34/a", bad, 1000, &list, &err) == -1 &&
              strcmp(json_string_value(json_object_get(err.data, "field")), "events") == 0,
          "subscribe: unknown events are refused, naming the field");
    ac_err_clear(&err);
    json_decref(bad);

    const char *b_id = json_string_value(json_object_get(b, "subscription_id"));
    const char *a_id = json_string_value(json_object_get(a, "subscription_id"));
    CHECK(ac_webhooks_unsubscribe(the_hooks, "alice", b_id, &err) == -1 && err.code == AC_ERR_NOT_FOUND,
          "unsubscribe: another owner's subscription is not found");
    ac_err_clear(&err);
    int gone = ac_webhooks_unsubscribe(the_hooks, "alice", a_id, &err) == 0 && ac_webhooks_list(the_hooks, "alice", &list, &err) == 0 &&
               json_array_size(list) == 0;
    json_decref(list);
    gone = gone && ac_webhooks_list(the_hooks, "bob", &list, &err) == 0 && json_array_size(list) == 1;
    json_decref(list);
    CHECK(gone, "unsubscribe: the owner's own goes, the other owner's stays");
    CHECK(ac_webhooks_unsubscribe(the_hooks, "alice", a_id, &err) == -1 && err.code == AC_ERR_NOT_FOUND,
          "unsubscribe: twice is not found");
    ac_err_clear(&err);
    json_decref(a);
    json_decref(b);
    json_decref(events);
    close_store(s);
    ac_config_free(&cfg);
}

/* ---- deliveries --------------------------------------------------------------------------------- */

static json_t *payload_of(const request_t *q)
{
    return json_loadb(q->body, q->blen, 0, NULL);
}

static const char *event_of(const request_t *q, char *buf, size_t n)
{
    json_t *p = payload_of(q);
    snprintf(buf, n, "%s", p ? json_string_value(json_object_get(p, "event")) : "?");
    json_decref(p);
    return buf;
}

/* A request carries a verifiable signature of its exact body, with its webhook-id, a timestamp
 * within [t0, now] and Content-Type application/json. */
static int signed_ok(const request_t *q, const char *secret, int64_t t0_ms)
{
    char id[128], ts[32], sig[256], ctype[64];
    if (!header_of(q->headers, "webhook-id", id, sizeof id) || !header_of(q->headers, "webhook-timestamp", ts, sizeof ts) ||
        !header_of(q->headers, "webhook-signature", sig, sizeof sig) ||
        !header_of(q->headers, "content-type", ctype, sizeof ctype))
        return 0;
    long long t = atoll(ts);
    return strncmp(id, "msg_", 4) == 0 && t >= t0_ms / 1000 && t <= ac_clock_now_ms() / 1000 + 1 &&
           strcmp(ctype, "application/json") == 0 && verify_signature(secret, id, ts, q->body, q->blen, sig);
}

static void test_delivery(void)
{
    receiver_t *rp = &the_receiver;
    if (receiver_start(rp) != 0) {
        CHECK(0, "the loopback receiver starts");
        return;
    }
    ac_config_t cfg;
    const double schedule[] = {0, 0.3, 0.3}; /* 3 attempts, 300 ms apart */
    base_config(&cfg, 1, schedule, 3, 0);
    char u_all[128], u_flaky[128], u_fail[128], u_job[128];
    url_of(u_all, sizeof u_all, rp, "/ok");
    url_of(u_flaky, sizeof u_flaky, rp, "/flaky");
    url_of(u_fail, sizeof u_fail, rp, "/fail");
    url_of(u_job, sizeof u_job, rp, "/job");
    cfg.webhook_subscriptions = json_pack("[{s:s, s:s}, {s:s, s:[s]}, {s:s, s:[s]}]", "url", u_all, "events", "*", "url",
                                          u_flaky, "events", "training.job.completed", "url", u_fail, "events",
                                          "training.job.completed");
    ac_store_t *s = fresh_store();
    ac_webhooks_t *w = start(&cfg);
    int64_t t0 = ac_clock_now_ms();
    json_t *job = new_job("alice", json_pack("[{s:s, s:[s], s:s}]", "url", u_job, "events", "training.job.started",
                                             "secret", JOB_SECRET));
    const char *both[] = {"training.job.started", "training.job.completed", NULL};
    int recorded = w != NULL && record_events(job, both) == 0;
    ac_webhooks_notify(w);
    CHECK(recorded && wait_outbox_empty(), "deliveries: every event is delivered or dropped (outbox empty)");

    request_t q[16], f[16], x[16], j[16];
    char e1[64], e2[64];
    int n_all = requests_to(rp, "/ok", q, 16), n_fail = requests_to(rp, "/fail", f, 16);
    int n_flaky = requests_to(rp, "/flaky", x, 16), n_job = requests_to(rp, "/job", j, 16);
    /* (deliveries made in the same pass run in parallel: no order between them) */
    int completed_at = n_all == 2 && strcmp(event_of(&q[0], e1, sizeof e1), "training.job.completed") == 0 ? 0 : 1;
    CHECK(n_all == 2 && strcmp(event_of(&q[1 - completed_at], e1, sizeof e1), "training.job.started") == 0 &&
              strcmp(event_of(&q[completed_at], e2, sizeof e2), "training.job.completed") == 0,
          "events \"*\": both events");
    CHECK(n_flaky >= 1 && strcmp(event_of(&x[0], e1, sizeof e1), "training.job.completed") == 0 && n_job == 1 &&
              strcmp(event_of(&j[0], e2, sizeof e2), "training.job.started") == 0,
          "an events array gets only the events it names (config and job subscriptions)");
    int sig_all = n_all == 2;
    for (int i = 0; i < n_all; i++)
        sig_all &= signed_ok(&q[i], SECRET, t0);
    CHECK(sig_all, "config subscriptions: signed with webhooks.secret, verifiable independently");
    CHECK(n_job == 1 && signed_ok(&j[0], JOB_SECRET, t0) && !signed_ok(&j[0], SECRET, t0),
          "a job's own webhook is signed with its own secret");
    json_t *p = n_all ? payload_of(&q[completed_at]) : NULL;
    CHECK(p && json_is_string(json_object_get(p, "timestamp")) &&
              strcmp(json_string_value(json_object_get(json_object_get(p, "data"), "job_id")),
                     json_string_value(json_object_get(job, "job_id"))) == 0,
          "the body is the event: {event, timestamp, data: {job_id, ...}}");
    json_decref(p);
    char hv[64] = "", ua[64] = "";
    CHECK(n_all && header_of(q[0].headers, "x-policy", hv, sizeof hv) && strcmp(hv, "config") == 0 && n_job &&
              header_of(j[0].headers, "x-policy", hv, sizeof hv) && strcmp(hv, "job") == 0,
          "the policy's headers arrive (x-policy: the target's source)");
    CHECK(n_all && header_of(q[0].headers, "user-agent", ua, sizeof ua) && strncmp(ua, "agentcore-webhooks/", 19) == 0,
          "User-Agent: agentcore-webhooks/<version>");

    /* /flaky: 500, then 200, same webhook-id; /fail: 3 attempts (the schedule's length), 300 ms
     * apart at least, then dropped */
    char id0[128] = "", id1[128] = "", idf[3][128] = {"", "", ""};
    if (n_flaky == 2) {
        header_of(x[0].headers, "webhook-id", id0, sizeof id0);
        header_of(x[1].headers, "webhook-id", id1, sizeof id1);
    }
    CHECK(n_flaky == 2 && x[0].status == 500 && x[1].status == 200 && id0[0] && strcmp(id0, id1) == 0 &&
              x[1].at_ms - x[0].at_ms >= 300,
          "a failed delivery is retried with the same webhook-id after the schedule's delay");
    for (int i = 0; i < n_fail && i < 3; i++)
        header_of(f[i].headers, "webhook-id", idf[i], sizeof idf[i]);
    CHECK(n_fail == 3 && strcmp(idf[0], idf[1]) == 0 && strcmp(idf[1], idf[2]) == 0 && strcmp(idf[0], id0) != 0 &&
              f[1].at_ms - f[0].at_ms >= 300 && f[2].at_ms - f[1].at_ms >= 300,
          "a receiver that keeps failing gets exactly as many attempts as the schedule lists, then none");
    int sig_retry = n_fail == 3;
    for (int i = 0; i < n_fail && i < 3; i++)
        sig_retry &= signed_ok(&f[i], SECRET, t0);
    CHECK(sig_retry, "every retry is signed afresh (its own timestamp)");
    uint64_t delivered, failed, dropped, perr;
    ac_webhooks_counters(w, &delivered, &failed, &dropped, &perr);
    CHECK(delivered == 4 && failed == 4 && dropped == 1 && perr == 0,
          "counters: 4 delivered (2 + flaky + job), 4 failed attempts (1 + 3), 1 dropped");
    if (delivered != 4 || failed != 4 || dropped != 1)
        fprintf(stderr, "  delivered %llu failed %llu dropped %llu\n", (unsigned long long)delivered,
                (unsigned long long)failed, (unsigned long long)dropped);
    ac_webhooks_stop(w);
    json_decref(job);
    close_store(s);
    ac_config_free(&cfg);
    receiver_stop(rp);
}

/* The jitter: each retry delay is the schedule's times 1 +- jitter, at random. 32 deliveries fail
 * once; their next attempt is read from the outbox (next_at_ms) rather than waited for. */
static void test_retry_jitter(void)
{
    receiver_t *rp = &the_receiver;
    if (receiver_start(rp) != 0) {
        CHECK(0, "the loopback receiver starts");
        return;
    }
    ac_config_t cfg;
    const double schedule[] = {0, 100, 1000}; /* the first retry after 100 s +- 25 % */
    base_config(&cfg, 1, schedule, 3, 0.25);
    char u_fail[128];
    url_of(u_fail, sizeof u_fail, rp, "/fail");
    cfg.webhook_subscriptions = json_pack("[{s:s, s:s}]", "url", u_fail, "events", "*");
    ac_store_t *s = fresh_store();
    ac_webhooks_t *w = start(&cfg);
    json_t *job = new_job("alice", NULL);
    int recorded = w != NULL;
    for (int i = 0; i < 32 && recorded; i++)
        recorded = record_event(job, "training.job.progress") == 0;
    ac_webhooks_notify(w);
    json_t *out = recorded ? wait_deliveries(32, 1) : NULL;
    int64_t seen = ac_clock_now_ms();
    ac_webhooks_stop(w); /* what is pending stays in the outbox */
    request_t q[64];
    int n = requests_to(rp, "/fail", q, 64);
    CHECK(out != NULL && n == 32, "32 deliveries failed once each");
    /* the delay was computed after the receiver answered (at_ms) and before we read it (seen):
     * next_at - seen <= delay <= next_at - at_ms */
    int in_bounds = out != NULL;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    size_t i;
    json_t *d;
    json_array_foreach(out, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "webhook_id"));
        int64_t next = json_integer_value(json_object_get(d, "next_at_ms")), at = -1;
        for (int k = 0; k < n; k++) {
            char qid[128];
            if (header_of(q[k].headers, "webhook-id", qid, sizeof qid) && strcmp(qid, id) == 0)
                at = q[k].at_ms;
        }
        int64_t most = next - at, least = next - seen;
        in_bounds &= at > 0 && json_integer_value(json_object_get(d, "attempt")) == 1 && most >= 75000 &&
                     least <= 125000;
        if (next - at < lo)
            lo = next - at;
        if (next - at > hi)
            hi = next - at;
    }
    CHECK(in_bounds, "each first retry is due 100 s x (1 +- 0.25) after the failure: in [75 s, 125 s]");
    /* 32 uniform draws over a 50 s band all within 10 s of each other: probability ~1e-20 */
    CHECK(out != NULL && hi - lo > 10000, "the delays are spread by the jitter, not all the same");
    if (out != NULL)
        printf("     first retry delays: %.1f s to %.1f s\n", (double)lo / 1000.0, (double)hi / 1000.0);
    json_decref(out);
    json_decref(job);
    close_store(s);
    ac_config_free(&cfg);
    receiver_stop(rp);
}

/* Without allow_private, a config subscription's loopback URL passes the start (names are not
 * resolved then) but the connection is refused: the receiver never hears of it. */
static void test_private_refused_at_connect(void)
{
    receiver_t *rp = &the_receiver;
    if (receiver_start(rp) != 0) {
        CHECK(0, "the loopback receiver starts");
        return;
    }
    ac_config_t cfg;
    const double schedule[] = {0, 100};
    base_config(&cfg, 0, schedule, 2, 0);
    char u_ok[128];
    url_of(u_ok, sizeof u_ok, rp, "/ok");
    cfg.webhook_subscriptions = json_pack("[{s:s, s:s}]", "url", u_ok, "events", "*");
    ac_store_t *s = fresh_store();
    ac_webhooks_t *w = start(&cfg);
    json_t *job = new_job("alice", NULL);
    int recorded = w != NULL && record_event(job, "training.job.started") == 0;
    ac_webhooks_notify(w);
    json_t *out = recorded ? wait_deliveries(1, 1) : NULL;
    json_t *d = json_array_get(out, 0);
    uint64_t delivered, failed, dropped, perr;
    ac_webhooks_counters(w, &delivered, &failed, &dropped, &perr);
    ac_webhooks_stop(w);
    request_t q[4];
    CHECK(out != NULL && requests_to(rp, "/ok", q, 4) == 0 && json_is_string(json_object_get(d, "last_error")) &&
              delivered == 0 && failed == 1,
          "a loopback target is refused at connect time: the attempt fails, nothing reaches it");
    json_decref(out);
    json_decref(job);
    close_store(s);
    ac_config_free(&cfg);
    receiver_stop(rp);
}

/* API subscriptions: their counters and status, 410 disabling, owners kept apart, and policy
 * errors failing closed and shown on the subscription. */
static void test_subscription_deliveries(void)
{
    receiver_t *rp = &the_receiver;
    if (receiver_start(rp) != 0) {
        CHECK(0, "the loopback receiver starts");
        return;
    }
    ac_config_t cfg;
    const double schedule[] = {0, 0.2, 0.2};
    base_config(&cfg, 1, schedule, 3, 0);
    ac_store_t *s = fresh_store();
    ac_webhooks_t *w = start(&cfg);
    ac_err_t err = AC_ERR_INIT;
    json_t *star = json_string("*"), *done = json_pack("[s]", "training.job.completed"), *tmp = NULL;
    const char *paths[] = {"/ok", "/gone", "/policy-raises", "/policy-host", "/policy-blank"};
    char urls[5][128];
    int subscribed = w != NULL;
    for (int i = 0; i < 5 && subscribed; i++) {
        url_of(urls[i], sizeof urls[i], rp, paths[i]);
        subscribed = ac_webhooks_subscribe(the_hooks, &cfg, "alice", urls[i], i == 0 ? done : star, 1000, &tmp, &err) == 0;
        json_decref(tmp);
    }
    char u_bob[128];
    url_of(u_bob, sizeof u_bob, rp, "/bob");
    subscribed = subscribed && ac_webhooks_subscribe(the_hooks, &cfg, "bob", u_bob, star, 1000, &tmp, &err) == 0;
    json_decref(tmp);
    if (!subscribed)
        fprintf(stderr, "  subscribe: %s\n", err.message);
    ac_err_clear(&err);
    json_t *job = new_job("alice", NULL);
    const char *both[] = {"training.job.started", "training.job.completed", NULL};
    int ok = subscribed && record_events(job, both) == 0;
    ac_webhooks_notify(w);
    ok = ok && wait_outbox_empty();
    /* after the 410s: one more event */
    ok = ok && record_event(job, "training.job.progress") == 0;
    ac_webhooks_notify(w);
    ok = ok && wait_outbox_empty();
    CHECK(ok, "subscriptions: three events delivered or dropped");
    uint64_t delivered, failed, dropped, perr;
    ac_webhooks_counters(w, &delivered, &failed, &dropped, &perr);
    ac_webhooks_stop(w);

    request_t q[16];
    char ev[64];
    CHECK(requests_to(rp, "/ok", q, 16) == 1 && strcmp(event_of(&q[0], ev, sizeof ev), "training.job.completed") == 0,
          "an API subscription gets the events it names");
    int n_gone = requests_to(rp, "/gone", q, 16);
    CHECK(n_gone == 2 && q[0].status == 410, "410: not retried (the two events fanned out before it, once each)");
    CHECK(requests_to(rp, "/bob", q, 16) == 0, "another owner's subscription gets none of alice's job events");
    CHECK(requests_to(rp, "/policy-raises", q, 16) == 0 && requests_to(rp, "/policy-host", q, 16) == 0 &&
              requests_to(rp, "/policy-blank", q, 16) == 0,
          "a policy that raises, sets Host, or routes to a URL with a blank: the delivery is dropped (fail closed)");
    json_t *list = NULL;
    ac_webhooks_list(the_hooks, "alice", &list, &err);
    json_t *okd = sub_by_url(list, urls[0]), *gone = sub_by_url(list, urls[1]);
    json_t *raises = sub_by_url(list, urls[2]), *host = sub_by_url(list, urls[3]), *blank = sub_by_url(list, urls[4]);
    CHECK(okd && json_integer_value(json_object_get(okd, "deliveries")) == 1 &&
              json_integer_value(json_object_get(okd, "last_status")) == 200 &&
              json_is_string(json_object_get(okd, "last_delivery_at")) && json_is_false(json_object_get(okd, "disabled")),
          "list: deliveries, last_status 200 and last_delivery_at on a working subscription");
    CHECK(gone && json_is_true(json_object_get(gone, "disabled")) &&
              json_integer_value(json_object_get(gone, "last_status")) == 410 &&
              json_integer_value(json_object_get(gone, "failures")) == 2,
          "list: 410 disabled the subscription (and the later event was not sent to it)");
    const char *why_raises = json_string_value(json_object_get(json_object_get(raises, "last_policy_error"), "error"));
    const char *why_host = json_string_value(json_object_get(json_object_get(host, "last_policy_error"), "error"));
    const char *why_blank = json_string_value(json_object_get(json_object_get(blank, "last_policy_error"), "error"));
    CHECK(raises && json_integer_value(json_object_get(raises, "policy_errors")) == 3 && why_raises &&
              strstr(why_raises, "refuses training.job.progress") != NULL,
          "list: a raising policy's errors are counted on the subscription, with the last message");
    CHECK(host && json_integer_value(json_object_get(host, "policy_errors")) == 3 && why_host &&
              strstr(why_host, "header 'Host' may not be set by a policy") != NULL,
          "list: a policy setting Host is a policy error, named");
    CHECK(blank && json_integer_value(json_object_get(blank, "policy_errors")) == 3 && why_blank &&
              strstr(why_blank, "control character or a space") != NULL,
          "list: a policy routing to a URL with a blank is a policy error, named");
    CHECK(delivered == 1 && dropped == 2 && perr == 9, "counters: 1 delivered, 2 dropped (410), 9 policy errors");
    json_decref(list);
    json_decref(job);
    json_decref(star);
    json_decref(done);
    close_store(s);
    ac_config_free(&cfg);
    receiver_stop(rp);
}

/* A delivery queued with headers that the rule now refuses (an entry of an older version, or a
 * store edited by hand): those headers are not sent, the others are. */
static int put_raw(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    return ac_outbox_push(t, ud, err);
}

static void test_queued_headers_rechecked(void)
{
    receiver_t *rp = &the_receiver;
    if (receiver_start(rp) != 0) {
        CHECK(0, "the loopback receiver starts");
        return;
    }
    ac_config_t cfg;
    const double schedule[] = {0};
    base_config(&cfg, 1, schedule, 1, 0);
    char url[128];
    url_of(url, sizeof url, rp, "/ok");
    ac_store_t *s = fresh_store();
    const char *body = "{\"event\":\"training.job.started\",\"data\":{}}";
    json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s, s:i, s:I}", "kind",
                              "delivery", "webhook_id", "msg_queued", "url", url, "event", "training.job.started",
                              "body", body, "headers", "x-old", "kept", "Host", "evil.example", "webhook-id", "forged",
                              "Content-Length", "0", "source", "config", "secret", SECRET, "attempt", 0, "next_at_ms",
                              (json_int_t)ac_clock_now_ms());
    ac_err_t err = AC_ERR_INIT;
    int ok = ac_hooks_write(the_hooks, put_raw, entry, &err) == 0;
    ac_err_clear(&err);
    ac_webhooks_t *w = ok ? start(&cfg) : NULL;
    ok = w != NULL && wait_outbox_empty();
    ac_webhooks_stop(w);
    request_t q[4];
    char v[128] = "", host[128] = "", id[128] = "";
    ok = ok && requests_to(rp, "/ok", q, 4) == 1;
    CHECK(ok && header_of(q[0].headers, "x-old", v, sizeof v) && strcmp(v, "kept") == 0 &&
              header_of(q[0].headers, "host", host, sizeof host) && strncmp(host, "127.0.0.1:", 10) == 0 &&
              header_of(q[0].headers, "webhook-id", id, sizeof id) && strcmp(id, "msg_queued") == 0 &&
              q[0].blen == strlen(body) && memcmp(q[0].body, body, q[0].blen) == 0 && signed_ok(&q[0], SECRET, 0),
          "a queued delivery's Host, Content-Length and webhook-id headers are not sent; its others are");
    json_decref(entry);
    close_store(s);
    ac_config_free(&cfg);
    receiver_stop(rp);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/plugins", tmp_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/plugins/webhooks", tmp_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/plugins/webhooks/unit.lua", tmp_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(POLICY, f) < 0 || fclose(f) != 0) {
        perror(path);
        return 1;
    }

    ac_train_config_defaults(&train_cfg);
    train_data = json_pack("[{s:s}, {s:s}]", "query", "add 1 and 2", "query", "add 3 and 4");

    test_signing();
    test_urls();
    test_events();
    test_subscriptions();
    test_delivery();
    test_retry_jitter();
    test_private_refused_at_connect();
    test_subscription_deliveries();
    test_queued_headers_rechecked();

    json_decref(train_data);
    nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done(__FILE__);
}
