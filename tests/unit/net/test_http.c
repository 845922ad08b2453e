/* The HTTP front's deferral mechanism: a long call runs on an RPC worker while the (single)
 * event loop keeps answering; the worker's answer reaches the client through the loop; a
 * client that leaves first does not break the server; a graceful stop lets the call finish.
 * Then the path of a large body: above parse_on_loop_bytes (and not at it) it is parsed and
 * handled on a worker, at most max_parallel_parses at once and max_queued_parses waiting (more
 * get 503 with Retry-After), and it never takes the worker that deferred calls need. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "net/auth.h"
#include "lua/config.h"
#include "net/http.h"
#include "net/ratelimit.h"
#include "net/rpc.h"

#include "check.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int entered, released;

/* A long call: it holds its worker until the test releases it. */
static int h_block(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)ctx, (void)params, (void)err;
    pthread_mutex_lock(&mu);
    entered++;
    pthread_cond_broadcast(&cv);
    while (released < entered)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    *result = json_string("done");
    return 0;
}

static int h_ping(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)ctx, (void)params, (void)err;
    *result = json_string("pong");
    return 0;
}

static const ac_method_t methods[] = {
    {"test.block", h_block, 0, AC_RL_OTHER, AC_METHOD_DEFER, 0, NULL, "blocks until released", NULL},
    /* the same, not deferred: it holds whatever thread handles its request */
    {"test.hold", h_block, 0, AC_RL_OTHER, 0, 0, NULL, "blocks until released, where it runs", NULL},
    {"test.ping", h_ping, 0, AC_RL_OTHER, 0, 0, NULL, "answers at once", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

static char url[128];
static char auth_header[1024];

typedef struct call {
    const char *method;
    long timeout_ms;
    size_t body_len; /* 0: a short call; else the request is padded (a long id) to exactly this */
    char body[512];  /* the answer's first bytes */
    size_t len;
    CURLcode rc;
    long status;
    char retry_after[16];
    int done; /* under mu */
} call_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    call_t *c = ud;
    size_t k = size * n, room = sizeof c->body - 1 - c->len;
    memcpy(c->body + c->len, p, k < room ? k : room);
    c->len += k < room ? k : room;
    c->body[c->len] = 0;
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    call_t *c = ud;
    size_t k = size * n;
    if (k > 13 && strncasecmp(p, "retry-after: ", 13) == 0) {
        size_t v = k - 13;
        while (v > 0 && (p[13 + v - 1] == '\r' || p[13 + v - 1] == '\n'))
            v--;
        snprintf(c->retry_after, sizeof c->retry_after, "%.*s", (int)(v < 15 ? v : 15), p + 13);
    }
    return k;
}

static void *do_call(void *arg)
{
    call_t *c = arg;
    size_t cap = c->body_len > 256 ? c->body_len + 1 : 256;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":\"", c->method);
    size_t pad = c->body_len > (size_t)n + 2 ? c->body_len - (size_t)n - 2 : 0;
    memset(req + n, 'x', pad);
    strcpy(req + n + pad, "\"}");
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, auth_header);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(req);
    pthread_mutex_lock(&mu);
    c->done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Waits (20 s at most) until one of a or b is done; returns it, or NULL. */
static call_t *wait_either(call_t *a, call_t *b)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (!a->done && !b->done)
        if (pthread_cond_timedwait(&cv, &mu, &deadline) != 0)
            break;
    call_t *first = a->done ? a : b->done ? b : NULL;
    pthread_mutex_unlock(&mu);
    return first;
}

/* Waits until n calls have entered h_block (30 s at most); 1 when they have. */
static int wait_entered(int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&mu);
    while (entered < n)
        if (pthread_cond_timedwait(&cv, &mu, &deadline) != 0)
            break;
    int reached = entered >= n;
    pthread_mutex_unlock(&mu);
    return reached;
}

