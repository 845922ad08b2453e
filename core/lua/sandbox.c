/* The sandbox: the globals a plugin gets, and the read-only tables.
 *
 * Read-only tables. A plugin must not be able to change what another plugin (or a later call)
 * sees: library tables, the modules `require` hands out, agentcore.array_mt. A metatable with
 * __newindex does not stop writes to keys a table already has, so freezing empties the table in
 * place and moves its fields to a hidden table: the frozen table keeps its identity (every
 * reference to it stays valid), reads go through __index to the hidden table, writes raise, its
 * metatable is protected (__metatable), rawset refuses it, and pairs/# see the hidden fields.
 * The hidden table is reachable from C only (ac_lua_to_json converts it in place of the frozen
 * one). */
#include "lua/host_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "base/fault.h"
#include "lua/lua_json.h"

const char ac_lua_key_array_mt = 0;
const char ac_lua_key_loaded = 0;
const char ac_lua_key_loading = 0;
const char ac_lua_key_env_mt = 0;
const char ac_lua_key_error = 0;
const char ac_lua_key_frozen = 0;
const char ac_lua_key_rng = 0; /* the object plugins get as ctx.rng */
/* In a read-only table's metatable: its hidden table (C only: getmetatable answers false). */
const char ac_lua_key_hidden = 0;

/* table.move copies element by element inside C, where the instruction hook cannot stop it. */
#define MAX_MOVE ((lua_Integer)1 << 24)

/* ---- read-only tables ------------------------------------------------------------------------ */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to change a read-only table (field '%s'): library tables and "
                         "modules are shared by every plugin of the job", luaL_tolstring(L, 2, NULL));
}

/* upvalue 1: the hidden table */
static int ro_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* next over the hidden table (upvalue 1), whatever table the caller passes */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);                          /* t k */
    if (lua_next(L, lua_upvalueindex(1)) != 0) /* t k' v */
        return 2;
    lua_pushnil(L); /* t nil */
    return 1;
}

/* pairs(t): ro_next (upvalue 1), t, nil. The hidden table itself is never handed out. */
static int ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1)); /* t next */
    lua_pushvalue(L, 1);                   /* t next t */
    lua_pushnil(L);                        /* t next t nil */
    return 3;
}

static int is_frozen(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_frozen); /* set */
    lua_pushvalue(L, idx);                                 /* set t */
    int r = lua_rawget(L, -2) != LUA_TNIL;                 /* set mark */
    lua_pop(L, 2);
    return r;
}

/* Metamethods the frozen table keeps from its own metatable; the others are the freeze's. */
static int keeps_metamethod(const char *k)
{
    static const char *const ours[] = {"__index", "__newindex", "__len", "__pairs", "__metatable",
                                       "__gc", "__mode", "__close", NULL};
    for (const char *const *p = ours; *p; p++)
        if (strcmp(k, *p) == 0)
            return 0;
    return 1;
}

