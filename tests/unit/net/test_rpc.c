/* The JSON-RPC layer's checks that come before the parser: the token first (an unauthenticated
 * body is never parsed: 401 with id null whatever the body), the large-request window, and the
 * scan that bounds nesting and the number of values. The value count is checked against jansson's
 * own tree (every value plus every member name) for documents with awkward strings. Then the
 * declarative parameter checks that run before a handler (required, type, range, choices,
 * defaults, with data.field naming the parameter), what discovery publishes of them, and the
 * method tables ac_rpc_create refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/config.h"
#include "net/auth.h"
#include "net/ratelimit.h"
#include "net/rpc.h"

#include "check.h"

static int h_ping(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)ctx, (void)params, (void)err;
    *result = json_string("pong");
    return 0;
}

static int h_count(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)ctx, (void)err;
    *result = json_integer((json_int_t)json_array_size(json_object_get(params, "items")));
    return 0;
}

static const ac_param_spec_t count_params[] = {{"items", AC_P_ARRAY, 1, "anything", .checks = 0}, AC_PARAMS_END};

/* Echoes the params it received: what the declarations made of the request's. */
static int h_echo(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)ctx, (void)err;
    *result = json_deep_copy(params);
    return 0;
}

static const char *const modes[] = {"fast", "exact", "lazy", NULL};

static const ac_param_spec_t echo_params[] = {
    {"job_id", AC_P_UUID, 1, "required, first", .checks = 0},
    {"limit", AC_P_INTEGER, 0, "1..10, default 5", .checks = AC_PARAM_MIN | AC_PARAM_MAX | AC_PARAM_DEFAULT, .min = 1,
     .max = 10, .def = 5},
    {"offset", AC_P_INTEGER, 0, "at least 0", .checks = AC_PARAM_MIN},
    {"page", AC_P_INTEGER, 0, "at most 100, over it -40005", .checks = AC_PARAM_MAX, .max = 100,
     .over_code = AC_ERR_EXPORT_LIMIT},
    {"ratio", AC_P_NUMBER, 0, "0..0.5", .checks = AC_PARAM_MIN | AC_PARAM_MAX, .min = 0, .max = 0.5},
    {"mode", AC_P_STRING, 0, "one of modes", .choices = modes},
    {"verbose", AC_P_BOOL, 0, "default true", .checks = AC_PARAM_DEFAULT, .def = 1},
    {"items", AC_P_ARRAY, 0, "at most 3 items", .checks = AC_PARAM_MAX, .max = 3},
    {"note", AC_P_STRING, 0, "optional, no default", .checks = 0},
    AC_PARAMS_END,
};

static const ac_method_t methods[] = {
    {"test.ping", h_ping, 0, AC_RL_OTHER, 0, 0, NULL, "answers at once", NULL},
    {"test.count", h_count, 0, AC_RL_OTHER, 0, 0, count_params, "counts its items", NULL},
    {"test.echo", h_echo, 0, AC_RL_OTHER, 0, 0, echo_params, "echoes its checked params", NULL},
    {"test.strict", h_echo, 0, AC_RL_OTHER, 0, AC_ERR_INVALID_REQUEST, echo_params, "refuses with -32600", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

static ac_auth_t *auth;
static ac_ratelimit_t *rl;
static char header[1024];

static ac_rpc_t *rpc_with(int max_values, int max_depth)
{
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    cfg.max_json_values = max_values;
    cfg.max_json_depth = max_depth;
    ac_rpc_t *rpc = ac_rpc_create(methods, NULL, auth, rl, &cfg);
    ac_config_free(&cfg);
    return rpc;
}

/* Handles body with the valid token; returns the response document (new reference). */
static json_t *handle(ac_rpc_t *rpc, const char *hdr, const char *body, size_t len, int *status)
{
    ac_rpc_response_t out;
    ac_rpc_handle(rpc, hdr, hdr ? strlen(hdr) : 0, body, len, 0, &out);
    *status = out.status;
    json_t *doc = out.body ? json_loadb(out.body, out.len, 0, NULL) : NULL;
    ac_rpc_response_free(&out);
    return doc;
}

/* 1 when the answer is the "too many JSON values" refusal naming the body and the limit */
static int too_many(json_t *doc, int limit)
{
    json_t *data = json_object_get(json_object_get(doc, "error"), "data");
    return json_integer_value(json_object_get(json_object_get(doc, "error"), "code")) == AC_ERR_INVALID_REQUEST &&
           json_is_string(json_object_get(data, "field")) &&
           strcmp(json_string_value(json_object_get(data, "field")), "body") == 0 &&
           json_integer_value(json_object_get(data, "limit")) == limit && json_is_null(json_object_get(doc, "id"));
}

/* What the scan must count, computed from the parsed tree: each value, and each member name. */
static long tree_values(json_t *v)
{
    long n = 1;
    const char *key;
    json_t *child;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child) n += 1 + tree_values(child);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) n += tree_values(child);
    }
    return n;
}

