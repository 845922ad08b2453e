#include "lua/config.h"

#include "base/file.h"
#include "lua/lua_json.h"
#include "lua/registry.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const rl_names[AC_RL_COUNT] = {"start_grpo", "get_status", "cancel", "evaluate",
                                                  "export_trajectories", "other", "large_requests"};

const char *ac_rl_class_name(int cls)
{
    return cls >= 0 && cls < AC_RL_COUNT ? rl_names[cls] : "?";
}

/* The plugins shipped with agentcore: always the last directory of the search path. */
#define AC_BUILTIN_PLUGINS AC_SOURCE_DIR "/plugins"

void ac_config_set_str(char **field, const char *value)
{
    free(*field);
    *field = value != NULL ? strdup(value) : NULL;
}

void ac_config_defaults(ac_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen[0] = strdup("127.0.0.1:8001");
    cfg->n_listen = 1;
    cfg->data_dir = strdup("./data");
    cfg->auth_alg = strdup("HS256");
    cfg->auth_leeway_s = 30;
    /* SPEC.md's method limits, then ours for large bodies: start_grpo (10/min) is the only call
     * that needs one, so 30/min leaves room for retries and batches */
    static const int spec_limits[AC_RL_COUNT] = {10, 100, 20, 5, 10, 100, 30};
    for (int i = 0; i < AC_RL_COUNT; i++)
        cfg->rate[i] = (ac_rate_rule_t){spec_limits[i], 60};
    cfg->max_body_bytes = (size_t)16 << 20;
    cfg->max_json_depth = 64;
    /* a start_grpo holds at most 2 x 10000 queries (the default validator), ~7 values each with a
     * small expected_outcome: ~140k values. jansson parses 1M values in ~0.14 s and ~40 MB here */
    cfg->max_json_values = 1000000;
    cfg->max_batch = 100;
    /* jansson parses 64 KiB in 1.1 ms (start_grpo-like data) to 2.7 ms ("[0,0,...]") here */
    cfg->parse_on_loop_bytes = 64 * 1024;
    cfg->max_parallel_parses = 1;
    cfg->max_queued_parses = 4;
    cfg->trim_after_bytes = (size_t)1 << 20;
    /* /healthz p99 while 8 x 16 MiB bodies arrived (alternating runs on a loaded 2-core
     * machine): 68-194 ms with autotuning, 30-83 ms at 256 KiB, 20-74 ms at 128 KiB */
    cfg->recv_buffer_bytes = 256 * 1024;
    cfg->rpc_workers = 2;
    cfg->plugins_dir = strdup(AC_BUILTIN_PLUGINS);
    cfg->lua_dir = strdup(AC_SOURCE_DIR "/lua");
    cfg->dashboard_dir = strdup(AC_SOURCE_DIR "/sdk/dashboard");
    cfg->workers = 1;
    cfg->step_cost_usd = 0.00001;
    cfg->default_budget_usd = 1000.0;
    cfg->keep_best_checkpoints = 3;
    cfg->max_trajectories_per_job = 100000;
    cfg->max_failure_rate = 0.5;
    cfg->plugin_limits = (ac_lua_limits_t)AC_LUA_DEFAULT_LIMITS;
    cfg->abandon_after_ms = 2000;
    cfg->webhook_policy = strdup("default");
    cfg->webhook_timeout_ms = 15000;
    /* the Standard Webhooks schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h */
    static const double schedule[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
    cfg->n_webhook_retries = (int)(sizeof schedule / sizeof schedule[0]);
    memcpy(cfg->webhook_retry_s, schedule, sizeof schedule);
    cfg->webhook_jitter = 0.1;
}

void ac_config_free(ac_config_t *cfg)
{
    json_decref(cfg->webhook_subscriptions);
    cfg->webhook_subscriptions = NULL;
    char **strs[] = {&cfg->webhook_secret, &cfg->webhook_policy, &cfg->path, &cfg->data_dir, &cfg->tls_listen, &cfg->tls_cert_file, &cfg->tls_key_file,
                     &cfg->auth_alg, &cfg->auth_secret, &cfg->auth_public_key_file, &cfg->auth_private_key_file,
                     &cfg->auth_issuer, &cfg->auth_audience, &cfg->plugins_dir, &cfg->lua_dir, &cfg->dashboard_dir};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        ac_config_set_str(strs[i], NULL);
    for (int i = 0; i < cfg->n_listen; i++)
        free(cfg->listen[i]);
    cfg->n_listen = 0;
    for (int i = 0; i < cfg->n_budgets; i++)
        free(cfg->budget_sub[i]);
    cfg->n_budgets = 0;
    for (int i = 0; i < cfg->n_agents; i++) {
        free(cfg->agents[i].id);
        free(cfg->agents[i].agent);
        free(cfg->agents[i].reward);
        free(cfg->agents[i].validator);
    }
    cfg->n_agents = 0;
}

/* ---- reading the table ---------------------------------------------------------------------
 * A wrong value is reported at the line where its key is written: Lua keeps no positions for
 * table fields, so the reader finds the first "key =" in the source text. */

typedef struct reader {
    lua_State *L;
    const char *path;
    char *src; /* the file's text */
    ac_err_t *err;
} reader_t;

static int key_line(const reader_t *r, const char *key)
{
    if (r->src == NULL)
        return 0;
    size_t klen = strlen(key);
    int line = 1;
    for (const char *p = r->src; *p; p++) {
        if (*p == '\n') {
            line++;
            continue;
        }
        if (strncmp(p, key, klen) == 0 && (p == r->src || !(p[-1] == '_' || isalnum((unsigned char)p[-1])))) {
            const char *q = p + klen;
            if (*q == '"' || *q == '\'')
                q++, q += (*q == ']');
            while (*q == ' ' || *q == '\t' || *q == ']')
                q++;
            if (*q == '=' && q[1] != '=')
                return line;
        }
    }
    return 0;
}

static int bad(reader_t *r, const char *key, const char *fmt, const char *detail)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, detail);
    int line = key_line(r, key);
    if (line > 0)
        return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s:%d: '%s' %s", r->path, line, key, msg);
    return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s: '%s' %s", r->path, key, msg);
}

