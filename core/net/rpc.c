#include "net/rpc.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/train_config.h"
#include "base/uuid.h"

/* Request metrics per method (Prometheus): counts by result code and a latency histogram. */
static const int metric_codes[] = {0, AC_ERR_PARSE, AC_ERR_INVALID_REQUEST, AC_ERR_METHOD_NOT_FOUND,
                                   AC_ERR_INVALID_PARAMS, AC_ERR_INTERNAL, AC_ERR_NOT_FOUND, AC_ERR_UNAUTHORIZED,
                                   AC_ERR_FORBIDDEN, AC_ERR_RATE_LIMITED, AC_ERR_BUDGET_EXCEEDED,
                                   AC_ERR_VALIDATION_FAILED, AC_ERR_CANNOT_CANCEL, AC_ERR_EVALUATION_FAILED,
                                   AC_ERR_EXPORT_LIMIT};
#define N_CODES ((int)(sizeof metric_codes / sizeof metric_codes[0]))
static const double latency_buckets_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                           0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 10};
#define N_BUCKETS ((int)(sizeof latency_buckets_s / sizeof latency_buckets_s[0]))

typedef struct method_stats {
    atomic_ulong by_code[N_CODES];
    atomic_ulong buckets[N_BUCKETS]; /* calls whose latency falls in (bound[b-1], bound[b]] */
    atomic_ulong count;
    atomic_ullong sum_ns;
} method_stats_t;

#define STAT_SHARDS 8
static atomic_int next_shard;
static __thread int my_shard = -1;

