/* What the files of the Lua host share with each other, and nothing outside core/lua/ uses:
 * the host struct, the registry keys, and the pieces of the sandbox.
 *
 *   lua_host.c  the state, its allocator and instruction hook (the limits), protected calls
 *   sandbox.c   the built-in globals a plugin gets, read-only library tables
 *   require.c   loading files as chunks with their own globals, and `require`
 *   pattern.c   the cost bound that guards string.find/match/gmatch/gsub
 *   lua_json.c  JSON <-> Lua, and the sandbox's cjson
 *   registry.c  plugin files by kind and name, reloaded when they change */
#ifndef AC_LUA_HOST_INTERNAL_H
#define AC_LUA_HOST_INTERNAL_H

#include <sys/types.h>
#include <time.h>

#include "base/rng.h"
#include "lua/lua_host.h"

/* Registry keys: the addresses are unique, their contents unused. */
extern const char ac_lua_key_array_mt; /* agentcore.array_mt (read-only, empty) */
extern const char ac_lua_key_loaded;   /* require's cache: name -> module */
extern const char ac_lua_key_loading;  /* marks a module whose chunk is running (require loops) */
extern const char ac_lua_key_env_mt;   /* {__index = built-in globals}: the metatable of each env */
extern const char ac_lua_key_error;    /* the base library's error() */
extern const char ac_lua_key_frozen;   /* weak set of the read-only tables */
extern const char ac_lua_key_rng;      /* the episode generator object (ctx.rng) */

/* What a file looked like when it was read: a reload happens when this changes. */
typedef struct ac_lua_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} ac_lua_sig_t;

struct ac_lua_entry;
struct ac_lua_plugin;

#define AC_LUA_POOL_CLASSES 16 /* lua_alloc keeps freed blocks of 16, 32, ... 256 bytes */

struct ac_lua_host {
    lua_State *L;
    ac_lua_limits_t limits;
    char *lua_dir, *plugins_dir;
    /* the allocator */
    size_t mem_used;
    size_t mem_cap;    /* what the allocator grants now: the state cap, or the running call's */
    int in_msgh;       /* the message handler runs: grant AC_LUA_MSGH_SLACK more */
    unsigned cap_hits; /* allocations the cap refused during the running call */
    void *_pool[AC_LUA_POOL_CLASSES]; /* lua_alloc's kept blocks: a free list per size class */
    size_t _pool_bytes;
    /* the running call */
    int depth;
    uint64_t instr_used;
    uint64_t deadline_ns;
    const char *abort_what; /* set once a limit ended the call: nothing in Lua may catch it */
    char abort_msg[160];
    int interrupted;        /* the last call ended because watch->interrupt was set */
    ac_lua_watch_t *watch;  /* may be NULL */
    /* math.random: the running episode's generator, or (rng NULL) one reseeded at every call
     * with a fixed seed, so that calls outside episodes are reproducible too */
    ac_rng_t *rng;
    ac_rng_t call_rng;
    /* plugins (registry.c) */
    struct ac_lua_entry *entries;
    struct ac_lua_plugin *versions;
};

static inline ac_lua_host_t *ac_lua_host_of(lua_State *L)
{
    return *(ac_lua_host_t **)lua_getextraspace(L);
}

/* The generator math.random draws from now. */
static inline ac_rng_t *ac_lua_host_rng(ac_lua_host_t *h)
{
    return h->rng ? h->rng : &h->call_rng;
}

/* sandbox.c: sets up the globals of a fresh state (a lua_CFunction: run it protected). */
int ac_lua_open_sandbox(lua_State *L);
/* Makes the table at idx read-only for plugins, and every table reachable from its fields
 * (see sandbox.c). Raises only when memory runs out. */
void ac_lua_freeze(lua_State *L, int idx);
/* Pushes the hidden table of the read-only table at idx and returns 1, or pushes nothing and
 * returns 0 when that table is not read-only. */
int ac_lua_frozen_contents(lua_State *L, int idx);
/* Puts the hidden table in place of the read-only table at idx (nothing for another value): what
 * the host reads with raw access (lengths, next, rawgeti) then sees its fields, as plugins do
 * through pairs and #. A plugin may hand the host a module's table (tools = other.tools). */
void ac_lua_thaw(lua_State *L, int idx);
/* math.random over the host's current generator (upvalue 1: a table that, passed first, is
 * skipped, for obj:random() calls; nil when none). */
int ac_lua_random(lua_State *L);
/* Pushes agentcore.array_mt. */
void ac_lua_push_array_mt(lua_State *L);

/* require.c */
/* Pushes the text chunk read from path, named "@<chunkname>", with a fresh environment, and
 * fills sig (may be NULL) from the file that was read. Raises on error; leaks nothing then. */
void ac_lua_load_file(lua_State *L, const char *path, const char *chunkname, ac_lua_sig_t *sig);
/* Sets a fresh global table (misses read the built-in globals) as _ENV of the function at -1. */
void ac_lua_set_fresh_env(lua_State *L);
/* require(name) for the sandbox. */
int ac_lua_require(lua_State *L);

/* pattern.c: an upper bound on the steps Lua's matcher can take for subject s (n bytes) and
 * pattern p (m bytes); anchors: whether '^' anchors (not for gmatch). Stops refining once the
 * bound is known to exceed limit. */
double ac_lua_pattern_cost(const char *s, size_t n, const char *p, size_t m, int anchors,
                           double limit);

/* registry.c: frees every entry and version (ac_lua_host_destroy's part). */
void ac_lua_registry_clear(ac_lua_host_t *h);

#endif
