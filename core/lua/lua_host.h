/* The Lua host: one sandboxed Lua 5.4 state with per-call limits, JSON <-> Lua conversion and a
 * registry of plugin files that reloads a plugin when its file changes.
 *
 * Threads: a host is NOT thread-safe. Create one per thread (about 60 µs and 20 KB) and never
 * hand it, or anything obtained from it (plugin handles, episodes, the lua_State), to another
 * thread. Each thread therefore loads its own copy of every plugin it uses.
 *
 * Sandbox (docs/plugins.md, "The sandbox"): base without dofile/loadfile/load/collectgarbage/warn,
 * with pcall/xpcall that cannot catch a limit and setmetatable that refuses __gc; table; string
 * without dump and with guarded find/match/gmatch/gsub/rep; math; utf8; os.time and os.clock;
 * our own text-only `require`; `cjson` and `agentcore.core` (null, array_mt) preloaded. Every
 * module and plugin file runs with its own global table whose misses read the shared globals. */
#ifndef AC_LUA_HOST_H
#define AC_LUA_HOST_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Per-call limits. A call is one ac_lua_host_pcall (one plugin function, one plugin load).
 * A field set to 0 disables that limit. */
typedef struct ac_lua_limits {
    uint64_t max_instructions;   /* VM instructions per call (counted every AC_LUA_HOOK_EVERY) */
    uint32_t max_wall_ms;        /* wall clock per call, checked with the instruction count */
    size_t max_call_bytes;       /* how much the state may grow during one call */
    size_t max_state_bytes;      /* how much the state may hold at any time */
    double max_pattern_cost;     /* worst-case steps of one string.find/match/gmatch/gsub */
    size_t max_string_bytes;     /* largest string.rep result */
    uint32_t reload_interval_ms; /* a plugin's file is stat()ed at most this often */
} ac_lua_limits_t;

/* Defaults (measured on the 2-core build machine; docs/plugins.md explains each): 50M
 * instructions (0.2-0.4 s of plain Lua), 2000 ms, 128 MiB per call, 256 MiB per state, pattern
 * cost 1e8 (0.2-0.3 s at worst inside one pattern call), string.rep 16 MiB, reload 1000 ms. */
#define AC_LUA_DEFAULT_LIMITS {50000000u, 2000u, (size_t)128 << 20, (size_t)256 << 20, 1e8, \
                               (size_t)16 << 20, 1000u}

/* The instruction hook runs every this many VM instructions. */
#define AC_LUA_HOOK_EVERY 1000
/* JSON handed across the boundary: nesting depth and number of values per conversion. */
#define AC_LUA_JSON_MAX_DEPTH 128
#define AC_LUA_JSON_MAX_VALUES 1000000
/* Plugin names match ^[a-z0-9_-]+$ and are at most this long. */
#define AC_LUA_PLUGIN_NAME_MAX 64

typedef struct ac_lua_host ac_lua_host_t;

/* Creates a host. lua_dir holds the runtime library (agentcore/init.lua), plugins_dir holds
 * agents/, rewards/, validators/ (both are copied). limits may be NULL for the defaults.
 * Returns NULL and fills err when the directories are missing or memory runs out. */
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

/* ---- JSON <-> Lua (the rules of the plugin contract) -------------------------------------- */

/* Pushes v onto L: objects become tables with string keys, arrays become tables 1..n with the
 * metatable agentcore.array_mt (so that even empty ones go back out as []), integers stay
 * integers, reals stay floats, null becomes agentcore.null (the light userdata NULL, which is also
 * cjson.null). NULL pushes nil. Raises a Lua error past AC_LUA_JSON_MAX_DEPTH or when memory
 * runs out: call it only inside ac_lua_host_pcall. */
void ac_lua_push_json(lua_State *L, const json_t *v);

/* Converts the value at idx to a new JSON reference. Tables with keys exactly 1..n, or with
 * agentcore.array_mt, are arrays; other tables are objects and need string keys. Rejects NaN and
 * infinities, invalid UTF-8, cycles, functions/userdata, nesting past AC_LUA_JSON_MAX_DEPTH and
 * more than AC_LUA_JSON_MAX_VALUES values. nil converts to null. Uses raw access only (no
 * metamethods) and never raises, so it may run outside protected mode. Returns NULL and fills
 * err (the message names the place: "NaN is not valid JSON (at result.items[3])"). */
json_t *ac_lua_to_json(lua_State *L, int idx, ac_err_t *err);
/* The same, naming the converted value `root` in messages ("result", "params"). */
json_t *ac_lua_to_json_named(lua_State *L, int idx, const char *root, ac_err_t *err);

/* ---- plugins --------------------------------------------------------------------------------- */

/* One loaded version of one plugin file, shared by reference count. A lookup returns the newest
 * good version; a version stays alive (with its Lua table) until every holder released it. */
typedef struct ac_lua_plugin ac_lua_plugin_t;

/* What a plugin kind needs from the registry. */
typedef struct ac_lua_plugin_kind {
    const char *dir;  /* sub-directory of plugins_dir ("agents"); also used in messages */
    size_t size;      /* bytes of typed data kept with each version, zeroed before check */
    /* Checks the module table at index `module` (name and version already checked) and fills
     * data. Runs in protected mode: reports a contract violation with ac_lua_plugin_fail. */
    void (*check)(lua_State *L, int module, ac_lua_plugin_t *p, void *data);
    /* Frees what check stored in data; also runs after a failed check. May be NULL. */
    void (*fini)(lua_State *L, void *data);
} ac_lua_plugin_kind_t;

/* Returns a new reference to the current version of <plugins_dir>/<kind->dir>/<name>.lua,
 * loading it first when it is new or its file changed (stat() at most once per
 * reload_interval_ms). A version that fails to load or to pass the contract check does not
 * replace a working one: the lookup fails with its message (AC_ERR_INTERNAL) while holders of the
 * old version keep using it. An invalid name is AC_ERR_INVALID_PARAMS, a missing file
 * AC_ERR_NOT_FOUND. */
ac_lua_plugin_t *ac_lua_plugin_get(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind,
                                   const char *name, ac_err_t *err);
/* Drops a reference; the last one frees the version. NULL is a no-op. */
void ac_lua_plugin_release(ac_lua_plugin_t *p);
/* Makes the next lookup of every plugin stat() its file (on demand, e.g. an admin request). */
void ac_lua_host_recheck_plugins(ac_lua_host_t *h);

void *ac_lua_plugin_data(ac_lua_plugin_t *p);
ac_lua_host_t *ac_lua_plugin_host(const ac_lua_plugin_t *p);
const char *ac_lua_plugin_name(const ac_lua_plugin_t *p);    /* the file name ("calculator") */
const char *ac_lua_plugin_version(const ac_lua_plugin_t *p); /* the module's `version` */
const char *ac_lua_plugin_path(const ac_lua_plugin_t *p);    /* "plugins/agents/calculator.lua" */

/* Helpers for kind->check (protected mode only). */
/* Raises "<path>: <message>" without a traceback location. */
int ac_lua_plugin_fail(lua_State *L, const ac_lua_plugin_t *p, const char *fmt, ...);
/* Returns a registry reference to module[field], which must be a function; else fails with
 * "missing function 'field'" or "'field' must be a function (got string)". */
int ac_lua_plugin_fn_ref(lua_State *L, int module, const ac_lua_plugin_t *p, const char *field);
/* Drops a reference taken by ac_lua_plugin_fn_ref (refs <= 0 are ignored); never raises. */
void ac_lua_unref(lua_State *L, int ref);

#endif
