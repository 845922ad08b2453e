#include "service/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/clock.h"
#include "base/rng.h"
#include "base/uuid.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "store/hooks.h"

#define BATCH 32         /* outbox entries handled per pass */
#define IDLE_WAIT_MS 200 /* longest sleep without a notification (workers do not notify) */

static const char *const event_names[] = {"training.job.started",   "training.job.progress",
                                          "training.job.completed", "training.job.failed",
                                          "training.job.cancelled", "training.budget.warning",
                                          "training.validation",    "training.zero_variance_stall",
                                          NULL};

struct ac_webhooks {
    const ac_config_t *cfg;
    ac_hooks_t *hooks;
    pthread_t thread;
    atomic_int stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pending;
    ac_lua_host_t *host; /* the event being fanned out's, NULL between events */
    ac_rng_t rng;        /* jitter */
    atomic_ulong delivered, failed, dropped, policy_errors;
};

/* ---- signing ----------------------------------------------------------------------------------- */

int ac_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t len,
                    char *out, size_t outlen)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return -1;
    const char *b64 = secret + 6;
    size_t blen = strlen(b64);
    unsigned char key[256];
    if (blen == 0 || blen % 4 != 0 || blen / 4 * 3 > sizeof key)
        return -1;
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)blen);
    if (klen < 0)
        return -1;
    klen -= (b64[blen - 1] == '=') + (b64[blen - 2] == '='); /* DecodeBlock counts the padding */
    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id, (long long)timestamp);
    /* the signed content is "id.timestamp.body" */
    char *msg = malloc((size_t)plen + len + 1);
    if (msg == NULL)
        return -1;
    memcpy(msg, prefix, (size_t)plen);
    memcpy(msg + plen, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int ok = HMAC(EVP_sha256(), key, klen, (const unsigned char *)msg, (size_t)plen + len, mac, &maclen) != NULL;
    free(msg);
    if (!ok || outlen < 4 + 4 * ((maclen + 2) / 3) + 1)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return 0;
}

int ac_webhook_new_secret(char *out, size_t outlen)
{
    unsigned char raw[24];
    if (outlen < 6 + 32 + 1 || getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -1;
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof raw);
    return 0;
}

/* ---- targets ------------------------------------------------------------------------------------ */

static int private_addr(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 24) == 127 || (a >> 24) == 0 || (a >> 20) == (172 << 4 | 1) ||
               (a >> 16) == (192 << 8 | 168) || (a >> 16) == (169 << 8 | 254) || (a >> 22) == (100 << 2 | 1);
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t loop[16] = {[15] = 1}, any[16] = {0};
        if (memcmp(b, loop, 16) == 0 || memcmp(b, any, 16) == 0 || (b[0] & 0xfe) == 0xfc ||
            (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
            return 1;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, b + 12, 4);
            return private_addr((const struct sockaddr *)&v4);
        }
        return 0;
    }
    return 1;
}

/* The form of a URL, before anything resolves it: no byte that could end a header line or a
 * request line (CR, LF, NUL and the other controls, DEL, C1 controls in UTF-8) and no blank. */
static int url_form_check(const char *url, const char *field, ac_err_t *err)
{
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field,
                                "holds a control character or a space at byte %zu: refused",
                                (size_t)(p - (const unsigned char *)url));
    }
    return 0;
}

int ac_webhook_url_check(const ac_config_t *cfg, const char *url, const char *field, ac_err_t *err)
{
    if (url_form_check(url, field, err) != 0)
        return -1;
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must be an http:// or https:// URL");
    if (strlen(url) > 2048)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "longer than 2048 characters");
    char host[256];
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= sizeof host || memchr(rest, '@', n) != NULL)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must name a host (and no user information)");
    memcpy(host, rest, n);
    host[n] = 0;
    /* strip the port (and the brackets of an IPv6 literal) */
    char *h = host;
    if (*h == '[') {
        char *close = strchr(h, ']');
        if (close == NULL)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "has an unterminated IPv6 address");
        *close = 0;
        h++;
    } else {
        char *colon = strrchr(h, ':');
        if (colon != NULL)
            *colon = 0;
    }
    if (cfg->webhook_allow_private)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(h, NULL, &hints, &ai) != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "the host '%s' does not resolve", h);
    int refused = 0;
    for (struct addrinfo *p = ai; p != NULL; p = p->ai_next)
        refused |= private_addr(p->ai_addr);
    freeaddrinfo(ai);
    if (refused)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field,
                            "'%s' is a loopback or private address: refused (webhooks.allow_private)", h);
    return 0;
}

