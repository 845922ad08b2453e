/* The Lua host: sandbox, limits, require, JSON <-> Lua, plugin registry. See lua_host.h. */
#include "lua/lua_host.h"

#include "base/clock.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lualib.h>

/* Registry keys: the addresses are unique, their contents unused. */
static const char ac_key_array_mt = 0; /* agentcore.array_mt */
static const char ac_key_loaded = 0;   /* our require's cache: name -> module */
static const char ac_key_loading = 0;  /* marks a module whose chunk is running (require loops) */
static const char ac_key_env_mt = 0;   /* {__index = shared globals}: the metatable of each env */
static const char ac_key_error = 0;    /* the base library's error() */

/* Room the message handler may use past the memory cap, so that a traceback can still be built
 * for an error raised at the cap. */
#define AC_LUA_MSGH_SLACK ((size_t)1 << 20)
/* Largest file a plugin or module may be. */
#define AC_LUA_MAX_FILE ((size_t)8 << 20)
/* table.move copies element by element inside C, where the hook cannot stop it. */
#define AC_LUA_MAX_MOVE ((lua_Integer)1 << 24)

typedef struct ac_lua_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} ac_lua_sig_t;

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
} ac_lua_entry_t;

struct ac_lua_host {
    lua_State *L;
    ac_lua_limits_t limits;
    char *lua_dir, *plugins_dir;
    /* the allocator */
    size_t mem_used;
    size_t mem_cap; /* what the allocator grants now: the state cap, or the running call's */
    int in_msgh;    /* the message handler runs: grant AC_LUA_MSGH_SLACK more */
    unsigned cap_hits; /* allocations the cap refused during the running call */
    /* the running call */
    int depth;
    uint64_t instr_used;
    uint64_t deadline_ns;
    const char *abort_what; /* set once a limit ended the call: no pcall in Lua may catch it */
    char abort_msg[160];
    /* plugins */
    ac_lua_entry_t *entries;
    ac_lua_plugin_t *versions;
};

static ac_lua_host_t *ac_host_of(lua_State *L)
{
    return *(ac_lua_host_t **)lua_getextraspace(L);
}

/* ---- limits: allocator and instruction hook -------------------------------------------------- */

static void *ac_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ac_lua_host_t *h = ud;
    size_t old = ptr ? osize : 0; /* for a new block osize is the object's type, not a size */
    if (nsize == 0) {
        free(ptr);
        h->mem_used -= old;
        return NULL;
    }
    if (nsize > old) {
        size_t cap = h->mem_cap + (h->in_msgh ? AC_LUA_MSGH_SLACK : 0);
        if (h->mem_used > cap || nsize - old > cap - h->mem_used) {
            h->cap_hits++;
            return NULL; /* Lua collects garbage, retries once, then raises "not enough memory" */
        }
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    h->mem_used = h->mem_used - old + nsize;
    return p;
}

/* Raises msg with the file:line of the running Lua function (inside a hook level 0 is that
 * function: the hook has no frame of its own). */
static int ac_raise_here(lua_State *L, const char *msg)
{
    lua_Debug ar;
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg); /* msg */
    else
        lua_pushstring(L, msg); /* msg */
    return lua_error(L);
}

static void ac_lua_hook(lua_State *L, lua_Debug *ar)
{
    ac_lua_host_t *h = ac_host_of(L);
    (void)ar;
    if (h->abort_what == NULL) {
        h->instr_used += AC_LUA_HOOK_EVERY;
        if (h->limits.max_instructions && h->instr_used > h->limits.max_instructions)
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
    ac_raise_here(L, h->abort_what);
}

static void ac_call_begin(ac_lua_host_t *h)
{
    h->instr_used = 0;
    h->cap_hits = 0;
    h->abort_what = NULL;
    h->deadline_ns = (uint64_t)ac_clock_mono_ns() + (uint64_t)h->limits.max_wall_ms * 1000000u;
    size_t state = h->limits.max_state_bytes ? h->limits.max_state_bytes : SIZE_MAX;
    size_t call = h->limits.max_call_bytes;
    h->mem_cap = h->mem_used < state && call && call < state - h->mem_used ? h->mem_used + call
                                                                            : state;
    lua_sethook(h->L, ac_lua_hook, LUA_MASKCOUNT, AC_LUA_HOOK_EVERY); /* restarts the count */
}

static void ac_call_end(ac_lua_host_t *h, int status)
{
    h->in_msgh = 0;
    h->mem_cap = h->limits.max_state_bytes ? h->limits.max_state_bytes : SIZE_MAX;
    if (status == LUA_ERRMEM) {
        /* The failed call's garbage is unreachable now: give it back before the next call.
         * No Lua runs here: setmetatable refuses __gc, so every finalizer is C. */
        lua_gc(h->L, LUA_GCCOLLECT);
    }
    h->abort_what = NULL;
}

/* ---- message handler ------------------------------------------------------------------------- */

/* Whether msg starts with a location: "chunk:123:" or "[string \"...\"]:123:". */
static int ac_has_location(const char *msg)
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
static int ac_raised_by_error(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar)) /* fn */
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_key_error); /* fn error */
    int r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return r;
}

