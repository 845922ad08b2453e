/* libFuzzer target: one HTTP request's Authorization header and JSON-RPC body through
 * ac_rpc_handle, with the service's own parts behind it (method table, LMDB store, HS256 auth,
 * rate limiter, the Lua validator plugins that start_grpo runs), then checks of what came out.
 * The app has no job workers and no webhook delivery thread (ac_app_t.workers and .webhooks are
 * NULL, which their functions accept): jobs stay queued and nothing leaves the process.
 * Build and run: tests/fuzz/run.sh.
 *
 * Input: byte 0 picks the caller (bits 0-2), the limiter (bit 3) and the value bound (bit 6);
 * kinds 4-7 take one or two more bytes; the rest is the body.
 *   0  admin: a valid token with every permission
 *   1  user: a valid token with training:start, training:view, training:cancel (not admin)
 *   2  nobody: a valid token with no permission
 *   3  no Authorization header
 *   4  raw header: byte 1 = L, then L bytes of header value
 *   5  "Bearer " + L bytes (byte 1 = L, then the L bytes)
 *   6  the admin header with one byte of its token replaced: byte 1 = position, byte 2 = value
 *   7  "bearer\t" + the admin token + L bytes (byte 1 = L, then the L bytes)
 *   bit 3 set: the "tight" rpc object, whose limiter lets one call per class per hour through
 *   (the 429 paths); otherwise limits far above what a run reaches.
 *   bit 6 set (bit 3 then ignored): the "few" rpc object, whose limits.max_json_values is
 *   FEW_VALUES (the value bound's paths; the server's default is far above -max_len).
 * Seeds start with a digit: '0'..'7' are kinds 0..7, '8' and '9' kinds 0 and 1 on the tight one;
 * 'P'..'W' (0x50..0x57) are kinds 0..7 on the few one.
 *
 * Fixture jobs: the body may name three queued jobs by placeholder ids (FIXTURE_ID below), which
 * are replaced by their real, random ids before the call: one owned by admin, one by user, one by
 * a third principal that only admin may see. A fixture that a call cancelled is created again
 * after it, so that an input behaves the same however often it runs.
 *
 * Checks (abort() on a violation, so libFuzzer reports it with the input):
 *   - ac_rpc_handle returns AC_RPC_DEFER only when allowed, and then leaves the response empty;
 *     the deferred call is run again with allow_defer unset, as the HTTP layer does.
 *   - status is 200, 204, 401 or 429; 204 exactly when there is no body; len is the body's length;
 *     401 exactly when `unauthorized`; 429 exactly when retry_after_s > 0; no rate headers on 401.
 *   - no header gives 401; a valid token never does; a deferred request was authenticated; a 401
 *     has id null (an unauthenticated body is never parsed, so no id of it can be echoed).
 *   - the body is JSON (duplicate keys rejected): an object, or a non-empty array answering a
 *     batch with no more entries than the batch has calls; each entry has exactly "jsonrpc": "2.0",
 *     an "id" (string, number or null) and one of "result" / "error"; an error has an integer
 *     code, a string message and optionally data, nothing else; 401 is -32002, 429 is -32029.
 *   - a non-null id echoes an id of the request.
 *   - the answer fits the request as the same parser sees it: -32700 only when it is not JSON;
 *     -32600 with id null for nesting deeper than max_json_depth or an empty/oversized batch;
 *     -32600 with id null and data {field "body", limit} for more values (member names included)
 *     than max_json_values, and that refusal never for a JSON document within the bound; a
 *     call with an id (or no object at all) is never left unanswered (no 204, and a batch answer
 *     has at least that many entries).
 *   - nobody gets results only from methods that need no permission (rpc.discover); no result
 *     to user names the third principal's job.
 *
 * The store lives in a temporary directory ($TMPDIR, else /tmp) and is wiped and reopened when
 * it passes STORE_MAX_BYTES, so long runs stay bounded. */
