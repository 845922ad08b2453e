/* Typed calls into agent, reward and validator plugins. See plugin.h.
 *
 * Each call is a small C function (`*_k`) run by ac_lua_host_pcall: it pushes the plugin function
 * and its arguments, calls it, and checks and converts the results into its context struct. What
 * it mallocs goes straight into that struct (or the caller's buffers), so the caller can free it
 * whatever error interrupts the call. */
#include "lua/plugin.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "lua/host_internal.h"
#include "lua/lua_json.h"

enum { FN_INIT, FN_STEP, FN_FINAL, FN_OBSERVE, FN_LEGAL, FN_CANDIDATES, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {"init", "step", "final", "observe", "legal", "candidates"};
#define FN_REQUIRED 3 /* init, step and final; the others are optional */

static const char *const arg_kind_names[AC_ARG_KINDS] = {"number", "word", "id", "any", "candidate"};

int ac_arg_kind_from_name(const char *name)
{
    for (int k = 0; k < AC_ARG_KINDS; k++)
        if (strcmp(name, arg_kind_names[k]) == 0)
            return k;
    return -1;
}

const char *ac_arg_kind_name(int kind)
{
    return kind >= 0 && kind < AC_ARG_KINDS ? arg_kind_names[kind] : "?";
}

static lua_State *ac_state_of(ac_lua_plugin_t *p)
{
    return ac_lua_host_state(ac_lua_plugin_host(p));
}

/* Moves a local error into the caller's err (which may be NULL). */
static int ac_err_move(ac_err_t *err, ac_err_t *local)
{
    if (err) {
        ac_err_clear(err);
        *err = *local;
    } else {
        ac_err_clear(local);
    }
    return -1;
}

/* ---- agents: contract check ------------------------------------------------------------------ */

static void free_tools(ac_agent_t *a)
{
    for (int i = 0; a->_tools != NULL && i < a->n_actions; i++) {
        free(a->_tools[i].name);
        free(a->_tools[i].description);
        for (int k = 0; k < a->_tools[i].n_args; k++)
            free(a->_tools[i].args[k].name);
    }
    free(a->_tools);
    free(a->_names);
    free(a->_description);
    a->_tools = NULL;
    a->_names = NULL;
    a->_description = NULL;
}

static void agent_fini(lua_State *L, void *data)
{
    ac_agent_t *a = data;
    for (int i = 0; i < FN_COUNT; i++)
        ac_lua_unref(L, a->_fn[i]);
    ac_lua_unref(L, a->_index);
    free_tools(a);
}

/* A string field of the table at idx, or NULL when absent; anything else fails the plugin. */
static char *opt_string(lua_State *L, int idx, const char *field, ac_lua_plugin_t *p, const char *where)
{
    int t = lua_getfield(L, idx, field); /* v */
    char *out = NULL;
    if (t == LUA_TSTRING) {
        out = strdup(lua_tostring(L, -1));
        if (out == NULL)
            ac_lua_plugin_fail(L, p, "out of memory");
    } else if (t != LUA_TNIL) {
        ac_lua_plugin_fail(L, p, "%s.%s must be a string (got %s)", where, field, lua_typename(L, t));
    }
    lua_pop(L, 1);
    return out;
}

/* tools[i].args (the tool table at idx) into tool->args. */
static void check_args(lua_State *L, int idx, ac_lua_plugin_t *p, ac_tool_t *tool, int *needs_candidates)
{
    int t = lua_getfield(L, idx, "args"); /* args */
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE)
        ac_lua_plugin_fail(L, p, "tools.%s.args must be an array of {name = ..., type = ...}", tool->name);
    int args = lua_gettop(L);
    ac_lua_thaw(L, args);
    lua_Integer n = (lua_Integer)lua_rawlen(L, args), keys = 0;
    lua_pushnil(L); /* args nil */
    while (lua_next(L, args)) { /* args key value */
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n) /* a map {a = {type = ...}} would otherwise be a tool without arguments */
        ac_lua_plugin_fail(L, p, "tools.%s.args must be an array of {name = ..., type = ...}", tool->name);
    if (n > AC_AGENT_MAX_ARGS)
        ac_lua_plugin_fail(L, p, "tools.%s takes %d arguments (at most %d)", tool->name, (int)n, AC_AGENT_MAX_ARGS);
    for (lua_Integer k = 1; k <= n; k++) {
        char where[160];
        snprintf(where, sizeof where, "tools.%s.args[%d]", tool->name, (int)k);
        if (lua_rawgeti(L, args, k) != LUA_TTABLE) /* args arg */
            ac_lua_plugin_fail(L, p, "%s must be a table {name = ..., type = ...}", where);
        ac_lua_thaw(L, -1);
        ac_tool_arg_t *arg = &tool->args[tool->n_args];
        arg->name = opt_string(L, -1, "name", p, where);
        tool->n_args++; /* owned by the tool from here: freed with it if a check below fails */
        if (arg->name == NULL || arg->name[0] == '\0')
            ac_lua_plugin_fail(L, p, "%s.name must be a non-empty string", where);
        for (int j = 0; j + 1 < tool->n_args; j++)
            if (strcmp(tool->args[j].name, arg->name) == 0)
                ac_lua_plugin_fail(L, p, "%s repeats the argument name '%s'", where, arg->name);
        char *type = opt_string(L, -1, "type", p, where);
        arg->kind = type ? ac_arg_kind_from_name(type) : AC_ARG_ANY;
        free(type);
        if (arg->kind < 0)
            ac_lua_plugin_fail(L, p, "%s.type must be \"number\", \"word\", \"id\", \"any\" or \"candidate\"", where);
        *needs_candidates |= arg->kind == AC_ARG_CANDIDATE;
        lua_pop(L, 1); /* args */
    }
    lua_pop(L, 1);
}