/* Adds the location of the innermost Lua function when the message has none and was not made
 * so on purpose (errors raised by C functions: "bad argument #1 to 'find'"), then a traceback. */
static int ac_lua_msgh(lua_State *L)
{
    ac_host_of(L)->in_msgh = 1;
    const char *msg = lua_tostring(L, 1);
    int locate = msg == NULL || !ac_raised_by_error(L);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1); /* err str */
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (locate && !ac_has_location(msg)) {
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

/* ---- sandbox: replaced builtins -------------------------------------------------------------- */

/* pcall and xpcall as in the base library, except that an error raised by a limit goes on up:
 * a plugin cannot catch its way past the budget. */
static int ac_sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1); /* f args... true */
    lua_insert(L, 1);      /* true f args... */
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0); /* true results... | true err */
    if (status != LUA_OK) {
        if (ac_host_of(L)->abort_what)
            return lua_error(L);
        lua_pushboolean(L, 0); /* true err false */
        lua_replace(L, 1);     /* false err */
    }
    return lua_gettop(L);
}

static int ac_sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1); /* f h args... true */
    lua_pushvalue(L, 1);   /* f h args... true f */
    lua_rotate(L, 3, 2);   /* f h true f args... */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 2); /* f h true results... | f h true err */
    if (status != LUA_OK) {
        if (ac_host_of(L)->abort_what)
            return lua_error(L);
        lua_pushboolean(L, 0); /* f h true err false */
        lua_replace(L, 3);     /* f h false err */
    }
    return lua_gettop(L) - 2;
}

/* Finalizers would run Lua code at any allocation, outside the call that set them up. */
static int ac_sb_setmetatable(lua_State *L)
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

static int ac_sb_frozen(lua_State *L)
{
    return luaL_error(L, "assignment to shared global '%s' (globals are per plugin: declare it "
                         "in your file, or use a local)", luaL_tolstring(L, 2, NULL));
}

/* string.rep builds its result in one C loop: cap its size, and answer "" at once where the
 * stock loop would spin n times copying nothing. */
static int ac_sb_rep(lua_State *L)
{
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || (l == 0 && lsep == 0)) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t cap = ac_host_of(L)->limits.max_string_bytes;
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

static int ac_sb_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    if (e >= f && (f <= 0 ? e >= AC_LUA_MAX_MOVE + f : e - f >= AC_LUA_MAX_MOVE))
        return luaL_error(L, "table.move: range of more than %d elements", (int)AC_LUA_MAX_MOVE);
    lua_pushvalue(L, lua_upvalueindex(1)); /* a1 f e t [a2] move */
    lua_insert(L, 1);                      /* move a1 f e t [a2] */
    lua_call(L, lua_gettop(L) - 1, 1);     /* a2 */
    return 1;
}

/* ---- sandbox: the pattern-cost guard ------------------------------------------------------------
 * Lua's matcher backtracks inside one C call, where the instruction hook never fires, so one call
 * can run for minutes. Before calling it we bound its work: each quantified single-character
 * class (x*, x+, x-) can take at most r+1 lengths, r being the longest run of subject bytes it
 * matches; %b and back-references can scan the whole subject (n); x? doubles; an unanchored search
 * restarts at each of the n+1 positions. A quantifier that ends the pattern (only ')' after it)
 * counts once: nothing after it can fail, so it never backtracks. The product is an upper bound
 * on the matcher's steps (about 2 ns each here); calls above limits.max_pattern_cost fail before
 * they start. */

static const char *ac_pat_class_end(const char *p, const char *pe)
{
    if (*p == '%')
        return p + 2 <= pe ? p + 2 : pe;
    if (*p != '[')
        return p + 1;
    const char *q = p + 1;
    if (q < pe && *q == '^')
        q++;
    for (;;) { /* the first character of a set is literal, even ']' */
        if (q >= pe)
            return pe;
        if (*q++ == '%' && q < pe)
            q++;
        if (q >= pe)
            return pe;
        if (*q == ']')
            return q + 1;
    }
}

static int ac_pat_letter(unsigned char c, unsigned char cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    default: return cl == c;
    }
    return isupper(cl) ? !r : r != 0;
}

/* Whether byte c matches the class [p, ep). */
static int ac_pat_single(unsigned char c, const char *p, const char *ep)
{
    if (*p == '.')
        return 1;
    if (*p == '%')
        return p + 1 < ep && ac_pat_letter(c, (unsigned char)p[1]);
    if (*p != '[')
        return (unsigned char)*p == c;
    const char *q = p + 1, *end = ep - 1; /* end: the closing ']' */
    int neg = q < end && *q == '^';
    q += neg;
    for (; q < end; q++) {
        if (*q == '%' && q + 1 < end) {
            if (ac_pat_letter(c, (unsigned char)*++q))
                return !neg;
        } else if (q + 2 < end && q[1] == '-') {
            if ((unsigned char)q[0] <= c && c <= (unsigned char)q[2])
                return !neg;
            q += 2;
        } else if ((unsigned char)*q == c) {
            return !neg;
        }
    }
    return neg;
}