void ac_lua_freeze(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "freezing a table");
    if (is_frozen(L, idx))
        return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_frozen); /* set */
    lua_pushvalue(L, idx);                                 /* set t */
    lua_pushboolean(L, 1);                                 /* set t true */
    lua_rawset(L, -3);                                     /* set: marked before recursing */
    lua_pop(L, 1);

    lua_newtable(L); /* hidden */
    int hidden = lua_gettop(L);
    lua_newtable(L); /* hidden keys: the fields to clear, collected first (no new keys while
                        traversing) */
    int keys = lua_gettop(L);
    lua_Integer nkeys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {     /* ... k v */
        lua_pushvalue(L, -2);      /* ... k v k */
        lua_insert(L, -2);         /* ... k k v */
        lua_rawset(L, hidden);     /* ... k */
        lua_pushvalue(L, -1);      /* ... k k */
        lua_rawseti(L, keys, ++nkeys); /* ... k */
    }
    for (lua_Integer i = 1; i <= nkeys; i++) {
        lua_rawgeti(L, keys, i); /* ... k */
        lua_pushnil(L);          /* ... k nil */
        lua_rawset(L, idx);
    }
    lua_pop(L, 1); /* hidden */

    lua_createtable(L, 0, 8); /* hidden ro_mt */
    int mt = lua_gettop(L);
    if (lua_getmetatable(L, idx)) { /* hidden ro_mt orig */
        lua_pushnil(L);
        while (lua_next(L, -2)) { /* hidden ro_mt orig k v */
            if (lua_type(L, -2) == LUA_TSTRING && keeps_metamethod(lua_tostring(L, -2))) {
                lua_pushvalue(L, -2); /* ... k v k */
                lua_insert(L, -2);    /* ... k k v */
                lua_rawset(L, mt);    /* ... k */
            } else {
                lua_pop(L, 1); /* ... k */
            }
        }
        lua_setmetatable(L, hidden); /* hidden ro_mt: reads that miss still follow the
                                        table's own __index, and arrays keep array_mt */
    }
    lua_pushvalue(L, hidden);         /* hidden ro_mt hidden */
    lua_setfield(L, mt, "__index");   /* hidden ro_mt */
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, mt, "__newindex");
    lua_pushvalue(L, hidden);
    lua_pushcclosure(L, ro_len, 1);
    lua_setfield(L, mt, "__len");
    lua_pushvalue(L, hidden);
    lua_pushcclosure(L, ro_next, 1);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, mt, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, mt, "__metatable");
    lua_pushvalue(L, hidden);                    /* hidden ro_mt hidden */
    lua_rawsetp(L, mt, &ac_lua_key_hidden);      /* hidden ro_mt */
    lua_setmetatable(L, idx);                    /* hidden */

    /* deep: every table a field holds */
    lua_pushnil(L);
    while (lua_next(L, hidden)) { /* hidden k v */
        if (lua_type(L, -1) == LUA_TTABLE)
            ac_lua_freeze(L, -1);
        lua_pop(L, 1); /* hidden k */
    }
    lua_pop(L, 1);
}

/* Pushes the hidden table of the read-only table at idx, or nothing and returns 0. */
void ac_lua_thaw(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_istable(L, idx) && ac_lua_frozen_contents(L, idx))
        lua_replace(L, idx);
}

int ac_lua_frozen_contents(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) /* mt */
        return 0;
    if (lua_rawgetp(L, -1, &ac_lua_key_hidden) != LUA_TTABLE) { /* mt hidden */
        lua_pop(L, 2);
        return 0;
    }
    lua_remove(L, -2); /* hidden */
    return 1;
}

/* ---- replaced builtins ----------------------------------------------------------------------- */

/* pcall and xpcall as in the base library, except that an error raised by a limit goes on up:
 * a plugin cannot catch its way past the budget. */
static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1); /* f args... true */
    lua_insert(L, 1);      /* true f args... */
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0); /* true results... | true err */
    if (status != LUA_OK) {
        if (ac_lua_host_of(L)->abort_what)
            return lua_error(L);
        lua_pushboolean(L, 0); /* true err false */
        lua_replace(L, 1);     /* false err */
    }
    return lua_gettop(L);
}

/* The message handler xpcall really installs; upvalue 1 is the plugin's. Once a limit has ended
 * the call, the plugin's handler does not run at all: Lua runs a message handler with hooks off
 * when the error was raised by a hook, so a handler that loops could never be stopped. */
static int msgh_guard(lua_State *L)
{
    if (ac_lua_host_of(L)->abort_what != NULL)
        return 1; /* the error as it is */
    lua_pushvalue(L, lua_upvalueindex(1)); /* err h */
    lua_insert(L, 1);                      /* h err */
    lua_call(L, lua_gettop(L) - 1, 1);     /* result */
    return 1;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);                 /* f h args... h */
    lua_pushcclosure(L, msgh_guard, 1);  /* f h args... guard */
    lua_replace(L, 2);                   /* f guard args... */
    lua_pushboolean(L, 1);               /* f guard args... true */
    lua_pushvalue(L, 1);                 /* f guard args... true f */
    lua_rotate(L, 3, 2);                 /* f guard true f args... */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 2); /* f guard true results... | ... err */
    if (status != LUA_OK) {
        if (ac_lua_host_of(L)->abort_what)
            return lua_error(L);
        lua_pushboolean(L, 0); /* f guard true err false */
        lua_replace(L, 3);     /* f guard false err */
    }
    return lua_gettop(L) - 2;
}