/* Each reader looks at the table on top of the stack; a missing key leaves the default. */
static int read_str(reader_t *r, const char *key, char **dst)
{
    lua_getfield(r->L, -1, key); /* tbl value */
    int ret = 0;
    if (lua_type(r->L, -1) == LUA_TSTRING)
        ac_config_set_str(dst, lua_tostring(r->L, -1));
    else if (!lua_isnil(r->L, -1))
        ret = bad(r, key, "must be a string%s", "");
    lua_pop(r->L, 1); /* tbl */
    return ret;
}

static int read_int(reader_t *r, const char *key, long long min, long long max, long long *dst)
{
    lua_getfield(r->L, -1, key); /* tbl value */
    int ret = 0;
    if (lua_isinteger(r->L, -1)) {
        long long v = lua_tointeger(r->L, -1);
        if (v < min || v > max) {
            char range[80];
            snprintf(range, sizeof range, "%lld and %lld", min, max);
            ret = bad(r, key, "must be between %s", range);
        } else {
            *dst = v;
        }
    } else if (!lua_isnil(r->L, -1)) {
        ret = bad(r, key, "must be an integer%s", "");
    }
    lua_pop(r->L, 1); /* tbl */
    return ret;
}

static int read_num(reader_t *r, const char *key, double min, double max, double *dst)
{
    lua_getfield(r->L, -1, key); /* tbl value */
    int ret = 0;
    if (lua_type(r->L, -1) == LUA_TNUMBER) {
        double v = lua_tonumber(r->L, -1);
        if (!(v >= min && v <= max)) {
            char range[80];
            snprintf(range, sizeof range, "%g and %g", min, max);
            ret = bad(r, key, "must be between %s", range);
        } else {
            *dst = v;
        }
    } else if (!lua_isnil(r->L, -1)) {
        ret = bad(r, key, "must be a number%s", "");
    }
    lua_pop(r->L, 1); /* tbl */
    return ret;
}

#define READ_INT(r, key, min, max, field)                                                                          \
    do {                                                                                                           \
        long long v_ = (long long)(field);                                                                         \
        if (read_int((r), (key), (min), (max), &v_) != 0)                                                          \
            return -1;                                                                                             \
        (field) = v_;                                                                                              \
    } while (0)