#define _GNU_SOURCE /* memmem */
#include <dlfcn.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/app.h"
#include "service/methods.h"
#include "net/auth.h"
#include "base/clock.h"
#include "lua/config.h"
#include "store/jobs.h"
#include "net/ratelimit.h"
#include "net/rpc.h"
#include "store/store.h"
#include "base/train_config.h"
#include "base/uuid.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-rpc-secret-0123456789abcdef"
#define TOKEN_TTL_S (10 * 365 * 86400LL) /* outlives any run */
#define STORE_MAX_BYTES ((size_t)32 << 20)
#define LOOSE_LIMIT (1 << 30)
#define FEW_VALUES 64

enum { WHO_ADMIN, WHO_USER, WHO_NOBODY, WHO_COUNT, WHO_UNKNOWN = -1 };

static const struct {
    const char *sub;
    const char *perms; /* ac_auth_issue's perms_csv */
} who_def[WHO_COUNT] = {
    {"fuzz-admin", "training:start,training:view,training:cancel,training:evaluate,data:export,"
                   "training:admin,webhooks:manage,metrics:view"},
    {"fuzz-user", "training:start,training:view,training:cancel"},
    {"fuzz-nobody", NULL},
};

enum { FIX_ADMIN, FIX_USER, FIX_OTHER, FIX_COUNT };
static const char *const fixture_owner[FIX_COUNT] = {"fuzz-admin", "fuzz-user", "fuzz-other"};
static const char *const FIXTURE_ID[FIX_COUNT] = {
    "00000000-0000-4000-8000-00000000000a",
    "00000000-0000-4000-8000-00000000000b",
    "00000000-0000-4000-8000-00000000000c",
};

static struct {
    char dir[4096];
    ac_config_t cfg;       /* the server's defaults: what rpc_loose gets */
    ac_config_t cfg_tight; /* the same with the tight rate rules (rpc.c reads their windows) */
    ac_config_t cfg_few;   /* the same as cfg with max_json_values FEW_VALUES */
    ac_app_t app;
    ac_ratelimit_t *rl_tight;
    ac_rpc_t *rpc_loose, *rpc_tight, *rpc_few;
    char *header[WHO_COUNT]; /* "Bearer <token>", NUL-terminated */
    char fixture_id[FIX_COUNT][AC_UUID_LEN + 1];
    int verbose;
} F;

/* ---- no DNS from a fuzzer ------------------------------------------------------------------
 * Webhook URL checks resolve the host (webhook.c: private addresses are refused). A fuzzer must
 * not send its inputs to a name server, nor wait for one: this definition, found before libc's,
 * answers numeric addresses as libc does, FUZZ_PUBLIC_HOST as a public address, and every other
 * name with EAI_NONAME, without a query leaving the machine. */
#define FUZZ_PUBLIC_HOST "hooks.fuzz.example"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (real == NULL && (real = (int (*)(const char *, const char *, const struct addrinfo *,
                                         struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo")) == NULL)
        return EAI_FAIL;
    struct addrinfo h = hints != NULL ? *hints : (struct addrinfo){.ai_family = AF_UNSPEC};
    h.ai_flags |= AI_NUMERICHOST;
    if (node != NULL && strcmp(node, FUZZ_PUBLIC_HOST) == 0)
        node = "93.184.215.14";
    return real(node, service, &h, res);
}

/* ---- setup (test code: a failure here ends the process) ----------------------------------- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_rpc: setup: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void fixture_create(int i)
{
    ac_train_config_t tc;
    ac_train_config_defaults(&tc);
    json_t *none = json_array();
    ac_job_new_t nj = {.owner = fixture_owner[i], .agent_id = "calculator", .config = &tc, .training_data = none,
                       .evaluation_data = none, .now_ms = ac_clock_now_ms(), .owner_budget_micro = -1};
    ac_job_t job;
    ac_err_t err = AC_ERR_INIT;
    if (ac_jobs_create(F.app.jobs, &nj, &job, &err) != 0)
        die("fixture job: %s", err.message);
    snprintf(F.fixture_id[i], sizeof F.fixture_id[i], "%s", job.id);
    ac_job_free(&job);
    json_decref(none);
}

/* 1 when fixture i is still queued (a call may have cancelled it, even as a notification) */
static int fixture_queued(int i)
{
    ac_job_t job;
    ac_err_t err = AC_ERR_INIT;
    int found = ac_jobs_get(F.app.jobs, F.fixture_id[i], &job, &err);
    if (found < 0)
        die("fixture job: %s", err.message);
    int queued = found && job.status == AC_JOB_QUEUED;
    if (found)
        ac_job_free(&job);
    return queued;
}