/* agent.tools: an array of {name, args?, cost_usd?, description?}. Leaves {name = 0-based
 * index} on the stack. */
static void check_tools(lua_State *L, int module, ac_lua_plugin_t *p, ac_agent_t *a, int *needs_candidates)
{
    if (lua_getfield(L, module, "tools") != LUA_TTABLE) /* tools */
        ac_lua_plugin_fail(L, p, "'tools' must be an array of tools {name = ..., args = {...}} (got %s)",
                           luaL_typename(L, -1));
    int tools = lua_gettop(L);
    ac_lua_thaw(L, tools);
    lua_Integer n = (lua_Integer)lua_rawlen(L, tools), keys = 0;
    lua_pushnil(L); /* tools nil */
    while (lua_next(L, tools)) { /* tools key value */
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n)
        ac_lua_plugin_fail(L, p, "'tools' must be an array (keys 1..n only)");
    if (n < 1 || n > AC_AGENT_MAX_ACTIONS)
        ac_lua_plugin_fail(L, p, "'tools' must have 1 to %d entries (has %d)", AC_AGENT_MAX_ACTIONS, (int)n);
    a->_tools = calloc((size_t)n, sizeof *a->_tools);
    a->_names = calloc((size_t)n, sizeof *a->_names);
    if (a->_tools == NULL || a->_names == NULL)
        ac_lua_plugin_fail(L, p, "out of memory");
    a->n_actions = (int)n;
    lua_createtable(L, 0, (int)n); /* tools index */
    for (lua_Integer i = 1; i <= n; i++) {
        char where[64];
        snprintf(where, sizeof where, "tools[%d]", (int)i);
        if (lua_rawgeti(L, tools, i) != LUA_TTABLE) /* tools index tool */
            ac_lua_plugin_fail(L, p, "%s must be a table {name = ..., args = {...}}", where);
        ac_lua_thaw(L, -1);
        ac_tool_t *tool = &a->_tools[i - 1];
        tool->name = opt_string(L, -1, "name", p, where);
        if (tool->name == NULL || tool->name[0] == '\0')
            ac_lua_plugin_fail(L, p, "%s.name must be a non-empty string", where);
        a->_names[i - 1] = tool->name;
        lua_pushstring(L, tool->name); /* tools index tool name */
        if (lua_rawget(L, -3) != LUA_TNIL)
            ac_lua_plugin_fail(L, p, "%s ('%s') repeats an earlier tool", where, tool->name);
        lua_pop(L, 1);
        lua_pushstring(L, tool->name);
        lua_pushinteger(L, i - 1);
        lua_rawset(L, -4); /* tools index tool */
        tool->description = opt_string(L, -1, "description", p, where);
        int ct = lua_getfield(L, -1, "cost_usd"); /* tools index tool cost */
        double cost = lua_tonumber(L, -1);
        if (ct != LUA_TNIL && (ct != LUA_TNUMBER || !(cost >= 0) || cost > 1e6))
            ac_lua_plugin_fail(L, p, "tools.%s.cost_usd must be a number from 0 to 1e6", tool->name);
        tool->cost_micro_usd = ct == LUA_TNIL ? 0 : llround(cost * 1e6);
        lua_pop(L, 1);
        check_args(L, lua_gettop(L), p, tool, needs_candidates);
        if (tool->n_args > a->max_args)
            a->max_args = tool->n_args;
        lua_pop(L, 1); /* tools index */
    }
    a->tools = a->_tools;
    a->actions = a->_names;
    lua_remove(L, tools); /* index */
}