int ac_webhook_events_check(const json_t *events, const char *field, ac_err_t *err)
{
    if (json_is_string(events) && strcmp(json_string_value(events), "*") == 0)
        return 0; /* all of them, as ["*"] says */
    if (!json_is_array(events) || json_array_size(events) == 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field,
                            "must be \"*\" or a non-empty array of event names");
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *name = json_string_value(e);
        int ok = name != NULL && strcmp(name, "*") == 0;
        for (const char *const *p = event_names; name != NULL && *p && !ok; p++)
            ok = strcmp(*p, name) == 0;
        if (!ok)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field,
                                "unknown event %s: use training.job.started, .progress, .completed, .failed, "
                                ".cancelled, training.budget.warning or *",
                                name ? name : "(not a string)");
    }
    return 0;
}

static int wants(const json_t *events, const char *event)
{
    if (json_is_string(events)) /* "*" (the only string ac_webhook_events_check lets in) */
        return strcmp(json_string_value(events), "*") == 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *name = json_string_value(e);
        if (name != NULL && (strcmp(name, "*") == 0 || strcmp(name, event) == 0))
            return 1;
    }
    return 0;
}

/* ---- subscriptions (API) ----------------------------------------------------------------------- */

static int put_sub_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    json_t *sub = ud;
    return ac_subs_put(t, json_string_value(json_object_get(sub, "owner")), sub, err);
}

int ac_webhooks_subscribe(ac_hooks_t *s, const ac_config_t *cfg, const char *owner, const char *url,
                          const json_t *events, int64_t now_ms, json_t **out, ac_err_t *err)
{
    /* the cheap check first: the URL's may wait on DNS */
    if (ac_webhook_events_check(events, "events", err) != 0 || ac_webhook_url_check(cfg, url, "url", err) != 0)
        return -1;
    if (strlen(owner) > AC_HOOKS_OWNER_MAX)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: owner too long");
    char id[AC_UUID_LEN + 1], secret[64], ts[40];
    if (ac_uuid_v4(id) != 0 || ac_webhook_new_secret(secret, sizeof secret) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: no random source");
    json_t *sub = json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:b, s:n, s:n, s:i, s:i, s:i, s:n}", "subscription_id",
                            id, "owner", owner, "url", url, "events", events, "secret", secret, "created_at",
                            ac_clock_iso8601(ts, sizeof ts, now_ms, 0), "disabled", 0, "last_status",
                            "last_delivery_at", "failures", 0, "deliveries", 0, "policy_errors", 0,
                            "last_policy_error");
    if (sub == NULL)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "url", "must be valid UTF-8");
    if (ac_hooks_write(s, put_sub_txn, sub, err) != 0) {
        json_decref(sub);
        return -1;
    }
    json_object_del(sub, "owner");
    *out = sub;
    return 0;
}

typedef struct list_ctx {
    json_t *out;
    int with_secret;
} list_ctx_t;

static int list_one(json_t *sub, void *ud, ac_err_t *err)
{
    (void)err;
    list_ctx_t *l = ud;
    if (!l->with_secret)
        json_object_del(sub, "secret");
    json_object_del(sub, "owner");
    /* subscriptions stored before policy errors were recorded */
    if (json_object_get(sub, "policy_errors") == NULL)
        json_object_set_new(sub, "policy_errors", json_integer(0));
    if (json_object_get(sub, "last_policy_error") == NULL)
        json_object_set_new(sub, "last_policy_error", json_null());
    json_array_append_new(l->out, sub);
    return 0;
}