static int discover(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
static const ac_param_spec_t no_params[] = {AC_PARAMS_END};

struct ac_rpc {
    const ac_method_t *methods;
    void *app;
    ac_auth_t *auth;
    ac_ratelimit_t *rl;
    int max_depth;
    int max_values;
    int max_batch;
    int expose_internal; /* errors.expose_internal: -32603 answers keep message and traceback */
    size_t large_bytes; /* limits.parse_on_loop_bytes, named in the large-request 429 */
    int rate_window_s[AC_RL_COUNT];
    ac_method_t discover; /* rpc.discover, built in */
    int n_methods;
    /* STAT_SHARDS x (n_methods + 2): the table, rpc.discover, then calls to no method. Each
     * thread counts into its own shard (summed when rendered): loop threads answering the same
     * method would otherwise bounce the counters' cache lines on every call. */
    method_stats_t *stats[STAT_SHARDS];
    ac_rpc_defer_fn defer_check; /* AC_METHOD_DEFER_IF: NULL defers them all */
};

int ac_rpc_check_table(const ac_method_t *methods, ac_err_t *err)
{
    for (const ac_method_t *m = methods; m->name != NULL; m++) {
        for (const ac_method_t *o = methods; o != m; o++)
            if (strcmp(o->name, m->name) == 0)
                return ac_err_set(err, AC_ERR_INTERNAL, "method table: %s is declared twice", m->name);
        if (m->handler == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "method table: %s has no handler", m->name);
        for (const ac_param_spec_t *p = m->params; p != NULL && p->name != NULL; p++) {
            for (const ac_param_spec_t *q = m->params; q != p; q++)
                if (strcmp(q->name, p->name) == 0)
                    return ac_err_set(err, AC_ERR_INTERNAL, "method table: %s declares %s twice", m->name, p->name);
            if (ac_params_check_spec(p, err) != 0) {
                char why[sizeof err->message];
                snprintf(why, sizeof why, "%s", err->message);
                json_t *e = json_object_get(err->data, "error");
                if (json_is_string(e))
                    snprintf(why, sizeof why, "%s", json_string_value(e));
                return ac_err_set(err, AC_ERR_INTERNAL, "method table: %s: %s", m->name, why);
            }
        }
    }
    return 0;
}

ac_rpc_t *ac_rpc_create(const ac_method_t *methods, void *app, ac_auth_t *auth, ac_ratelimit_t *rl,
                        const ac_config_t *cfg)
{
    ac_err_t err = AC_ERR_INIT;
    if (ac_rpc_check_table(methods, &err) != 0) {
        fprintf(stderr, "agentcore: %s\n", err.message);
        ac_err_clear(&err);
        return NULL;
    }
    ac_rpc_t *rpc = calloc(1, sizeof *rpc);
    if (rpc == NULL)
        return NULL;
    *rpc = (ac_rpc_t){methods, app, auth, rl, cfg->max_json_depth, cfg->max_json_values, cfg->max_batch,
                      cfg->errors_expose_internal, cfg->parse_on_loop_bytes, {0}, {0}, 0, {NULL}, NULL};
    for (int i = 0; i < AC_RL_COUNT; i++)
        rpc->rate_window_s[i] = cfg->rate[i].window_s;
    rpc->discover = (ac_method_t){"rpc.discover", discover, 0, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS, no_params,
                                  "The OpenRPC document of this API", NULL};
    while (methods[rpc->n_methods].name != NULL)
        rpc->n_methods++;
    for (int i = 0; i < STAT_SHARDS; i++) {
        if ((rpc->stats[i] = calloc((size_t)rpc->n_methods + 2, sizeof *rpc->stats[i])) == NULL) {
            ac_rpc_destroy(rpc);
            return NULL;
        }
    }
    return rpc;
}

void ac_rpc_destroy(ac_rpc_t *rpc)
{
    for (int i = 0; rpc != NULL && i < STAT_SHARDS; i++)
        free(rpc->stats[i]);
    free(rpc);
}

const ac_method_t *ac_rpc_methods(const ac_rpc_t *rpc)
{
    return rpc->methods;
}

void ac_rpc_response_free(ac_rpc_response_t *r)
{
    free(r->body);
    r->body = NULL;
}

static const ac_method_t *find_method(const ac_rpc_t *rpc, const char *name)
{
    for (const ac_method_t *m = rpc->methods; m->name != NULL; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    if (strcmp(name, rpc->discover.name) == 0)
        return &rpc->discover;
    return NULL;
}

static void record(const ac_rpc_t *rpc, const ac_method_t *m, int code, int64_t t0)
{
    int slot = m == NULL ? rpc->n_methods + 1 : m == &rpc->discover ? rpc->n_methods : (int)(m - rpc->methods);
    if (my_shard < 0)
        my_shard = atomic_fetch_add(&next_shard, 1) % STAT_SHARDS;
    method_stats_t *st = &rpc->stats[my_shard][slot];
    int ci = 0;
    while (ci < N_CODES && metric_codes[ci] != code)
        ci++;
    if (ci == N_CODES)
        ci = 5; /* an unlisted code counts as internal */
    atomic_fetch_add_explicit(&st->by_code[ci], 1, memory_order_relaxed);
    int64_t ns = ac_clock_mono_ns() - t0;
    /* one counter per call (the first bucket it fits); the cumulative counts Prometheus wants
     * are summed when rendered: fewer shared cache lines touched on the hot path */
    int b = 0;
    while (b < N_BUCKETS && (double)ns / 1e9 > latency_buckets_s[b])
        b++;
    if (b < N_BUCKETS)
        atomic_fetch_add_explicit(&st->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_ns, (unsigned long long)ns, memory_order_relaxed);
}

typedef enum scan_result { SCAN_OK, SCAN_TOO_DEEP, SCAN_TOO_MANY } scan_result_t;

/* One pass over the text before the parser sees it, so that a hostile body can make jansson
 * neither recurse deeply (nesting) nor allocate without bound (values: jansson spends ~0.14 us
 * and ~40 bytes on each). Values are counted as the parser will allocate them: every object,
 * array and string (member names included) and every run of other characters outside strings
 * (a number, true, false, null). Brackets, commas and quotes inside strings do not count. The
 * text need not be valid JSON: the parser judges that afterwards, this only bounds its work. */
static scan_result_t scan(const char *s, size_t len, int max_depth, long max_values)
{
    int depth = 0, in_str = 0, in_word = 0;
    long values = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            in_word = 0;
            values++;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return SCAN_TOO_DEEP;
            in_word = 0;
            values++;
            break;
        case ']':
        case '}':
            depth--;
            in_word = 0;
            break;
        case ',':
        case ':':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            in_word = 0;
            break;
        default: /* a scalar's first character, or a later one */
            values += !in_word;
            in_word = 1;
            break;
        }
        if (values > max_values)
            return SCAN_TOO_MANY;
    }
    return SCAN_OK;
}

/* An internal error is the server's problem, not the client's: its message names files and
 * lines of the server (a plugin's path, a Lua traceback, a data directory). The client gets a
 * cleaned first line and a reference; the log gets everything under the same reference, so an
 * operator can match a user's report with its cause. */
