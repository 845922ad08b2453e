/* The Lua host: the state, its allocator and instruction hook (the limits), protected calls.
 * See lua_host.h; the sandbox is set up by sandbox.c. */
#include "lua/lua_host.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "base/clock.h"
#include "lua/host_internal.h"
#include "lua/lua_json.h"
#include "lua/registry.h"

/* Room the message handler may use past the memory cap, so that a traceback can still be built
 * for an error raised at the cap. */
#define MSGH_SLACK ((size_t)1 << 20)
#define INTERRUPTED "interrupted: the job is stopping (cancelled, or the server shuts down)"

/* ---- limits: allocator and instruction hook -------------------------------------------------- */

/* Small blocks (tables, short strings, closures: most of what a plugin call allocates) are kept
 * on per-size free lists when Lua frees them, and handed out again: glibc's own cache holds 7
 * blocks a size, and a collection frees hundreds at once, so the rest went through its bins
 * (malloc_consolidate, unlink_chunk: ~10 % of a rollout's instructions). A kept block is always
 * a whole size class, malloc'd at that size, so that any block of the class can serve any request
 * of it. mem_used still counts what Lua asked for: the limits see the same numbers. */
#define POOL_STEP 16 /* size classes of 16 bytes */
#define POOL_MAX (AC_LUA_POOL_CLASSES * POOL_STEP) /* blocks up to this size are kept */
#define POOL_KEEP ((size_t)2 << 20)   /* at most this many bytes kept: the rest go back to malloc */

static inline size_t pool_class(size_t n) { return (n + POOL_STEP - 1) / POOL_STEP - 1; } /* n >= 1 */

/* A block for n (1..POOL_MAX) bytes, or NULL. */
static void *pool_get(ac_lua_host_t *h, size_t n)
{
    size_t c = pool_class(n);
    void *p = h->_pool[c];
    if (p == NULL)
        return malloc((c + 1) * POOL_STEP);
    h->_pool[c] = *(void **)p;
    h->_pool_bytes -= (c + 1) * POOL_STEP;
    /* the next block of the list was freed long ago, most likely: start fetching it now, or
     * the next call waits on reading its link */
    if (h->_pool[c] != NULL)
        __builtin_prefetch(h->_pool[c], 1);
    return p;
}

/* Gives back a block Lua knew as n bytes: kept when n is small (the block holds at least its
 * class's size: it came from pool_get, or is a larger block Lua shrank), else freed. */
static void pool_put(ac_lua_host_t *h, void *p, size_t n)
{
    size_t c = pool_class(n), sz = (c + 1) * POOL_STEP;
    if (n == 0 || n > POOL_MAX || h->_pool_bytes + sz > POOL_KEEP) {
        free(p);
        return;
    }
    *(void **)p = h->_pool[c];
    h->_pool[c] = p;
    h->_pool_bytes += sz;
}

static void pool_free(ac_lua_host_t *h)
{
    for (size_t c = 0; c < AC_LUA_POOL_CLASSES; c++)
        while (h->_pool[c] != NULL) {
            void *p = h->_pool[c];
            h->_pool[c] = *(void **)p;
            free(p);
        }
    h->_pool_bytes = 0;
}

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ac_lua_host_t *h = ud;
    size_t old = ptr ? osize : 0; /* for a new block osize is the object's type, not a size */
    if (nsize == 0) {
        if (ptr != NULL)
            pool_put(h, ptr, old);
        h->mem_used -= old;
        return NULL;
    }
    if (nsize > old) {
        size_t cap = h->mem_cap + (h->in_msgh ? MSGH_SLACK : 0);
        if (h->mem_used > cap || nsize - old > cap - h->mem_used) {
            h->cap_hits++;
            return NULL; /* Lua collects garbage, retries once, then raises "not enough memory" */
        }
    }
    void *p;
    if (ptr != NULL && old <= POOL_MAX && nsize <= POOL_MAX && pool_class(old) == pool_class(nsize)) {
        p = ptr; /* the block already holds the class */
    } else if (nsize <= POOL_MAX || (ptr != NULL && old <= POOL_MAX)) {
        /* into or out of the kept sizes: a new block, the contents copied */
        p = nsize <= POOL_MAX ? pool_get(h, nsize) : malloc(nsize);
        if (p == NULL) {
            if (ptr != NULL && nsize < old)
                p = ptr; /* Lua counts on shrinking never failing: the old block is large enough */
            else
                return NULL;
        } else if (ptr != NULL) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            pool_put(h, ptr, old);
        }
    } else {
        p = realloc(ptr, nsize);
        if (p == NULL)
            return NULL;
    }
    h->mem_used = h->mem_used - old + nsize;
    return p;
}