/* Rejects keys the section does not know: a typo must not silently keep a default. */
static int check_keys(reader_t *r, const char *section, const char *const *known)
{
    lua_pushnil(r->L); /* tbl nil */
    while (lua_next(r->L, -2) != 0) { /* tbl key value */
        lua_pop(r->L, 1);              /* tbl key */
        if (lua_type(r->L, -1) != LUA_TSTRING) {
            lua_pop(r->L, 1);
            return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s: %s has a key that is not a string", r->path,
                              section);
        }
        const char *k = lua_tostring(r->L, -1);
        int ok = 0;
        for (const char *const *p = known; *p; p++)
            ok |= strcmp(*p, k) == 0;
        if (!ok) {
            char key[64];
            snprintf(key, sizeof key, "%s", k);
            lua_pop(r->L, 1); /* tbl */
            return bad(r, key, "is not a known key%s", section[0] ? " of this section" : "");
        }
    }
    return 0;
}

static int open_section(reader_t *r, const char *key)
{
    lua_getfield(r->L, -1, key); /* tbl section */
    if (lua_istable(r->L, -1))
        return 1;
    int t = lua_type(r->L, -1);
    lua_pop(r->L, 1); /* tbl */
    if (t == LUA_TNIL)
        return 0;
    bad(r, key, "must be a table%s", "");
    return -1;
}

static int read_listen(reader_t *r, ac_config_t *cfg)
{
    lua_getfield(r->L, -1, "listen"); /* tbl listen */
    int ret = 0;
    if (lua_type(r->L, -1) == LUA_TSTRING || lua_istable(r->L, -1)) {
        for (int i = 0; i < cfg->n_listen; i++)
            free(cfg->listen[i]);
        cfg->n_listen = 0;
        if (lua_type(r->L, -1) == LUA_TSTRING) {
            cfg->listen[cfg->n_listen++] = strdup(lua_tostring(r->L, -1));
        } else {
            lua_Integer n = luaL_len(r->L, -1);
            if (n < 1 || n > AC_MAX_LISTEN)
                ret = bad(r, "listen", "must list between 1 and 8 addresses%s", "");
            for (lua_Integer i = 1; ret == 0 && i <= n; i++) {
                lua_rawgeti(r->L, -1, i); /* tbl listen addr */
                if (lua_type(r->L, -1) != LUA_TSTRING)
                    ret = bad(r, "listen", "must hold strings \"HOST:PORT\"%s", "");
                else
                    cfg->listen[cfg->n_listen++] = strdup(lua_tostring(r->L, -1));
                lua_pop(r->L, 1); /* tbl listen */
            }
        }
    } else if (!lua_isnil(r->L, -1)) {
        ret = bad(r, "listen", "must be a string or a list of strings%s", "");
    }
    lua_pop(r->L, 1); /* tbl */
    return ret;
}

/* plugins_dir: a directory or a list of them, searched in order before the built-in plugins
 * (which stay last, so that the default validator and webhook policy are always there). */
static int read_plugins_dir(reader_t *r, ac_config_t *cfg)
{
    lua_getfield(r->L, -1, "plugins_dir"); /* tbl dirs */
    int t = lua_type(r->L, -1), ret = 0;
    char path[8192] = "";
    size_t used = 0;
    if (t == LUA_TSTRING) {
        used = (size_t)snprintf(path, sizeof path, "%s", lua_tostring(r->L, -1));
    } else if (t == LUA_TTABLE) {
        lua_Integer n = luaL_len(r->L, -1);
        for (lua_Integer i = 1; ret == 0 && i <= n; i++) {
            lua_rawgeti(r->L, -1, i); /* tbl dirs dir */
            if (lua_type(r->L, -1) != LUA_TSTRING)
                ret = bad(r, "plugins_dir", "must be a directory or a list of directories%s", "");
            else if (used < sizeof path)
                used += (size_t)snprintf(path + used, sizeof path - used, "%s%s", used ? ":" : "",
                                         lua_tostring(r->L, -1));
            lua_pop(r->L, 1); /* tbl dirs */
        }
    } else if (t != LUA_TNIL) {
        ret = bad(r, "plugins_dir", "must be a directory or a list of directories%s", "");
    }
    lua_pop(r->L, 1); /* tbl */
    if (ret == 0 && used > 0) {
        if (strchr(path, '\0') != path + used || used >= sizeof path)
            return bad(r, "plugins_dir", "is too long%s", "");
        char full[8192 + 512];
        if (strcmp(path, AC_BUILTIN_PLUGINS) == 0)
            snprintf(full, sizeof full, "%s", path);
        else
            snprintf(full, sizeof full, "%s:%s", path, AC_BUILTIN_PLUGINS);
        ac_config_set_str(&cfg->plugins_dir, full);
    }
    return ret;
}

