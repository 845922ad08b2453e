/* The JSON-RPC layer's checks that come before the parser: the token first (an unauthenticated
 * body is never parsed: 401 with id null whatever the body), the large-request window, and the
 * scan that bounds nesting and the number of values. The value count is checked against jansson's
 * own tree (every value plus every member name) for documents with awkward strings. */
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

static const ac_param_spec_t count_params[] = {{"items", AC_P_ARRAY, 1, "anything"}, {NULL, 0, 0, NULL}};

static const ac_method_t methods[] = {
    {"test.ping", h_ping, 0, AC_RL_OTHER, 0, 0, NULL, "answers at once", NULL},
    {"test.count", h_count, 0, AC_RL_OTHER, 0, 0, count_params, "counts its items", NULL},
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

    ac_ratelimit_destroy(rl);
    ac_auth_destroy(auth);
    return check_done(__FILE__);
}