static json_t *internal_data(const ac_rpc_t *rpc, const ac_err_t *err, const char *method)
{
    char ref[AC_UUID_LEN + 1];
    if (ac_uuid_v4(ref) != 0)
        snprintf(ref, sizeof ref, "%016llx", (unsigned long long)ac_clock_mono_ns());
    char *detail = err->data != NULL ? json_dumps(err->data, JSON_COMPACT) : NULL;
    json_t *tb = json_object_get(err->data, "traceback");
    /* one write, so that lines from other threads do not land inside it */
    fprintf(stderr, "agentcore: internal error ref=%s method=%s: %s%s%s%s%s\n", ref, method ? method : "-",
            err->message, detail && !json_is_string(tb) ? " data=" : "", detail && !json_is_string(tb) ? detail : "",
            json_is_string(tb) ? "\n" : "", json_is_string(tb) ? json_string_value(tb) : "");
    free(detail);
    if (rpc->expose_internal) { /* development: today's whole detail, plus the ref */
        json_t *data = json_is_object(err->data) ? json_deep_copy(err->data) : json_object();
        if (err->data != NULL && !json_is_object(err->data))
            json_object_set(data, "detail", err->data);
        json_object_set_new(data, "ref", json_string(ref));
        return data;
    }
    /* ac_err_field puts the text in data.error and the code's name in the message; a message
     * with a cause in data.error says both */
    char text[512];
    const char *msg = err->message;
    json_t *derr = json_object_get(err->data, "error"), *field = json_object_get(err->data, "field");
    int generic = msg[0] == '\0' || strcmp(msg, ac_err_name(AC_ERR_INTERNAL)) == 0;
    if (json_is_string(derr) && !generic && strcmp(json_string_value(derr), msg) != 0)
        snprintf(text, sizeof text, "%s: %s", msg, json_string_value(derr));
    else
        snprintf(text, sizeof text, "%s", json_is_string(derr) && generic ? json_string_value(derr) : msg);
    char clean[400];
    ac_err_strip_paths(clean, sizeof clean, text);
    json_t *data = json_pack("{s:s, s:s}", "error", clean[0] ? clean : ac_err_name(AC_ERR_INTERNAL), "ref", ref);
    if (data != NULL && json_is_string(field)) /* which part of the request or server: no path */
        json_object_set(data, "field", field);
    return data ? data : json_pack("{s:s, s:s}", "error", ac_err_name(AC_ERR_INTERNAL), "ref", ref);
}

static json_t *error_object(const ac_rpc_t *rpc, const ac_err_t *err, json_t *id, const char *method)
{
    int code = err->code != 0 ? err->code : AC_ERR_INTERNAL;
    const char *msg = err->message[0] ? err->message : ac_err_name(code);
    json_t *data = NULL;
    if (code == AC_ERR_INTERNAL && rpc != NULL) { /* rpc NULL: a refusal worded by the server itself */
        data = internal_data(rpc, err, method);
        if (!rpc->expose_internal)
            msg = ac_err_name(code);
    } else if (err->data != NULL) {
        data = json_incref(err->data);
    }
    json_t *e = json_pack("{s:i, s:s}", "code", code, "message", msg);
    if (e == NULL) /* a message that is not UTF-8: fall back to the code's name */
        e = json_pack("{s:i, s:s}", "code", code, "message", ac_err_name(code));
    if (data != NULL)
        json_object_set_new(e, "data", data);
    return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", e, "id", id != NULL ? id : json_null());
}