/* Optional functions get LUA_NOREF when absent. */
static int fn_ref(lua_State *L, int module, ac_lua_plugin_t *p, int fn)
{
    if (fn < FN_REQUIRED)
        return ac_lua_plugin_fn_ref(L, module, p, fn_names[fn]);
    int t = lua_getfield(L, module, fn_names[fn]); /* fn */
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (t != LUA_TFUNCTION)
        ac_lua_plugin_fail(L, p, "'%s' must be a function (got %s)", fn_names[fn], lua_typename(L, t));
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void agent_check(lua_State *L, int module, ac_lua_plugin_t *p, void *data)
{
    ac_agent_t *a = data;
    a->_plugin = p;
    a->name = ac_lua_plugin_name(p);
    a->version = ac_lua_plugin_version(p);
    a->path = ac_lua_plugin_path(p);
    for (int i = 0; i < FN_COUNT; i++)
        a->_fn[i] = LUA_NOREF;
    a->_index = LUA_NOREF;
    if (lua_getfield(L, module, "actions") != LUA_TNIL)
        ac_lua_plugin_fail(L, p, "'actions' is the old agent contract: declare 'tools' as an array "
                                 "{ {name = ..., args = {...}}, ... } (docs/plugins.md)");
    lua_pop(L, 1);
    int needs_candidates = 0;
    check_tools(L, module, p, a, &needs_candidates); /* index */
    a->description = a->_description = opt_string(L, module, "description", p, "agent");
    int t = lua_getfield(L, module, "max_steps");    /* index max */
    if (t != LUA_TNIL) {
        lua_Integer m = lua_tointeger(L, -1);
        if (!lua_isinteger(L, -1) || m < 1 || m > AC_AGENT_MAX_STEPS)
            ac_lua_plugin_fail(L, p, "'max_steps' must be an integer from 1 to %d", AC_AGENT_MAX_STEPS);
        a->max_steps = (int)m;
    }
    lua_pop(L, 1); /* index */
    for (int i = 0; i < FN_COUNT; i++)
        a->_fn[i] = fn_ref(L, module, p, i);
    a->has_observe = a->_fn[FN_OBSERVE] != LUA_NOREF;
    a->has_legal = a->_fn[FN_LEGAL] != LUA_NOREF;
    a->has_candidates = a->_fn[FN_CANDIDATES] != LUA_NOREF;
    if (needs_candidates && !a->has_candidates)
        ac_lua_plugin_fail(L, p, "an argument of type \"candidate\" needs agent.candidates(state)");
    a->_index = luaL_ref(L, LUA_REGISTRYINDEX); /* (empty) */
}

static const ac_lua_plugin_kind_t agent_kind = {"agents", sizeof(ac_agent_t), agent_check, agent_fini};

ac_agent_t *ac_agent_open(ac_lua_host_t *h, const char *name, ac_err_t *err)
{
    ac_lua_plugin_t *p = ac_lua_plugin_get(h, &agent_kind, name, err);
    return p ? ac_lua_plugin_data(p) : NULL;
}

void ac_agent_close(ac_agent_t *a)
{
    if (a)
        ac_lua_plugin_release(a->_plugin);
}

/* ---- agents: calls --------------------------------------------------------------------------- */

typedef struct agent_call {
    ac_agent_t *a;
    int state; /* registry ref of the episode's table */
    /* inputs */
    const json_t *query;
    const ac_episode_ctx_t *ctx;
    int tool;
    const json_t *args;
    char **buf;
    size_t *cap;
    uint8_t *mask;
    /* outputs */
    int ref;
    size_t len;
    int returned; /* the plugin function returned: later errors are not its raising */
    int done;
    json_t *result, *answer, *list;
    ac_err_t conv; /* a result that is not JSON */
} agent_call_t;

/* Pushes agent function `fn` and the episode's state. */
static void push_fn(lua_State *L, agent_call_t *c, int fn)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->a->_fn[fn]); /* fn */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->state);      /* fn state */
}

static int init_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    static const ac_episode_ctx_t none = {0, 0, 0};
    const ac_episode_ctx_t *x = c->ctx ? c->ctx : &none;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->a->_fn[FN_INIT]); /* init */
    ac_lua_push_json(L, c->query);                         /* init query */
    lua_createtable(L, 0, 4);                              /* init query ctx */
    lua_pushinteger(L, (lua_Integer)(x->seed & 0x7fffffffffffffffULL)); /* ... seed */
    lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)x->episode);
    lua_setfield(L, -2, "episode");
    lua_pushinteger(L, (lua_Integer)x->iteration);
    lua_setfield(L, -2, "iteration");
    ac_lua_push_episode_rng(L);
    lua_setfield(L, -2, "rng");
    lua_call(L, 2, 1); /* state */
    if (!lua_istable(L, -1))
        ac_lua_plugin_fail(L, c->a->_plugin, "init must return a table (got %s)", luaL_typename(L, -1));
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* (empty) */
    return 0;
}

static int observe_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    push_fn(L, c, FN_OBSERVE); /* observe state */
    lua_call(L, 1, 1);         /* text */
    if (lua_type(L, -1) != LUA_TSTRING)
        ac_lua_plugin_fail(L, c->a->_plugin, "observe must return a string (got %s)", luaL_typename(L, -1));
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    size_t max = ac_lua_host_limits(ac_lua_plugin_host(c->a->_plugin))->max_observation_bytes;
    if (max && n > max)
        ac_lua_plugin_fail(L, c->a->_plugin, "observe returned %zu bytes (limit %zu, "
                           "limits.max_observation_bytes)", n, max);
    if (n + 1 > *c->cap) {
        char *nb = realloc(*c->buf, n + 1);
        if (nb == NULL)
            ac_lua_plugin_fail(L, c->a->_plugin, "observe: out of memory");
        *c->buf = nb; /* the caller's from here on */
        *c->cap = n + 1;
    }
    memcpy(*c->buf, s, n + 1);
    c->len = n;
    return 0;
}

static int legal_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    ac_lua_plugin_t *p = c->a->_plugin;
    push_fn(L, c, FN_LEGAL); /* legal state */
    lua_call(L, 1, 1);       /* list */
    if (!lua_istable(L, -1))
        ac_lua_plugin_fail(L, p, "legal must return an array of tool names (got %s)", luaL_typename(L, -1));
    ac_lua_thaw(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->a->_index); /* list index */
    memset(c->mask, 0, (size_t)c->a->n_actions);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
    int any = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -2, i) != LUA_TSTRING) /* list index name */
            ac_lua_plugin_fail(L, p, "legal()[%d] must be a tool name (got %s)", (int)i, luaL_typename(L, -1));
        lua_pushvalue(L, -1);                 /* list index name name */
        if (lua_rawget(L, -3) != LUA_TNUMBER) /* list index name k */
            ac_lua_plugin_fail(L, p, "legal returned '%s', which is not one of the tools", lua_tostring(L, -2));
        c->mask[lua_tointeger(L, -1)] = 1;
        any = 1;
        lua_pop(L, 2); /* list index */
    }
    if (!any)
        ac_lua_plugin_fail(L, p, "legal returned no tool (at least one must be legal)");
    return 0;
}