static void test_unauthenticated_is_never_parsed(void)
{
    ac_rpc_t *rpc = rpc_with(1000, 8);
    const char *bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"test.ping\",\"id\":\"a\"}", /* a valid call: its id is not echoed */
        "{{{ not json",                                               /* would be -32700 */
        "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",                   /* would be -32600 (nesting) */
        "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]",  /* a batch: would be one error per call */
    };
    const char *headers[] = {NULL, "Bearer garbage", "Basic dXNlcjpwYXNz"};
    int all = 1;
    for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
        for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
            ac_rpc_response_t out;
            ac_rpc_handle(rpc, headers[h], headers[h] ? strlen(headers[h]) : 0, bodies[b], strlen(bodies[b]), 1,
                          &out);
            json_t *doc = out.body ? json_loadb(out.body, out.len, 0, NULL) : NULL;
            json_t *err = json_object_get(doc, "error");
            int ok = out.status == 401 && out.unauthorized && !out.has_rate && json_is_object(doc) &&
                     json_integer_value(json_object_get(err, "code")) == AC_ERR_UNAUTHORIZED &&
                     json_is_string(json_object_get(json_object_get(err, "data"), "error")) &&
                     json_is_null(json_object_get(doc, "id"));
            if (!ok)
                fprintf(stderr, "header %zu body %zu: %d %s\n", h, b, out.status, out.body ? out.body : "");
            all &= ok;
            json_decref(doc);
            ac_rpc_response_free(&out);
        }
    }
    CHECK(all, "without a valid token every body gets 401 -32002 with id null, before any parsing");

    ac_principal_t who;
    ac_rpc_response_t out;
    CHECK(ac_rpc_authenticate(rpc, header, strlen(header), &who, &out) == 0 && strcmp(who.sub, "tester") == 0 &&
              out.body == NULL,
          "ac_rpc_authenticate gives the principal of a valid token from the header alone");
    CHECK(ac_rpc_authenticate(rpc, NULL, 0, &who, &out) != 0 && out.status == 401 && out.unauthorized,
          "ac_rpc_authenticate without a header is the 401");
    ac_rpc_response_free(&out);
    ac_rpc_destroy(rpc);
}

