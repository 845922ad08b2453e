/* The server config reader (core/lua/config.c): configs written to temp files and loaded over the
 * defaults. The defaults, every numeric key at and past its bounds, every type error, an unknown
 * key in every section, the line named in errors, the structured keys (listen, plugins_dir,
 * retry_schedule_s, principals, agents, subscriptions) and examples/server.lua. The keys come
 * from ac_config_reference, so a key added to the table is tested here without a new line. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lua/config.h"

static char dir[] = "/tmp/ac-test-config-XXXXXX";
static char path[128];

/* text written to the temp file, then loaded over the defaults into cfg (freed by the caller) */
static int load(const char *text, ac_config_t *cfg, ac_err_t *err)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    ac_config_defaults(cfg);
    return ac_config_load(cfg, path, err);
}

/* 1 when text fails to load with "<path>:<line>: <want>" (line 0: any line, or none) */
static int fails(const char *text, int line, const char *want)
{
    ac_config_t cfg;
    ac_err_t err = AC_ERR_INIT;
    int rc = load(text, &cfg, &err);
    char prefix[192];
    if (line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    else
        snprintf(prefix, sizeof prefix, "%s", path);
    int good = rc == -1 && err.code == AC_ERR_INVALID_PARAMS && strncmp(err.message, prefix, strlen(prefix)) == 0 &&
               strstr(err.message, want) != NULL;
    if (!good)
        fprintf(stderr, "  rc %d, message '%s'; wanted '%s...%s' for:\n%s\n", rc, err.message, prefix, want, text);
    ac_err_clear(&err);
    ac_config_free(&cfg);
    return good;
}

/* 1 when text loads and the value of `key` (ac_config_to_json) equals want, a JSON text */
static int loads(const char *text, const char *key, const char *want)
{
    ac_config_t cfg;
    ac_err_t err = AC_ERR_INIT;
    int rc = load(text, &cfg, &err);
    json_t *values = ac_config_to_json(&cfg), *w = json_loads(want, JSON_DECODE_ANY, NULL);
    json_t *got = json_object_get(values, key);
    /* 0 and 0.0 are the same number here (jansson tells integers and reals apart) */
    int same = json_is_number(got) && json_is_number(w) ? json_number_value(got) == json_number_value(w)
                                                         : json_equal(got, w);
    int good = rc == 0 && w != NULL && same;
    if (!good) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "  rc %d (%s): %s = %s, wanted %s, for:\n%s\n", rc, err.message, key, g ? g : "(none)", want,
                text);
        free(g);
    }
    json_decref(w);
    json_decref(values);
    ac_err_clear(&err);
    ac_config_free(&cfg);
    return good;
}

/* "return {\n  a = {\n    b = {\n      key = VALUE,\n}}}" for the dotted path "a.b.key": the key
 * sits on line 2 + the number of sections. */
static void nest(char *buf, size_t len, const char *dotted, const char *value)
{
    char parts[4][64];
    int n = 0;
    for (const char *p = dotted; n < 4;) {
        size_t l = strcspn(p, ".");
        snprintf(parts[n++], sizeof parts[0], "%.*s", (int)l, p);
        if (p[l] == '\0')
            break;
        p += l + 1;
    }
    size_t used = (size_t)snprintf(buf, len, "return {\n");
    for (int i = 0; i < n - 1; i++)
        used += (size_t)snprintf(buf + used, len - used, "%*s%s = {\n", 2 * (i + 1), "", parts[i]);
    used += (size_t)snprintf(buf + used, len - used, "%*s%s = %s,\n", 2 * n, "", parts[n - 1], value);
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, len - used, "}");
    snprintf(buf + used, len - used, "\n");
}

static int depth_of(const char *dotted)
{
    int n = 0;
    for (const char *p = dotted; *p; p++)
        n += *p == '.';
    return n;
}

static const char *last_part(const char *dotted)
{
    const char *dot = strrchr(dotted, '.');
    return dot ? dot + 1 : dotted;
}

static void fmt_bound(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
}

/* Every integer and number key: its bounds load, one past them is refused at the key's line
 * with the range; a value of another type is refused. */