static int candidates_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    ac_lua_plugin_t *p = c->a->_plugin;
    push_fn(L, c, FN_CANDIDATES); /* candidates state */
    lua_call(L, 1, 1);            /* list */
    if (!lua_istable(L, -1))
        ac_lua_plugin_fail(L, p, "candidates must return an array of strings or numbers (got %s)",
                           luaL_typename(L, -1));
    ac_lua_thaw(L, -1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n > AC_AGENT_MAX_CANDIDATES)
        ac_lua_plugin_fail(L, p, "candidates returned %d values (at most %d)", (int)n, AC_AGENT_MAX_CANDIDATES);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, -1, i); /* list v */
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            ac_lua_plugin_fail(L, p, "candidates()[%d] must be a string or a number (got %s)", (int)i,
                               lua_typename(L, t));
        lua_pop(L, 1);
    }
    size_t max = ac_lua_host_limits(ac_lua_plugin_host(p))->max_observation_bytes;
    c->list = ac_lua_to_json_limited(L, -1, "candidates", max, "limits.max_observation_bytes", NULL, &c->conv);
    if (c->list != NULL && !json_is_array(c->list)) {
        /* an empty table converts to {}; a table with keys is no list of candidates */
        int empty = json_object_size(c->list) == 0;
        json_decref(c->list);
        c->list = NULL;
        if (!empty)
            ac_lua_plugin_fail(L, p, "candidates must return an array of strings or numbers (got a table with keys)");
        c->list = json_array();
    }
    return 0;
}

static int step_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    push_fn(L, c, FN_STEP);                        /* step state */
    lua_pushstring(L, c->a->actions[c->tool]);     /* step state tool */
    if (c->args != NULL && json_object_size(c->args) > 0)
        ac_lua_push_json(L, c->args);              /* step state tool args */
    else
        lua_createtable(L, 0, 0);
    lua_call(L, 3, 2);                             /* result done */
    c->returned = 1;
    c->done = lua_toboolean(L, -1);
    /* ac_lua_to_json never raises: nothing below can interrupt this function */
    size_t max = ac_lua_host_limits(ac_lua_plugin_host(c->a->_plugin))->max_result_bytes;
    c->result = ac_lua_to_json_limited(L, -2, "result", max, "limits.max_result_bytes", &c->len, &c->conv);
    return 0;
}

static int final_k(lua_State *L)
{
    agent_call_t *c = lua_touserdata(L, 1);
    push_fn(L, c, FN_FINAL); /* final state */
    lua_call(L, 1, 1);       /* answer */
    size_t max = ac_lua_host_limits(ac_lua_plugin_host(c->a->_plugin))->max_result_bytes;
    c->answer = ac_lua_to_json_limited(L, -1, "answer", max, "limits.max_result_bytes", NULL, &c->conv);
    return 0;
}

/* Runs an agent call of an episode (init: not yet initialized): math.random draws from the
 * episode's generator meanwhile. */
static int run_call(agent_call_t *c, ac_episode_t *ep, lua_CFunction k, ac_err_t *err)
{
    if (k != init_k) {
        if (ep->_state <= 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "%s: episode not initialized", c->a->path);
        c->state = ep->_state;
    }
    ac_lua_host_t *h = ac_lua_plugin_host(c->a->_plugin);
    ac_lua_host_use_rng(h, &ep->rng);
    int rc = ac_lua_host_pcall(h, k, c, c->a->path, err);
    ac_lua_host_use_rng(h, NULL);
    return rc;
}

int ac_agent_init(ac_agent_t *a, const json_t *query, const ac_episode_ctx_t *ctx, ac_episode_t *ep,
                  ac_err_t *err)
{
    agent_call_t c = {.a = a, .query = query, .ctx = ctx, .ref = LUA_NOREF};
    ep->_state = LUA_NOREF;
    ac_rng_seed(&ep->rng, ctx ? ctx->seed : 0);
    if (run_call(&c, ep, init_k, err) != 0)
        return -1;
    ep->_state = c.ref;
    return 0;
}

int ac_agent_observe(ac_agent_t *a, ac_episode_t *ep, char **buf, size_t *cap, size_t *len, ac_err_t *err)
{
    *len = 0;
    if (!a->has_observe)
        return 0;
    agent_call_t c = {.a = a, .buf = buf, .cap = cap};
    if (run_call(&c, ep, observe_k, err) != 0)
        return -1;
    *len = c.len;
    return 0;
}

int ac_agent_legal(ac_agent_t *a, ac_episode_t *ep, uint8_t *mask, ac_err_t *err)
{
    if (!a->has_legal) {
        memset(mask, 1, (size_t)a->n_actions);
        return 0;
    }
    agent_call_t c = {.a = a, .mask = mask};
    return run_call(&c, ep, legal_k, err);
}