static void test_value_bound(void)
{
    /* {"jsonrpc":"2.0","method":"test.count","id":1,"params":{"items":[ ... ]}} holds 11 values
     * (5 member names, "2.0", "test.count", 1, two objects, the array) before its items */
    enum { LIMIT = 20, BASE = 11 };
    ac_rpc_t *rpc = rpc_with(LIMIT, 8);
    static const char *const item_sets[][2] = {
        /* items that fill the limit exactly, then one more item of the same kind */
        {"0,0,0,0,0,0,0,0,0", "0,0,0,0,0,0,0,0,0,0"},
        {"-1.5e+10,true,false,null,1234567890123,0.0,1E-3,-0,7",
         "-1.5e+10,true,false,null,1234567890123,0.0,1E-3,-0,7,8"},
        /* separators, brackets and escaped quotes inside strings count for nothing */
        {"\"a,b\",\"[1,2,3]\",\"{\\\"k\\\":[0]}\",\"\\\\\",\"\\\\\\\"\",\": :\",\"\\u005c\",\"\",\"x\"",
         "\"a,b\",\"[1,2,3]\",\"{\\\"k\\\":[0]}\",\"\\\\\",\"\\\\\\\"\",\": :\",\"\\u005c\",\"\",\"x\",\"y\""},
        /* nesting: an array and an object are values, and so are member names */
        {"[],{},[0],{\"k\":0},0,0", "[],{},[0],{\"k\":0},0,0,0"},
        /* whitespace of every kind between values */
        {" 0 ,\t0\n,\r0 , 0,0,0,0,0,0", " 0 ,\t0\n,\r0 , 0,0,0,0,0,0 ,0"},
    };
    int exact = 1, over = 1, agrees = 1;
    for (size_t i = 0; i < sizeof item_sets / sizeof item_sets[0]; i++) {
        for (int k = 0; k < 2; k++) {
            char body[512];
            snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"method\":\"test.count\",\"id\":1,\"params\":{\"items\":[%s]}}",
                     item_sets[i][k]);
            json_t *tree = json_loads(body, 0, NULL);
            long n = tree != NULL ? tree_values(tree) : -1;
            json_decref(tree);
            agrees &= n == (k == 0 ? LIMIT : LIMIT + 1);
            int status;
            json_t *doc = handle(rpc, header, body, strlen(body), &status);
            if (k == 0) {
                exact &= status == 200 && json_is_integer(json_object_get(doc, "result"));
                if (!json_is_integer(json_object_get(doc, "result")))
                    fprintf(stderr, "set %zu at the limit: %s\n", i, json_dumps(doc, 0));
            } else {
                over &= status == 200 && too_many(doc, LIMIT);
            }
            json_decref(doc);
        }
    }
    CHECK(agrees, "the documents hold exactly the limit and one more value, counting as jansson's tree does");
    CHECK(exact, "a body of exactly max_json_values values is parsed and answered");
    CHECK(over, "one value more is -32600 with data {field: body, limit}, id null");

    /* the count comes before the parser: not JSON, but too many values, is still the count's error */
    char junk[256] = "[";
    for (int i = 0; i < 40; i++)
        strcat(junk, "0,");
    int status;
    json_t *doc = handle(rpc, header, junk, strlen(junk), &status);
    CHECK(too_many(doc, LIMIT), "too many values is refused without parsing (an unterminated body is not -32700)");
    json_decref(doc);
    /* a batch is one document: its calls' values add up */
    const char *call = "{\"jsonrpc\":\"2.0\",\"method\":\"test.ping\",\"id\":1}"; /* 7 values */
    char batch[256];
    snprintf(batch, sizeof batch, "[%s,%s]", call, call); /* 15 */
    doc = handle(rpc, header, batch, strlen(batch), &status);
    CHECK(json_is_array(doc) && json_array_size(doc) == 2, "a batch under the limit is answered");
    json_decref(doc);
    snprintf(batch, sizeof batch, "[%s,%s,%s]", call, call, call); /* 22 */
    doc = handle(rpc, header, batch, strlen(batch), &status);
    CHECK(too_many(doc, LIMIT), "a batch over the limit is refused as one document");
    json_decref(doc);
    /* nesting is still measured in the same pass */
    doc = handle(rpc, header, "[[[[[[[[[0]]]]]]]]]", 19, &status);
    CHECK(json_integer_value(json_object_get(json_object_get(doc, "error"), "code")) == AC_ERR_INVALID_REQUEST &&
              strstr(json_string_value(json_object_get(json_object_get(json_object_get(doc, "error"), "data"),
                                                       "error")),
                     "nesting") != NULL,
          "nesting over max_json_depth is -32600 as before");
    json_decref(doc);
    ac_rpc_destroy(rpc);

    /* the scan against jansson on documents of every shape, from a generator */
    srand(7);
    int matched = 1;
    for (int round = 0; round < 300; round++) {
        json_t *root = json_array();
        json_t *stack[8] = {root};
        int depth = 1;
        for (int j = 0, n = 1 + rand() % 40; j < n; j++) {
            json_t *parent = stack[depth - 1], *v;
            switch (rand() % 9) {
            case 0: v = json_integer(rand() - RAND_MAX / 2); break;
            case 1: v = json_real((double)rand() / 7.0); break;
            case 2: v = json_string("q\"u,o[t]e{d}:\\ \t"); break;
            case 3: v = json_true(); break;
            case 4: v = json_null(); break;
            case 5: v = json_array(); break;
            case 6: v = json_object(); break;
            case 7: v = json_string(""); break;
            default: v = json_stringn("nul\0inside", 10); break;
            }
            if (json_is_object(parent)) {
                char key[16];
                snprintf(key, sizeof key, "k%d\"]", j);
                json_object_set_new(parent, key, v);
            } else {
                json_array_append_new(parent, v);
            }
            if ((json_is_array(v) || json_is_object(v)) && depth < 7)
                stack[depth++] = v;
            else if (depth > 1 && rand() % 4 == 0)
                depth--;
        }
        char *text = json_dumps(root, JSON_ENCODE_ANY | (round % 2 ? JSON_INDENT(2) : JSON_COMPACT));
        long n = tree_values(root);
        ac_rpc_t *at = rpc_with((int)n, 32), *below = rpc_with((int)n - 1, 32);
        json_t *a = handle(at, header, text, strlen(text), &status);
        json_t *b = handle(below, header, text, strlen(text), &status);
        int ok = !too_many(a, (int)n) && too_many(b, (int)n - 1);
        if (!ok)
            fprintf(stderr, "round %d: %ld values in %s\n", round, n, text);
        matched &= ok;
        json_decref(a);
        json_decref(b);
        ac_rpc_destroy(at);
        ac_rpc_destroy(below);
        free(text);
        json_decref(root);
    }
    CHECK(matched, "300 generated documents: the scan counts what jansson's tree holds, exactly");
}