static size_t ac_pat_longest_run(const char *s, size_t n, const char *p, const char *ep)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = ac_pat_single((unsigned char)s[i], p, ep) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

#define AC_PAT_MAX_QUANT 32

static double ac_pattern_cost(const char *s, size_t n, const char *p, size_t m, int anchors,
                              double limit)
{
    const char *pe = p + m;
    const char *qp[AC_PAT_MAX_QUANT], *qe[AC_PAT_MAX_QUANT];
    int nq = 0, nbig = 0, nopt = 0;
    const char *after_last_q = NULL; /* where the pattern goes on after its last quantifier */
    double starts = (double)n + 1;
    if (anchors && p < pe && *p == '^') {
        starts = 1;
        p++;
    }
    while (p < pe) {
        if (*p == '(' || *p == ')' || (*p == '$' && p + 1 == pe)) {
            p++;
            continue;
        }
        if (*p == '%' && p + 1 < pe) {
            if (p[1] == 'b') { /* %bxy scans to the balancing y */
                nbig++;
                p = p + 4 < pe ? p + 4 : pe;
                continue;
            }
            if (p[1] == 'f') { /* %f[set] looks at one position */
                p += 2;
                if (p < pe)
                    p = ac_pat_class_end(p, pe);
                continue;
            }
            if (isdigit((unsigned char)p[1])) { /* %1 compares a capture's length */
                nbig++;
                p += 2;
                continue;
            }
        }
        const char *ep = ac_pat_class_end(p, pe);
        if (ep < pe && (*ep == '*' || *ep == '+' || *ep == '-')) {
            if (nq < AC_PAT_MAX_QUANT) {
                qp[nq] = p;
                qe[nq] = ep;
            } else {
                nbig++; /* too many to track: count it as a full scan */
            }
            nq++;
            p = after_last_q = ep + 1;
        } else if (ep < pe && *ep == '?') {
            nopt++;
            p = ep + 1;
        } else {
            p = ep;
        }
    }
    int tracked = nq < AC_PAT_MAX_QUANT ? nq : AC_PAT_MAX_QUANT;
    if (after_last_q && nq <= AC_PAT_MAX_QUANT) {
        const char *q = after_last_q;
        while (q < pe && *q == ')')
            q++;
        if (q == pe)
            tracked--; /* the pattern ends with it */
    }
    double base = starts * pow((double)n + 1, nbig) * pow(2, nopt);
    double crude = base * pow((double)n + 1, tracked);
    if (crude <= limit)
        return crude;
    for (int i = 0; i < tracked && base <= limit; i++) /* the tight bound, only when needed */
        base *= (double)ac_pat_longest_run(s, n, qp[i], qe[i]) + 1;
    return base;
}

enum { AC_PAT_FIND, AC_PAT_MATCH, AC_PAT_GMATCH, AC_PAT_GSUB };
static const char *const ac_pat_names[] = {"find", "match", "gmatch", "gsub"};

/* string.find/match/gmatch/gsub: upvalue 1 the stock function, upvalue 2 which one. */
static int ac_sb_pattern(lua_State *L)
{
    int which = (int)lua_tointeger(L, lua_upvalueindex(2));
    size_t n, m;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &m);
    double limit = ac_host_of(L)->limits.max_pattern_cost;
    if (limit > 0) {
        int plain = which == AC_PAT_FIND && lua_toboolean(L, 4);
        if (!plain && strpbrk(p, "^$*+?.([%-") == NULL && strlen(p) == m)
            plain = which == AC_PAT_FIND; /* find searches with memcmp then, too */
        /* memcmp-based search: about 64 byte comparisons per matcher step */
        double cost = plain ? ((double)n + 1) * ((double)m + 1) / 64
                            : ac_pattern_cost(s, n, p, m, which != AC_PAT_GMATCH, limit);
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
                     "\"Pattern limits\")", ac_pat_names[which], shown, n, cost, limit);
            return luaL_error(L, "%s", msg);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* args... f */
    lua_insert(L, 1);                      /* f args... */
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- require --------------------------------------------------------------------------------- */

/* Whether name is parts of [A-Za-z0-9_-] joined by single dots (so no "..", no "/"). */
static int ac_module_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    int part = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (part == 0)
                return 0;
            part = 0;
        } else if (isalnum(c) || c == '_' || c == '-') {
            part++;
        } else {
            return 0;
        }
    }
    return part > 0;
}

/* Sets a fresh global table (misses read the shared globals) as _ENV of the function at -1. */
static void ac_set_fresh_env(lua_State *L)
{
    lua_createtable(L, 0, 4);                         /* f env */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_key_env_mt); /* f env mt */
    lua_setmetatable(L, -2);                          /* f env */
    if (lua_setupvalue(L, -2, 1) == NULL)             /* f */
        lua_pop(L, 1);                                /* f (a chunk without upvalues) */
}