int ac_agent_candidates(ac_agent_t *a, ac_episode_t *ep, json_t **list, ac_err_t *err)
{
    *list = NULL;
    if (!a->has_candidates) {
        *list = json_array();
        return *list ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    }
    agent_call_t c = {.a = a};
    if (run_call(&c, ep, candidates_k, err) != 0) {
        json_decref(c.list);
        return -1;
    }
    if (c.list == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: candidates returned %s", a->path, c.conv.message);
    *list = c.list;
    return 0;
}

int ac_agent_step(ac_agent_t *a, ac_episode_t *ep, int tool, const json_t *args, json_t **result, int *done,
                  size_t *bytes, ac_err_t *err)
{
    *result = NULL;
    *done = 1;
    if (bytes)
        *bytes = 0;
    if (tool < 0 || tool >= a->n_actions)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: tool %d out of range (%d tools)", a->path, tool, a->n_actions);
    agent_call_t c = {.a = a, .tool = tool, .args = args};
    ac_err_t local = AC_ERR_INIT;
    if (run_call(&c, ep, step_k, &local) != 0) {
        json_decref(c.result);
        if (c.returned || ep->_state <= 0)
            return ac_err_move(err, &local);
        /* step raised: the contract's failed tool call */
        *result = json_pack("{s:s}", "error", local.message);
        ac_err_move(err, &local);
        return AC_AGENT_TOOL_FAILED;
    }
    if (c.result == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: step returned %s", a->path, c.conv.message);
    *result = c.result;
    *done = c.done;
    if (bytes)
        *bytes = c.len;
    return 0;
}

int ac_agent_final(ac_agent_t *a, ac_episode_t *ep, json_t **answer, ac_err_t *err)
{
    agent_call_t c = {.a = a};
    *answer = NULL;
    if (run_call(&c, ep, final_k, err) != 0) {
        json_decref(c.answer);
        return -1;
    }
    if (c.answer == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: final returned %s", a->path, c.conv.message);
    *answer = c.answer;
    return 0;
}

void ac_agent_episode_free(ac_agent_t *a, ac_episode_t *ep)
{
    ac_lua_unref(ac_state_of(a->_plugin), ep->_state);
    ep->_state = LUA_NOREF;
}

/* ---- rewards --------------------------------------------------------------------------------- */

static void ac_reward_fini(lua_State *L, void *data)
{
    ac_lua_unref(L, ((ac_reward_t *)data)->_score);
}

static void ac_reward_check(lua_State *L, int module, ac_lua_plugin_t *p, void *data)
{
    ac_reward_t *r = data;
    r->_plugin = p;
    r->name = ac_lua_plugin_name(p);
    r->version = ac_lua_plugin_version(p);
    r->path = ac_lua_plugin_path(p);
    if (lua_getfield(L, module, "range") != LUA_TTABLE) /* range */
        ac_lua_plugin_fail(L, p, "'range' must be {min, max}");
    ac_lua_thaw(L, -1);
    int t1 = lua_rawgeti(L, -1, 1), t2 = lua_rawgeti(L, -2, 2); /* range lo hi */
    r->range_min = lua_tonumber(L, -2);
    r->range_max = lua_tonumber(L, -1);
    if (t1 != LUA_TNUMBER || t2 != LUA_TNUMBER || !isfinite(r->range_min) ||
        !isfinite(r->range_max) || !(r->range_min < r->range_max))
        ac_lua_plugin_fail(L, p, "'range' must be {min, max} with finite numbers, min < max");
    lua_pop(L, 3);
    r->success_threshold = r->range_max;
    int t = lua_getfield(L, module, "success_threshold"); /* thr */
    if (t != LUA_TNIL) {
        double v = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || !(v >= r->range_min && v <= r->range_max))
            ac_lua_plugin_fail(L, p, "'success_threshold' must be a number within 'range'");
        r->success_threshold = v;
    }
    lua_pop(L, 1);
    r->_score = ac_lua_plugin_fn_ref(L, module, p, "score");
}

static const ac_lua_plugin_kind_t ac_reward_kind = {"rewards", sizeof(ac_reward_t),
                                                    ac_reward_check, ac_reward_fini};

ac_reward_t *ac_reward_open(ac_lua_host_t *h, const char *name, ac_err_t *err)
{
    ac_lua_plugin_t *p = ac_lua_plugin_get(h, &ac_reward_kind, name, err);
    return p ? ac_lua_plugin_data(p) : NULL;
}

void ac_reward_close(ac_reward_t *r)
{
    if (r)
        ac_lua_plugin_release(r->_plugin);
}

void ac_reward_info_clear(ac_reward_info_t *info)
{
    if (info == NULL)
        return;
    free(info->step_rewards);
    info->step_rewards = NULL;
    info->n_step_rewards = 0;
    info->success = 0;
    info->tool_accuracy = -1;
}

typedef struct ac_reward_call {
    ac_reward_t *r;
    const ac_trajectory_t *trajectory;
    const json_t *expected;
    long n_steps; /* the trajectory's steps */
    double reward;
    ac_reward_info_t info; /* step_rewards owned here until handed over */
} ac_reward_call_t;

/* v, or JSON null (a NULL light userdata, as ac_lua_push_json gives it) */
static void push_json_or_null(lua_State *L, const json_t *v)
{
    if (v == NULL)
        lua_pushlightuserdata(L, NULL);
    else
        ac_lua_push_json(L, v);
}

static void push_traj_step(lua_State *L, const ac_traj_step_t *s)
{
    char ts[40];
    lua_createtable(L, 0, 5); /* step */
    lua_createtable(L, 0, 1); /* step state */
    lua_pushstring(L, s->context ? s->context : "");
    lua_setfield(L, -2, "context");
    lua_setfield(L, -2, "state");
    lua_createtable(L, 0, 2); /* step action */
    lua_pushstring(L, s->tool);
    lua_setfield(L, -2, "tool");
    if (s->params != NULL)
        ac_lua_push_json(L, s->params);
    else
        lua_createtable(L, 0, 0);
    lua_setfield(L, -2, "params");
    lua_setfield(L, -2, "action");
    push_json_or_null(L, s->result);
    lua_setfield(L, -2, "result");
    lua_pushstring(L, ac_clock_iso8601(ts, sizeof ts, s->ts_ms, 1));
    lua_setfield(L, -2, "timestamp");
    lua_pushnumber(L, (double)s->duration_us / 1000.0);
    lua_setfield(L, -2, "duration_ms");
}

static void push_trajectory(lua_State *L, const ac_trajectory_t *t)
{
    luaL_checkstack(L, 8, "trajectory");
    lua_createtable(L, 0, 4); /* traj */
    push_json_or_null(L, t->query);
    lua_setfield(L, -2, "query");
    lua_createtable(L, t->n_steps, 0); /* traj steps */
    for (int i = 0; i < t->n_steps; i++) {
        push_traj_step(L, &t->steps[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    ac_lua_push_array_mt(L);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "steps");
    push_json_or_null(L, t->final);
    lua_setfield(L, -2, "final");
    lua_pushboolean(L, t->truncated);
    lua_setfield(L, -2, "truncated");
}

static int ac_reward_score_k(lua_State *L)
{
    ac_reward_call_t *c = lua_touserdata(L, 1);
    ac_lua_plugin_t *p = c->r->_plugin;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->r->_score); /* score */
    push_trajectory(L, c->trajectory);               /* score traj */
    ac_lua_push_json(L, c->expected);                /* score traj expected */
    lua_call(L, 2, 2);                               /* reward info */
    if (lua_type(L, -2) != LUA_TNUMBER)
        ac_lua_plugin_fail(L, p, "score must return a number (got %s)", luaL_typename(L, -2));
    double r = lua_tonumber(L, -2);
    if (isnan(r))
        ac_lua_plugin_fail(L, p, "score returned NaN");
    if (r < c->r->range_min || r > c->r->range_max)
        ac_lua_plugin_fail(L, p, "score returned %g, outside range [%g, %g]", r,
                           c->r->range_min, c->r->range_max);
    c->reward = r;
    c->info.success = r >= c->r->success_threshold;
    c->info.tool_accuracy = -1;
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        ac_lua_plugin_fail(L, p, "score's second result must be a table or nil (got %s)",
                           luaL_typename(L, -1));
    int info = lua_gettop(L);
    int t = lua_getfield(L, info, "success"); /* ... success */
    if (t == LUA_TBOOLEAN)
        c->info.success = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        ac_lua_plugin_fail(L, p, "info.success must be a boolean");
    t = lua_getfield(L, info, "tool_accuracy"); /* ... success acc */
    if (t != LUA_TNIL) {
        double acc = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || !(acc >= 0 && acc <= 1))
            ac_lua_plugin_fail(L, p, "info.tool_accuracy must be a number from 0 to 1");
        c->info.tool_accuracy = acc;
    }
    t = lua_getfield(L, info, "step_rewards"); /* ... success acc steps */
    if (t == LUA_TNIL)
        return 0;
    if (t != LUA_TTABLE)
        ac_lua_plugin_fail(L, p, "info.step_rewards must be an array of numbers");
    ac_lua_thaw(L, -1);
    size_t n = lua_rawlen(L, -1);
    if (c->n_steps >= 0 && n != (size_t)c->n_steps)
        ac_lua_plugin_fail(L, p, "info.step_rewards has %d entries for %d steps", (int)n,
                           (int)c->n_steps);
    if (n > 0 && (c->info.step_rewards = malloc(n * sizeof(double))) == NULL)
        ac_lua_plugin_fail(L, p, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int et = lua_rawgeti(L, -1, (lua_Integer)i + 1); /* ... steps v */
        double v = lua_tonumber(L, -1);
        if (et != LUA_TNUMBER || !isfinite(v))
            ac_lua_plugin_fail(L, p, "info.step_rewards[%d] must be a finite number", (int)i + 1);
        c->info.step_rewards[i] = v;
        c->info.n_step_rewards = i + 1;
        lua_pop(L, 1); /* ... steps */
    }
    return 0;
}

int ac_reward_score(ac_reward_t *r, const ac_trajectory_t *trajectory, const json_t *expected, ac_episode_t *ep,
                    double *reward, ac_reward_info_t *info, ac_err_t *err)
{
    ac_reward_call_t c = {.r = r, .trajectory = trajectory, .expected = expected, .n_steps = trajectory->n_steps};
    if (info) {
        memset(info, 0, sizeof *info);
        info->tool_accuracy = -1;
    }
    ac_lua_host_t *h = ac_lua_plugin_host(r->_plugin);
    ac_lua_host_use_rng(h, ep ? &ep->rng : NULL);
    int rc = ac_lua_host_pcall(h, ac_reward_score_k, &c, r->path, err);
    ac_lua_host_use_rng(h, NULL);
    if (rc != 0 || info == NULL) {
        free(c.info.step_rewards);
        if (rc != 0)
            return -1;
    } else {
        *info = c.info;
    }
    *reward = c.reward;
    return 0;
}

/* ---- validators ------------------------------------------------------------------------------ */

static void ac_validator_fini(lua_State *L, void *data)
{
    ac_lua_unref(L, ((ac_validator_t *)data)->_validate);
}

static void ac_validator_check(lua_State *L, int module, ac_lua_plugin_t *p, void *data)
{
    ac_validator_t *v = data;
    v->_plugin = p;
    v->name = ac_lua_plugin_name(p);
    v->version = ac_lua_plugin_version(p);
    v->path = ac_lua_plugin_path(p);
    v->_validate = ac_lua_plugin_fn_ref(L, module, p, "validate");
}

static const ac_lua_plugin_kind_t ac_validator_kind = {"validators", sizeof(ac_validator_t),
                                                       ac_validator_check, ac_validator_fini};

ac_validator_t *ac_validator_open(ac_lua_host_t *h, const char *name, ac_err_t *err)
{
    ac_lua_plugin_t *p = ac_lua_plugin_get(h, &ac_validator_kind, name, err);
    return p ? ac_lua_plugin_data(p) : NULL;
}

void ac_validator_close(ac_validator_t *v)
{
    if (v)
        ac_lua_plugin_release(v->_plugin);
}

typedef struct ac_validator_call {
    ac_validator_t *v;
    const json_t *training, *evaluation;
    int min_training;
    json_t *problems;
    ac_err_t conv;
} ac_validator_call_t;

static int ac_validator_run_k(lua_State *L)
{
    ac_validator_call_t *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->v->_validate); /* validate */
    ac_lua_push_json(L, c->training);                   /* validate training */
    ac_lua_push_json(L, c->evaluation);                 /* validate training evaluation */
    lua_createtable(L, 0, 1);                           /* validate training evaluation limits */
    lua_pushinteger(L, c->min_training);                /* ... limits n */
    lua_setfield(L, -2, "min_training");                /* ... limits */
    lua_call(L, 3, 1);                                  /* problems */
    int empty = 0;
    if (lua_istable(L, -1)) {
        ac_lua_thaw(L, -1);
        lua_pushnil(L);       /* problems nil */
        if (lua_next(L, -2))  /* problems k v */
            lua_pop(L, 2);    /* problems */
        else
            empty = 1;        /* problems: {} means none (it has no array_mt to say "array") */
    }
    c->problems = empty ? json_array() : ac_lua_to_json_named(L, -1, "problems", &c->conv);
    return 0;
}

/* Checks the shape of a validator's problems: an array of objects with an "error" string. */
static int ac_problems_check(const ac_validator_t *v, const json_t *problems, ac_err_t *err)
{
    if (!json_is_array(problems))
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: validate must return an array of problems",
                          v->path);
    size_t i;
    json_t *pr;
    json_array_foreach(problems, i, pr) {
        json_t *field = json_object_get(pr, "field"), *index = json_object_get(pr, "index");
        if (!json_is_string(json_object_get(pr, "error")) || (field && !json_is_string(field)) ||
            (index && !json_is_integer(index)))
            return ac_err_set(err, AC_ERR_INTERNAL, "%s: problems[%zu] must be {error = string, "
                              "field = string, index = integer}", v->path, i + 1);
    }
    return 0;
}