static void test_large_window(void)
{
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    cfg.rate[AC_RL_LARGE] = (ac_rate_rule_t){2, 60};
    ac_ratelimit_t *tight = ac_ratelimit_create(cfg.rate);
    ac_rpc_t *rpc = ac_rpc_create(methods, NULL, auth, tight, &cfg);
    ac_principal_t who = {"large-user", 0, 0}, other = {"someone-else", 0, 0};
    ac_rpc_response_t out;
    int first = ac_rpc_admit_large(rpc, &who, &out) == 0 && out.body == NULL;
    int second = ac_rpc_admit_large(rpc, &who, &out) == 0;
    CHECK(first && second, "large requests within the window are admitted");
    int refused = ac_rpc_admit_large(rpc, &who, &out) != 0;
    json_t *doc = out.body ? json_loadb(out.body, out.len, 0, NULL) : NULL;
    json_t *data = json_object_get(json_object_get(doc, "error"), "data");
    CHECK(refused && out.status == 429 && out.retry_after_s >= 1 && out.retry_after_s <= 60 && out.has_rate &&
              out.rate.limit == 2 && out.rate.remaining == 0 &&
              json_integer_value(json_object_get(json_object_get(doc, "error"), "code")) == AC_ERR_RATE_LIMITED &&
              strcmp(json_string_value(json_object_get(data, "field")), "body") == 0 &&
              json_integer_value(json_object_get(data, "retry_after_s")) == out.retry_after_s &&
              json_is_null(json_object_get(doc, "id")),
          "the third is 429 -32029 naming the body, with Retry-After and the window's headers");
    json_decref(doc);
    ac_rpc_response_free(&out);
    CHECK(ac_rpc_admit_large(rpc, &other, &out) == 0, "another principal has its own window");

    ac_err_t err = AC_ERR_INIT;
    ac_err_field(&err, AC_ERR_INTERNAL, "body", "busy");
    ac_rpc_refuse(&err, 503, 1, &out);
    doc = json_loadb(out.body, out.len, 0, NULL);
    CHECK(out.status == 503 && out.retry_after_s == 1 && json_is_null(json_object_get(doc, "id")) &&
              json_integer_value(json_object_get(json_object_get(doc, "error"), "code")) == AC_ERR_INTERNAL,
          "ac_rpc_refuse renders the error with id null and the status asked for");
    json_decref(doc);
    ac_rpc_response_free(&out);
    ac_err_clear(&err);
    ac_rpc_destroy(rpc);
    ac_ratelimit_destroy(tight);
    ac_config_free(&cfg);
}

