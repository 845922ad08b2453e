/* The plugin registry: plugin files by kind and name, each loaded version shared by reference
 * count and replaced when its file changes. See registry.h. */
#include "lua/registry.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "base/clock.h"
#include "lua/host_internal.h"

struct ac_lua_plugin {
    ac_lua_host_t *host;
    ac_lua_plugin_t *prev, *next; /* every live version of the host */
    const ac_lua_plugin_kind_t *kind;
    int refs;
    int module_ref; /* the module table in the registry */
    ac_lua_sig_t sig;
    char *version;
    void *data; /* (kind->size) */
    char name[AC_LUA_PLUGIN_NAME_MAX + 1];
    char path[AC_LUA_PLUGIN_NAME_MAX + 64]; /* "plugins/<dir>/<name>.lua" */
};

/* One plugin file the host has looked up. */
typedef struct ac_lua_entry {
    struct ac_lua_entry *next;
    const ac_lua_plugin_kind_t *kind;
    ac_lua_plugin_t *current; /* the registry's reference; NULL until a version loaded */
    uint64_t checked_ns;      /* when the file was last stat()ed; 0 forces a check */
    int failed;               /* failed_sig failed to load; lookups report failed_err */
    ac_lua_sig_t failed_sig;
    int failed_code;
    char failed_msg[sizeof(((ac_err_t *)0)->message)];
    char name[AC_LUA_PLUGIN_NAME_MAX + 1];
} entry_t;

int ac_lua_plugin_find(const char *search_path, const char *sub, const char *name, char *out, size_t len,
                       char *searched, size_t searched_len)
{
    size_t used = 0;
    if (searched && searched_len)
        searched[0] = '\0';
    for (const char *d = search_path; *d;) {
        const char *end = strchr(d, ':');
        size_t dl = end ? (size_t)(end - d) : strlen(d);
        if (dl > 0) {
            snprintf(out, len, "%.*s%s%s/%s.lua", (int)dl, d, sub[0] ? "/" : "", sub, name);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
                return 1;
            if (searched && used < searched_len)
                used += (size_t)snprintf(searched + used, searched_len - used, "%s%.*s%s%s", used ? ", " : "",
                                         (int)dl, d, sub[0] ? "/" : "", sub);
        }
        d += dl + (end != NULL);
    }
    return 0;
}

void *ac_lua_plugin_data(ac_lua_plugin_t *p) { return p->data; }
ac_lua_host_t *ac_lua_plugin_host(const ac_lua_plugin_t *p) { return p->host; }
const char *ac_lua_plugin_name(const ac_lua_plugin_t *p) { return p->name; }
const char *ac_lua_plugin_version(const ac_lua_plugin_t *p) { return p->version; }
const char *ac_lua_plugin_path(const ac_lua_plugin_t *p) { return p->path; }

int ac_lua_plugin_fail(lua_State *L, const ac_lua_plugin_t *p, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s: %s", p->path, msg); /* err */
    return lua_error(L);
}

int ac_lua_plugin_fn_ref(lua_State *L, int module, const ac_lua_plugin_t *p, const char *field)
{
    int t = lua_getfield(L, module, field); /* fn */
    if (t == LUA_TNIL)
        ac_lua_plugin_fail(L, p, "missing function '%s'", field);
    if (t != LUA_TFUNCTION)
        ac_lua_plugin_fail(L, p, "'%s' must be a function (got %s)", field, lua_typename(L, t));
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void version_free(ac_lua_plugin_t *p)
{
    ac_lua_host_t *h = p->host;
    if (p->kind->fini)
        p->kind->fini(h->L, p->data);
    ac_lua_unref(h->L, p->module_ref);
    if (p->prev)
        p->prev->next = p->next;
    else
        h->versions = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p->data);
    free(p->version);
    free(p);
}

void ac_lua_plugin_release(ac_lua_plugin_t *p)
{
    if (p == NULL)
        return;
    assert(p->refs > 0); /* a release without a matching lookup */
    if (--p->refs == 0)
        version_free(p);
}

static int plugin_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!(islower((unsigned char)name[n]) || isdigit((unsigned char)name[n]) ||
              name[n] == '_' || name[n] == '-'))
            return 0;
    return n > 0 && n <= AC_LUA_PLUGIN_NAME_MAX;
}