/* Pushes the text chunk read from path, named "@<chunkname>", with a fresh environment, and
 * fills sig from the file that was read. Raises on error. The file is read into Lua memory and
 * closed before anything can raise, so an error leaks neither memory nor the descriptor. */
static void ac_load_file(lua_State *L, const char *path, const char *chunkname, ac_lua_sig_t *sig)
{
    struct stat st;
    if (stat(path, &st) != 0)
        luaL_error(L, "cannot open %s: %s", chunkname, strerror(errno));
    if (!S_ISREG(st.st_mode))
        luaL_error(L, "cannot open %s: not a regular file", chunkname);
    if ((size_t)st.st_size > AC_LUA_MAX_FILE)
        luaL_error(L, "%s: file larger than %d bytes", chunkname, (int)AC_LUA_MAX_FILE);
    size_t want = (size_t)st.st_size;
    char *buf = lua_newuserdatauv(L, want + 1, 0); /* buf */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = -1;
    int e = 0;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        size_t off = 0;
        got = 0;
        while (off <= want) { /* one byte more than expected detects a file that grew */
            ssize_t r = read(fd, buf + off, want + 1 - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                got = r < 0 ? -1 : (ssize_t)off;
                break;
            }
            off += (size_t)r;
            got = (ssize_t)off;
        }
    }
    e = errno;
    if (fd >= 0)
        close(fd);
    if (got < 0)
        luaL_error(L, "cannot read %s: %s", chunkname, strerror(e));
    if ((size_t)got != want || (size_t)st.st_size != want)
        luaL_error(L, "%s changed while it was read; try again", chunkname);
    if (sig) {
        sig->dev = st.st_dev;
        sig->ino = st.st_ino;
        sig->size = st.st_size;
        sig->mtime = st.st_mtim;
    }
    lua_pushfstring(L, "@%s", chunkname); /* buf name */
    if (luaL_loadbufferx(L, buf, want, lua_tostring(L, -1), "t") != LUA_OK) /* buf name err */
        lua_error(L);
    lua_replace(L, -3); /* f name */
    lua_pop(L, 1);      /* f */
    ac_set_fresh_env(L);
}

static int ac_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* require(name): the cache, then <lua_dir>/a/b.lua, <lua_dir>/a/b/init.lua,
 * <plugins_dir>/a/b.lua. */
static int ac_sb_require(lua_State *L)
{
    ac_lua_host_t *h = ac_host_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);                                  /* name */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_key_loaded); /* name cache */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {        /* name cache mod */
        if (lua_touserdata(L, -1) == &ac_key_loading)
            return luaL_error(L, "require: module '%s' requires itself (directly or not)", name);
        return 1;
    }
    lua_pop(L, 1); /* name cache */
    if (!ac_module_name_ok(name, len))
        return luaL_error(L, "require: bad module name '%s' (parts of letters, digits, '_' and "
                             "'-' joined by dots)", name);
    char rel[160], path[PATH_MAX + 200], chunk[200];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *c = rel; *c; c++)
        if (*c == '.')
            *c = '/';
    static const char *const forms[] = {"%s/%s.lua", "%s/%s/init.lua", "%s/%s.lua"};
    static const char *const chunks[] = {"lua/%s.lua", "lua/%s/init.lua", "plugins/%s.lua"};
    int found = -1;
    for (int i = 0; i < 3 && found < 0; i++) {
        snprintf(path, sizeof path, forms[i], i < 2 ? h->lua_dir : h->plugins_dir, rel);
        if (ac_file_exists(path))
            found = i;
    }
    if (found < 0)
        return luaL_error(L, "require: module '%s' not found (looked for lua/%s.lua, "
                             "lua/%s/init.lua, plugins/%s.lua)", name, rel, rel, rel);
    snprintf(chunk, sizeof chunk, chunks[found], rel);
    ac_load_file(L, path, chunk, NULL);                /* name cache f */
    lua_pushlightuserdata(L, (void *)&ac_key_loading); /* name cache f loading */
    lua_setfield(L, 2, name);                          /* name cache f */
    lua_pushvalue(L, 1);                               /* name cache f name */
    lua_pushstring(L, chunk);                          /* name cache f name path */
    /* Run the chunk protected only to undo the loading mark; the error then goes on up. */
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) { /* name cache err */
        lua_pushnil(L);                    /* name cache err nil */
        lua_setfield(L, 2, name);          /* name cache err */
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) { /* name cache nil */
        lua_pop(L, 1);
        lua_pushboolean(L, 1); /* name cache true */
    }
    lua_pushvalue(L, -1);     /* name cache mod mod */
    lua_setfield(L, 2, name); /* name cache mod */
    return 1;
}

/* ---- agentcore.core -------------------------------------------------------------------------- */

static void ac_push_array_mt(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_key_array_mt) == LUA_TTABLE) /* mt */
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);                        /* mt */
    lua_pushliteral(L, "agentcore.array");           /* mt name */
    lua_setfield(L, -2, "__name");                   /* mt */
    lua_pushvalue(L, -1);                            /* mt mt */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_key_array_mt); /* mt */
}