static int id_ok(const json_t *id)
{
    return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

typedef struct request_state {
    int single;  /* the body is one call, not a batch: a raw result may become the whole body */
    char *raw;   /* single call answered with raw text: the response body (malloc'd) */
    size_t raw_len;
    const ac_principal_t *principal;
    int64_t now_ms;
    int has_rate;
    ac_rate_info_t rate; /* the most constrained window any call of the request touched */
    int single_rate_limited;
} request_state_t;

static void note_rate(request_state_t *st, const ac_rate_info_t *info)
{
    if (info->limit <= 0)
        return;
    if (!st->has_rate || info->remaining < st->rate.remaining ||
        (info->remaining == st->rate.remaining && info->retry_after_s > st->rate.retry_after_s))
        st->rate = *info;
    st->has_rate = 1;
}

/* How far a call got before it was refused: where its error goes. */
typedef enum call_stage {
    CALL_OK,
    CALL_NO_ID,     /* not an object, or an id of the wrong type: answered with id null */
    CALL_MALFORMED, /* a bad envelope: answered even without an id (it is not a notification) */
    CALL_REFUSED,   /* a well-formed call refused: a notification gets no answer */
} call_stage_t;

/* The envelope of one call: *id (NULL for a notification), *name and *params (NULL when absent),
 * all borrowed from req. */
static call_stage_t read_envelope(json_t *req, json_t **id, const char **name, json_t **params, ac_err_t *err)
{
    if (!json_is_object(req)) {
        ac_err_set(err, AC_ERR_INVALID_REQUEST, "Invalid Request: a call must be an object");
        return CALL_NO_ID;
    }
    *id = json_object_get(req, "id");
    if (*id != NULL && !id_ok(*id)) {
        ac_err_field(err, AC_ERR_INVALID_REQUEST, "id", "must be a string, a number or null");
        return CALL_NO_ID;
    }
    json_t *version = json_object_get(req, "jsonrpc");
    json_t *jm = json_object_get(req, "method");
    *params = json_object_get(req, "params");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0)
        ac_err_field(err, AC_ERR_INVALID_REQUEST, "jsonrpc", "must be \"2.0\"");
    else if (!json_is_string(jm))
        ac_err_field(err, AC_ERR_INVALID_REQUEST, "method", "must be a string");
    else if (*params != NULL && !json_is_object(*params) && !json_is_array(*params))
        ac_err_field(err, AC_ERR_INVALID_REQUEST, "params", "must be an object or an array");
    else {
        *name = json_string_value(jm);
        return CALL_OK;
    }
    return CALL_MALFORMED;
}

/* What the method table demands before the handler: the permission, then the rate limit. */
static int admit(ac_rpc_t *rpc, request_state_t *st, const ac_method_t *m, ac_err_t *err)
{
    if (!ac_principal_has(st->principal, m->permission)) {
        ac_err_set(err, AC_ERR_FORBIDDEN, "Forbidden: %s needs the %s permission", m->name,
                   ac_perm_name(m->permission));
        ac_err_set_data(err, json_pack("{s:s, s:s}", "error", "missing permission", "required",
                                       ac_perm_name(m->permission)));
        return -1;
    }
    ac_rate_info_t info;
    int allowed = ac_ratelimit_take(rpc->rl, st->principal->sub, m->rl_class, st->now_ms, &info);
    note_rate(st, &info);
    if (allowed)
        return 0;
    ac_err_set(err, AC_ERR_RATE_LIMITED, "Rate limit exceeded: %d calls of %s per %d s", info.limit, m->name,
               rpc->rate_window_s[m->rl_class]);
    ac_err_set_data(err, json_pack("{s:i, s:i}", "retry_after_s", info.retry_after_s, "limit", info.limit));
    st->single_rate_limited = info.retry_after_s > 0 ? info.retry_after_s : 1;
    return -1;
}

/* The declared parameter checks, then the handler. Absent params are an empty object; params by
 * position are refused (every method takes them by name). */
static int run_method(ac_rpc_t *rpc, request_state_t *st, const ac_method_t *m, json_t *params,
                      ac_call_ctx_t *ctx, json_t **result, ac_err_t *err)
{
    int code = m->param_error ? m->param_error : AC_ERR_INVALID_PARAMS;
    if (params != NULL && !json_is_object(params))
        return ac_err_field(err, code, "params", "must be an object of named parameters");
    json_t *p = params != NULL ? json_incref(params) : json_object();
    *ctx = (ac_call_ctx_t){rpc, st->principal, rpc->app, st->now_ms, NULL, 0};
    int rc = ac_params_check(m->params, m->name, code, p, err);
    if (rc == 0)
        rc = m->handler(ctx, p, result, err);
    json_decref(p);
    if (rc != 0) {
        json_decref(*result);
        *result = NULL;
        free(ctx->raw_result);
        ctx->raw_result = NULL;
    }
    return rc;
}