static void release_one(void)
{
    pthread_mutex_lock(&mu);
    released++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

typedef struct stopper {
    ac_http_t *http;
} stopper_t;

static void *do_stop(void *arg)
{
    ac_http_stop(((stopper_t *)arg)->http, 10000);
    return NULL;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    free(cfg.listen[0]);
    cfg.listen[0] = strdup("127.0.0.1:0");
    cfg.threads = 1; /* one event loop: if the long call blocked it, ping could not answer */
    cfg.rpc_workers = 2;
    ac_err_t err = AC_ERR_INIT;
    ac_auth_config_t acfg = {.alg = "HS256", .secret = "test-http-secret-0123456789", .leeway_s = -1};
    ac_auth_t *auth = ac_auth_create(&acfg, &err);
    char *token = ac_auth_issue(auth, "tester", "", 600, (int64_t)time(NULL), &err);
    snprintf(auth_header, sizeof auth_header, "Authorization: Bearer %s", token);
    free(token);
    ac_ratelimit_t *rl = ac_ratelimit_create(cfg.rate);
    ac_rpc_t *rpc = ac_rpc_create(methods, NULL, auth, rl, &cfg);
    ac_http_t *http = ac_http_create(&cfg, rpc, &err);
    CHECK(http != NULL && ac_http_start(http, &err) == 0, "server starts");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/jsonrpc", ac_http_port(http, 0));

    /* 1. a long call does not hold the event loop, and its answer arrives */
    call_t slow = {.method = "test.block", .timeout_ms = 20000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &slow);
    wait_entered(1);
    call_t ping = {.method = "test.ping", .timeout_ms = 3000};
    do_call(&ping);
    CHECK(ping.rc == CURLE_OK && strstr(ping.body, "\"pong\"") != NULL, "loop answers while a worker is busy");
    release_one();
    pthread_join(t, NULL);
    CHECK(slow.rc == CURLE_OK && slow.status == 200 && strstr(slow.body, "\"result\":\"done\"") != NULL,
          "the deferred answer reaches its client");

    /* 2. the client leaves before the worker is done: the answer is dropped safely */
    call_t gone = {.method = "test.block", .timeout_ms = 300};
    pthread_create(&t, NULL, do_call, &gone);
    wait_entered(2);
    pthread_join(t, NULL);
    CHECK(gone.rc == CURLE_OPERATION_TIMEDOUT, "the impatient client gave up");
    release_one();
    usleep(200000);
    call_t after = {.method = "test.ping", .timeout_ms = 3000};
    do_call(&after);
    CHECK(after.rc == CURLE_OK && strstr(after.body, "\"pong\"") != NULL, "server still serves after a lost client");

    /* 3. a graceful stop waits for the deferred call in flight */
    call_t last = {.method = "test.block", .timeout_ms = 20000};
    pthread_create(&t, NULL, do_call, &last);
    wait_entered(3);
    stopper_t st = {http};
    pthread_t stopper;
    pthread_create(&stopper, NULL, do_stop, &st);
    usleep(300000);
    call_t refused = {.method = "test.ping", .timeout_ms = 2000};
    do_call(&refused);
    CHECK(refused.rc != CURLE_OK, "a stopping server accepts no new connection");
    release_one();
    pthread_join(t, NULL);
    pthread_join(stopper, NULL);
    CHECK(last.rc == CURLE_OK && strstr(last.body, "\"done\"") != NULL, "the in-flight call finished during stop");

    ac_http_destroy(http);
    ac_rpc_destroy(rpc);

    /* 4. large bodies: a fresh server whose one loop parses bodies of up to 1024 bytes itself */
    cfg.parse_on_loop_bytes = 1024;
    cfg.max_parallel_parses = 1;
    cfg.max_queued_parses = 1;
    rpc = ac_rpc_create(methods, NULL, auth, rl, &cfg);
    http = ac_http_create(&cfg, rpc, &err);
    CHECK(http != NULL && ac_http_start(http, &err) == 0, "a second server starts");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/jsonrpc", ac_http_port(http, 0));

    /* a body of exactly parse_on_loop_bytes is parsed and handled on the loop: held there, it
     * holds the loop (the only way to see where it ran) */
    call_t at = {.method = "test.hold", .timeout_ms = 20000, .body_len = 1024};
    pthread_create(&t, NULL, do_call, &at);
    wait_entered(4);
    call_t blocked = {.method = "test.ping", .timeout_ms = 1000};
    do_call(&blocked);
    CHECK(blocked.rc == CURLE_OPERATION_TIMEDOUT, "a body at parse_on_loop_bytes runs on the loop");
    release_one();
    pthread_join(t, NULL);
    CHECK(at.status == 200 && strstr(at.body, "\"done\"") != NULL, "and is answered");

    /* one byte more: a worker parses and handles it, and the loop keeps answering */
    call_t big = {.method = "test.hold", .timeout_ms = 20000, .body_len = 1025};
    pthread_create(&t, NULL, do_call, &big);
    wait_entered(5);
    call_t small = {.method = "test.ping", .timeout_ms = 5000};
    do_call(&small);
    CHECK(small.rc == CURLE_OK && strstr(small.body, "\"pong\"") != NULL,
          "a body over parse_on_loop_bytes runs on a worker: the loop answers meanwhile");

    /* the large slot is taken: of two more large bodies one waits, the other is refused */
    call_t q1 = {.method = "test.ping", .timeout_ms = 20000, .body_len = 2000};
    call_t q2 = q1;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, do_call, &q1);
    pthread_create(&t2, NULL, do_call, &q2);
    call_t *first = wait_either(&q1, &q2), *other = first == &q1 ? &q2 : &q1;
    CHECK(first != NULL && first->status == 503 && strcmp(first->retry_after, "1") == 0 &&
              strstr(first->body, "-32603") != NULL && strstr(first->body, "\"body\"") != NULL,
          "beyond max_parallel_parses + max_queued_parses a large body gets 503 with Retry-After at once");
    pthread_mutex_lock(&mu);
    int other_waits = !other->done;
    pthread_mutex_unlock(&mu);
    CHECK(other_waits, "the other waits for the large slot");

    /* deferred calls still get the second worker */
    call_t deferred = {.method = "test.block", .timeout_ms = 20000};
    pthread_t t3;
    pthread_create(&t3, NULL, do_call, &deferred);
    CHECK(wait_entered(6), "a deferred call runs while a large body holds its slot");
    release_one();
    release_one();
    pthread_join(t, NULL);
    pthread_join(t3, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(big.status == 200 && strstr(big.body, "\"done\"") != NULL && deferred.status == 200,
          "both held calls are answered");
    CHECK(other->status == 200 && strstr(other->body, "\"pong\"") != NULL,
          "the waiting large body is handled once the slot is free");
    ac_http_stop(http, 10000);
    ac_http_destroy(http);
    ac_rpc_destroy(rpc);
    ac_ratelimit_destroy(rl);
    ac_auth_destroy(auth);
    ac_config_free(&cfg);
    curl_global_cleanup();
    return check_done(__FILE__);
}