static int ac_open_core(lua_State *L)
{
    lua_createtable(L, 0, 2);      /* core */
    lua_pushlightuserdata(L, NULL); /* core null */
    lua_setfield(L, -2, "null");   /* core */
    ac_push_array_mt(L);           /* core mt */
    lua_setfield(L, -2, "array_mt"); /* core */
    return 1;
}

/* ---- state setup ----------------------------------------------------------------------------- */

/* Replaces t[name] (t at -1) by the closure fn over the original (upvalue 1) and, when tag >= 0,
 * the tag (upvalue 2). */
static void ac_wrap(lua_State *L, const char *name, lua_CFunction fn, int tag)
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

static int ac_open_sandbox(lua_State *L)
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
    lua_pushglobaltable(L); /* G */
    lua_getfield(L, -1, "error");                    /* G error */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_key_error); /* G */
    static const char *const removed[] = {"dofile", "loadfile", "load", "collectgarbage", "warn",
                                          "require"};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        lua_pushnil(L);                    /* G nil */
        lua_setfield(L, -2, removed[i]);   /* G */
    }
    lua_pushcfunction(L, ac_sb_pcall);     /* G pcall */
    lua_setfield(L, -2, "pcall");          /* G */
    lua_pushcfunction(L, ac_sb_xpcall);    /* G xpcall */
    lua_setfield(L, -2, "xpcall");         /* G */
    lua_pushcfunction(L, ac_sb_require);   /* G require */
    lua_setfield(L, -2, "require");        /* G */
    ac_wrap(L, "setmetatable", ac_sb_setmetatable, -1); /* G */

    lua_getfield(L, -1, LUA_STRLIBNAME);   /* G string */
    lua_pushnil(L);                        /* G string nil */
    lua_setfield(L, -2, "dump");           /* G string */
    ac_wrap(L, "rep", ac_sb_rep, -1);
    ac_wrap(L, "find", ac_sb_pattern, AC_PAT_FIND);
    ac_wrap(L, "match", ac_sb_pattern, AC_PAT_MATCH);
    ac_wrap(L, "gmatch", ac_sb_pattern, AC_PAT_GMATCH);
    ac_wrap(L, "gsub", ac_sb_pattern, AC_PAT_GSUB);
    lua_pushliteral(L, "");                /* G string "" */
    lua_getmetatable(L, -1);               /* G string "" smt */
    lua_pushboolean(L, 0);                 /* G string "" smt false */
    lua_setfield(L, -2, "__metatable");    /* G string "" smt: getmetatable("") is false */
    lua_pop(L, 3);                         /* G */

    lua_getfield(L, -1, LUA_TABLIBNAME);   /* G table */
    ac_wrap(L, "move", ac_sb_move, -1);
    lua_pop(L, 1);                         /* G */

    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0); /* G os */
    lua_createtable(L, 0, 2);              /* G os safe */
    lua_getfield(L, -2, "time");           /* G os safe time */
    lua_setfield(L, -2, "time");           /* G os safe */
    lua_getfield(L, -2, "clock");          /* G os safe clock */
    lua_setfield(L, -2, "clock");          /* G os safe */
    lua_setfield(L, -3, LUA_OSLIBNAME);    /* G os */
    lua_pop(L, 1);                         /* G */

    lua_newtable(L);                       /* G cache */
    luaL_requiref(L, "cjson", luaopen_cjson, 0); /* G cache cjson */
    lua_setfield(L, -2, "cjson");          /* G cache */
    ac_open_core(L);                       /* G cache core */
    lua_setfield(L, -2, "agentcore.core"); /* G cache */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_key_loaded); /* G */

    lua_createtable(L, 0, 1);              /* G envmt */
    lua_pushvalue(L, -2);                  /* G envmt G */
    lua_setfield(L, -2, "__index");        /* G envmt */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ac_key_env_mt); /* G */

    lua_createtable(L, 0, 2);              /* G gmt */
    lua_pushcfunction(L, ac_sb_frozen);    /* G gmt frozen */
    lua_setfield(L, -2, "__newindex");     /* G gmt */
    lua_pushboolean(L, 0);                 /* G gmt false */
    lua_setfield(L, -2, "__metatable");    /* G gmt */
    lua_setmetatable(L, -2);               /* G */
    lua_pop(L, 1);
    return 0;
}