typedef struct owner_ctx {
    const char *owner;
    list_ctx_t list;
} owner_ctx_t;

static int list_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    owner_ctx_t *o = ud;
    json_array_clear(o->list.out);
    return ac_subs_each(t, o->owner, list_one, &o->list, err);
}

static int owner_subs(ac_hooks_t *s, const char *owner, int with_secret, json_t **out, ac_err_t *err)
{
    owner_ctx_t o = {owner, {json_array(), with_secret}};
    if (ac_hooks_read(s, list_txn, &o, err) != 0) {
        json_decref(o.list.out);
        return -1;
    }
    *out = o.list.out;
    return 0;
}

int ac_webhooks_list(ac_hooks_t *s, const char *owner, json_t **out, ac_err_t *err)
{
    return owner_subs(s, owner, 0, out, err);
}

typedef struct unsub_ctx {
    const char *owner, *id;
} unsub_ctx_t;

static int unsub_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    unsub_ctx_t *u = ud;
    int rc = ac_subs_del(t, u->owner, u->id, err);
    if (rc < 0)
        return -1;
    return rc == 1 ? 0 : ac_err_field(err, AC_ERR_NOT_FOUND, "subscription_id", "no subscription %s", u->id);
}

int ac_webhooks_unsubscribe(ac_hooks_t *s, const char *owner, const char *id, ac_err_t *err)
{
    unsub_ctx_t u = {owner, id};
    return ac_hooks_write(s, unsub_txn, &u, err);
}

/* ---- the outbox ---------------------------------------------------------------------------------- */

typedef struct entry {
    uint64_t seq;
    json_t *v;
} entry_t;

typedef struct take_ctx {
    const char *kind;
    int64_t now_ms;
    entry_t items[BATCH];
    int n;
    int64_t next_due; /* earliest next_at among deliveries not yet due */
} take_ctx_t;

static int take_one(uint64_t seq, json_t *v, void *ud, ac_err_t *err)
{
    (void)err;
    take_ctx_t *c = ud;
    if (c->n == BATCH) {
        json_decref(v);
        return 1;
    }
    c->items[c->n].seq = seq;
    c->items[c->n++].v = v;
    return 0;
}

/* The work of a kind that is due, claimed for this node (hooks.h: with several nodes each entry
 * is one node's), long enough for a pass over it: a delivery attempt's timeout, or the policy
 * calls of a fan-out, with a wide margin. */
static int take(ac_webhooks_t *w, take_ctx_t *c, ac_err_t *err)
{
    int64_t claim_ms = (int64_t)w->cfg->webhook_timeout_ms + 60000;
    return ac_outbox_claim(w->hooks, c->kind, c->now_ms, BATCH, claim_ms, take_one, c, &c->next_due, err);
}

static void release(take_ctx_t *c)
{
    for (int i = 0; i < c->n; i++)
        json_decref(c->items[i].v);
    c->n = 0;
}

/* Fan-out of one event: the deliveries its subscriptions get, as outbox entries, and the policy
 * errors to record on the subscriptions they happened for, in the same transaction. */
typedef struct fanout {
    uint64_t seq;
    json_t *deliveries;    /* array of delivery entries */
    json_t *policy_errors; /* array of {owner, subscription_id, error, at_ms} */
} fanout_t;

/* A policy that fails must not fail open: a filter or a redaction that raises would otherwise
 * send what it was written to hold back. So the delivery is dropped (unless the operator chose
 * webhooks.on_policy_error = "deliver"), counted, logged whole, and shown to the subscription's
 * owner in webhooks.list without the server's paths. */