static void store_open(void)
{
    ac_err_t err = AC_ERR_INIT;
    if ((F.app.store = ac_store_open(F.dir, &err)) == NULL || (F.app.jobs = ac_jobs_open_lmdb(F.app.store, &err)) == NULL ||
        (F.app.hooks = ac_hooks_open_lmdb(F.app.store, &err)) == NULL)
        die("store: %s", err.message);
    for (int i = 0; i < FIX_COUNT; i++)
        fixture_create(i);
}

static void unlink_store_files(void)
{
    char path[sizeof F.dir + 16];
    snprintf(path, sizeof path, "%s/data.mdb", F.dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", F.dir);
    unlink(path);
}

static void store_remove(void)
{
    ac_hooks_close(F.app.hooks);
    F.app.hooks = NULL;
    ac_jobs_close(F.app.jobs);
    F.app.jobs = NULL;
    ac_store_close(F.app.store);
    F.app.store = NULL;
    unlink_store_files();
}

static void cleanup(void) /* at exit */
{
    store_remove();
    rmdir(F.dir);
}

/* Before abort() on a violation: no atexit handlers run then, and only the files go. (A sanitizer
 * report leaves the directory behind: libFuzzer owns the sanitizers' death callback. run.sh
 * removes the whole temporary directory in any case.) */
static void cleanup_on_death(void)
{
    unlink_store_files();
    rmdir(F.dir);
}

static char *bearer_for(ac_auth_t *auth, int who, int64_t now_s)
{
    ac_err_t err = AC_ERR_INIT;
    char *token = ac_auth_issue(auth, who_def[who].sub, who_def[who].perms, TOKEN_TTL_S, now_s, &err);
    if (token == NULL)
        die("token for %s: %s", who_def[who].sub, err.message);
    size_t n = strlen("Bearer ") + strlen(token) + 1;
    char *h = malloc(n);
    if (h == NULL)
        die("out of memory");
    snprintf(h, n, "Bearer %s", token);
    /* verify once now: the first call then costs the same as every later one (a cache hit) */
    ac_principal_t p;
    if (ac_auth_verify(auth, token, strlen(token), now_s, &p, &err) != 0 || strcmp(p.sub, who_def[who].sub) != 0)
        die("token for %s does not verify: %s", who_def[who].sub, err.message);
    free(token);
    return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Object iteration order (which unknown key is named first, ...) must not change from one
     * process to the next: a crash found in one must reproduce in another. */
    json_object_seed(1);
    F.verbose = getenv("FUZZ_RPC_VERBOSE") != NULL && strcmp(getenv("FUZZ_RPC_VERBOSE"), "1") == 0;

    const char *tmp = getenv("TMPDIR");
    snprintf(F.dir, sizeof F.dir, "%s/fuzz_rpc.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(F.dir) == NULL)
        die("mkdtemp %s failed", F.dir);
    store_open();
    atexit(cleanup);

    ac_config_defaults(&F.cfg); /* max_json_depth 64, max_batch 100: the server's defaults */
    F.app.cfg = &F.cfg;
    if ((F.app.status = ac_status_cache_create()) == NULL)
        die("out of memory");

    ac_err_t err = AC_ERR_INIT;
    ac_auth_config_t ac = {.alg = "HS256", .secret = SECRET, .leeway_s = 30};
    if ((F.app.auth = ac_auth_create(&ac, &err)) == NULL)
        die("auth: %s", err.message);
    int64_t now_s = ac_clock_now_ms() / 1000;
    for (int w = 0; w < WHO_COUNT; w++)
        F.header[w] = bearer_for(F.app.auth, w, now_s);

    ac_rate_rule_t loose[AC_RL_COUNT], tight[AC_RL_COUNT];
    for (int c = 0; c < AC_RL_COUNT; c++) {
        loose[c] = (ac_rate_rule_t){LOOSE_LIMIT, 60};
        tight[c] = (ac_rate_rule_t){1, 3600};
    }
    tight[AC_RL_OTHER].limit = 0; /* a disabled class: no rate headers from it */
    F.cfg_tight = F.cfg;          /* shares F.cfg's strings: neither is ever freed */
    memcpy(F.cfg_tight.rate, tight, sizeof tight);
    if ((F.app.rl = ac_ratelimit_create(loose)) == NULL || (F.rl_tight = ac_ratelimit_create(tight)) == NULL)
        die("out of memory");
    F.cfg_few = F.cfg; /* likewise */
    F.cfg_few.max_json_values = FEW_VALUES;
    F.rpc_loose = ac_rpc_create(ac_service_methods, &F.app, F.app.auth, F.app.rl, &F.cfg);
    F.rpc_tight = ac_rpc_create(ac_service_methods, &F.app, F.app.auth, F.rl_tight, &F.cfg_tight);
    F.rpc_few = ac_rpc_create(ac_service_methods, &F.app, F.app.auth, F.app.rl, &F.cfg_few);
    if (F.rpc_loose == NULL || F.rpc_tight == NULL || F.rpc_few == NULL)
        die("out of memory");
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

static const ac_rpc_response_t *cur_resp; /* printed with a violation */

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond))                                                                                               \
            violation(__LINE__, __VA_ARGS__);                                                                      \
    } while (0)