static void test_ranges(json_t *rows)
{
    size_t i;
    json_t *row;
    int n_keys = 0, all_in = 1, all_out = 1, all_type = 1;
    json_array_foreach(rows, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *type = json_string_value(json_object_get(row, "type"));
        if (strcmp(type, "integer") != 0 && strcmp(type, "number") != 0)
            continue;
        n_keys++;
        int is_int = strcmp(type, "integer") == 0, zero_off = json_is_true(json_object_get(row, "zero_off"));
        double lo = json_number_value(json_object_get(row, "min")), hi = json_number_value(json_object_get(row, "max"));
        double step = is_int ? 1 : 0.5;
        char text[512], value[64], want[160], slo[32], shi[32];
        fmt_bound(slo, sizeof slo, lo);
        fmt_bound(shi, sizeof shi, hi);
        if (zero_off)
            snprintf(want, sizeof want, "'%s' must be 0 (off) or between %s and %s", last_part(key), slo, shi);
        else
            snprintf(want, sizeof want, "'%s' must be between %s and %s", last_part(key), slo, shi);
        int line = 2 + depth_of(key);
        for (int end = 0; end < 2; end++) {
            double at = end ? hi : lo, past = end ? hi + step : lo - step;
            snprintf(value, sizeof value, is_int ? "%.0f" : "%.17g", at);
            nest(text, sizeof text, key, value);
            all_in &= loads(text, key, value);
            snprintf(value, sizeof value, is_int ? "%.0f" : "%.17g", past);
            nest(text, sizeof text, key, value);
            all_out &= fails(text, line, want);
        }
        if (zero_off) {
            nest(text, sizeof text, key, "0");
            all_in &= loads(text, key, "0");
        }
        snprintf(want, sizeof want, "'%s' must be %s", last_part(key), is_int ? "an integer" : "a number");
        nest(text, sizeof text, key, "\"12\"");
        all_type &= fails(text, line, want);
        if (is_int) {
            nest(text, sizeof text, key, "1.5");
            all_type &= fails(text, line, want);
        }
    }
    CHECK(n_keys >= 40, "the reference lists the numeric keys");
    CHECK(all_in, "every numeric key loads at its minimum and its maximum (and 0 where 0 means off)");
    CHECK(all_out, "one past either bound is refused: file:line: 'key' must be between A and B");
    CHECK(all_type, "a string (or a fraction for an integer) is refused: must be an integer / a number");
}

/* Booleans, strings: a value of another type is refused at its line. */
static void test_types(json_t *rows)
{
    size_t i;
    json_t *row;
    int bools = 0, strings = 0, all = 1;
    json_array_foreach(rows, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *type = json_string_value(json_object_get(row, "type"));
        const char *range = json_string_value(json_object_get(row, "range"));
        char text[512], want[160];
        if (strcmp(type, "boolean") == 0) {
            bools++;
            nest(text, sizeof text, key, "1");
            snprintf(want, sizeof want, "'%s' must be a boolean", last_part(key));
            all &= fails(text, 2 + depth_of(key), want);
            nest(text, sizeof text, key, "true");
            all &= loads(text, key, "true");
        } else if (strcmp(type, "string") == 0) {
            strings++;
            nest(text, sizeof text, key, "5");
            /* a string with choices says which */
            snprintf(want, sizeof want, "'%s' must be %s", last_part(key), range[0] ? "\"" : "a string");
            all &= fails(text, 2 + depth_of(key), want);
        }
    }
    CHECK(bools >= 2 && strings >= 12, "the reference lists the boolean and string keys");
    CHECK(all, "a boolean or string key given another type is refused at its line");
}

/* An unknown key in every section, and a section that is not a table. */
static void test_unknown_keys(json_t *ref)
{
    size_t i, j;
    json_t *sec, *row;
    int all = 1, sections = 0;
    CHECK(fails("return {\n  threads = 2,\n  thread = 4,\n}\n", 3, "'thread' is not a known key") &&
              fails("return { thread = 4 }", 1, "'thread' is not a known key"),
          "an unknown top-level key is refused at its line");
    json_array_foreach(ref, i, sec)
    {
        const char *name = json_string_value(json_object_get(sec, "section"));
        if (name[0] == '\0')
            continue;
        char text[512], seen[512] = "", sub[160];
        /* the section itself, then each of its sub-sections ("rate_limits.start_grpo") once */
        snprintf(sub, sizeof sub, "%s.bogus_key", name);
        sections++;
        nest(text, sizeof text, sub, "1");
        all &= fails(text, 2 + depth_of(sub), "'bogus_key' is not a known key of this section");
        json_array_foreach(json_object_get(sec, "keys"), j, row)
        {
            const char *key = json_string_value(json_object_get(row, "key")), *dot = strchr(key, '.');
            if (dot == NULL)
                continue;
            snprintf(sub, sizeof sub, "%s.%.*s.bogus_key", name, (int)(dot - key), key);
            if (strstr(seen, sub) != NULL)
                continue;
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s;", sub);
            sections++;
            nest(text, sizeof text, sub, "1");
            all &= fails(text, 2 + depth_of(sub), "'bogus_key' is not a known key of this section");
        }
        snprintf(text, sizeof text, "return {\n  %s = 5,\n}\n", name);
        char want[96];
        snprintf(want, sizeof want, "'%s' must be a table", name);
        all &= fails(text, 2, want);
    }
    CHECK(sections >= 16, "every section and sub-section was tried");
    CHECK(all, "an unknown key in any section is refused at its line (\"is not a known key of this section\"), "
               "and a section that is not a table too");
}