/* A raw result as the whole body of a single call: {"jsonrpc":"2.0","result":RAW,"id":ID}. */
static void splice_raw(request_state_t *st, json_t *id, const char *raw, size_t raw_len)
{
    char *idtext = json_dumps(id, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":", mid[] = ",\"id\":";
    const char *idt = idtext ? idtext : "null";
    size_t hl = sizeof head - 1, ml = sizeof mid - 1, il = strlen(idt);
    if ((st->raw = malloc(hl + raw_len + ml + il + 2)) != NULL) {
        char *p = st->raw;
        memcpy(p, head, hl), p += hl;
        memcpy(p, raw, raw_len), p += raw_len;
        memcpy(p, mid, ml), p += ml;
        memcpy(p, idt, il), p += il;
        *p++ = '}';
        *p = '\0';
        st->raw_len = (size_t)(p - st->raw);
    }
    free(idtext);
}

/* The success answer (a new reference), or NULL: for a notification, or when the raw result
 * became the whole body (st->raw). Takes result and ctx->raw_result. */
static json_t *answer(request_state_t *st, json_t *id, json_t *result, ac_call_ctx_t *ctx)
{
    if (id == NULL) { /* a notification: done, and nothing to say */
        json_decref(result);
        free(ctx->raw_result);
        return NULL;
    }
    if (ctx->raw_result != NULL) {
        if (st->single) {
            splice_raw(st, id, ctx->raw_result, ctx->raw_len);
            free(ctx->raw_result);
            return NULL;
        }
        json_decref(result);
        result = json_loadb(ctx->raw_result, ctx->raw_len, 0, NULL); /* in a batch: back to a value */
        free(ctx->raw_result);
    }
    return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "result", result != NULL ? result : json_null(), "id", id);
}

/* Runs one call object. Returns its response (a new reference), or NULL for a notification. */
static json_t *call_one(ac_rpc_t *rpc, request_state_t *st, json_t *req)
{
    ac_err_t err = AC_ERR_INIT;
    int64_t t0 = ac_clock_mono_ns();
    json_t *id = NULL, *params = NULL;
    const char *name = NULL;
    const ac_method_t *m = NULL;
    call_stage_t stage = read_envelope(req, &id, &name, &params, &err);
    if (stage == CALL_OK) {
        stage = CALL_REFUSED;
        if ((m = find_method(rpc, name)) == NULL) {
            ac_err_field(&err, AC_ERR_METHOD_NOT_FOUND, "method", "no method named '%.64s'", name);
        } else if (admit(rpc, st, m, &err) == 0) {
            ac_call_ctx_t ctx;
            json_t *result = NULL;
            if (run_method(rpc, st, m, params, &ctx, &result, &err) == 0) {
                record(rpc, m, 0, t0);
                return answer(st, id, result, &ctx);
            }
        }
    }
    /* a malformed call counts under no method */
    record(rpc, stage == CALL_REFUSED ? m : NULL, err.code, t0);
    json_t *resp = NULL;
    if (stage != CALL_REFUSED || id != NULL) /* a well-formed notification gets no reply, not even an error */
        resp = error_object(rpc, &err, stage == CALL_NO_ID ? NULL : id, m ? m->name : NULL);
    ac_err_clear(&err);
    return resp;
}

static int wants_defer(ac_rpc_t *rpc, json_t *req)
{
    if (!json_is_object(req))
        return 0;
    json_t *jm = json_object_get(req, "method");
    if (!json_is_string(jm))
        return 0;
    const ac_method_t *m = find_method(rpc, json_string_value(jm));
    if (m == NULL)
        return 0;
    if (m->flags & AC_METHOD_DEFER)
        return 1;
    if (m->flags & AC_METHOD_DEFER_IF)
        return rpc->defer_check == NULL || rpc->defer_check(rpc->app, m, json_object_get(req, "params"));
    return 0;
}

void ac_rpc_set_defer_check(ac_rpc_t *rpc, ac_rpc_defer_fn fn)
{
    rpc->defer_check = fn;
}

/* No memory to build or print an answer: a fixed one, if even that fits (else no body, which
 * the HTTP layer sends as an empty 500). */