static void policy_failed(ac_webhooks_t *w, fanout_t *f, const ac_err_t *err, const char *event, const char *source,
                          const char *sub_id, const char *owner)
{
    atomic_fetch_add(&w->policy_errors, 1);
    json_t *tb = json_object_get(err->data, "traceback");
    fprintf(stderr, "agentcore: webhook policy error (event %s, source %s%s%s): %s (%s)%s%s\n", event ? event : "?",
            source, sub_id ? ", subscription " : "", sub_id ? sub_id : "", err->message,
            w->cfg->webhook_deliver_on_policy_error ? "delivered unchanged: webhooks.on_policy_error = deliver"
                                                    : "delivery dropped",
            json_is_string(tb) ? "\n" : "", json_is_string(tb) ? json_string_value(tb) : "");
    if (sub_id == NULL || owner == NULL)
        return; /* config and job subscriptions have no record to show it in */
    char clean[sizeof err->message];
    ac_err_strip_paths(clean, sizeof clean, err->message);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:I}", "owner", owner, "subscription_id", sub_id, "error", clean,
                            "at_ms", (json_int_t)ac_clock_now_ms());
    if (rec != NULL)
        json_array_append_new(f->policy_errors, rec);
}

static void add_target(ac_webhooks_t *w, fanout_t *f, const json_t *payload, const char *url, const json_t *events,
                       const char *source, const char *sub_id, const char *owner, const char *secret)
{
    const char *event = json_string_value(json_object_get(payload, "event"));
    if (url == NULL || secret == NULL || !wants(events, event))
        return;
    ac_webhook_policy_t *policy = NULL;
    ac_err_t err = AC_ERR_INIT;
    json_t *target = json_pack("{s:s, s:O, s:s, s:s?}", "url", url, "events", events, "source", source,
                               "subscription_id", sub_id);
    json_t *routed = NULL;
    if (w->host == NULL)
        ac_err_set(&err, AC_ERR_INTERNAL, "no Lua state for the policy (out of memory)");
    int rc = w->host == NULL || (policy = ac_webhook_policy_open(w->host, w->cfg->webhook_policy, &err)) == NULL ||
             ac_webhook_route(policy, payload, target, &routed, &err) != 0;
    /* a URL the policy routes to is checked like a subscription's: one bad target is the
     * policy's error, and no part of its answer goes out */
    size_t i;
    json_t *d;
    json_array_foreach(routed, i, d)
    {
        const char *to = json_string_value(json_object_get(d, "url"));
        ac_err_t uerr = AC_ERR_INIT;
        if (!rc && to != NULL && ac_webhook_url_check(w->cfg, to, "url", &uerr) != 0) {
            json_t *why = json_object_get(uerr.data, "error");
            ac_err_set(&err, AC_ERR_INTERNAL, "%s: route's delivery %zu: url %s", policy->path, i + 1,
                       json_is_string(why) ? json_string_value(why) : uerr.message);
            rc = 1;
        }
        ac_err_clear(&uerr);
    }
    ac_webhook_policy_close(policy);
    if (rc) {
        policy_failed(w, f, &err, event, source, sub_id, owner);
        json_decref(routed);
        routed = w->cfg->webhook_deliver_on_policy_error ? json_pack("[{}]") : json_array();
    }
    ac_err_clear(&err);
    json_array_foreach(routed, i, d)
    {
        const char *to = json_string_value(json_object_get(d, "url"));
        json_t *body = json_object_get(d, "payload");
        char *text = json_dumps(body ? body : payload, JSON_COMPACT);
        char id[AC_UUID_LEN + 5] = "msg_";
        if (text == NULL || ac_uuid_v4(id + 4) != 0) {
            free(text);
            continue;
        }
        json_t *headers = json_object_get(d, "headers");
        json_array_append_new(
            f->deliveries, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s?, s:s?, s:s, s:i, s:I}", "kind",
                                     "delivery", "webhook_id", id, "url", to ? to : url, "event", event, "body", text,
                                     "headers", headers ? json_incref(headers) : json_object(), "source", source,
                                     "subscription_id", sub_id, "owner", owner, "secret", secret, "attempt", 0,
                                     "next_at_ms", (json_int_t)ac_clock_now_ms()));
        free(text);
    }
    json_decref(routed);
    json_decref(target);
}