int ac_validator_run(ac_validator_t *v, const json_t *training, const json_t *evaluation,
                     int min_training, json_t **problems, ac_err_t *err)
{
    json_t *empty = evaluation ? NULL : json_array();
    ac_validator_call_t c = {.v = v, .training = training,
                             .evaluation = evaluation ? evaluation : empty,
                             .min_training = min_training};
    *problems = NULL;
    int rc = ac_lua_host_pcall(ac_lua_plugin_host(v->_plugin), ac_validator_run_k, &c, v->path,
                               err);
    json_decref(empty);
    if (rc != 0) {
        json_decref(c.problems);
        return -1;
    }
    if (c.problems == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: validate returned %s", v->path,
                          c.conv.message);
    if (ac_problems_check(v, c.problems, err) != 0) {
        json_decref(c.problems);
        return -1;
    }
    *problems = c.problems;
    return 0;
}

/* ---- webhook policies ------------------------------------------------------------------------- */

static void ac_webhook_policy_fini(lua_State *L, void *data)
{
    ac_lua_unref(L, ((ac_webhook_policy_t *)data)->_route);
}

static void ac_webhook_policy_check(lua_State *L, int module, ac_lua_plugin_t *p, void *data)
{
    ac_webhook_policy_t *w = data;
    w->_plugin = p;
    w->name = ac_lua_plugin_name(p);
    w->version = ac_lua_plugin_version(p);
    w->path = ac_lua_plugin_path(p);
    w->_route = ac_lua_plugin_fn_ref(L, module, p, "route");
}