static void finish_oom(ac_rpc_response_t *out)
{
    static const char oom[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":\"Internal error\","
                              "\"data\":{\"error\":\"out of memory\"}},\"id\":null}";
    out->status = 500;
    out->body = strdup(oom);
    out->len = out->body != NULL ? strlen(out->body) : 0;
}

/* doc NULL: nothing to say (204, only notifications). */
static void finish(ac_rpc_response_t *out, json_t *doc, int status)
{
    out->status = status;
    if (doc == NULL) {
        out->status = 204;
        return;
    }
    /* 15 significant digits: 97.8, not 97.799999999999997 (ids keep their exact integers) */
    out->body = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(doc);
    if (out->body == NULL)
        finish_oom(out);
    else
        out->len = strlen(out->body);
}

/* An error answer: never a 204, even when building it failed. */
static void finish_err(const ac_rpc_t *rpc, ac_rpc_response_t *out, const ac_err_t *err, int status)
{
    json_t *doc = error_object(rpc, err, NULL, NULL);
    if (doc == NULL)
        finish_oom(out);
    else
        finish(out, doc, status);
}

/* A refusal of the whole document (id null): code, message and data (stolen). */
static void finish_error(const ac_rpc_t *rpc, ac_rpc_response_t *out, int code, const char *msg, json_t *data,
                         int status)
{
    ac_err_t err = AC_ERR_INIT;
    ac_err_set(&err, code, "%s", msg);
    ac_err_set_data(&err, data);
    finish_err(rpc, out, &err, status);
    ac_err_clear(&err);
}

int ac_rpc_authenticate(ac_rpc_t *rpc, const char *auth_header, size_t auth_len, ac_principal_t *principal,
                        ac_rpc_response_t *out)
{
    memset(out, 0, sizeof *out);
    ac_err_t err = AC_ERR_INIT;
    if (ac_auth_bearer(rpc->auth, auth_header, auth_len, ac_clock_now_ms() / 1000, principal, &err) == 0)
        return 0;
    /* id null: the body of an unauthenticated request is never parsed, so a single call's id is
     * not known (an unauthenticated client gets no parsing work out of the server) */
    finish_err(rpc, out, &err, 401);
    out->unauthorized = 1;
    ac_err_clear(&err);
    return -1;
}

int ac_rpc_admit_large(ac_rpc_t *rpc, const ac_principal_t *principal, ac_rpc_response_t *out)
{
    memset(out, 0, sizeof *out);
    ac_rate_info_t info;
    if (ac_ratelimit_take(rpc->rl, principal->sub, AC_RL_LARGE, ac_clock_now_ms(), &info))
        return 0;
    int retry = info.retry_after_s > 0 ? info.retry_after_s : 1;
    char msg[160];
    snprintf(msg, sizeof msg, "more than %d requests with a body over %zu bytes per %d s", info.limit,
             rpc->large_bytes, rpc->rate_window_s[AC_RL_LARGE]);
    ac_err_t err = AC_ERR_INIT;
    ac_err_set(&err, AC_ERR_RATE_LIMITED, "Rate limit exceeded: %s", msg);
    ac_err_set_data(&err, json_pack("{s:s, s:s, s:i, s:i}", "field", "body", "error", msg, "retry_after_s", retry,
                                    "limit", info.limit));
    finish_err(rpc, out, &err, 429);
    ac_err_clear(&err);
    out->retry_after_s = retry;
    out->has_rate = 1;
    out->rate = info;
    return -1;
}

void ac_rpc_refuse(const ac_err_t *err, int status, int retry_after_s, ac_rpc_response_t *out)
{
    memset(out, 0, sizeof *out);
    finish_err(NULL, out, err, status);
    out->retry_after_s = retry_after_s;
}

int ac_rpc_handle(ac_rpc_t *rpc, const char *auth_header, size_t auth_len, const char *body, size_t len,
                  int allow_defer, ac_rpc_response_t *out)
{
    ac_principal_t principal;
    if (ac_rpc_authenticate(rpc, auth_header, auth_len, &principal, out) != 0)
        return AC_RPC_DONE;
    return ac_rpc_handle_as(rpc, &principal, body, len, allow_defer, out);
}

/* The refusals of a whole document, before any call runs: nesting or values over the bounds
 * (scanned before parsing), text that is not JSON, an empty or oversized batch. Returns 1 with
 * *out filled, or 0 when the document may run. */
static int refuse_document(const ac_rpc_t *rpc, scan_result_t scanned, const json_t *doc, const json_error_t *jerr,
                           ac_rpc_response_t *out)
{
    char msg[64];
    if (scanned == SCAN_TOO_DEEP) {
        snprintf(msg, sizeof msg, "nesting deeper than %d levels", rpc->max_depth);
        finish_error(rpc, out, AC_ERR_INVALID_REQUEST, "Invalid Request: JSON nested too deeply",
                     json_pack("{s:s}", "error", msg), 200);
    } else if (scanned == SCAN_TOO_MANY) {
        snprintf(msg, sizeof msg, "more than %d JSON values", rpc->max_values);
        finish_error(rpc, out, AC_ERR_INVALID_REQUEST, "Invalid Request: too many JSON values",
                     json_pack("{s:s, s:s, s:i}", "field", "body", "error", msg, "limit", rpc->max_values), 200);
    } else if (doc == NULL) {
        finish_error(rpc, out, AC_ERR_PARSE, "Parse error",
                     json_pack("{s:s, s:i}", "error", jerr->text, "position", jerr->position), 200);
    } else if (json_is_array(doc) && json_array_size(doc) == 0) {
        finish_error(rpc, out, AC_ERR_INVALID_REQUEST, "Invalid Request: empty batch",
                     json_pack("{s:s, s:s}", "field", "batch", "error", "must hold at least one call"), 200);
    } else if (json_is_array(doc) && json_array_size(doc) > (size_t)rpc->max_batch) {
        snprintf(msg, sizeof msg, "must hold at most %d calls", rpc->max_batch);
        finish_error(rpc, out, AC_ERR_INVALID_REQUEST, "Invalid Request: batch too large",
                     json_pack("{s:s, s:s}", "field", "batch", "error", msg), 200);
    } else {
        return 0;
    }
    return 1;
}

static void handle_batch(ac_rpc_t *rpc, request_state_t *st, json_t *doc, ac_rpc_response_t *out)
{
    size_t i;
    json_t *req;
    json_t *results = json_array();
    json_array_foreach(doc, i, req)
    {
        json_t *r = call_one(rpc, st, req);
        if (r != NULL)
            json_array_append_new(results, r);
    }
    if (json_array_size(results) == 0) { /* only notifications: 204 */
        json_decref(results);
        results = NULL;
    }
    finish(out, results, 200);
}

static void handle_single(ac_rpc_t *rpc, request_state_t *st, json_t *doc, ac_rpc_response_t *out)
{
    json_t *r = call_one(rpc, st, doc);
    if (st->raw != NULL) {
        out->status = 200;
        out->body = st->raw;
        out->len = st->raw_len;
        return;
    }
    int status = 200;
    if (r != NULL && st->single_rate_limited) {
        status = 429;
        out->retry_after_s = st->single_rate_limited;
    }
    finish(out, r, status);
}

/* 1 when a call of the document (one call or a batch) wants an RPC worker. */
static int doc_wants_defer(ac_rpc_t *rpc, json_t *doc)
{
    if (!json_is_array(doc))
        return wants_defer(rpc, doc);
    size_t i;
    json_t *req;
    json_array_foreach(doc, i, req) if (wants_defer(rpc, req)) return 1;
    return 0;
}

int ac_rpc_handle_as(ac_rpc_t *rpc, const ac_principal_t *principal, const char *body, size_t len, int allow_defer,
                     ac_rpc_response_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t now_ms = ac_clock_now_ms();
    scan_result_t scanned = scan(body, len, rpc->max_depth, rpc->max_values);
    json_error_t jerr;
    /* DECODE_ANY: a bare scalar is valid JSON but not a request (-32600, not -32700). */
    json_t *doc = scanned == SCAN_OK ? json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr) : NULL;
    request_state_t st = {!json_is_array(doc), NULL, 0, principal, now_ms, 0, {0, 0, 0, 0}, 0};
    if (!refuse_document(rpc, scanned, doc, &jerr, out)) {
        if (allow_defer && doc_wants_defer(rpc, doc)) {
            json_decref(doc);
            return AC_RPC_DEFER;
        }
        if (json_is_array(doc))
            handle_batch(rpc, &st, doc, out);
        else
            handle_single(rpc, &st, doc, out);
    }
    json_decref(doc);
    /* every authenticated response says where the caller stands */
    if (!st.has_rate) {
        ac_rate_info_t info;
        ac_ratelimit_peek(rpc->rl, principal->sub, AC_RL_OTHER, now_ms, &info);
        note_rate(&st, &info);
    }
    out->has_rate = st.has_rate;
    out->rate = st.rate;
    return AC_RPC_DONE;
}