/* Counts a policy error on the subscription it happened for (gone meanwhile: nothing to do). */
static int note_policy_error(ac_hooks_txn_t *t, const json_t *rec, ac_err_t *err)
{
    const char *owner = json_string_value(json_object_get(rec, "owner"));
    json_t *sub = NULL;
    int found = ac_subs_get(t, owner, json_string_value(json_object_get(rec, "subscription_id")), &sub, err);
    if (found <= 0)
        return found;
    char ts[40];
    json_object_set_new(sub, "policy_errors",
                        json_integer(json_integer_value(json_object_get(sub, "policy_errors")) + 1));
    json_object_set_new(sub, "last_policy_error",
                        json_pack("{s:O, s:s}", "error", json_object_get(rec, "error"), "at",
                                  ac_clock_iso8601(ts, sizeof ts, json_integer_value(json_object_get(rec, "at_ms")), 0)));
    int rc = ac_subs_put(t, owner, sub, err);
    json_decref(sub);
    return rc;
}

static int fanout_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    fanout_t *f = ud;
    int rc = ac_outbox_del(t, f->seq, err);
    if (rc <= 0) /* 0: the claim ran out and another node took the event: it fans it out */
        return rc < 0 ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "outbox entry %llu: the claim on it was lost",
                                        (unsigned long long)f->seq);
    size_t i;
    json_t *d;
    json_array_foreach(f->policy_errors, i, d)
    {
        if (note_policy_error(t, d, err) < 0)
            return -1;
    }
    json_array_foreach(f->deliveries, i, d)
    {
        if (ac_outbox_push(t, d, err) != 0)
            return -1;
    }
    return 0;
}

static int fan_out(ac_webhooks_t *w)
{
    ac_err_t err = AC_ERR_INIT;
    take_ctx_t c = {.kind = "event", .now_ms = ac_clock_now_ms()};
    if (take(w, &c, &err) != 0) {
        release(&c);
        fprintf(stderr, "agentcore: webhooks: %s\n", err.message);
        ac_err_clear(&err);
        return 0;
    }
    int done = 0;
    for (int i = 0; i < c.n; i++) {
        json_t *entry = c.items[i].v;
        json_t *payload = json_object_get(entry, "event");
        const char *owner = json_string_value(json_object_get(entry, "owner"));
        fanout_t f = {c.items[i].seq, json_array(), json_array()};
        /* Each event's policy calls get a Lua state of their own: events of different jobs and
         * principals never meet in one. (A failing create is a policy error of every target.) */
        w->host = ac_lua_host_create(w->cfg->lua_dir, w->cfg->plugins_dir, &w->cfg->plugin_limits, &err);
        ac_err_clear(&err);
        size_t k;
        json_t *sub;
        json_array_foreach(w->cfg->webhook_subscriptions, k, sub)
        {
            add_target(w, &f, payload, json_string_value(json_object_get(sub, "url")), json_object_get(sub, "events"),
                       "config", NULL, owner, w->cfg->webhook_secret);
        }
        json_array_foreach(json_object_get(entry, "webhooks"), k, sub)
        {
            const char *secret = json_string_value(json_object_get(sub, "secret"));
            add_target(w, &f, payload, json_string_value(json_object_get(sub, "url")), json_object_get(sub, "events"),
                       "job", NULL, owner, secret ? secret : w->cfg->webhook_secret);
        }
        json_t *subs = NULL;
        if (owner != NULL && owner_subs(w->hooks, owner, 1, &subs, &err) == 0) {
            json_array_foreach(subs, k, sub)
            {
                if (!json_is_true(json_object_get(sub, "disabled")))
                    add_target(w, &f, payload, json_string_value(json_object_get(sub, "url")),
                               json_object_get(sub, "events"), "subscription",
                               json_string_value(json_object_get(sub, "subscription_id")), owner,
                               json_string_value(json_object_get(sub, "secret")));
            }
        }
        json_decref(subs);
        ac_err_clear(&err);
        ac_lua_host_destroy(w->host);
        w->host = NULL;
        if (ac_hooks_write(w->hooks, fanout_txn, &f, &err) != 0) {
            fprintf(stderr, "agentcore: webhooks: %s\n", err.message);
            ac_err_clear(&err);
        } else {
            done++;
        }
        json_decref(f.deliveries);
        json_decref(f.policy_errors);
    }
    release(&c);
    return done;
}