static const ac_lua_plugin_kind_t ac_webhook_policy_kind = {"webhooks", sizeof(ac_webhook_policy_t),
                                                            ac_webhook_policy_check, ac_webhook_policy_fini};

ac_webhook_policy_t *ac_webhook_policy_open(ac_lua_host_t *h, const char *name, ac_err_t *err)
{
    ac_lua_plugin_t *p = ac_lua_plugin_get(h, &ac_webhook_policy_kind, name, err);
    return p ? ac_lua_plugin_data(p) : NULL;
}

void ac_webhook_policy_close(ac_webhook_policy_t *w)
{
    if (w)
        ac_lua_plugin_release(w->_plugin);
}

typedef struct ac_route_call {
    ac_webhook_policy_t *w;
    const json_t *event, *target;
    json_t *out;
    int verdict; /* 0 drop, 1 as is, 2 out holds one or more deliveries */
    ac_err_t conv;
} ac_route_call_t;

static int ac_webhook_route_k(lua_State *L)
{
    ac_route_call_t *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->w->_route); /* route */
    ac_lua_push_json(L, c->event);                   /* route event */
    ac_lua_push_json(L, c->target);                  /* route event target */
    lua_call(L, 2, 1);                               /* verdict */
    if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
        c->verdict = 0;
    } else if (lua_isboolean(L, -1)) {
        c->verdict = 1;
    } else {
        c->verdict = 2;
        c->out = ac_lua_to_json_named(L, -1, "route's result", &c->conv);
    }
    return 0;
}