/* ---- discovery ------------------------------------------------------------------------------- */

static const int common_errors[] = {AC_ERR_INVALID_REQUEST, AC_ERR_INVALID_PARAMS, AC_ERR_INTERNAL,
                                    AC_ERR_UNAUTHORIZED, AC_ERR_FORBIDDEN, AC_ERR_RATE_LIMITED, 0};

static json_t *method_doc(const ac_method_t *m)
{
    json_t *params = json_array(), *errors = json_array();
    for (const ac_param_spec_t *p = m->params; p != NULL && p->name != NULL; p++)
        json_array_append_new(params, json_pack("{s:s, s:b, s:s, s:o}", "name", p->name, "required", p->required,
                                                "description", p->doc ? p->doc : "", "schema", ac_params_schema(p)));
    const int *lists[2] = {m->errors, common_errors};
    for (int l = 0; l < 2; l++)
        for (const int *c = lists[l]; c != NULL && *c != 0; c++)
            json_array_append_new(errors, json_pack("{s:i, s:s}", "code", *c, "message", ac_err_name(*c)));
    char result[96];
    snprintf(result, sizeof result, "%s.result", m->name);
    /* x-deferred: true, false, or "unless cached" (AC_METHOD_DEFER_IF) */
    json_t *deferred = (m->flags & AC_METHOD_DEFER)      ? json_true()
                       : (m->flags & AC_METHOD_DEFER_IF) ? json_string("unless cached")
                                                          : json_false();
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:{s:s}}, s:o, s:s, s:s, s:o}", "name", m->name, "summary",
                     m->doc ? m->doc : "", "paramStructure", "by-name", "params", params, "result", "name", result,
                     "schema", "type", "object", "errors", errors, "x-permission",
                     m->permission ? ac_perm_name(m->permission) : "", "x-rate-limit-class",
                     ac_rl_class_name(m->rl_class), "x-deferred", deferred);
}