/* ---- delivery ------------------------------------------------------------------------------------ */

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    const ac_webhooks_t *w = ud;
    /* checked at connect time: a name may resolve to a private address only later */
    if (!w->cfg->webhook_allow_private && private_addr(&addr->addr))
        return CURL_SOCKET_BAD;
    return socket(addr->family, addr->socktype, addr->protocol);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

typedef struct outcome {
    long status; /* HTTP status, 0 when there was none */
    char error[CURL_ERROR_SIZE];
} outcome_t;

typedef struct result_ctx {
    uint64_t seq;
    json_t *d;
    const outcome_t *o;
    const ac_config_t *cfg;
    double jitter; /* in [-1, 1] */
    int64_t now_ms;
} result_ctx_t;

static int update_sub(ac_hooks_txn_t *t, const char *owner, const char *id, const outcome_t *o, int ok, int disable,
                      int64_t now_ms, ac_err_t *err)
{
    json_t *sub = NULL;
    int found = ac_subs_get(t, owner, id, &sub, err);
    if (found <= 0)
        return found;
    char ts[40];
    json_object_set_new(sub, "last_status", o->status ? json_integer(o->status) : json_string(o->error));
    json_object_set_new(sub, "last_delivery_at", json_string(ac_clock_iso8601(ts, sizeof ts, now_ms, 0)));
    if (ok) {
        json_object_set_new(sub, "deliveries", json_integer(json_integer_value(json_object_get(sub, "deliveries")) + 1));
    } else {
        json_object_set_new(sub, "failures", json_integer(json_integer_value(json_object_get(sub, "failures")) + 1));
    }
    if (disable)
        json_object_set_new(sub, "disabled", json_true());
    int rc = ac_subs_put(t, owner, sub, err);
    json_decref(sub);
    return rc;
}

static int result_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    result_ctx_t *r = ud;
    const outcome_t *o = r->o;
    int ok = o->status >= 200 && o->status < 300, gone = o->status == 410;
    json_int_t attempt = json_integer_value(json_object_get(r->d, "attempt")) + 1;
    int dead = !ok && !gone && attempt >= r->cfg->n_webhook_retries;
    const char *sub_id = json_string_value(json_object_get(r->d, "subscription_id"));
    const char *owner = json_string_value(json_object_get(r->d, "owner"));
    if (sub_id != NULL && owner != NULL && update_sub(t, owner, sub_id, o, ok, gone, r->now_ms, err) < 0)
        return -1;
    /* 0 from these: this node no longer holds the entry (its claim ran out): nothing is written,
     * the node that took it records the attempt it makes */
    int rc = ok || gone || dead ? ac_outbox_del(t, r->seq, err) : 1;
    if (rc <= 0)
        return rc < 0 ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "outbox entry %llu: the claim on it was lost",
                                        (unsigned long long)r->seq);
    if (ok || gone || dead)
        return 0;
    /* retry: the schedule's next delay, scaled by 1 +- jitter */
    double delay_s = r->cfg->webhook_retry_s[attempt] * (1.0 + r->cfg->webhook_jitter * r->jitter);
    json_object_set_new(r->d, "attempt", json_integer(attempt));
    json_object_set_new(r->d, "next_at_ms", json_integer((json_int_t)(r->now_ms + (int64_t)(delay_s * 1000.0))));
    json_object_set_new(r->d, "last_error", o->status ? json_integer(o->status) : json_string(o->error));
    rc = ac_outbox_put(t, r->seq, r->d, err);
    if (rc <= 0)
        return rc < 0 ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "outbox entry %llu: the claim on it was lost",
                                        (unsigned long long)r->seq);
    return 0;
}

/* The signed request of one delivery, added to multi; its headers go to *headers (the caller
 * frees them). NULL with out->error set when it cannot be signed. */