/* Finalizers would run Lua code at any allocation, outside the call that set them up, and with
 * hooks off. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc"); /* t mt "__gc" */
        if (lua_rawget(L, 2) != LUA_TNIL) /* t mt gc */
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in plugins");
        lua_pop(L, 1); /* t mt */
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* t mt setmetatable */
    lua_insert(L, 1);                      /* setmetatable t mt */
    lua_call(L, lua_gettop(L) - 1, 1);     /* t */
    return 1;
}

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (is_frozen(L, 1))
        return luaL_error(L, "rawset: the table is read-only (library tables and modules are "
                             "shared by every plugin of the job)");
    lua_pushvalue(L, lua_upvalueindex(1)); /* t k v rawset */
    lua_insert(L, 1);                      /* rawset t k v */
    lua_call(L, lua_gettop(L) - 1, 1);     /* t */
    return 1;
}

/* string.rep builds its result in one C loop: cap its size, and answer "" at once where the
 * stock loop would spin n times copying nothing. */
static int sb_rep(lua_State *L)
{
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || (l == 0 && lsep == 0)) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t cap = ac_lua_host_of(L)->limits.max_string_bytes;
    double total = (double)n * (double)l + (double)(n - 1) * (double)lsep;
    if (cap && total > (double)cap) {
        char msg[160]; /* lua_pushfstring knows no %.0f */
        snprintf(msg, sizeof msg, "not enough memory: string.rep would build %.0f bytes (limit "
                 "%zu, limits.max_string_bytes)", total, cap);
        return luaL_error(L, "%s", msg);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* s n [sep] rep */
    lua_insert(L, 1);                      /* rep s n [sep] */
    lua_call(L, lua_gettop(L) - 1, 1);     /* result */
    return 1;
}

static int sb_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    if (e >= f && (f <= 0 ? e >= MAX_MOVE + f : e - f >= MAX_MOVE))
        return luaL_error(L, "table.move: range of more than %d elements", (int)MAX_MOVE);
    lua_pushvalue(L, lua_upvalueindex(1)); /* a1 f e t [a2] move */
    lua_insert(L, 1);                      /* move a1 f e t [a2] */
    lua_call(L, lua_gettop(L) - 1, 1);     /* a2 */
    return 1;
}

enum { PAT_FIND, PAT_MATCH, PAT_GMATCH, PAT_GSUB };
static const char *const pat_names[] = {"find", "match", "gmatch", "gsub"};