json_t *ac_rpc_openrpc(const ac_rpc_t *rpc)
{
    json_t *methods = json_array();
    for (const ac_method_t *m = rpc->methods; m->name != NULL; m++)
        json_array_append_new(methods, method_doc(m));
    json_array_append_new(methods, method_doc(&rpc->discover));
    /* start_grpo's `config` is described as "GRPOConfig": its fields, defaults and ranges are
     * here, from the table the server validates with */
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}], s:o, s:{s:{s:o}}}", "openrpc", "1.2.6", "info",
                     "title", "AgentCore Training API", "version", AC_VERSION, "description",
                     "GRPO training jobs over JSON-RPC 2.0 (reference: docs/api.md)", "servers", "name",
                     "agentcore", "url", "/api/v1/jsonrpc", "methods", methods, "components", "schemas",
                     "GRPOConfig", ac_train_config_schema());
}

static int discover(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)params, (void)err;
    *result = ac_rpc_openrpc(ctx->rpc);
    return 0;
}

/* ---- metrics --------------------------------------------------------------------------------- */

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if (*buf != NULL && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
}

static unsigned long sum_code(const ac_rpc_t *rpc, int i, int c)
{
    unsigned long v = 0;
    for (int k = 0; k < STAT_SHARDS; k++)
        v += atomic_load(&rpc->stats[k][i].by_code[c]);
    return v;
}

int ac_rpc_metrics_text(const ac_rpc_t *rpc, char **buf, size_t *len, size_t *cap)
{
    int rc = append(buf, len, cap, "# HELP agentcore_requests_total JSON-RPC calls by method and result code "
                                   "(0: success).\n# TYPE agentcore_requests_total counter\n");
    for (int i = 0; rc == 0 && i < rpc->n_methods + 2; i++) {
        const char *name = i < rpc->n_methods ? rpc->methods[i].name : i == rpc->n_methods ? "rpc.discover" : "none";
        for (int c = 0; rc == 0 && c < N_CODES; c++) {
            unsigned long v = sum_code(rpc, i, c);
            if (v > 0)
                rc = append(buf, len, cap, "agentcore_requests_total{method=\"%s\",code=\"%d\"} %lu\n", name,
                            metric_codes[c], v);
        }
    }
    rc = rc || append(buf, len, cap, "# HELP agentcore_request_duration_seconds JSON-RPC call latency by "
                                     "method.\n# TYPE agentcore_request_duration_seconds histogram\n");
    for (int i = 0; rc == 0 && i < rpc->n_methods + 2; i++) {
        const char *name = i < rpc->n_methods ? rpc->methods[i].name : i == rpc->n_methods ? "rpc.discover" : "none";
        unsigned long count = 0, cumulative = 0;
        unsigned long long sum_ns = 0;
        for (int k = 0; k < STAT_SHARDS; k++) {
            count += atomic_load(&rpc->stats[k][i].count);
            sum_ns += atomic_load(&rpc->stats[k][i].sum_ns);
        }
        for (int b = 0; rc == 0 && b < N_BUCKETS; b++) {
            for (int k = 0; k < STAT_SHARDS; k++)
                cumulative += atomic_load(&rpc->stats[k][i].buckets[b]);
            rc = append(buf, len, cap, "agentcore_request_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %lu\n",
                        name, latency_buckets_s[b], cumulative);
        }
        rc = rc || append(buf, len, cap,
                          "agentcore_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %lu\n"
                          "agentcore_request_duration_seconds_sum{method=\"%s\"} %.6f\n"
                          "agentcore_request_duration_seconds_count{method=\"%s\"} %lu\n",
                          name, count, name, (double)sum_ns / 1e9, name, count);
    }
    return rc ? -1 : 0;
}