static int read_root(reader_t *r, ac_config_t *cfg)
{
    static const char *const root_keys[] = {"listen", "threads", "data_dir", "tls", "auth", "rate_limits", "limits",
                                            "rpc_workers", "plugins_dir", "lua_dir", "dashboard_dir",
                                            "workers", "budgets", "agents", "training", "plugin_limits", "webhooks",
                                            "errors", NULL};
    if (check_keys(r, "", root_keys) != 0 || read_listen(r, cfg) != 0)
        return -1;
    READ_INT(r, "threads", 0, 256, cfg->threads);
    READ_INT(r, "rpc_workers", 1, 64, cfg->rpc_workers);
    if (read_str(r, "data_dir", &cfg->data_dir) || read_plugins_dir(r, cfg) != 0 || read_str(r, "lua_dir", &cfg->lua_dir) ||
        read_str(r, "dashboard_dir", &cfg->dashboard_dir))
        return -1;

    int s;
    if ((s = open_section(r, "tls")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"listen", "cert_file", "key_file", NULL};
        int ret = check_keys(r, "tls", keys) || read_str(r, "listen", &cfg->tls_listen) ||
                  read_str(r, "cert_file", &cfg->tls_cert_file) || read_str(r, "key_file", &cfg->tls_key_file);
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "auth")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"alg", "secret", "public_key_file", "private_key_file", "issuer",
                                           "audience", "leeway_s", NULL};
        int ret = check_keys(r, "auth", keys) || read_str(r, "alg", &cfg->auth_alg) ||
                  read_str(r, "secret", &cfg->auth_secret) ||
                  read_str(r, "public_key_file", &cfg->auth_public_key_file) ||
                  read_str(r, "private_key_file", &cfg->auth_private_key_file) ||
                  read_str(r, "issuer", &cfg->auth_issuer) || read_str(r, "audience", &cfg->auth_audience);
        long long leeway = cfg->auth_leeway_s;
        ret = ret || read_int(r, "leeway_s", 0, 3600, &leeway);
        cfg->auth_leeway_s = (int)leeway;
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "rate_limits")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"start_grpo", "get_status", "cancel", "evaluate", "export_trajectories",
                                           "other", "large_requests", NULL};
        int ret = check_keys(r, "rate_limits", keys);
        for (int i = 0; ret == 0 && i < AC_RL_COUNT; i++) {
            int sub = open_section(r, rl_names[i]);
            if (sub < 0) {
                ret = -1;
                break;
            }
            if (sub == 0)
                continue;
            static const char *const rk[] = {"limit", "window_s", NULL};
            long long limit = cfg->rate[i].limit, window = cfg->rate[i].window_s;
            ret = check_keys(r, rl_names[i], rk) || read_int(r, "limit", 0, 1000000000, &limit) ||
                  read_int(r, "window_s", 1, 86400, &window);
            cfg->rate[i] = (ac_rate_rule_t){(int)limit, (int)window};
            lua_pop(r->L, 1);
        }
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    READ_INT(r, "workers", 1, 64, cfg->workers);
    if ((s = open_section(r, "budgets")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"default_usd", "principals", NULL};
        int ret = check_keys(r, "budgets", keys) || read_num(r, "default_usd", 0, 1e12, &cfg->default_budget_usd);
        int sub = ret ? 0 : open_section(r, "principals");
        if (sub < 0)
            ret = -1;
        if (sub > 0) {
            lua_pushnil(r->L); /* budgets principals nil */
            while (ret == 0 && lua_next(r->L, -2) != 0) { /* budgets principals key value */
                if (lua_type(r->L, -2) != LUA_TSTRING || lua_type(r->L, -1) != LUA_TNUMBER ||
                    lua_tonumber(r->L, -1) < 0)
                    ret = bad(r, "principals", "must map principal names to USD amounts%s", "");
                else if (cfg->n_budgets == AC_MAX_BUDGETS)
                    ret = bad(r, "principals", "may list at most 64 principals%s", "");
                else {
                    cfg->budget_sub[cfg->n_budgets] = strdup(lua_tostring(r->L, -2));
                    cfg->budget_usd[cfg->n_budgets++] = lua_tonumber(r->L, -1);
                }
                lua_pop(r->L, 1); /* budgets principals key */
            }
            if (ret != 0)
                lua_pop(r->L, 1); /* budgets principals */
            lua_pop(r->L, 1);     /* budgets */
        }
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "agents")) < 0)
        return -1;
    if (s) {
        int ret = 0;
        lua_pushnil(r->L); /* agents nil */
        while (ret == 0 && lua_next(r->L, -2) != 0) { /* agents id binding */
            if (lua_type(r->L, -2) != LUA_TSTRING || !lua_istable(r->L, -1)) {
                ret = bad(r, "agents", "must map agent ids to {agent, reward, validator}%s", "");
            } else if (cfg->n_agents == AC_MAX_AGENTS) {
                ret = bad(r, "agents", "may list at most 64 agents%s", "");
            } else {
                static const char *const keys[] = {"agent", "reward", "validator", NULL};
                ac_agent_binding_t *b = &cfg->agents[cfg->n_agents++];
                memset(b, 0, sizeof *b);
                b->id = strdup(lua_tostring(r->L, -2));
                ret = check_keys(r, b->id, keys) || read_str(r, "agent", &b->agent) ||
                      read_str(r, "reward", &b->reward) || read_str(r, "validator", &b->validator);
                if (ret == 0 && b->agent == NULL)
                    ret = bad(r, b->id, "needs agent = \"<plugin name>\"%s", "");
                if (ret == 0 && b->reward == NULL)
                    b->reward = strdup(b->agent);
                if (ret == 0 && b->validator == NULL)
                    b->validator = strdup("default");
            }
            lua_pop(r->L, 1); /* agents id */
        }
        if (ret != 0)
            lua_pop(r->L, 1); /* agents */
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "training")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"step_cost_usd", "keep_best_checkpoints", "max_trajectories_per_job",
                                           "max_failure_rate", NULL};
        long long keep = cfg->keep_best_checkpoints, maxt = cfg->max_trajectories_per_job;
        int ret = check_keys(r, "training", keys) || read_num(r, "step_cost_usd", 0, 1000, &cfg->step_cost_usd) ||
                  read_int(r, "keep_best_checkpoints", 1, 100, &keep) ||
                  read_int(r, "max_trajectories_per_job", 100, 100000000, &maxt) ||
                  read_num(r, "max_failure_rate", 0, 1, &cfg->max_failure_rate);
        cfg->keep_best_checkpoints = (int)keep;
        cfg->max_trajectories_per_job = (long)maxt;
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "plugin_limits")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"max_instructions", "max_wall_ms", "max_call_mb", "max_state_mb",
                                           "max_observation_bytes", "max_result_bytes", "max_trajectory_bytes",
                                           "abandon_after_ms", NULL};
        ac_lua_limits_t *l = &cfg->plugin_limits;
        long long instr = (long long)l->max_instructions, wall = l->max_wall_ms;
        long long call = (long long)(l->max_call_bytes >> 20), state = (long long)(l->max_state_bytes >> 20);
        long long obs = (long long)l->max_observation_bytes, res = (long long)l->max_result_bytes;
        long long traj = (long long)l->max_trajectory_bytes, abandon = cfg->abandon_after_ms;
        int ret = check_keys(r, "plugin_limits", keys) ||
                  read_int(r, "max_instructions", 100000, 100000000000LL, &instr) ||
                  read_int(r, "max_wall_ms", 10, 600000, &wall) || read_int(r, "max_call_mb", 1, 65536, &call) ||
                  read_int(r, "max_state_mb", 1, 65536, &state) ||
                  read_int(r, "max_observation_bytes", 64, 1LL << 30, &obs) ||
                  read_int(r, "max_result_bytes", 64, 1LL << 30, &res) ||
                  read_int(r, "max_trajectory_bytes", 1024, 1LL << 34, &traj) ||
                  read_int(r, "abandon_after_ms", 100, 600000, &abandon);
        l->max_instructions = (uint64_t)instr;
        l->max_wall_ms = (uint32_t)wall;
        l->max_call_bytes = (size_t)call << 20;
        l->max_state_bytes = (size_t)state << 20;
        l->max_observation_bytes = (size_t)obs;
        l->max_result_bytes = (size_t)res;
        l->max_trajectory_bytes = (size_t)traj;
        cfg->abandon_after_ms = (int)abandon;
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "webhooks")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"secret", "policy", "allow_private", "timeout_ms", "retry_schedule_s",
                                           "jitter", "subscriptions", "on_policy_error", NULL};
        long long timeout = cfg->webhook_timeout_ms;
        int ret = check_keys(r, "webhooks", keys) || read_str(r, "secret", &cfg->webhook_secret) ||
                  read_str(r, "policy", &cfg->webhook_policy) ||
                  read_int(r, "timeout_ms", 100, 600000, &timeout) ||
                  read_num(r, "jitter", 0, 1, &cfg->webhook_jitter);
        cfg->webhook_timeout_ms = (int)timeout;
        lua_getfield(r->L, -1, "on_policy_error"); /* webhooks v */
        if (lua_type(r->L, -1) == LUA_TSTRING && strcmp(lua_tostring(r->L, -1), "drop") == 0)
            cfg->webhook_deliver_on_policy_error = 0;
        else if (lua_type(r->L, -1) == LUA_TSTRING && strcmp(lua_tostring(r->L, -1), "deliver") == 0)
            cfg->webhook_deliver_on_policy_error = 1;
        else if (!lua_isnil(r->L, -1) && ret == 0)
            ret = bad(r, "on_policy_error", "must be \"drop\" or \"deliver\"%s", "");
        lua_pop(r->L, 1); /* webhooks */
        lua_getfield(r->L, -1, "allow_private"); /* webhooks v */
        if (lua_isboolean(r->L, -1))
            cfg->webhook_allow_private = lua_toboolean(r->L, -1);
        else if (!lua_isnil(r->L, -1) && ret == 0)
            ret = bad(r, "allow_private", "must be a boolean%s", "");
        lua_pop(r->L, 1); /* webhooks */
        lua_getfield(r->L, -1, "retry_schedule_s"); /* webhooks v */
        if (lua_istable(r->L, -1) && ret == 0) {
            lua_Integer n = luaL_len(r->L, -1);
            if (n < 1 || n > AC_MAX_RETRIES)
                ret = bad(r, "retry_schedule_s", "must list 1 to 16 delays%s", "");
            for (lua_Integer i = 1; ret == 0 && i <= n; i++) {
                lua_rawgeti(r->L, -1, i); /* webhooks v delay */
                if (lua_type(r->L, -1) != LUA_TNUMBER || lua_tonumber(r->L, -1) < 0)
                    ret = bad(r, "retry_schedule_s", "must hold delays in seconds (>= 0)%s", "");
                else
                    cfg->webhook_retry_s[i - 1] = lua_tonumber(r->L, -1);
                lua_pop(r->L, 1); /* webhooks v */
            }
            if (ret == 0)
                cfg->n_webhook_retries = (int)n;
        } else if (!lua_isnil(r->L, -1) && ret == 0) {
            ret = bad(r, "retry_schedule_s", "must be a list of seconds%s", "");
        }
        lua_pop(r->L, 1); /* webhooks */
        lua_getfield(r->L, -1, "subscriptions"); /* webhooks v */
        if (!lua_isnil(r->L, -1) && ret == 0) {
            ac_err_t e = AC_ERR_INIT;
            json_t *subs = ac_lua_to_json(r->L, -1, &e);
            size_t i;
            json_t *sub;
            if (!json_is_array(subs))
                ret = bad(r, "subscriptions", "must be a list of {url = ..., events = {...} or \"*\"}%s", "");
            json_array_foreach(subs, i, sub)
            {
                json_t *events = json_object_get(sub, "events");
                /* the URL and the event names are checked where webhooks start (webhook.c) */
                if (ret == 0 && (!json_is_string(json_object_get(sub, "url")) ||
                                 !(json_is_array(events) || json_is_string(events))))
                    ret = bad(r, "subscriptions", "must be a list of {url = ..., events = {...} or \"*\"}%s", "");
            }
            if (ret == 0) {
                json_decref(cfg->webhook_subscriptions);
                cfg->webhook_subscriptions = subs;
            } else {
                json_decref(subs);
            }
            ac_err_clear(&e);
        }
        lua_pop(r->L, 1); /* webhooks */
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "errors")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"expose_internal", NULL};
        int ret = check_keys(r, "errors", keys);
        lua_getfield(r->L, -1, "expose_internal"); /* errors v */
        if (lua_isboolean(r->L, -1))
            cfg->errors_expose_internal = lua_toboolean(r->L, -1);
        else if (!lua_isnil(r->L, -1) && ret == 0)
            ret = bad(r, "expose_internal", "must be a boolean%s", "");
        lua_pop(r->L, 2); /* (root) */
        if (ret)
            return -1;
    }
    if ((s = open_section(r, "limits")) < 0)
        return -1;
    if (s) {
        static const char *const keys[] = {"max_body_bytes",      "max_json_depth",      "max_json_values",
                                           "max_batch",           "parse_on_loop_bytes", "max_parallel_parses",
                                           "max_queued_parses",   "trim_after_bytes",    "recv_buffer_bytes",
                                           NULL};
        long long body = (long long)cfg->max_body_bytes, depth = cfg->max_json_depth, batch = cfg->max_batch,
                  values = cfg->max_json_values, on_loop = (long long)cfg->parse_on_loop_bytes,
                  parallel = cfg->max_parallel_parses, queued = cfg->max_queued_parses,
                  trim = (long long)cfg->trim_after_bytes, rcvbuf = (long long)cfg->recv_buffer_bytes;
        int ret = check_keys(r, "limits", keys) || read_int(r, "max_body_bytes", 1024, (long long)1 << 30, &body) ||
                  read_int(r, "max_json_depth", 2, 1000, &depth) || read_int(r, "max_batch", 1, 10000, &batch) ||
                  read_int(r, "max_json_values", 16, 1000000000, &values) ||
                  read_int(r, "parse_on_loop_bytes", 0, (long long)1 << 30, &on_loop) ||
                  read_int(r, "max_parallel_parses", 1, 64, &parallel) ||
                  read_int(r, "max_queued_parses", 0, 1024, &queued) ||
                  read_int(r, "trim_after_bytes", 0, (long long)1 << 30, &trim) ||
                  read_int(r, "recv_buffer_bytes", 0, (long long)64 << 20, &rcvbuf);
        if (ret == 0 && trim > 0 && trim < 65536)
            ret = bad(r, "trim_after_bytes", "must be 0 (off) or between 65536 and 1073741824%s", "");
        cfg->max_body_bytes = (size_t)body;
        cfg->max_json_depth = (int)depth;
        cfg->max_json_values = (int)values;
        cfg->max_batch = (int)batch;
        cfg->parse_on_loop_bytes = (size_t)on_loop;
        cfg->max_parallel_parses = (int)parallel;
        cfg->max_queued_parses = (int)queued;
        cfg->trim_after_bytes = (size_t)trim;
        cfg->recv_buffer_bytes = (size_t)rcvbuf;
        lua_pop(r->L, 1);
        if (ret)
            return -1;
    }
    return 0;
}