static int ac_lua_panic(lua_State *L)
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
    if (stat(plugins_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ac_err_set(err, AC_ERR_INTERNAL, "plugins directory %s: not found", plugins_dir);
        return NULL;
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
    h->L = lua_newstate(ac_lua_alloc, h);
    if (h->L == NULL)
        goto oom;
    *(ac_lua_host_t **)lua_getextraspace(h->L) = h;
    lua_atpanic(h->L, ac_lua_panic);
    if (ac_lua_host_pcall(h, ac_open_sandbox, h, "sandbox", err) != 0) {
        ac_lua_host_destroy(h);
        return NULL;
    }
    return h;
oom:
    ac_lua_host_destroy(h);
    ac_err_set(err, AC_ERR_INTERNAL, "Lua host: out of memory");
    return NULL;
}

static void ac_version_free(ac_lua_plugin_t *p);

void ac_lua_host_destroy(ac_lua_host_t *h)
{
    if (h == NULL)
        return;
    while (h->entries) {
        ac_lua_entry_t *e = h->entries;
        h->entries = e->next;
        ac_lua_plugin_release(e->current);
        free(e);
    }
    while (h->versions) /* handles still held: their owner broke the contract of destroy */
        ac_version_free(h->versions);
    if (h->L)
        lua_close(h->L);
    free(h->lua_dir);
    free(h->plugins_dir);
    free(h);
}

lua_State *ac_lua_host_state(ac_lua_host_t *h) { return h->L; }
const ac_lua_limits_t *ac_lua_host_limits(const ac_lua_host_t *h) { return &h->limits; }
size_t ac_lua_host_memory(const ac_lua_host_t *h) { return h->mem_used; }

void ac_lua_host_set_limits(ac_lua_host_t *h, const ac_lua_limits_t *limits)
{
    h->limits = *limits;
    if (h->depth == 0)
        h->mem_cap = limits->max_state_bytes ? limits->max_state_bytes : SIZE_MAX;
}

/* ---- protected calls ------------------------------------------------------------------------- */

static int ac_call_error(ac_lua_host_t *h, int status, const char *what, ac_err_t *err)
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
    if (outer)
        ac_call_begin(h);
    h->depth++;
    lua_pushcfunction(L, ac_lua_msgh);    /* msgh */
    lua_pushcfunction(L, fn);             /* msgh fn */
    lua_pushlightuserdata(L, ud);         /* msgh fn ud */
    int status = lua_pcall(L, 1, 0, top + 1); /* msgh [err] */
    h->depth--;
    h->in_msgh = 0;
    int rc = status == LUA_OK ? 0 : ac_call_error(h, status, what, err);
    lua_settop(L, top);
    if (outer)
        ac_call_end(h, status);
    return rc;
}

typedef struct ac_run_ctx {
    const char *code, *chunkname;
    json_t *result; /* owned until handed to the caller */
    ac_err_t conv;  /* a conversion failure (not a Lua error) */
} ac_run_ctx_t;

static int ac_run_k(lua_State *L)
{
    ac_run_ctx_t *c = lua_touserdata(L, 1);
    if (luaL_loadbufferx(L, c->code, strlen(c->code), c->chunkname, "t") != LUA_OK) /* f | err */
        return lua_error(L);
    ac_set_fresh_env(L);    /* f */
    lua_call(L, 0, 1);      /* r */
    c->result = ac_lua_to_json_named(L, -1, "result", &c->conv);
    return 0;
}