static int sig_equal(const ac_lua_sig_t *a, const ac_lua_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

typedef struct load_ctx {
    ac_lua_plugin_t *p;
    const char *file;
} load_ctx_t;

/* Loads, runs and checks a plugin file; the version's fields are filled in place so that a
 * failure anywhere leaves nothing the caller cannot free. */
static int plugin_load_k(lua_State *L)
{
    load_ctx_t *c = lua_touserdata(L, 1);
    ac_lua_plugin_t *p = c->p;
    ac_lua_load_file(L, c->file, p->path, &p->sig); /* chunk */
    lua_call(L, 0, 1);                          /* module */
    int module = lua_gettop(L);
    if (!lua_istable(L, module))
        ac_lua_plugin_fail(L, p, "must return a table (got %s)", luaL_typename(L, module));
    static const char *const fields[] = {"name", "version"};
    for (int i = 0; i < 2; i++) {
        int t = lua_getfield(L, module, fields[i]); /* module v */
        if (t == LUA_TNIL)
            ac_lua_plugin_fail(L, p, "missing field '%s'", fields[i]);
        if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            ac_lua_plugin_fail(L, p, "'%s' must be a non-empty string", fields[i]);
        if (i == 1 && (p->version = strdup(lua_tostring(L, -1))) == NULL)
            ac_lua_plugin_fail(L, p, "out of memory");
        lua_pop(L, 1); /* module */
    }
    p->kind->check(L, module, p, p->data);
    lua_settop(L, module);                          /* module */
    p->module_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* (empty) */
    return 0;
}

static entry_t *entry_find(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind,
                                     const char *name)
{
    for (entry_t *e = h->entries; e; e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* Only for files that exist: client-supplied names cannot grow the list. NULL: out of memory. */
static entry_t *entry_add(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind, const char *name)
{
    entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->kind = kind;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->next = h->entries;
    h->entries = e;
    return e;
}

/* A new, not yet loaded version on the host's list (one reference: the loader's). */
static ac_lua_plugin_t *version_new(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind, const char *name)
{
    ac_lua_plugin_t *p = calloc(1, sizeof *p);
    void *data = calloc(1, kind->size ? kind->size : 1);
    if (p == NULL || data == NULL) {
        free(p);
        free(data);
        return NULL;
    }
    p->host = h;
    p->kind = kind;
    p->data = data;
    p->refs = 1;
    p->module_ref = LUA_NOREF;
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->path, sizeof p->path, "plugins/%s/%s.lua", kind->dir, name);
    p->next = h->versions;
    if (h->versions)
        h->versions->prev = p;
    h->versions = p;
    return p;
}

ac_lua_plugin_t *ac_lua_plugin_get(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind,
                                   const char *name, ac_err_t *err)
{
    if (!plugin_name_ok(name)) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "bad plugin name '%.64s' (want ^[a-z0-9_-]+$, at "
                   "most %d characters)", name, AC_LUA_PLUGIN_NAME_MAX);
        return NULL;
    }
    entry_t *e = entry_find(h, kind, name);
    uint64_t now = (uint64_t)ac_clock_mono_ns();
    if (e && e->current && e->checked_ns &&
        now - e->checked_ns < h->limits.reload_interval_ms * 1000000ull) {
        e->current->refs++;
        return e->current;
    }
    char file[PATH_MAX + 200], searched[1024];
    struct stat st;
    if (!ac_lua_plugin_find(h->plugins_dir, kind->dir, name, file, sizeof file, searched, sizeof searched)) {
        ac_err_set(err, AC_ERR_NOT_FOUND, "plugins/%s/%s.lua: no such plugin (searched %s)", kind->dir, name,
                   searched);
        return NULL;
    }
    if (stat(file, &st) != 0) {
        ac_err_set(err, AC_ERR_INTERNAL, "plugins/%s/%s.lua: %s", kind->dir, name, strerror(errno));
        return NULL;
    }
    if (e == NULL && (e = entry_add(h, kind, name)) == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    e->checked_ns = now;
    ac_lua_sig_t sig = {st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    if (e->current && sig_equal(&sig, &e->current->sig)) {
        e->current->refs++;
        return e->current;
    }
    if (e->failed && sig_equal(&sig, &e->failed_sig)) {
        ac_err_set(err, e->failed_code, "%s", e->failed_msg);
        return NULL;
    }
    ac_lua_plugin_t *p = version_new(h, kind, name);
    if (p == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    load_ctx_t c = {p, file};
    ac_err_t lerr = AC_ERR_INIT;
    if (ac_lua_host_pcall(h, plugin_load_k, &c, p->path, &lerr) != 0) {
        e->failed = 1;
        e->failed_sig = p->sig.size || p->sig.ino ? p->sig : sig; /* what was read, if it was */
        e->failed_code = lerr.code;
        snprintf(e->failed_msg, sizeof e->failed_msg, "%s", lerr.message);
        version_free(p);
        if (err) {
            ac_err_clear(err);
            *err = lerr;
        } else {
            ac_err_clear(&lerr);
        }
        return NULL;
    }
    e->failed = 0;
    ac_lua_plugin_release(e->current); /* holders of the old version keep it */
    e->current = p;                    /* the registry's reference */
    p->refs++;                         /* the caller's */
    return p;
}

void ac_lua_host_recheck_plugins(ac_lua_host_t *h)
{
    for (entry_t *e = h->entries; e; e = e->next)
        e->checked_ns = 0;
}

void ac_lua_registry_clear(ac_lua_host_t *h)
{
    while (h->entries) {
        entry_t *e = h->entries;
        h->entries = e->next;
        ac_lua_plugin_release(e->current);
        free(e);
    }
    while (h->versions) /* handles still held: their owner broke the contract of destroy */
        version_free(h->versions);
}