static CURL *delivery_request(ac_webhooks_t *w, CURLM *multi, const json_t *d, outcome_t *out,
                              struct curl_slist **headers)
{
    const char *body = json_string_value(json_object_get(d, "body"));
    const char *id = json_string_value(json_object_get(d, "webhook_id"));
    int64_t ts = ac_clock_now_ms() / 1000;
    char sig[128], line[512];
    if (body == NULL || id == NULL ||
        ac_webhook_sign(json_string_value(json_object_get(d, "secret")), id, ts, body, strlen(body), sig, sizeof sig) !=
            0) {
        snprintf(out->error, sizeof out->error, "cannot sign (bad secret)");
        return NULL;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof line, "webhook-id: %s", id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "User-Agent: agentcore-webhooks/" AC_VERSION);
    const char *name;
    size_t nlen;
    json_t *v;
    json_object_keylen_foreach(json_object_get(d, "headers"), name, nlen, v)
    {
        /* checked when the policy answered; again here for entries an older version queued */
        if (!json_is_string(v) ||
            ac_webhook_header_check(name, nlen, json_string_value(v), json_string_length(v), NULL) != 0)
            continue;
        char hl[AC_WEBHOOK_MAX_HEADER_NAME + AC_WEBHOOK_MAX_HEADER_VALUE + 4];
        /* curl removes a header given as "name:" with no value; "name;" sends it empty */
        if (json_string_length(v) == 0)
            snprintf(hl, sizeof hl, "%s;", name);
        else
            snprintf(hl, sizeof hl, "%s: %s", name, json_string_value(v));
        h = curl_slist_append(h, hl);
    }
    *headers = h;
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, json_string_value(json_object_get(d, "url")));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->cfg->webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, w);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, out->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, out);
    curl_multi_add_handle(multi, e);
    return e;
}

/* A delivery's outcome: counted, and written (done, or its next attempt scheduled). */
static void delivery_done(ac_webhooks_t *w, const entry_t *item, const outcome_t *out)
{
    ac_err_t err = AC_ERR_INIT;
    int ok = out->status >= 200 && out->status < 300;
    atomic_fetch_add(ok ? &w->delivered : &w->failed, 1);
    if (!ok && (out->status == 410 ||
                json_integer_value(json_object_get(item->v, "attempt")) + 1 >= w->cfg->n_webhook_retries))
        atomic_fetch_add(&w->dropped, 1);
    result_ctx_t r = {item->seq, item->v, out, w->cfg, ac_rng_uniform_double(&w->rng) * 2.0 - 1.0,
                      ac_clock_now_ms()};
    if (ac_hooks_write(w->hooks, result_txn, &r, &err) != 0) {
        fprintf(stderr, "agentcore: webhooks: %s\n", err.message);
        ac_err_clear(&err);
    }
}

static int deliver_due(ac_webhooks_t *w, int64_t *next_due)
{
    ac_err_t err = AC_ERR_INIT;
    take_ctx_t c = {.kind = "delivery", .now_ms = ac_clock_now_ms()};
    if (take(w, &c, &err) != 0) {
        release(&c);
        ac_err_clear(&err);
        return 0;
    }
    *next_due = c.next_due;
    if (c.n == 0)
        return 0;
    CURLM *multi = curl_multi_init();
    CURL *easy[BATCH] = {0};
    struct curl_slist *headers[BATCH] = {0};
    outcome_t out[BATCH];
    memset(out, 0, sizeof out);
    for (int i = 0; i < c.n; i++)
        easy[i] = delivery_request(w, multi, c.items[i].v, &out[i], &headers[i]);
    int running = 1;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 200, NULL);
    }
    for (int i = 0; i < c.n; i++) {
        if (easy[i] != NULL) {
            curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &out[i].status);
            if (out[i].status == 0 && out[i].error[0] == '\0')
                snprintf(out[i].error, sizeof out[i].error, "no response");
            curl_multi_remove_handle(multi, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
        curl_slist_free_all(headers[i]);
        delivery_done(w, &c.items[i], &out[i]);
    }
    curl_multi_cleanup(multi);
    int n = c.n;
    release(&c);
    return n;
}