int ac_lua_host_run(ac_lua_host_t *h, const char *code, const char *chunkname, json_t **result,
                    ac_err_t *err)
{
    ac_run_ctx_t c = {code, chunkname, NULL, AC_ERR_INIT};
    const char *what = chunkname + (chunkname[0] == '=' || chunkname[0] == '@');
    if (ac_lua_host_pcall(h, ac_run_k, &c, what, err) != 0) {
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

/* ---- JSON -> Lua ----------------------------------------------------------------------------- */

static void ac_push_json_rec(lua_State *L, const json_t *v, int depth)
{
    if (depth > AC_LUA_JSON_MAX_DEPTH)
        luaL_error(L, "JSON value nested deeper than %d levels", AC_LUA_JSON_MAX_DEPTH);
    luaL_checkstack(L, 4, "JSON value nested too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *item;
        lua_createtable(L, 0, (int)json_object_size(v)); /* obj */
        json_object_keylen_foreach((json_t *)v, key, klen, item) {
            lua_pushlstring(L, key, klen);        /* obj key */
            ac_push_json_rec(L, item, depth + 1); /* obj key value */
            lua_rawset(L, -3);                    /* obj */
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0); /* arr */
        for (size_t i = 0; i < n; i++) {
            ac_push_json_rec(L, json_array_get(v, i), depth + 1); /* arr item */
            lua_rawseti(L, -2, (lua_Integer)i + 1);              /* arr */
        }
        ac_push_array_mt(L);     /* arr mt */
        lua_setmetatable(L, -2); /* arr */
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
    }
}

void ac_lua_push_json(lua_State *L, const json_t *v)
{
    if (v == NULL)
        lua_pushnil(L);
    else
        ac_push_json_rec(L, v, 1);
}

/* ---- Lua -> JSON ----------------------------------------------------------------------------- */

typedef struct ac_tojson {
    const void *open[AC_LUA_JSON_MAX_DEPTH + 2]; /* the tables being converted, outermost first */
    size_t values;
    char msg[160];
    char where[200]; /* the failing value's path, built backwards as the recursion unwinds */
    size_t wpos;
} ac_tojson_t;

static json_t *ac_tojson_fail(ac_tojson_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *ac_tojson_fail(ac_tojson_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

static void ac_tojson_prepend(ac_tojson_t *c, const char *seg, size_t n)
{
    if (n > c->wpos) { /* out of room: keep the innermost part */
        c->wpos = 0;
        return;
    }
    c->wpos -= n;
    memcpy(c->where + c->wpos, seg, n);
}

static json_t *ac_tojson_rec(lua_State *L, int idx, int depth, ac_tojson_t *c);

static json_t *ac_tojson_table(lua_State *L, int t, int depth, ac_tojson_t *c)
{
    if (depth > AC_LUA_JSON_MAX_DEPTH)
        return ac_tojson_fail(c, "nested deeper than %d levels", AC_LUA_JSON_MAX_DEPTH);
    const void *self = lua_topointer(L, t);
    for (int i = 1; i < depth; i++)
        if (c->open[i] == self)
            return ac_tojson_fail(c, "table contains itself (a cycle)");
    c->open[depth] = self;
    if (!lua_checkstack(L, 4))
        return ac_tojson_fail(c, "out of Lua stack");
    int marked = 0;
    if (lua_getmetatable(L, t)) {                            /* mt */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_key_array_mt); /* mt array_mt */
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_Integer count = 0, max = 0;
    int strings = 0, badtype = LUA_TNONE;
    lua_pushnil(L); /* nil */
    while (lua_next(L, t)) { /* key value */
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            strings++;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            lua_Integer k = lua_tointeger(L, -2);
            count++;
            max = k > max ? k : max;
        } else if (badtype == LUA_TNONE) {
            badtype = kt;
        }
        lua_pop(L, 1); /* key */
    }
    if (badtype != LUA_TNONE)
        return ac_tojson_fail(c, "table key of type %s (JSON object keys are strings)",
                              lua_typename(L, badtype));
    int array = strings == 0 && count == max && (count > 0 || marked);
    if (marked && !array)
        return ac_tojson_fail(c, "table with agentcore.array_mt has keys other than 1..n");
    if (!array && count > 0)
        return ac_tojson_fail(c, "table mixes string and integer keys, or is a sparse array "
                                 "(an array has exactly the keys 1..n)");
    if (array) {
        json_t *a = json_array();
        for (lua_Integer i = 1; a && i <= max; i++) {
            lua_rawgeti(L, t, i); /* item */
            json_t *item = ac_tojson_rec(L, lua_gettop(L), depth + 1, c);
            lua_pop(L, 1);
            if (item == NULL) {
                char seg[32];
                int n = snprintf(seg, sizeof seg, "[%lld]", (long long)i);
                ac_tojson_prepend(c, seg, (size_t)n);
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, item);
        }
        return a ? a : ac_tojson_fail(c, "out of memory");
    }
    json_t *o = json_object();
    if (o == NULL)
        return ac_tojson_fail(c, "out of memory");
    lua_pushnil(L); /* nil */
    while (lua_next(L, t)) { /* key value */
        size_t klen;
        const char *key = lua_tolstring(L, -2, &klen); /* a string: no conversion */
        json_t *item = ac_tojson_rec(L, lua_gettop(L), depth + 1, c);
        if (item != NULL && json_object_setn_new(o, key, klen, item) != 0) {
            item = ac_tojson_fail(c, "key is not valid UTF-8");
        }
        if (item == NULL) {
            size_t n = klen > 40 ? 40 : klen;
            ac_tojson_prepend(c, key, n);
            ac_tojson_prepend(c, ".", 1);
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        lua_pop(L, 1); /* key */
    }
    return o;
}

static json_t *ac_tojson_rec(lua_State *L, int idx, int depth, ac_tojson_t *c)
{
    if (++c->values > AC_LUA_JSON_MAX_VALUES)
        return ac_tojson_fail(c, "more than %d values", AC_LUA_JSON_MAX_VALUES);
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = lua_tonumber(L, idx);
        if (!isfinite(d))
            return ac_tojson_fail(c, "%s is not valid JSON", isnan(d) ? "NaN" : "infinity");
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_t *j = json_stringn(s, n);
        return j ? j : ac_tojson_fail(c, "string is not valid UTF-8");
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return json_null(); /* agentcore.null and cjson.null */
        break;
    case LUA_TTABLE: return ac_tojson_table(L, idx, depth, c);
    }
    return ac_tojson_fail(c, "a %s cannot be converted to JSON", luaL_typename(L, idx));
}

json_t *ac_lua_to_json_named(lua_State *L, int idx, const char *root, ac_err_t *err)
{
    ac_tojson_t c;
    c.values = 0;
    c.msg[0] = '\0';
    c.wpos = sizeof c.where - 1;
    c.where[c.wpos] = '\0';
    json_t *j = ac_tojson_rec(L, lua_absindex(L, idx), 1, &c);
    if (j == NULL) {
        const char *path = c.where + c.wpos;
        if (root == NULL && *path == '.')
            path++; /* "a.b" rather than ".a.b" */
        if (root || *path)
            ac_err_set(err, AC_ERR_INTERNAL, "%s (at %s%s)", c.msg, root ? root : "", path);
        else
            ac_err_set(err, AC_ERR_INTERNAL, "%s", c.msg);
    }
    return j;
}

json_t *ac_lua_to_json(lua_State *L, int idx, ac_err_t *err)
{
    return ac_lua_to_json_named(L, idx, NULL, err);
}

/* ---- plugins --------------------------------------------------------------------------------- */

void *ac_lua_plugin_data(ac_lua_plugin_t *p) { return p->data; }
ac_lua_host_t *ac_lua_plugin_host(const ac_lua_plugin_t *p) { return p->host; }
const char *ac_lua_plugin_name(const ac_lua_plugin_t *p) { return p->name; }
const char *ac_lua_plugin_version(const ac_lua_plugin_t *p) { return p->version; }
const char *ac_lua_plugin_path(const ac_lua_plugin_t *p) { return p->path; }

void ac_lua_unref(lua_State *L, int ref)
{
    if (ref > 0)
        luaL_unref(L, LUA_REGISTRYINDEX, ref); /* rewrites existing slots: never allocates */
}

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

static void ac_version_free(ac_lua_plugin_t *p)
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
        ac_version_free(p);
}

static int ac_plugin_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!(islower((unsigned char)name[n]) || isdigit((unsigned char)name[n]) ||
              name[n] == '_' || name[n] == '-'))
            return 0;
    return n > 0 && n <= AC_LUA_PLUGIN_NAME_MAX;
}