/* string.find/match/gmatch/gsub: upvalue 1 the stock function, upvalue 2 which one. */
static int sb_pattern(lua_State *L)
{
    int which = (int)lua_tointeger(L, lua_upvalueindex(2));
    size_t n, m;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &m);
    double limit = ac_lua_host_of(L)->limits.max_pattern_cost;
    if (limit > 0) {
        int plain = which == PAT_FIND && lua_toboolean(L, 4);
        if (!plain && strpbrk(p, "^$*+?.([%-") == NULL && strlen(p) == m)
            plain = which == PAT_FIND; /* find searches with memcmp then, too */
        /* memcmp-based search: about 64 byte comparisons per matcher step */
        double cost = plain ? ((double)n + 1) * ((double)m + 1) / 64
                            : ac_lua_pattern_cost(s, n, p, m, which != PAT_GMATCH, limit);
        if (cost > limit) {
            char shown[48 * 4 + 4], msg[400]; /* lua_pushfstring knows no %.3g */
            size_t k = 0;
            for (size_t i = 0; i < m && i < 48; i++) /* control bytes would cut the message */
                k += (unsigned char)p[i] < 0x20 || p[i] == 0x7f
                         ? (size_t)snprintf(shown + k, 5, "\\%03d", (unsigned char)p[i])
                         : (size_t)snprintf(shown + k, 2, "%c", p[i]);
            snprintf(shown + k, sizeof shown - k, "%s", m > 48 ? "..." : "");
            snprintf(msg, sizeof msg, "string.%s: pattern '%s' is too costly for a %zu-byte "
                     "subject (worst case %.3g steps, limit %.3g; see docs/plugins.md, "
                     "\"Pattern limits\")", pat_names[which], shown, n, cost, limit);
            return luaL_error(L, "%s", msg);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* args... f */
    lua_insert(L, 1);                      /* f args... */
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- math.random ------------------------------------------------------------------------------
 * Lua's own generator is one per state, seeded at random: a plugin using it could not be rerun.
 * These draw from the host's current generator instead (the running episode's: ac_lua_host_rng),
 * with Lua 5.4's semantics. */

/* A uniform integer in [0, n] (n + 1 values), without modulo bias. */
static uint64_t project(ac_rng_t *r, uint64_t n)
{
    if ((n & (n + 1)) == 0) /* n + 1 is a power of two */
        return ac_rng_u64(r) & n;
    uint64_t lim = n;
    for (int sh = 1; sh < 64; sh <<= 1) /* the smallest 2^b - 1 >= n */
        lim |= lim >> sh;
    uint64_t v;
    while ((v = ac_rng_u64(r) & lim) > n)
        ;
    return v;
}

int ac_lua_random(lua_State *L)
{
    ac_rng_t *r = ac_lua_host_rng(ac_lua_host_of(L));
    int first = 1;
    if (lua_istable(L, lua_upvalueindex(1)) && lua_rawequal(L, 1, lua_upvalueindex(1)))
        first = 2; /* called as ctx.rng:random(...) */
    lua_Integer lo, up;
    switch (lua_gettop(L) - first + 1) {
    case 0:
        lua_pushnumber(L, ac_rng_uniform_double(r));
        return 1;
    case 1:
        lo = 1;
        up = luaL_checkinteger(L, first);
        if (up == 0) { /* random(0): every bit random */
            lua_pushinteger(L, (lua_Integer)ac_rng_u64(r));
            return 1;
        }
        break;
    case 2:
        lo = luaL_checkinteger(L, first);
        up = luaL_checkinteger(L, first + 1);
        break;
    default:
        return luaL_error(L, "wrong number of arguments");
    }
    luaL_argcheck(L, lo <= up, first, "interval is empty");
    lua_pushinteger(L, (lua_Integer)(project(r, (uint64_t)up - (uint64_t)lo) + (uint64_t)lo));
    return 1;
}

/* The episode's generator as plugins get it in ctx.rng: next() (31 bits), int(lo, hi),
 * pick(list), random(...) as math.random; called with '.' or ':' alike. upvalue 1: the object. */
static int self_args(lua_State *L)
{
    return lua_rawequal(L, 1, lua_upvalueindex(1)) ? 2 : 1;
}

static int rng_next(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)(ac_rng_u64(ac_lua_host_rng(ac_lua_host_of(L))) >> 33));
    return 1;
}

static int rng_int(lua_State *L)
{
    int a = self_args(L);
    lua_Integer lo = luaL_checkinteger(L, a), up = luaL_checkinteger(L, a + 1);
    luaL_argcheck(L, lo <= up, a, "interval is empty");
    ac_rng_t *r = ac_lua_host_rng(ac_lua_host_of(L));
    lua_pushinteger(L, (lua_Integer)(project(r, (uint64_t)up - (uint64_t)lo) + (uint64_t)lo));
    return 1;
}

static int rng_pick(lua_State *L)
{
    int a = self_args(L);
    luaL_checktype(L, a, LUA_TTABLE);
    lua_Integer n = luaL_len(L, a);
    luaL_argcheck(L, n > 0, a, "empty list");
    lua_geti(L, a, 1 + (lua_Integer)project(ac_lua_host_rng(ac_lua_host_of(L)), (uint64_t)n - 1));
    return 1;
}