/* Raises msg with the file:line of the running Lua function (inside a hook level 0 is that
 * function: the hook has no frame of its own). */
static int raise_here(lua_State *L, const char *msg)
{
    lua_Debug ar;
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg); /* msg */
    else
        lua_pushstring(L, msg); /* msg */
    return lua_error(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    ac_lua_host_t *h = ac_lua_host_of(L);
    (void)ar;
    if (h->abort_what == NULL) {
        h->instr_used += AC_LUA_HOOK_EVERY;
        if (h->watch && atomic_load_explicit(&h->watch->interrupt, memory_order_relaxed)) {
            snprintf(h->abort_msg, sizeof h->abort_msg, "%s", INTERRUPTED);
            h->interrupted = 1;
        } else if (h->limits.max_instructions && h->instr_used > h->limits.max_instructions)
            snprintf(h->abort_msg, sizeof h->abort_msg, "instruction budget exceeded (%llu "
                     "instructions, limits.max_instructions)",
                     (unsigned long long)h->limits.max_instructions);
        else if (h->limits.max_wall_ms && (uint64_t)ac_clock_mono_ns() > h->deadline_ns)
            /* Live data at the memory cap makes every allocation run a full collection: say so,
             * as that, not the Lua code, is then where the time went. */
            snprintf(h->abort_msg, sizeof h->abort_msg, "wall-clock limit exceeded (%u ms, "
                     "limits.max_wall_ms)%s", (unsigned)h->limits.max_wall_ms,
                     h->cap_hits > 100 ? "; the call spent it collecting garbage at its memory "
                                         "cap" : "");
        else
            return;
        h->abort_what = h->abort_msg;
    }
    /* Sticky: raised again at every hook until the call ends, and our pcall re-raises it. */
    raise_here(L, h->abort_what);
}

static void call_begin(ac_lua_host_t *h)
{
    h->instr_used = 0;
    h->cap_hits = 0;
    h->abort_what = NULL;
    h->interrupted = 0;
    ac_rng_seed(&h->call_rng, 0x5eed0fa11ca11ULL); /* "seed of all calls" */
    h->deadline_ns = (uint64_t)ac_clock_mono_ns() + (uint64_t)h->limits.max_wall_ms * 1000000u;
    if (h->watch && h->limits.max_wall_ms)
        atomic_store(&h->watch->deadline_ns, h->deadline_ns);
    size_t state = h->limits.max_state_bytes ? h->limits.max_state_bytes : SIZE_MAX;
    size_t call = h->limits.max_call_bytes;
    h->mem_cap = h->mem_used < state && call && call < state - h->mem_used ? h->mem_used + call
                                                                            : state;
    lua_sethook(h->L, hook, LUA_MASKCOUNT, AC_LUA_HOOK_EVERY); /* restarts the count */
}

static void call_end(ac_lua_host_t *h, int status)
{
    h->in_msgh = 0;
    h->mem_cap = h->limits.max_state_bytes ? h->limits.max_state_bytes : SIZE_MAX;
    if (status == LUA_ERRMEM) {
        /* The failed call's garbage is unreachable now: give it back before the next call.
         * No Lua runs here: setmetatable refuses __gc, so every finalizer is C. */
        lua_gc(h->L, LUA_GCCOLLECT);
    }
    h->abort_what = NULL;
    if (h->watch)
        atomic_store(&h->watch->deadline_ns, 0);
}

/* ---- message handler ------------------------------------------------------------------------- */