__attribute__((format(printf, 2, 3), noreturn)) static void violation(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_rpc.c:%d: invariant violated: ", line);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cur_resp != NULL)
        fprintf(stderr, "\n  status %d, body (%zu bytes): %.2000s", cur_resp->status, cur_resp->len,
                cur_resp->body != NULL ? cur_resp->body : "(none)");
    fprintf(stderr, "\n");
    cleanup_on_death();
    abort();
}

static int is_id(const json_t *id)
{
    return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

static int id_of_call(const json_t *id, json_t *call)
{
    json_t *cid = json_object_get(call, "id"); /* NULL when call is not an object */
    return cid != NULL && json_equal(cid, (json_t *)id);
}

/* 1 when id equals the id of the request, or of one of the batch's calls. */
static int id_in_request(const json_t *id, json_t *req)
{
    size_t i;
    json_t *call;
    if (!json_is_array(req))
        return id_of_call(id, req);
    json_array_foreach(req, i, call)
    {
        if (id_of_call(id, call))
            return 1;
    }
    return 0;
}

/* 1 when a string anywhere in v (keys included) contains s. */
static int mentions(json_t *v, const char *s)
{
    size_t i;
    const char *k;
    json_t *c;
    if (json_is_string(v))
        return strstr(json_string_value(v), s) != NULL;
    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            if (mentions(c, s))
                return 1;
        }
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, c)
        {
            if (strstr(k, s) != NULL || mentions(c, s))
                return 1;
        }
    }
    return 0;
}

/* One response object (a single response or a batch entry). Returns 1 when it is a result. */
static int check_one(json_t *o, json_t *req, int who)
{
    CHECK(json_is_object(o), "a batch entry is not an object");
    json_t *v = json_object_get(o, "jsonrpc");
    CHECK(json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0, "\"jsonrpc\" is not \"2.0\"");
    json_t *id = json_object_get(o, "id");
    CHECK(id != NULL, "no \"id\"");
    CHECK(is_id(id), "\"id\" is neither a string, a number nor null");
    json_t *result = json_object_get(o, "result"), *error = json_object_get(o, "error");
    CHECK((result != NULL) != (error != NULL), "not exactly one of result and error");
    CHECK(json_object_size(o) == 3, "%zu members, not 3", json_object_size(o));
    if (!json_is_null(id))
        CHECK(req != NULL && id_in_request(id, req), "an id that the request does not hold");
    if (error != NULL) {
        CHECK(json_is_object(error), "\"error\" is not an object");
        CHECK(json_is_integer(json_object_get(error, "code")), "error.code is not an integer");
        CHECK(json_is_string(json_object_get(error, "message")), "error.message is not a string");
        CHECK(json_object_size(error) == 2 + (json_object_get(error, "data") != NULL),
              "error has members other than code, message, data");
        return 0;
    }
    CHECK(!(who == WHO_USER && mentions(result, F.fixture_id[FIX_OTHER])),
          "user got a result that names another principal's job");
    return 1;
}

