/* Loading Lua files: plugins and modules are text chunks, each with its own global table, and
 * `require` finds modules in the runtime library (lua/) and the plugins directory only. */
#include "lua/host_internal.h"
#include "lua/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

/* Largest file a plugin or module may be. */
#define MAX_FILE ((size_t)8 << 20)

/* Whether name is parts of [A-Za-z0-9_-] joined by single dots (so no "..", no "/"). */
static int module_name_ok(const char *name, size_t len)
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
void ac_lua_set_fresh_env(lua_State *L)
{
    lua_createtable(L, 0, 4);                         /* f env */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_env_mt); /* f env mt */
    lua_setmetatable(L, -2);                          /* f env */
    if (lua_setupvalue(L, -2, 1) == NULL)             /* f */
        lua_pop(L, 1);                                /* f (a chunk without upvalues) */
}

/* Pushes the text chunk read from path, named "@<chunkname>", with a fresh environment, and
 * fills sig from the file that was read. Raises on error. The file is read into Lua memory and
 * closed before anything can raise, so an error leaks neither memory nor the descriptor. */
void ac_lua_load_file(lua_State *L, const char *path, const char *chunkname, ac_lua_sig_t *sig)
{
    struct stat st;
    if (stat(path, &st) != 0)
        luaL_error(L, "cannot open %s: %s", chunkname, strerror(errno));
    if (!S_ISREG(st.st_mode))
        luaL_error(L, "cannot open %s: not a regular file", chunkname);
    if ((size_t)st.st_size > MAX_FILE)
        luaL_error(L, "%s: file larger than %d bytes", chunkname, (int)MAX_FILE);
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
    ac_lua_set_fresh_env(L);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* require(name): the cache, then <lua_dir>/a/b.lua, <lua_dir>/a/b/init.lua, then <dir>/a/b.lua
 * in each plugin directory of the search path. */
int ac_lua_require(lua_State *L)
{
    ac_lua_host_t *h = ac_lua_host_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);                                  /* name */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_loaded); /* name cache */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {        /* name cache mod */
        if (lua_touserdata(L, -1) == &ac_lua_key_loading)
            return luaL_error(L, "require: module '%s' requires itself (directly or not)", name);
        return 1;
    }
    lua_pop(L, 1); /* name cache */
    if (!module_name_ok(name, len))
        return luaL_error(L, "require: bad module name '%s' (parts of letters, digits, '_' and "
                             "'-' joined by dots)", name);
    char rel[160], path[PATH_MAX + 200], chunk[200];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *c = rel; *c; c++)
        if (*c == '.')
            *c = '/';
    static const char *const forms[] = {"%s/%s.lua", "%s/%s/init.lua"};
    static const char *const chunks[] = {"lua/%s.lua", "lua/%s/init.lua", "plugins/%s.lua"};
    int found = -1;
    for (int i = 0; i < 2 && found < 0; i++) {
        snprintf(path, sizeof path, forms[i], h->lua_dir, rel);
        if (file_exists(path))
            found = i;
    }
    char searched[512];
    if (found < 0 && ac_lua_plugin_find(h->plugins_dir, "", rel, path, sizeof path, searched, sizeof searched))
        found = 2;
    if (found < 0)
        return luaL_error(L, "require: module '%s' not found (looked for lua/%s.lua, "
                             "lua/%s/init.lua, and %s.lua in the plugin directories %s)", name, rel, rel, rel,
                          searched);
    snprintf(chunk, sizeof chunk, chunks[found], rel);
    ac_lua_load_file(L, path, chunk, NULL);                /* name cache f */
    lua_pushlightuserdata(L, (void *)&ac_lua_key_loading); /* name cache f loading */
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
    /* Every plugin of the state gets this same module: it must not be able to change it for
     * the others. */
    if (lua_istable(L, -1))
        ac_lua_freeze(L, -1);
    lua_pushvalue(L, -1);     /* name cache mod mod */
    lua_setfield(L, 2, name); /* name cache mod */
    return 1;
}