int ac_config_load(ac_config_t *cfg, const char *path, ac_err_t *err)
{
    reader_t r = {luaL_newstate(), path, ac_file_read(path, NULL), err};
    if (r.L == NULL || r.src == NULL) {
        if (r.L)
            lua_close(r.L);
        free(r.src);
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: cannot read the config file", path);
    }
    /* The config may compute values (string.format, os.getenv); it needs no more than this. */
    luaL_requiref(r.L, "_G", luaopen_base, 1);
    luaL_requiref(r.L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(r.L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(r.L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(r.L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_settop(r.L, 0);

    char chunkname[1024];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int ret = -1;
    if (luaL_loadbufferx(r.L, r.src, strlen(r.src), chunkname, "t") != LUA_OK ||
        lua_pcall(r.L, 0, 1, 0) != LUA_OK) {
        /* Lua's message already reads "file:line: problem" */
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s", lua_tostring(r.L, -1));
    } else if (!lua_istable(r.L, -1)) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: the config must return a table", path);
    } else {
        ret = read_root(&r, cfg);
    }
    if (ret == 0)
        ac_config_set_str(&cfg->path, path);
    lua_close(r.L);
    free(r.src);
    return ret;
}

int ac_config_agent(const ac_config_t *cfg, const char *agent_id, ac_agent_binding_t *out)
{
    for (int i = 0; i < cfg->n_agents; i++)
        if (strcmp(cfg->agents[i].id, agent_id) == 0) {
            *out = cfg->agents[i];
            return 0;
        }
    /* an id that names a plugin directly: the agent, the reward of the same name, the default
     * validator */
    char path[4096];
    for (const char *p = agent_id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return -1;
    if (!ac_lua_plugin_find(cfg->plugins_dir, "agents", agent_id, path, sizeof path, NULL, 0))
        return -1;
    out->id = out->agent = out->reward = (char *)agent_id;
    out->validator = (char *)"default";
    return 0;
}

double ac_config_budget(const ac_config_t *cfg, const char *sub)
{
    for (int i = 0; i < cfg->n_budgets; i++)
        if (strcmp(cfg->budget_sub[i], sub) == 0)
            return cfg->budget_usd[i];
    return cfg->default_budget_usd;
}

int ac_config_finish(ac_config_t *cfg, ac_err_t *err)
{
    const char *env_secret = getenv("AGENTCORE_JWT_SECRET");
    if (env_secret != NULL && env_secret[0] != '\0') {
        ac_config_set_str(&cfg->auth_alg, "HS256");
        ac_config_set_str(&cfg->auth_secret, env_secret);
    }
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (int)n : 1;
    }
    const char *alg = cfg->auth_alg;
    if (strcmp(alg, "HS256") == 0) {
        if (cfg->auth_secret == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                              "no JWT secret: set AGENTCORE_JWT_SECRET or auth.secret in the config");
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        if (cfg->auth_public_key_file == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "auth.alg %s needs auth.public_key_file", alg);
    } else {
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "auth.alg must be HS256, RS256 or ES256, not '%s'", alg);
    }
    /* a binding must name plugins that exist: find out now, not at the first job */
    for (int i = 0; i < cfg->n_agents; i++) {
        const ac_agent_binding_t *b = &cfg->agents[i];
        const char *kinds[3] = {"agents", "rewards", "validators"}, *names[3] = {b->agent, b->reward, b->validator};
        for (int k = 0; k < 3; k++) {
            char path[4096], searched[1024];
            if (strchr(names[k], '/') != NULL || strchr(names[k], ':') != NULL ||
                !ac_lua_plugin_find(cfg->plugins_dir, kinds[k], names[k], path, sizeof path, searched, sizeof searched))
                return ac_err_set(err, AC_ERR_INVALID_PARAMS, "agents[\"%s\"]: no %s/%s.lua (searched %s)", b->id,
                                  kinds[k], names[k], searched);
        }
    }
    if (cfg->webhook_secret != NULL && strncmp(cfg->webhook_secret, "whsec_", 6) != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "webhooks.secret must look like whsec_<base64>");
    if (json_array_size(cfg->webhook_subscriptions) > 0 && cfg->webhook_secret == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "webhooks.subscriptions need webhooks.secret to sign with");
    if (cfg->tls_listen != NULL && (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL))
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "tls.listen needs tls.cert_file and tls.key_file");
    return 0;
}