/* Whether msg starts with a location: "chunk:123:" or "[string \"...\"]:123:". */
static int has_location(const char *msg)
{
    const char *p = msg;
    if (strncmp(p, "[string \"", 9) == 0) {
        if ((p = strstr(p, "\"]")) == NULL)
            return 0;
        p += 2;
    } else {
        while (*p && *p != ':' && *p != ' ' && *p != '\n')
            p++;
    }
    if (*p != ':' || !isdigit((unsigned char)p[1]))
        return 0;
    for (p++; isdigit((unsigned char)*p); p++)
        ;
    return *p == ':';
}

/* Whether the error was raised by error() itself: error(msg, 0) asks for no position. */
static int raised_by_error(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar)) /* fn */
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_error); /* fn error */
    int r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return r;
}

/* Adds the location of the innermost Lua function when the message has none and was not made
 * so on purpose (errors raised by C functions: "bad argument #1 to 'find'"), then a traceback. */
static int msgh(lua_State *L)
{
    ac_lua_host_of(L)->in_msgh = 1;
    const char *msg = lua_tostring(L, 1);
    int locate = msg == NULL || !raised_by_error(L);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1); /* err str */
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (locate && !has_location(msg)) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
                break; /* ... msg */
            }
        }
    }
    luaL_traceback(L, L, msg, 1); /* ... msg traceback */
    return 1;
}

static int panic(lua_State *L)
{
    /* Unreachable by design (every call is protected); if it happens, say why before abort(). */
    fprintf(stderr, "agentcore: unprotected Lua error: %s\n", lua_tostring(L, -1));
    abort();
}

ac_lua_host_t *ac_lua_host_create(const char *lua_dir, const char *plugins_dir,
                                  const ac_lua_limits_t *limits, ac_err_t *err)
{
    static const ac_lua_limits_t defaults = AC_LUA_DEFAULT_LIMITS;
    struct stat st;
    if (stat(lua_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ac_err_set(err, AC_ERR_INTERNAL, "Lua library directory %s: not found", lua_dir);
        return NULL;
    }
    for (const char *d = plugins_dir; *d;) { /* a search path: every directory must exist */
        const char *end = strchr(d, ':');
        size_t dl = end ? (size_t)(end - d) : strlen(d);
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)dl, d);
        if (dl > 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
            ac_err_set(err, AC_ERR_INTERNAL, "plugins directory %s: not found", dir);
            return NULL;
        }
        d += dl + (end != NULL);
    }
    ac_lua_host_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        goto oom;
    h->limits = limits ? *limits : defaults;
    h->mem_cap = h->limits.max_state_bytes ? h->limits.max_state_bytes : SIZE_MAX;
    h->lua_dir = strdup(lua_dir);
    h->plugins_dir = strdup(plugins_dir);
    if (h->lua_dir == NULL || h->plugins_dir == NULL)
        goto oom;
    h->L = lua_newstate(lua_alloc, h);
    if (h->L == NULL)
        goto oom;
    *(ac_lua_host_t **)lua_getextraspace(h->L) = h;
    lua_atpanic(h->L, panic);
    if (ac_lua_host_pcall(h, ac_lua_open_sandbox, h, "sandbox", err) != 0) {
        ac_lua_host_destroy(h);
        return NULL;
    }
    return h;
oom:
    ac_lua_host_destroy(h);
    ac_err_set(err, AC_ERR_INTERNAL, "Lua host: out of memory");
    return NULL;
}

void ac_lua_host_destroy(ac_lua_host_t *h)
{
    if (h == NULL)
        return;
    ac_lua_registry_clear(h);
    if (h->L) {
        /* no cap and no hook while closing: every finalizer runs (they free C memory) */
        h->mem_cap = SIZE_MAX;
        lua_sethook(h->L, NULL, 0, 0);
        lua_close(h->L);
    }
    pool_free(h);
    free(h->lua_dir);
    free(h->plugins_dir);
    free(h);
}

lua_State *ac_lua_host_state(ac_lua_host_t *h) { return h->L; }
const ac_lua_limits_t *ac_lua_host_limits(const ac_lua_host_t *h) { return &h->limits; }
size_t ac_lua_host_memory(const ac_lua_host_t *h) { return h->mem_used; }
int ac_lua_host_interrupted(const ac_lua_host_t *h) { return h->interrupted; }