/* 1 when a call names a method that needs no permission (rpc.c's built-in rpc.discover, or a
 * table entry declared with permission 0): the only calls that may succeed for nobody. */
static int open_call(json_t *call)
{
    const char *name = json_string_value(json_object_get(call, "method"));
    if (name == NULL)
        return 0;
    if (strcmp(name, "rpc.discover") == 0)
        return 1;
    for (const ac_method_t *m = ac_rpc_methods(F.rpc_loose); m->name != NULL; m++)
        if (strcmp(m->name, name) == 0)
            return m->permission == 0;
    return 0;
}

static int error_code(json_t *o)
{
    return (int)json_integer_value(json_object_get(json_object_get(o, "error"), "code"));
}

/* Nesting depth of a parsed document: on valid JSON, what rpc.c's bracket count measures. */
static int depth_of(json_t *v)
{
    int d = 0;
    size_t i;
    const char *k;
    json_t *c;
    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            int cd = depth_of(c);
            d = cd > d ? cd : d;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, c)
        {
            int cd = depth_of(c);
            d = cd > d ? cd : d;
        }
        return d + 1;
    }
    return 0;
}

/* Values of a parsed document as rpc.c's scan counts them on the text: every value, and every
 * member name. */
static long values_of(json_t *v)
{
    long n = 1;
    size_t i;
    const char *k;
    json_t *c;
    if (json_is_array(v)) {
        json_array_foreach(v, i, c) n += values_of(c);
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, c) n += 1 + values_of(c);
    }
    return n;
}

/* 1 when o is the value bound's refusal: -32600 with data {"field": "body", "limit": limit} */
static int is_too_many(json_t *o, int limit)
{
    json_t *data = json_object_get(json_object_get(o, "error"), "data");
    const char *field = json_string_value(json_object_get(data, "field"));
    return error_code(o) == AC_ERR_INVALID_REQUEST && field != NULL && strcmp(field, "body") == 0 &&
           json_integer_value(json_object_get(data, "limit")) == limit;
}

/* An object without "id" is a notification, answered at most; anything else (a call with an
 * id, or no object at all) must be answered. */
static int needs_answer(json_t *call)
{
    return !(json_is_object(call) && json_object_get(call, "id") == NULL);
}