static void test_lines(void)
{
    /* "listen" is a key of the top level and of tls: the error names the one inside tls */
    CHECK(fails("return {\n  listen = \"127.0.0.1:0\",\n  threads = 1,\n  tls = {\n    listen = 5,\n  },\n}\n", 5,
                "'listen' must be a string"),
          "the line of a key inside its section, not of the same name earlier in the file");
    CHECK(fails("return {\n  rate_limits = {\n    start_grpo = { limit = 1 },\n    cancel = {\n"
                "      limit = -1,\n    },\n  },\n}\n",
                5, "'limit' must be between 0 and 1000000000"),
          "the line inside the right sub-section (cancel.limit, not start_grpo.limit)");
    CHECK(fails("return {\n  threads = 2,\n  listen = ,\n}\n", 3, "unexpected symbol"), "a syntax error: Lua's line");
    CHECK(fails("return 5\n", 0, "the config must return a table"), "a config that is not a table");
    CHECK(fails("return { [1] = 2 }\n", 0, "has a key that is not a string"), "a key that is not a string");
    CHECK(loads("return setmetatable({ workers = 2 }, { __index = function() error('boom') end })\n", "workers", "2"),
          "a metatable runs nothing: values are read raw");
}

static void test_structured(void)
{
    const char *builtin = AC_SOURCE_DIR "/plugins";
    char want[512];
    snprintf(want, sizeof want, "\"/srv/p:%s\"", builtin);
    CHECK(loads("return { plugins_dir = \"/srv/p\" }", "plugins_dir", want),
          "plugins_dir: a directory, then the built-in");
    snprintf(want, sizeof want, "\"/a:/b:%s\"", builtin);
    CHECK(loads("return { plugins_dir = { \"/a\", \"/b\" } }", "plugins_dir", want),
          "plugins_dir: a list of directories, in order, then the built-in");
    snprintf(want, sizeof want, "\"%s\"", builtin);
    CHECK(loads("return { plugins_dir = {} }", "plugins_dir", want), "plugins_dir: an empty list keeps the built-in");
    CHECK(fails("return {\n  plugins_dir = { \"/a\", 5 },\n}", 2,
                "'plugins_dir' must be a directory or a list of directories") &&
              fails("return { plugins_dir = true }", 1, "must be a directory or a list of directories"),
          "plugins_dir: anything else is refused");

    CHECK(loads("return { listen = { \"127.0.0.1:1\", \"127.0.0.1:2\" } }", "listen",
                "[\"127.0.0.1:1\", \"127.0.0.1:2\"]") &&
              loads("return { listen = \"[::1]:9\" }", "listen", "\"[::1]:9\""),
          "listen: a string or a list");
    CHECK(fails("return { listen = {} }", 1, "must list between 1 and 8 addresses") &&
              fails("return { listen = { 'a','b','c','d','e','f','g','h','i' } }", 1, "between 1 and 8") &&
              fails("return { listen = { 5 } }", 1, "must hold strings") &&
              fails("return { listen = 5 }", 1, "'listen' must be a string or a list of strings"),
          "listen: empty, nine, not strings are refused");

    CHECK(loads("return { webhooks = { on_policy_error = \"deliver\" } }", "webhooks.on_policy_error", "\"deliver\"") &&
              loads("return { webhooks = { on_policy_error = \"drop\" } }", "webhooks.on_policy_error", "\"drop\""),
          "on_policy_error: drop or deliver");
    ac_config_t cfg;
    ac_err_t err = AC_ERR_INIT;
    CHECK(load("return { webhooks = { on_policy_error = \"deliver\" } }", &cfg, &err) == 0 &&
              cfg.webhook_deliver_on_policy_error == 1,
          "on_policy_error = \"deliver\" sets the flag the webhook sender reads");
    ac_config_free(&cfg);
    CHECK(fails("return {\n  webhooks = {\n    on_policy_error = \"retry\",\n  },\n}", 3,
                "'on_policy_error' must be \"drop\" or \"deliver\"") &&
              fails("return { webhooks = { on_policy_error = 1 } }", 1, "must be \"drop\" or \"deliver\""),
          "on_policy_error: anything else is refused with the choices");
    CHECK(fails("return { auth = { alg = \"none\" } }", 1, "'alg' must be \"HS256\", \"RS256\" or \"ES256\""),
          "auth.alg: one of the three, checked at its line");

    CHECK(loads("return { webhooks = { retry_schedule_s = { 1, 2.5 } } }", "webhooks.retry_schedule_s", "[1.0, 2.5]"),
          "retry_schedule_s: a list of delays");
    CHECK(fails("return { webhooks = { retry_schedule_s = { -1 } } }", 1, "must hold delays in seconds (>= 0)") &&
              fails("return { webhooks = { retry_schedule_s = {} } }", 1, "must list 1 to 16 delays") &&
              fails("return { webhooks = { retry_schedule_s = 5 } }", 1, "must be a list of seconds"),
          "retry_schedule_s: negative, empty, not a list are refused");

    CHECK(loads("return { budgets = { principals = { alice = 50 } } }", "budgets.principals", "{\"alice\": 50.0}"),
          "budgets.principals: name -> USD");
    CHECK(fails("return { budgets = { principals = { alice = \"x\" } } }", 1,
                "must map principal names to USD amounts"),
          "budgets.principals: not a number is refused");

    CHECK(loads("return { agents = { [\"calc-v2\"] = { agent = \"calculator\" } } }", "agents",
                "{\"calc-v2\": {\"agent\": \"calculator\", \"reward\": \"calculator\", \"validator\": \"default\"}}"),
          "agents: reward defaults to the agent's name, validator to \"default\"");
    CHECK(fails("return {\n  agents = {\n    x = { reward = \"r\" },\n  },\n}", 3, "'x' needs agent = ") &&
              fails("return {\n  agents = {\n    x = {\n      agent = \"a\",\n      rewrd = \"r\",\n    },\n  },\n}", 5,
                    "'rewrd' is not a known key of this section") &&
              fails("return { agents = { x = 5 } }", 1, "must map agent ids to {agent, reward, validator}"),
          "agents: a binding without agent, with an unknown key, or not a table is refused at its line");

    CHECK(loads("return { webhooks = { subscriptions = { { url = \"https://x.example/h\", events = \"*\" } } } }",
                "webhooks.subscriptions", "[{\"url\": \"https://x.example/h\", \"events\": \"*\"}]"),
          "subscriptions: {url, events}");
    CHECK(fails("return { webhooks = { subscriptions = { { events = \"*\" } } } }", 1,
                "must be a list of {url = ...") &&
              fails("return { webhooks = { subscriptions = 5 } }", 1, "must be a list of {url"),
          "subscriptions: without url, or not a list, are refused");
    CHECK(loads("return { plugin_limits = { max_call_mb = 3 } }", "plugin_limits.max_call_mb", "3") &&
              load("return { plugin_limits = { max_call_mb = 3 } }", &cfg, &err) == 0 &&
              cfg.plugin_limits.max_call_bytes == (size_t)3 << 20,
          "max_call_mb is kept in bytes");
    ac_config_free(&cfg);
    ac_err_clear(&err);
}

