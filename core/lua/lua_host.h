/* The Lua host: one sandboxed Lua 5.4 state with per-call limits that plugin code cannot catch,
 * escape or outlast.
 *
 * Threads: a host is NOT thread-safe. Create one per job (or per call) on the thread that uses
 * it and never hand it, or anything obtained from it (plugin handles, episodes, the lua_State),
 * to another thread. Hosts share nothing: no state, library table or metatable is common to two
 * hosts, so one job's plugins cannot change what another job's plugins see. The only thing
 * another thread may touch is the watch (ac_lua_watch_t) the host reports to.
 *
 * Sandbox (docs/plugins.md, "The sandbox"): base without dofile/loadfile/load/collectgarbage/warn,
 * with pcall/xpcall that cannot catch a limit (nor run their message handler once a limit ended
 * the call) and setmetatable that refuses __gc; table; string without dump and with guarded
 * find/match/gmatch/gsub/rep; math (random draws from the running episode's generator); utf8;
 * os.time and os.clock; our own text-only `require`;
 * `cjson` (encode and decode only, fixed limits) and `agentcore.core` (null, array_mt). Library
 * tables, the modules `require` returns and agentcore.array_mt are read-only (writes and rawset
 * raise). Every module and plugin file runs with its own global table whose misses read the
 * built-in globals. */
#ifndef AC_LUA_HOST_H
#define AC_LUA_HOST_H

#include <lua.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"

/* Per-call limits. A call is one ac_lua_host_pcall (one plugin function, one plugin load).
 * A field set to 0 disables that limit. */
typedef struct ac_lua_limits {
    uint64_t max_instructions;   /* VM instructions per call (counted every AC_LUA_HOOK_EVERY) */
    uint32_t max_wall_ms;        /* wall clock per call, checked with the instruction count */
    size_t max_call_bytes;       /* how much the state may grow during one call */
    size_t max_state_bytes;      /* how much the state may hold at any time */
    double max_pattern_cost;     /* worst-case steps of one string.find/match/gmatch/gsub */
    size_t max_string_bytes;     /* largest string.rep result, and cjson.encode output */
    uint32_t reload_interval_ms; /* a plugin's file is stat()ed at most this often */
    /* what a plugin hands back (ac_lua_to_json_limited; the rollout applies them, and counts a
     * plugin that passes one as a plugin failure) */
    size_t max_observation_bytes; /* agent.observe's text */
    size_t max_result_bytes;      /* one JSON value a plugin returns (a step's params or result,
                                     a final answer), as JSON text */
    size_t max_trajectory_bytes;  /* one episode's observations, params and results together */
} ac_lua_limits_t;

/* Defaults (measured on the 2-core build machine; docs/plugins.md explains each): 50M
 * instructions (0.2-0.4 s of plain Lua), 2000 ms, 128 MiB per call, 256 MiB per state, pattern
 * cost 1e8 (0.2-0.3 s at worst inside one pattern call), string.rep 16 MiB, reload 1000 ms,
 * observation 64 KiB, one result 1 MiB, one trajectory 8 MiB. */
#define AC_LUA_DEFAULT_LIMITS {50000000u, 2000u, (size_t)128 << 20, (size_t)256 << 20, 1e8, \
                               (size_t)16 << 20, 1000u, (size_t)64 << 10, (size_t)1 << 20, \
                               (size_t)8 << 20}

/* The instruction hook runs every this many VM instructions. */
#define AC_LUA_HOOK_EVERY 1000

/* What another thread may see of a host and do to it (a watchdog, a cancel): owned by the
 * caller, outlives the hosts that report to it, every field atomic. */
typedef struct ac_lua_watch {
    _Atomic uint64_t deadline_ns; /* monotonic time the running call must end by; 0: no call */
    atomic_int interrupt;         /* set: the running and every later call raise at the next hook */
} ac_lua_watch_t;

typedef struct ac_lua_host ac_lua_host_t;

/* Creates a host. lua_dir holds the runtime library (agentcore/init.lua); plugins_dir is a search
 * path of directories holding agents/, rewards/, validators/, webhooks/ ("dir1:dir2", the first
 * that has a plugin wins; both are copied). limits may be NULL for the
 * defaults. Returns NULL and fills err when the directories are missing or memory runs out. */
ac_lua_host_t *ac_lua_host_create(const char *lua_dir, const char *plugins_dir,
                                  const ac_lua_limits_t *limits, ac_err_t *err);

/* Closes the state and frees every plugin version, including those still held: release every
 * handle and free every episode first. NULL is a no-op. */
void ac_lua_host_destroy(ac_lua_host_t *h);

/* The state, for code that runs inside ac_lua_host_pcall. Never call into Lua through it
 * directly: only ac_lua_host_pcall applies the limits and catches errors. */
lua_State *ac_lua_host_state(ac_lua_host_t *h);

const ac_lua_limits_t *ac_lua_host_limits(const ac_lua_host_t *h);
/* Replaces the limits from the next call on (e.g. a larger budget to validate a big data set). */
void ac_lua_host_set_limits(ac_lua_host_t *h, const ac_lua_limits_t *limits);

/* Makes the host publish each call's deadline to w and obey w->interrupt (NULL: stop). w must
 * outlive the host or be detached first. */
void ac_lua_host_set_watch(ac_lua_host_t *h, ac_lua_watch_t *w);

/* What math.random draws from in the next calls: rng (owned by the caller, e.g. an episode's;
 * it must outlive its use), or with NULL a generator reseeded at each call from a fixed seed.
 * Reproducible either way: the same calls in the same order give the same numbers. */
void ac_lua_host_use_rng(ac_lua_host_t *h, ac_rng_t *rng);

/* Pushes the object plugins get as ctx.rng: next(), int(lo, hi), pick(list), random(...),
 * drawing from the generator ac_lua_host_use_rng set. Inside ac_lua_host_pcall only. */
void ac_lua_push_episode_rng(lua_State *L);

/* Whether the last failed call ended because w->interrupt was set (not a plugin's fault). */
int ac_lua_host_interrupted(const ac_lua_host_t *h);

/* Bytes the state holds now (as counted by its allocator). */
size_t ac_lua_host_memory(const ac_lua_host_t *h);

/* Runs fn(ud) in protected mode under the limits, with a message handler that adds a traceback.
 * fn receives ud as a light userdata at index 1 and passes results back through ud; the stack
 * is restored afterwards. Whatever fn allocates with malloc must be stored in ud at once, so that
 * the caller can free it when the call fails (fn may be interrupted by any Lua error).
 * what names the call in messages that carry no file:line (memory errors), e.g. the plugin path.
 * Returns 0, or -1 with err->message = the error's first line ("plugins/agents/x.lua:12: boom")
 * and err->data = {"traceback": "..."} for Lua errors. After a memory error the state has been
 * fully collected; after any error it stays usable for the next call. */
int ac_lua_host_pcall(ac_lua_host_t *h, lua_CFunction fn, void *ud, const char *what,
                      ac_err_t *err);

/* Loads code (text only) as a chunk named chunkname ("=name" or "@path" as in Lua) with its own
 * global table, runs it under the limits and converts its first result to JSON.
 * result may be NULL; else *result receives a new reference (JSON null when the chunk returns
 * nothing). For tests, experiment scripts and tools. */
int ac_lua_host_run(ac_lua_host_t *h, const char *code, const char *chunkname, json_t **result,
                    ac_err_t *err);

/* Drops a registry reference (refs <= 0 are ignored); never raises. */
void ac_lua_unref(lua_State *L, int ref);

#endif