void ac_lua_push_episode_rng(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_rng); /* rng */
}

static void make_episode_rng(lua_State *L)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } fns[] = {{"next", rng_next}, {"int", rng_int}, {"pick", rng_pick}, {"random", ac_lua_random}};
    lua_createtable(L, 0, 4); /* rng */
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        lua_pushvalue(L, -1);               /* rng rng */
        lua_pushcclosure(L, fns[i].fn, 1);  /* rng f */
        lua_setfield(L, -2, fns[i].name);   /* rng */
    }
    ac_lua_freeze(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_rng); /* (empty) */
}

/* math.randomseed(x): restarts the current generator (the episode's) at x; no argument restarts
 * it at a fixed seed (never at a random one: runs must be repeatable). */
static int sb_randomseed(lua_State *L)
{
    lua_Integer x = luaL_optinteger(L, 1, 0);
    ac_rng_seed(ac_lua_host_rng(ac_lua_host_of(L)), (uint64_t)x);
    return 0;
}

/* ---- fault injection (tests only: AGENTCORE_FAULT) ------------------------------------------- */

/* __fault_stall(seconds): a C call that does not return to Lua for that long, where no hook
 * can stop it; what a plugin stuck in a C function looks like to the watchdog. */
static int fault_stall(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    for (lua_Number done = 0; done < s; done += 0.05)
        usleep(50000);
    return 0;
}

/* __fault_crash(): the process dies as it would on a crash in a C library. */
static int fault_crash(lua_State *L)
{
    (void)L;
    abort();
}

/* ---- agentcore.core -------------------------------------------------------------------------- */

void ac_lua_push_array_mt(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_array_mt); /* mt */
}

static int open_core(lua_State *L)
{
    lua_createtable(L, 0, 2);         /* core */
    lua_pushlightuserdata(L, NULL);   /* core null */
    lua_setfield(L, -2, "null");      /* core */
    ac_lua_push_array_mt(L);          /* core mt */
    lua_setfield(L, -2, "array_mt");  /* core */
    return 1;
}

/* ---- state setup ----------------------------------------------------------------------------- */

/* Replaces t[name] (t at -1) by the closure fn over the original (upvalue 1) and, when tag >= 0,
 * the tag (upvalue 2). */
static void wrap(lua_State *L, const char *name, lua_CFunction fn, int tag)
{
    lua_getfield(L, -1, name); /* t orig */
    int n = 1;
    if (tag >= 0) {
        lua_pushinteger(L, tag); /* t orig tag */
        n = 2;
    }
    lua_pushcclosure(L, fn, n); /* t wrapper */
    lua_setfield(L, -2, name);  /* t */
}

static void set_fn(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);  /* t fn */
    lua_setfield(L, -2, name); /* t */
}