static void test_defaults(void)
{
    ac_config_t d, cfg;
    ac_config_defaults(&d);
    const ac_lua_limits_t lim = AC_LUA_DEFAULT_LIMITS;
    CHECK(d.n_listen == 1 && strcmp(d.listen[0], "127.0.0.1:8001") == 0 && strcmp(d.data_dir, "./data") == 0 &&
              strcmp(d.auth_alg, "HS256") == 0 && d.auth_secret == NULL && d.auth_leeway_s == 30 && d.threads == 0 &&
              d.rpc_workers == 2 && d.workers == 1,
          "defaults: listen, data_dir, auth, threads, workers");
    static const int spec_limits[AC_RL_COUNT] = {10, 100, 20, 5, 10, 1000, 30, 100, 30};
    int rates = 1;
    for (int i = 0; i < AC_RL_COUNT; i++)
        rates &= d.rate[i].limit == spec_limits[i] && d.rate[i].window_s == 60;
    CHECK(rates, "defaults: the documented rate limits (docs/api.md), 30 large requests a minute");
    CHECK(d.max_body_bytes == (size_t)16 << 20 && d.max_json_depth == 64 && d.max_json_values == 1000000 &&
              d.max_batch == 100 && d.parse_on_loop_bytes == 64 * 1024 && d.trim_after_bytes == (size_t)1 << 20 &&
              d.recv_buffer_bytes == 256 * 1024,
          "defaults: limits");
    CHECK(memcmp(&d.plugin_limits, &lim, sizeof lim) == 0 && d.abandon_after_ms == 2000,
          "defaults: plugin_limits equal AC_LUA_DEFAULT_LIMITS (the host's own defaults)");
    CHECK(strcmp(d.plugins_dir, AC_SOURCE_DIR "/plugins") == 0 && strcmp(d.lua_dir, AC_SOURCE_DIR "/lua") == 0,
          "defaults: the built-in plugins and Lua library");
    CHECK(d.n_webhook_retries == 8 && d.webhook_retry_s[2] == 300 && d.webhook_retry_s[7] == 36000 &&
              strcmp(d.webhook_policy, "default") == 0 && d.webhook_deliver_on_policy_error == 0 &&
              d.webhook_timeout_ms == 15000 && d.webhook_jitter == 0.1 && d.webhook_subscriptions == NULL,
          "defaults: webhooks (the Standard Webhooks schedule, drop on policy errors)");
    CHECK(d.step_cost_usd == 0.00001 && d.default_budget_usd == 1000 && d.keep_best_checkpoints == 3 &&
              d.max_trajectories_per_job == 100000 && d.max_failure_rate == 0.5 && d.errors_expose_internal == 0,
          "defaults: training, budgets, errors");

    json_t *want = ac_config_to_json(&d);
    ac_err_t err = AC_ERR_INIT;
    int rc = load("return {}", &cfg, &err);
    json_t *got = ac_config_to_json(&cfg);
    CHECK(rc == 0 && json_equal(got, want), "an empty config keeps every default");
    json_decref(got);
    ac_config_free(&cfg);

    /* examples/server.lua writes every key with its default (test_configdoc checks that every key
     * is there): loading it must change nothing */
    const char *src = getenv("AC_SOURCE_DIR") ? getenv("AC_SOURCE_DIR") : AC_SOURCE_DIR;
    char example[1024];
    snprintf(example, sizeof example, "%s/examples/server.lua", src);
    ac_config_defaults(&cfg);
    rc = ac_config_load(&cfg, example, &err);
    got = ac_config_to_json(&cfg);
    const char *k;
    json_t *v;
    int same = rc == 0;
    json_object_foreach(want, k, v)
    {
        if (!json_equal(v, json_object_get(got, k))) {
            char *a = json_dumps(v, JSON_ENCODE_ANY), *b = json_dumps(json_object_get(got, k), JSON_ENCODE_ANY);
            fprintf(stderr, "  examples/server.lua: %s = %s, the default is %s\n", k, b ? b : "?", a ? a : "?");
            free(a);
            free(b);
            same = 0;
        }
    }
    CHECK(same, "examples/server.lua loads and every value in it is the default");
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.message);
    json_decref(got);
    json_decref(want);
    ac_config_free(&cfg);
    ac_config_free(&d);
    ac_err_clear(&err);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/server.lua", dir);
    test_defaults();
    json_t *ref = ac_config_reference(), *rows = json_array();
    size_t i, j;
    json_t *sec, *row;
    json_array_foreach(ref, i, sec)
    {
        /* the keys' full paths: "rate_limits" + "start_grpo.limit" */
        const char *name = json_string_value(json_object_get(sec, "section"));
        json_array_foreach(json_object_get(sec, "keys"), j, row)
        {
            char full[160];
            snprintf(full, sizeof full, "%s%s%s", name, name[0] ? "." : "",
                     json_string_value(json_object_get(row, "key")));
            json_t *r = json_deep_copy(row);
            json_object_set_new(r, "key", json_string(full));
            json_array_append_new(rows, r);
        }
    }
    test_ranges(rows);
    test_types(rows);
    test_unknown_keys(ref);
    test_lines();
    test_structured();
    json_decref(rows);
    json_decref(ref);
    unlink(path);
    rmdir(dir);
    return check_done(__FILE__);
}