static void *delivery_main(void *arg)
{
    ac_webhooks_t *w = arg;
    while (!atomic_load(&w->stopping)) {
        int64_t next_due = 0;
        int work = fan_out(w);
        work += deliver_due(w, &next_due);
        if (work > 0)
            continue;
        int64_t wait_ms = IDLE_WAIT_MS;
        if (next_due > 0) {
            int64_t until = next_due - ac_clock_now_ms();
            if (until < wait_ms)
                wait_ms = until > 0 ? until : 0;
        }
        pthread_mutex_lock(&w->lock);
        if (w->pending == 0 && !atomic_load(&w->stopping) && wait_ms > 0) {
            struct timespec ts = ac_clock_deadline(wait_ms);
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        }
        w->pending = 0;
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

/* The config's subscriptions, checked as webhooks.subscribe checks its own, except that their
 * hosts are not resolved here (a deployment may start before its receivers' names resolve; the
 * connection is still refused a private address). */
static int config_subs_check(const ac_config_t *cfg, ac_err_t *err)
{
    ac_config_t form = *cfg;
    form.webhook_allow_private = 1; /* the form only: no name resolution */
    ac_err_t e = AC_ERR_INIT;
    size_t i;
    json_t *sub;
    json_array_foreach(cfg->webhook_subscriptions, i, sub)
    {
        char field[64];
        json_t *url = json_object_get(sub, "url");
        snprintf(field, sizeof field, "webhooks.subscriptions[%zu].url", i + 1);
        if (strlen(json_string_value(url)) != json_string_length(url))
            ac_err_field(&e, AC_ERR_INVALID_PARAMS, field, "holds a NUL byte: refused");
        else if (ac_webhook_url_check(&form, json_string_value(url), field, &e) == 0) {
            snprintf(field, sizeof field, "webhooks.subscriptions[%zu].events", i + 1);
            ac_webhook_events_check(json_object_get(sub, "events"), field, &e);
        }
        if (e.code != 0)
            break;
    }
    if (e.code == 0)
        return 0;
    /* the server does not start: say which key and why, as the config reader does */
    ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: %s %s", cfg->path ? cfg->path : "config",
               json_string_value(json_object_get(e.data, "field")), json_string_value(json_object_get(e.data, "error")));
    ac_err_clear(&e);
    return -1;
}

ac_webhooks_t *ac_webhooks_start(const ac_config_t *cfg, ac_hooks_t *hooks, ac_err_t *err)
{
    if (config_subs_check(cfg, err) != 0)
        return NULL;
    ac_webhooks_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "webhooks: out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->hooks = hooks;
    ac_rng_seed(&w->rng, (uint64_t)ac_clock_mono_ns());
    /* a policy that does not load is a config error: say so at start */
    ac_lua_host_t *h = ac_lua_host_create(cfg->lua_dir, cfg->plugins_dir, &cfg->plugin_limits, err);
    ac_webhook_policy_t *p = h ? ac_webhook_policy_open(h, cfg->webhook_policy, err) : NULL;
    ac_webhook_policy_close(p);
    ac_lua_host_destroy(h);
    if (p == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_create(&w->thread, NULL, delivery_main, w);
    return w;
}

void ac_webhooks_notify(ac_webhooks_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->pending = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void ac_webhooks_counters(ac_webhooks_t *w, uint64_t *delivered, uint64_t *failed, uint64_t *dropped,
                          uint64_t *policy_errors)
{
    *delivered = w ? atomic_load(&w->delivered) : 0;
    *failed = w ? atomic_load(&w->failed) : 0;
    *dropped = w ? atomic_load(&w->dropped) : 0;
    *policy_errors = w ? atomic_load(&w->policy_errors) : 0;
}

void ac_webhooks_stop(ac_webhooks_t *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stopping, 1);
    ac_webhooks_notify(w);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