static void check_response(const ac_rpc_response_t *r, int who, int no_header, int deferred, const char *body,
                           size_t len, int max_values)
{
    int st = r->status;
    cur_resp = r;
    CHECK(st == 200 || st == 204 || st == 401 || st == 429, "status %d", st);
    if (st == 204)
        CHECK(r->body == NULL && r->len == 0, "204 with a body");
    else
        CHECK(r->body != NULL && r->len > 0, "status %d without a body", st);
    if (r->body != NULL)
        CHECK(r->len == strlen(r->body), "len %zu but the body has %zu bytes", r->len, strlen(r->body));
    CHECK((st == 401) == (r->unauthorized != 0), "unauthorized=%d with status %d", r->unauthorized, st);
    CHECK((st == 429) == (r->retry_after_s > 0), "retry_after_s=%d with status %d", r->retry_after_s, st);
    CHECK(st != 401 || !r->has_rate, "rate headers on a 401");
    CHECK(!no_header || st == 401, "no Authorization header but status %d", st);
    CHECK(who == WHO_UNKNOWN || st != 401, "a valid token got 401");
    CHECK(!deferred || st != 401, "a deferred request was not authenticated");

    /* The request as rpc.c sees it (same parser, same flags): what kind of answer it deserves. */
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    enum { R_PARSE, R_DEEP, R_MANY, R_BAD_BATCH, R_CALLS } kind = R_CALLS;
    size_t need = 0; /* calls that must be answered */
    if (req == NULL)
        kind = R_PARSE;
    else if (depth_of(req) > F.cfg.max_json_depth)
        kind = R_DEEP;
    else if (values_of(req) > max_values)
        kind = R_MANY;
    else if (json_is_array(req) && (json_array_size(req) == 0 || json_array_size(req) > (size_t)F.cfg.max_batch))
        kind = R_BAD_BATCH;
    else if (json_is_array(req)) {
        size_t i;
        json_t *call;
        json_array_foreach(req, i, call) need += needs_answer(call);
    } else {
        need = needs_answer(req);
    }
    if (st != 401)
        CHECK(need == 0 || st != 204, "%zu call(s) that must be answered got 204", need);
    if (r->body == NULL) {
        json_decref(req);
        cur_resp = NULL;
        return;
    }

    json_t *doc = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(doc != NULL, "the body is not JSON: %s", jerr.text);
    if (json_is_array(doc)) {
        CHECK(st == 200, "a batch answer with status %d", st);
        CHECK(kind == R_CALLS && json_is_array(req), "a batch answer to a request that is not a valid batch");
        CHECK(json_array_size(doc) > 0, "an empty batch answer");
        CHECK(json_array_size(doc) <= json_array_size(req), "%zu answers to %zu calls", json_array_size(doc),
              json_array_size(req));
        CHECK(json_array_size(doc) >= need, "%zu answers but %zu calls must be answered", json_array_size(doc),
              need);
        size_t i, results = 0, open = 0;
        json_t *o;
        json_array_foreach(doc, i, o) results += (size_t)check_one(o, req, who);
        json_array_foreach(req, i, o) open += (size_t)open_call(o);
        CHECK(who != WHO_NOBODY || results <= open, "a caller without permissions got %zu result(s) for %zu call(s) "
              "to open methods", results, open);
    } else {
        CHECK(json_is_object(doc), "the body is neither an object nor an array");
        int result = check_one(doc, req, who);
        CHECK(who != WHO_NOBODY || !result || open_call(req), "a caller without permissions got a result");
        int code = error_code(doc);
        if (st == 401) {
            CHECK(code == AC_ERR_UNAUTHORIZED, "401 with error code %d", code);
            CHECK(json_is_null(json_object_get(doc, "id")), "a 401 echoes an id: the body was parsed");
        }
        if (st == 429)
            CHECK(code == AC_ERR_RATE_LIMITED, "429 with error code %d", code);
        if (st != 401) {
            CHECK(kind != R_CALLS || !json_is_array(req), "a batch answered by a single object");
            /* rpc.c measures the nesting before parsing: deep invalid JSON is -32600 too */
            CHECK(kind != R_PARSE || code == AC_ERR_PARSE || code == AC_ERR_INVALID_REQUEST,
                  "error code %d for a body that is not JSON", code);
            CHECK(kind == R_PARSE || code != AC_ERR_PARSE, "-32700 for a body that is JSON");
            CHECK(kind == R_CALLS || kind == R_PARSE || code == AC_ERR_INVALID_REQUEST,
                  "error code %d for a body nested too deeply, with too many values or an empty/oversized batch",
                  code);
            /* the scan counts the text: on JSON it counts exactly what the tree holds */
            CHECK(kind != R_MANY || is_too_many(doc, max_values), "more than %d values, not refused as such",
                  max_values);
            CHECK(!is_too_many(doc, max_values) || req == NULL || values_of(req) > max_values,
                  "refused for too many values, but the document holds %ld (at most %d)",
                  req != NULL ? values_of(req) : -1L, max_values);
            CHECK(kind == R_CALLS || json_is_null(json_object_get(doc, "id")), "a rejected body answered with an id");
        }
    }
    json_decref(req);
    json_decref(doc);
    cur_resp = NULL;
}

/* ---- one input ---------------------------------------------------------------------------- */

/* A malloc'd copy of exactly n bytes (not NUL-terminated), so that ASan sees any read past it. */
static char *exact_copy(const void *p, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);
    if (c == NULL)
        abort();
    memcpy(c, p, n);
    return c;
}

