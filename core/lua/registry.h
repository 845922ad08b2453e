/* The plugin registry of a Lua host: plugin files by kind and name, loaded on first use and
 * reloaded when their file changes, each loaded version shared by reference count.
 *
 * Like the host it belongs to, a registry is used by one thread. */
#ifndef AC_LUA_REGISTRY_H
#define AC_LUA_REGISTRY_H

#include <lua.h>
#include <stddef.h>

#include "base/err.h"
#include "lua/lua_host.h"

/* Plugin names match ^[a-z0-9_-]+$ and are at most this long. */
#define AC_LUA_PLUGIN_NAME_MAX 64

/* Plugin directories form a search path: "dir1:dir2:..." (user directories first, the built-in
 * one last). Finds <dir>/<sub>/<name>.lua in the first directory that has it (sub may be "" for
 * a module path like "a/b") and writes it to out. Returns 1 when found; 0 when not, with
 * `searched` (may be NULL) listing every place looked at ("/srv/p/agents, /usr/share/.../agents"). */
int ac_lua_plugin_find(const char *search_path, const char *sub, const char *name, char *out, size_t len,
                       char *searched, size_t searched_len);

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
int ac_lua_plugin_fail(lua_State *L, const ac_lua_plugin_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns a registry reference to module[field], which must be a function; else fails with
 * "missing function 'field'" or "'field' must be a function (got string)". */
int ac_lua_plugin_fn_ref(lua_State *L, int module, const ac_lua_plugin_t *p, const char *field);

#endif