/* Headers the delivery owns: a policy that could set them could break the request's framing
 * (Content-Length against Transfer-Encoding: request smuggling at a proxy), send it to another
 * virtual host, or forge our signature. Compared without case; "proxy-" is a prefix. */
static const char *const ac_owned_headers[] = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
    "expect", "content-type", "webhook-id", "webhook-timestamp", "webhook-signature", NULL};

static int ac_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int ac_webhook_header_check(const char *name, size_t name_len, const char *value, size_t value_len,
                            ac_err_t *err)
{
    /* the name is echoed in the message: show it only once it is known to be printable */
    if (name_len == 0 || name_len > AC_WEBHOOK_MAX_HEADER_NAME)
        return ac_err_set(err, AC_ERR_INTERNAL, "a header name must be 1 to %d characters",
                          AC_WEBHOOK_MAX_HEADER_NAME);
    for (size_t i = 0; i < name_len; i++)
        if (!ac_token_char((unsigned char)name[i]))
            return ac_err_set(err, AC_ERR_INTERNAL, "header name '%.*s' is not an HTTP token (RFC 9110: letters, "
                              "digits and !#$%%&'*+-.^_`|~ only)", (int)strcspn(name, "\r\n"), name);
    char lower[AC_WEBHOOK_MAX_HEADER_NAME + 1];
    for (size_t i = 0; i < name_len; i++)
        lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    lower[name_len] = '\0';
    int owned = strncmp(lower, "proxy-", 6) == 0;
    for (const char *const *h = ac_owned_headers; *h && !owned; h++)
        owned = strcmp(*h, lower) == 0;
    if (owned)
        return ac_err_set(err, AC_ERR_INTERNAL, "header '%s' may not be set by a policy (framing, hop-by-hop, "
                          "Content-Type and signature headers belong to the delivery)", name);
    if (value_len > AC_WEBHOOK_MAX_HEADER_VALUE)
        return ac_err_set(err, AC_ERR_INTERNAL, "header '%s': the value is longer than %d bytes", name,
                          AC_WEBHOOK_MAX_HEADER_VALUE);
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return ac_err_set(err, AC_ERR_INTERNAL, "header '%s': the value holds a control character (0x%02x): "
                              "no CR, LF or NUL", name, c);
    }
    return 0;
}

/* One delivery as the policy may describe it: {url?, payload?, headers?} with string headers
 * that pass ac_webhook_header_check. */
static int ac_delivery_check(const ac_webhook_policy_t *w, const json_t *d, size_t i, ac_err_t *err)
{
    json_t *url = json_object_get(d, "url"), *headers = json_object_get(d, "headers");
    if (!json_is_object(d) || (url && !json_is_string(url)) || (headers && !json_is_object(headers)))
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: route's delivery %zu must be {url = string, payload = table, "
                          "headers = {name = string}}", w->path, i + 1);
    if (json_object_size(headers) > AC_WEBHOOK_MAX_HEADERS)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: route's delivery %zu: more than %d headers", w->path, i + 1,
                          AC_WEBHOOK_MAX_HEADERS);
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(headers, k, klen, v) {
        if (!json_is_string(v))
            return ac_err_set(err, AC_ERR_INTERNAL, "%s: header '%s' must be a string", w->path, k);
        ac_err_t local = AC_ERR_INIT;
        if (ac_webhook_header_check(k, klen, json_string_value(v), json_string_length(v), &local) != 0) {
            ac_err_set(err, AC_ERR_INTERNAL, "%s: route's delivery %zu: %s", w->path, i + 1, local.message);
            ac_err_clear(&local);
            return -1;
        }
    }
    return 0;
}

int ac_webhook_route(ac_webhook_policy_t *w, const json_t *event, const json_t *target, json_t **deliveries,
                     ac_err_t *err)
{
    ac_route_call_t c = {.w = w, .event = event, .target = target};
    *deliveries = NULL;
    if (ac_lua_host_pcall(ac_lua_plugin_host(w->_plugin), ac_webhook_route_k, &c, w->path, err) != 0) {
        json_decref(c.out);
        return -1;
    }
    if (c.verdict == 0) {
        *deliveries = json_array();
        return 0;
    }
    if (c.verdict == 1) {
        *deliveries = json_pack("[{}]");
        return 0;
    }
    if (c.out == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: route returned %s", w->path, c.conv.message);
    /* one delivery (a table with string keys) or a list of them */
    if (!json_is_object(c.out) && !json_is_array(c.out)) {
        const char *kind = json_is_string(c.out) ? "a string" : json_is_number(c.out) ? "a number" : "null";
        json_decref(c.out);
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: route returned %s: it must return nil or false (drop), true "
                          "(deliver), a delivery table or a list of them", w->path, kind);
    }
    if (json_is_object(c.out)) {
        json_t *one = json_array();
        json_array_append_new(one, c.out);
        c.out = one;
    }
    size_t i;
    json_t *d;
    json_array_foreach(c.out, i, d) {
        if (ac_delivery_check(w, d, i, err) != 0) {
            json_decref(c.out);
            return -1;
        }
    }
    *deliveries = c.out;
    return 0;
}