static char *concat3(const char *a, size_t an, const char *b, size_t bn, const void *c, size_t cn, size_t *len)
{
    *len = an + bn + cn;
    char *h = malloc(*len > 0 ? *len : 1);
    if (h == NULL)
        abort();
    memcpy(h, a, an);
    memcpy(h + an, b, bn);
    memcpy(h + an + bn, c, cn);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    int kind = (int)(sel & 7), who = WHO_UNKNOWN;
    char *hdr = NULL; /* exactly hlen bytes; NULL: no header */
    size_t hlen = 0;
    const char *admin = F.header[WHO_ADMIN];
    size_t admin_len = strlen(admin), tok_len = admin_len - 7; /* after "Bearer " */

    switch (kind) {
    case WHO_ADMIN:
    case WHO_USER:
    case WHO_NOBODY:
        who = kind;
        hdr = exact_copy(F.header[kind], hlen = strlen(F.header[kind]));
        break;
    case 3:
        break;
    case 4:
    case 5:
    case 7: {
        size_t l = n > 0 ? p[0] : 0;
        p += n > 0, n -= n > 0;
        if (l > n)
            l = n;
        if (kind == 4)
            hdr = concat3("", 0, "", 0, p, l, &hlen);
        else if (kind == 5)
            hdr = concat3("Bearer ", 7, "", 0, p, l, &hlen);
        else
            hdr = concat3("bearer\t", 7, admin + 7, tok_len, p, l, &hlen);
        p += l, n -= l;
        break;
    }
    case 6: {
        size_t pos = n > 0 ? p[0] : 0;
        uint8_t val = n > 1 ? p[1] : 0;
        size_t skip = n < 2 ? n : 2;
        p += skip, n -= skip;
        hdr = exact_copy(admin, hlen = admin_len);
        hdr[7 + pos % tok_len] = (char)val;
        break;
    }
    }

    char *body = exact_copy(p, n);
    for (int i = 0; i < FIX_COUNT; i++) /* placeholder ids -> the fixtures' real ones */
        for (char *s = body; (s = memmem(s, n - (size_t)(s - body), FIXTURE_ID[i], AC_UUID_LEN)) != NULL;
             s += AC_UUID_LEN)
            memcpy(s, F.fixture_id[i], AC_UUID_LEN);

    ac_rpc_t *rpc = (sel & 0x40) ? F.rpc_few : (sel & 8) ? F.rpc_tight : F.rpc_loose;
    int max_values = (sel & 0x40) ? F.cfg_few.max_json_values : F.cfg.max_json_values;
    ac_rpc_response_t out;
    int deferred = 0;
    int rc = ac_rpc_handle(rpc, hdr, hlen, body, n, 1, &out);
    if (rc == AC_RPC_DEFER) {
        CHECK(out.status == 0 && out.body == NULL, "AC_RPC_DEFER with a response filled in");
        deferred = 1;
        rc = ac_rpc_handle(rpc, hdr, hlen, body, n, 0, &out);
        CHECK(rc == AC_RPC_DONE, "AC_RPC_DEFER with allow_defer unset");
    }
    CHECK(rc == AC_RPC_DONE, "ac_rpc_handle returned %d", rc);
    if (F.verbose) /* FUZZ_RPC_VERBOSE=1: what each input got, for writing seeds */
        fprintf(stderr, "fuzz_rpc: kind %d%s%s -> %d %.*s\n", kind, sel & 0x40 ? " few" : sel & 8 ? " tight" : "",
                deferred ? " deferred" : "", out.status, (int)(out.len > 600 ? 600 : out.len),
                out.body != NULL ? out.body : "");
    check_response(&out, who, kind == 3, deferred, body, n, max_values);
    ac_rpc_response_free(&out);
    free(body);
    free(hdr);

    /* keep the store bounded, and every fixture queued */
    ac_store_stats_t st;
    ac_store_stats(F.app.store, &st);
    if (st.used_bytes > STORE_MAX_BYTES) {
        if (F.verbose)
            fprintf(stderr, "fuzz_rpc: store at %zu bytes: wiped\n", st.used_bytes);
        store_remove();
        store_open();
    }
    for (int i = 0; i < FIX_COUNT; i++)
        if (!fixture_queued(i))
            fixture_create(i);
    return 0;
}