static int ac_sig_equal(const ac_lua_sig_t *a, const ac_lua_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

typedef struct ac_load_ctx {
    ac_lua_plugin_t *p;
    const char *file;
} ac_load_ctx_t;

/* Loads, runs and checks a plugin file; the version's fields are filled in place so that a
 * failure anywhere leaves nothing the caller cannot free. */
static int ac_plugin_load_k(lua_State *L)
{
    ac_load_ctx_t *c = lua_touserdata(L, 1);
    ac_lua_plugin_t *p = c->p;
    ac_load_file(L, c->file, p->path, &p->sig); /* chunk */
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

static ac_lua_entry_t *ac_entry_find(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind,
                                     const char *name)
{
    for (ac_lua_entry_t *e = h->entries; e; e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

ac_lua_plugin_t *ac_lua_plugin_get(ac_lua_host_t *h, const ac_lua_plugin_kind_t *kind,
                                   const char *name, ac_err_t *err)
{
    if (!ac_plugin_name_ok(name)) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "bad plugin name '%.64s' (want ^[a-z0-9_-]+$, at "
                   "most %d characters)", name, AC_LUA_PLUGIN_NAME_MAX);
        return NULL;
    }
    ac_lua_entry_t *e = ac_entry_find(h, kind, name);
    uint64_t now = (uint64_t)ac_clock_mono_ns();
    if (e && e->current && e->checked_ns &&
        now - e->checked_ns < h->limits.reload_interval_ms * 1000000ull) {
        e->current->refs++;
        return e->current;
    }
    char file[PATH_MAX + 200];
    snprintf(file, sizeof file, "%s/%s/%s.lua", h->plugins_dir, kind->dir, name);
    struct stat st;
    if (stat(file, &st) != 0) {
        int code = errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL;
        ac_err_set(err, code, "plugins/%s/%s.lua: %s", kind->dir, name,
                   errno == ENOENT ? "no such plugin" : strerror(errno));
        return NULL;
    }
    if (e == NULL) { /* only for files that exist: client-supplied names cannot grow the list */
        if ((e = calloc(1, sizeof *e)) == NULL) {
            ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        e->kind = kind;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->next = h->entries;
        h->entries = e;
    }
    e->checked_ns = now;
    ac_lua_sig_t sig = {st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    if (e->current && ac_sig_equal(&sig, &e->current->sig)) {
        e->current->refs++;
        return e->current;
    }
    if (e->failed && ac_sig_equal(&sig, &e->failed_sig)) {
        ac_err_set(err, e->failed_code, "%s", e->failed_msg);
        return NULL;
    }
    ac_lua_plugin_t *p = calloc(1, sizeof *p);
    void *data = calloc(1, kind->size ? kind->size : 1);
    if (p == NULL || data == NULL) {
        free(p);
        free(data);
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
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
    ac_load_ctx_t c = {p, file};
    ac_err_t lerr = AC_ERR_INIT;
    if (ac_lua_host_pcall(h, ac_plugin_load_k, &c, p->path, &lerr) != 0) {
        e->failed = 1;
        e->failed_sig = p->sig.size || p->sig.ino ? p->sig : sig; /* what was read, if it was */
        e->failed_code = lerr.code;
        snprintf(e->failed_msg, sizeof e->failed_msg, "%s", lerr.message);
        ac_version_free(p);
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
    for (ac_lua_entry_t *e = h->entries; e; e = e->next)
        e->checked_ns = 0;
}