#define JOB "\"job_id\":\"550e8400-e29b-41d4-a716-446655440000\""

/* Calls test.echo (or method) with params text; returns the response document. */
static json_t *echo(ac_rpc_t *rpc, const char *method, const char *params)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":7,\"params\":{%s}}", method, params);
    int status;
    return handle(rpc, header, body, strlen(body), &status);
}

/* 1 when doc is the error code naming field, and (when given) with that error text */
static int refused(json_t *doc, int code, const char *field, const char *text)
{
    json_t *e = json_object_get(doc, "error"), *data = json_object_get(e, "data");
    const char *f = json_string_value(json_object_get(data, "field"));
    const char *t = json_string_value(json_object_get(data, "error"));
    int ok = json_integer_value(json_object_get(e, "code")) == code && f != NULL && strcmp(f, field) == 0 &&
             (text == NULL || (t != NULL && strcmp(t, text) == 0));
    if (!ok) {
        char *d = json_dumps(doc, JSON_COMPACT);
        fprintf(stderr, "  want %d %s %s, got %s\n", code, field, text ? text : "", d ? d : "(null)");
        free(d);
    }
    return ok;
}

static void test_declared_params(void)
{
    ac_rpc_t *rpc = rpc_with(100000, 32);
    json_t *d;
    struct {
        const char *params;
        int code;
        const char *field, *error;
        const char *what;
    } bad[] = {
        {"\"limit\":3", AC_ERR_INVALID_PARAMS, "job_id", "is required", "a missing required parameter"},
        {JOB ",\"limit\":\"3\"", AC_ERR_INVALID_PARAMS, "limit", "must be an integer", "a string for an integer"},
        {JOB ",\"limit\":2.5", AC_ERR_INVALID_PARAMS, "limit", "must be an integer", "a fraction for an integer"},
        {JOB ",\"limit\":0", AC_ERR_INVALID_PARAMS, "limit", "must be between 1 and 10", "below the minimum"},
        {JOB ",\"limit\":11", AC_ERR_INVALID_PARAMS, "limit", "must be between 1 and 10", "above the maximum"},
        {JOB ",\"limit\":-9223372036854775807", AC_ERR_INVALID_PARAMS, "limit", NULL, "far below the minimum"},
        {JOB ",\"offset\":-1", AC_ERR_INVALID_PARAMS, "offset", "must be at least 0", "a minimum alone"},
        {JOB ",\"page\":101", AC_ERR_EXPORT_LIMIT, "page", "must be at most 100", "over_code above the maximum"},
        {JOB ",\"ratio\":0.75", AC_ERR_INVALID_PARAMS, "ratio", "must be between 0 and 0.5", "a number's range"},
        {JOB ",\"mode\":\"slow\"", AC_ERR_INVALID_PARAMS, "mode", "must be fast, exact or lazy", "a value not among the choices"},
        {JOB ",\"mode\":1", AC_ERR_INVALID_PARAMS, "mode", "must be a string", "the type before the choices"},
        {JOB ",\"verbose\":1", AC_ERR_INVALID_PARAMS, "verbose", "must be a boolean", "a number for a boolean"},
        {JOB ",\"items\":[1,2,3,4]", AC_ERR_INVALID_PARAMS, "items", "must hold at most 3 items", "too many items"},
        {JOB ",\"limitt\":1", AC_ERR_INVALID_PARAMS, "limitt", "is not a parameter of test.echo", "an unknown name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = echo(rpc, "test.echo", bad[i].params);
        char what[160];
        snprintf(what, sizeof what, "%s is refused naming %s", bad[i].what, bad[i].field);
        CHECK(refused(d, bad[i].code, bad[i].field, bad[i].error), what);
        json_decref(d);
    }
    d = echo(rpc, "test.strict", "\"limit\":0");
    CHECK(refused(d, AC_ERR_INVALID_REQUEST, "job_id", "is required"), "a method's param_error is the code of its refusals");
    json_decref(d);
    d = echo(rpc, "test.strict", JOB ",\"page\":1000");
    CHECK(refused(d, AC_ERR_EXPORT_LIMIT, "page", NULL), "over_code wins over the method's param_error above the maximum");
    json_decref(d);

    /* what the handler sees */
    d = echo(rpc, "test.echo", JOB);
    json_t *r = json_object_get(d, "result");
    CHECK(json_is_integer(json_object_get(r, "limit")) && json_integer_value(json_object_get(r, "limit")) == 5 &&
              json_is_true(json_object_get(r, "verbose")) && json_object_get(r, "offset") == NULL &&
              json_object_get(r, "note") == NULL,
          "absent parameters: the declared defaults are filled in, the others stay absent");
    json_decref(d);
    d = echo(rpc, "test.echo", JOB ",\"limit\":null,\"note\":null,\"verbose\":false");
    r = json_object_get(d, "result");
    CHECK(json_integer_value(json_object_get(r, "limit")) == 5 && json_object_get(r, "note") == NULL &&
              json_is_false(json_object_get(r, "verbose")),
          "null is absent: a default replaces it, an optional parameter without one is removed; a value given stays");
    json_decref(d);
    d = echo(rpc, "test.echo", JOB ",\"limit\":10.0,\"offset\":0,\"page\":100,\"ratio\":0.5,\"mode\":\"lazy\"");
    r = json_object_get(d, "result");
    CHECK(json_is_integer(json_object_get(r, "limit")) && json_integer_value(json_object_get(r, "limit")) == 10 &&
              json_integer_value(json_object_get(r, "page")) == 100 &&
              json_real_value(json_object_get(r, "ratio")) == 0.5 &&
              strcmp(json_string_value(json_object_get(r, "mode")), "lazy") == 0,
          "values on the bounds pass, and an integral real reaches the handler as an integer");
    json_decref(d);

    /* discovery publishes the declarations */
    json_t *doc = ac_rpc_openrpc(rpc);
    json_t *m = NULL, *schema[9] = {0};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "methods"), i, v) if (strcmp(json_string_value(json_object_get(v, "name")),
                                                                        "test.echo") == 0) m = v;
    json_array_foreach(json_object_get(m, "params"), i, v) if (i < 9) schema[i] = json_object_get(v, "schema");
    CHECK(json_integer_value(json_object_get(schema[1], "minimum")) == 1 &&
              json_integer_value(json_object_get(schema[1], "maximum")) == 10 &&
              json_integer_value(json_object_get(schema[1], "default")) == 5 &&
              json_object_get(schema[2], "maximum") == NULL && json_object_get(schema[2], "default") == NULL,
          "discovery: an integer's minimum, maximum and default, and only those it declares");
    CHECK(json_real_value(json_object_get(schema[4], "maximum")) == 0.5 &&
              json_array_size(json_object_get(schema[5], "enum")) == 3 &&
              strcmp(json_string_value(json_array_get(json_object_get(schema[5], "enum"), 2)), "lazy") == 0 &&
              json_is_true(json_object_get(schema[6], "default")) &&
              json_integer_value(json_object_get(schema[7], "maxItems")) == 3 &&
              strcmp(json_string_value(json_object_get(schema[0], "format")), "uuid") == 0,
          "discovery: a number's maximum, a string's enum, a boolean's default, an array's maxItems");
    json_decref(doc);
    ac_rpc_destroy(rpc);
}