static void open_libs(lua_State *L)
{
    static const struct {
        const char *name;
        lua_CFunction open;
    } libs[] = {{LUA_GNAME, luaopen_base}, {LUA_TABLIBNAME, luaopen_table},
                {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                {LUA_UTF8LIBNAME, luaopen_utf8}};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].open, 1); /* lib */
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);                                /* G */
    lua_getfield(L, -1, "error");                          /* G error */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_error);  /* G */
    static const char *const removed[] = {"dofile", "loadfile", "load", "collectgarbage", "warn",
                                          "require"};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        lua_pushnil(L);                  /* G nil */
        lua_setfield(L, -2, removed[i]); /* G */
    }
    set_fn(L, "pcall", sb_pcall);
    set_fn(L, "xpcall", sb_xpcall);
    set_fn(L, "require", ac_lua_require);
    wrap(L, "setmetatable", sb_setmetatable, -1);
    wrap(L, "rawset", sb_rawset, -1);
    if (ac_fault("lua.stall"))
        set_fn(L, "__fault_stall", fault_stall);
    if (ac_fault("lua.crash"))
        set_fn(L, "__fault_crash", fault_crash);

    lua_getfield(L, -1, LUA_STRLIBNAME); /* G string */
    lua_pushnil(L);                      /* G string nil */
    lua_setfield(L, -2, "dump");         /* G string */
    wrap(L, "rep", sb_rep, -1);
    wrap(L, "find", sb_pattern, PAT_FIND);
    wrap(L, "match", sb_pattern, PAT_MATCH);
    wrap(L, "gmatch", sb_pattern, PAT_GMATCH);
    wrap(L, "gsub", sb_pattern, PAT_GSUB);
    lua_pop(L, 1);                       /* G */

    lua_getfield(L, -1, LUA_TABLIBNAME); /* G table */
    wrap(L, "move", sb_move, -1);
    lua_pop(L, 1);                       /* G */

    lua_getfield(L, -1, LUA_MATHLIBNAME); /* G math */
    lua_pushnil(L);                       /* G math nil: no table to recognise ':' calls by */
    lua_pushcclosure(L, ac_lua_random, 1); /* G math random */
    lua_setfield(L, -2, "random");
    set_fn(L, "randomseed", sb_randomseed);
    lua_pop(L, 1);                        /* G */

    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0); /* G os */
    lua_createtable(L, 0, 2);           /* G os safe */
    lua_getfield(L, -2, "time");        /* G os safe time */
    lua_setfield(L, -2, "time");        /* G os safe */
    lua_getfield(L, -2, "clock");       /* G os safe clock */
    lua_setfield(L, -2, "clock");       /* G os safe */
    lua_setfield(L, -3, LUA_OSLIBNAME); /* G os */
    lua_pop(L, 2);                      /* (empty) */
}

int ac_lua_open_sandbox(lua_State *L)
{
    lua_newtable(L);                                       /* set */
    lua_createtable(L, 0, 1);                              /* set mt */
    lua_pushliteral(L, "k");                               /* set mt "k" */
    lua_setfield(L, -2, "__mode");                         /* set mt */
    lua_setmetatable(L, -2);                               /* set */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_frozen); /* (empty) */
    lua_newtable(L);                                         /* array_mt: empty, so that no */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_array_mt); /* metamethod hides in it */

    open_libs(L);

    lua_newtable(L);                                   /* cache */
    ac_lua_open_cjson(L);                              /* cache cjson */
    ac_lua_freeze(L, -1);
    lua_setfield(L, -2, "cjson");                      /* cache */
    open_core(L);                                      /* cache core */
    ac_lua_freeze(L, -1);
    lua_setfield(L, -2, "agentcore.core");             /* cache */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_loaded); /* (empty) */
    ac_lua_push_array_mt(L);                           /* array_mt */
    ac_lua_freeze(L, -1);
    lua_pop(L, 1);
    make_episode_rng(L);

    lua_pushglobaltable(L); /* G */
    ac_lua_freeze(L, -1);   /* G and every library table in it */

    /* Lookups skip the frozen facades: an env's misses and string methods read the hidden
     * tables directly (both metatables are out of the plugins' reach). */
    lua_createtable(L, 0, 2);                            /* G envmt */
    ac_lua_frozen_contents(L, -2);                       /* G envmt Gh */
    lua_setfield(L, -2, "__index");                      /* G envmt */
    lua_pushboolean(L, 0);                               /* G envmt false */
    lua_setfield(L, -2, "__metatable");                  /* G envmt */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_lua_key_env_mt); /* G */

    lua_pushliteral(L, "");             /* G "" */
    lua_getmetatable(L, -1);            /* G "" smt */
    lua_getfield(L, -3, LUA_STRLIBNAME); /* G "" smt string */
    ac_lua_frozen_contents(L, -1);      /* G "" smt string stringh */
    lua_setfield(L, -3, "__index");     /* G "" smt string */
    lua_pop(L, 1);                      /* G "" smt */
    lua_pushboolean(L, 0);              /* G "" smt false */
    lua_setfield(L, -2, "__metatable"); /* G "" smt: getmetatable("") is false */
    lua_pop(L, 3);
    return 0;
}