void ac_lua_host_set_watch(ac_lua_host_t *h, ac_lua_watch_t *w)
{
    h->watch = w;
}

void ac_lua_host_use_rng(ac_lua_host_t *h, ac_rng_t *rng)
{
    h->rng = rng;
}

void ac_lua_host_set_limits(ac_lua_host_t *h, const ac_lua_limits_t *limits)
{
    h->limits = *limits;
    if (h->depth == 0)
        h->mem_cap = limits->max_state_bytes ? limits->max_state_bytes : SIZE_MAX;
}

/* ---- protected calls ------------------------------------------------------------------------- */

static int call_error(ac_lua_host_t *h, int status, const char *what, ac_err_t *err)
{
    lua_State *L = h->L;
    if (status == LUA_ERRMEM)
        return ac_err_set(err, AC_ERR_INTERNAL,
                          "%s: not enough memory (limits: %zu MiB per call, %zu MiB per state)",
                          what, h->limits.max_call_bytes >> 20, h->limits.max_state_bytes >> 20);
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len); /* the handler always returns a string */
    if (msg == NULL || status == LUA_ERRERR)
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: error while handling an error (%s)", what,
                          msg ? msg : "?");
    const char *nl = strchr(msg, '\n');
    int first = nl ? (int)(nl - msg) : (int)len;
    ac_err_set(err, AC_ERR_INTERNAL, "%.*s", first, msg);
    if (err && nl)
        ac_err_set_data(err, json_pack("{s:s%}", "traceback", msg, len));
    return -1;
}

int ac_lua_host_pcall(ac_lua_host_t *h, lua_CFunction fn, void *ud, const char *what,
                      ac_err_t *err)
{
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 3))
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: Lua stack exhausted", what);
    int outer = h->depth == 0;
    if (outer && h->watch && atomic_load(&h->watch->interrupt)) {
        h->interrupted = 1; /* no new call once the job is stopping */
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: %s", what, INTERRUPTED);
    }
    if (outer)
        call_begin(h);
    h->depth++;
    lua_pushcfunction(L, msgh);           /* msgh */
    lua_pushcfunction(L, fn);             /* msgh fn */
    lua_pushlightuserdata(L, ud);         /* msgh fn ud */
    int status = lua_pcall(L, 1, 0, top + 1); /* msgh [err] */
    h->depth--;
    h->in_msgh = 0;
    int rc = status == LUA_OK ? 0 : call_error(h, status, what, err);
    lua_settop(L, top);
    if (outer)
        call_end(h, status);
    return rc;
}

typedef struct run_ctx {
    const char *code, *chunkname;
    json_t *result; /* owned until handed to the caller */
    ac_err_t conv;  /* a conversion failure (not a Lua error) */
} run_ctx_t;

static int run_k(lua_State *L)
{
    run_ctx_t *c = lua_touserdata(L, 1);
    if (luaL_loadbufferx(L, c->code, strlen(c->code), c->chunkname, "t") != LUA_OK) /* f | err */
        return lua_error(L);
    ac_lua_set_fresh_env(L);    /* f */
    lua_call(L, 0, 1);      /* r */
    c->result = ac_lua_to_json_named(L, -1, "result", &c->conv);
    return 0;
}

int ac_lua_host_run(ac_lua_host_t *h, const char *code, const char *chunkname, json_t **result,
                    ac_err_t *err)
{
    run_ctx_t c = {code, chunkname, NULL, AC_ERR_INIT};
    const char *what = chunkname + (chunkname[0] == '=' || chunkname[0] == '@');
    if (ac_lua_host_pcall(h, run_k, &c, what, err) != 0) {
        json_decref(c.result);
        return -1;
    }
    if (c.result == NULL) {
        ac_err_set(err, c.conv.code, "%s: %s", what, c.conv.message);
        ac_err_clear(&c.conv);
        return -1;
    }
    if (result)
        *result = c.result;
    else
        json_decref(c.result);
    return 0;
}

void ac_lua_unref(lua_State *L, int ref)
{
    if (ref > 0)
        luaL_unref(L, LUA_REGISTRYINDEX, ref); /* rewrites existing slots: never allocates */
}