static void test_table_checks(void)
{
    static const char *const none[] = {NULL};
    static const ac_param_spec_t bad_specs[][2] = {
        {{"n", AC_P_INTEGER, 0, "", .checks = AC_PARAM_MIN | AC_PARAM_MAX, .min = 5, .max = 1}, AC_PARAMS_END},
        {{"n", AC_P_INTEGER, 0, "", .checks = AC_PARAM_MAX | AC_PARAM_DEFAULT, .max = 10, .def = 11}, AC_PARAMS_END},
        {{"n", AC_P_INTEGER, 1, "", .checks = AC_PARAM_DEFAULT, .def = 1}, AC_PARAMS_END},
        {{"s", AC_P_STRING, 0, "", .checks = AC_PARAM_MIN, .min = 1}, AC_PARAMS_END},
        {{"s", AC_P_STRING, 0, "", .checks = AC_PARAM_DEFAULT}, AC_PARAMS_END},
        {{"n", AC_P_INTEGER, 0, "", .choices = modes}, AC_PARAMS_END},
        {{"s", AC_P_STRING, 0, "", .choices = none}, AC_PARAMS_END},
        {{"n", AC_P_INTEGER, 0, "", .over_code = AC_ERR_EXPORT_LIMIT}, AC_PARAMS_END},
        {{"n", AC_P_INTEGER, 0, "", .checks = 0}, {"n", AC_P_STRING, 0, "", .checks = 0}},
    };
    int all = 1;
    for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
        ac_method_t table[] = {{"t.bad", h_echo, 0, AC_RL_OTHER, 0, 0, bad_specs[i], "", NULL},
                               {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};
        ac_err_t err = AC_ERR_INIT;
        int rc = ac_rpc_check_table(table, &err);
        if (rc == 0 || strstr(err.message, "t.bad") == NULL) {
            fprintf(stderr, "  table %zu: %d %s\n", i, rc, err.message);
            all = 0;
        }
        ac_err_clear(&err);
    }
    CHECK(all, "ac_rpc_check_table refuses min above max, a default out of range or on a required or string "
               "parameter, a range on a string, choices on an integer or empty, over_code without max, a name twice");
    ac_method_t twice[] = {{"t.a", h_ping, 0, AC_RL_OTHER, 0, 0, NULL, "", NULL},
                           {"t.a", h_ping, 0, AC_RL_OTHER, 0, 0, NULL, "", NULL},
                           {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    ac_rpc_t *rpc = ac_rpc_create(twice, NULL, auth, rl, &cfg);
    CHECK(rpc == NULL, "ac_rpc_create refuses a table that declares a method twice");
    ac_rpc_destroy(rpc);
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_rpc_check_table(methods, &err) == 0, "this test's own table passes");
    ac_err_clear(&err);
    ac_config_free(&cfg);
}

int main(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_config_t acfg = {.alg = "HS256", .secret = "test-rpc-secret-0123456789", .leeway_s = -1};
    auth = ac_auth_create(&acfg, &err);
    char *token = ac_auth_issue(auth, "tester", "", 600, (int64_t)time(NULL), &err);
    snprintf(header, sizeof header, "Bearer %s", token);
    free(token);
    ac_rate_rule_t loose[AC_RL_COUNT];
    for (int i = 0; i < AC_RL_COUNT; i++)
        loose[i] = (ac_rate_rule_t){0, 60};
    rl = ac_ratelimit_create(loose);

    test_unauthenticated_is_never_parsed();
    test_value_bound();
    test_large_window();
    test_declared_params();
    test_table_checks();

    ac_ratelimit_destroy(rl);
    ac_auth_destroy(auth);
    return check_done(__FILE__);
}
