/* JSON <-> Lua. See lua_json.h. */
#include "lua/lua_json.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/host_internal.h"

/* ---- JSON -> Lua ----------------------------------------------------------------------------- */

static void push_rec(lua_State *L, const json_t *v, int depth)
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
            push_rec(L, item, depth + 1); /* obj key value */
            lua_rawset(L, -3);                    /* obj */
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0); /* arr */
        for (size_t i = 0; i < n; i++) {
            push_rec(L, json_array_get(v, i), depth + 1); /* arr item */
            lua_rawseti(L, -2, (lua_Integer)i + 1);              /* arr */
        }
        ac_lua_push_array_mt(L);     /* arr mt */
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
        push_rec(L, v, 1);
}

/* ---- Lua -> JSON ----------------------------------------------------------------------------- */

typedef struct tojson {
    const void *open[AC_LUA_JSON_MAX_DEPTH + 2]; /* the tables being converted, outermost first */
    size_t values;
    size_t bytes, max_bytes; /* the JSON text's size so far (an upper estimate), its bound */
    const char *limit_name;
    int too_big;
    char msg[160];
    char where[200]; /* the failing value's path, built backwards as the recursion unwinds */
    size_t wpos;
} tojson_t;

static json_t *tojson_fail(tojson_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *tojson_fail(tojson_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

static void tojson_prepend(tojson_t *c, const char *seg, size_t n)
{
    if (n > c->wpos) { /* out of room: keep the innermost part */
        c->wpos = 0;
        return;
    }
    c->wpos -= n;
    memcpy(c->where + c->wpos, seg, n);
}

static json_t *tojson_rec(lua_State *L, int idx, int depth, tojson_t *c);

static json_t *tojson_table(lua_State *L, int t, int depth, tojson_t *c);

/* Counts n more bytes of JSON text; 0, or -1 (message set) past the bound. */
static int tojson_grow(tojson_t *c, size_t n)
{
    c->bytes += n;
    if (c->max_bytes && c->bytes > c->max_bytes) {
        tojson_fail(c, "larger than %zu bytes (%s)", c->max_bytes, c->limit_name);
        c->too_big = 1;
        return -1;
    }
    return 0;
}

/* A read-only table (a module, a library table) converts as the fields it shows. */
static json_t *tojson_frozen(lua_State *L, int depth, tojson_t *c)
{
    json_t *j = tojson_table(L, lua_gettop(L), depth, c); /* hidden */
    lua_pop(L, 1);
    return j;
}

static json_t *tojson_array(lua_State *L, int t, lua_Integer n, int depth, tojson_t *c)
{
    json_t *a = json_array();
    for (lua_Integer i = 1; a && i <= n; i++) {
        lua_rawgeti(L, t, i); /* item */
        json_t *item = tojson_rec(L, lua_gettop(L), depth + 1, c);
        lua_pop(L, 1);
        if (item == NULL) {
            char seg[32];
            int len = snprintf(seg, sizeof seg, "[%lld]", (long long)i);
            tojson_prepend(c, seg, (size_t)len);
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, item);
    }
    return a ? a : tojson_fail(c, "out of memory");
}

/* Every key is a string (the caller checked). */
static json_t *tojson_object(lua_State *L, int t, int depth, tojson_t *c)
{
    json_t *o = json_object();
    if (o == NULL)
        return tojson_fail(c, "out of memory");
    lua_pushnil(L); /* nil */
    while (lua_next(L, t)) { /* key value */
        size_t klen;
        const char *key = lua_tolstring(L, -2, &klen); /* a string: no conversion */
        json_t *item = tojson_grow(c, klen + 4) == 0 ? tojson_rec(L, lua_gettop(L), depth + 1, c) : NULL;
        if (item != NULL && json_object_setn_new(o, key, klen, item) != 0) {
            item = tojson_fail(c, "key is not valid UTF-8");
        }
        if (item == NULL) {
            size_t n = klen > 40 ? 40 : klen;
            tojson_prepend(c, key, n);
            tojson_prepend(c, ".", 1);
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        lua_pop(L, 1); /* key */
    }
    return o;
}

static json_t *tojson_table(lua_State *L, int t, int depth, tojson_t *c)
{
    if (!lua_checkstack(L, 6))
        return tojson_fail(c, "out of Lua stack");
    if (ac_lua_frozen_contents(L, t)) /* hidden */
        return tojson_frozen(L, depth, c);
    if (tojson_grow(c, 2) != 0)
        return NULL;
    if (depth > AC_LUA_JSON_MAX_DEPTH)
        return tojson_fail(c, "nested deeper than %d levels", AC_LUA_JSON_MAX_DEPTH);
    const void *self = lua_topointer(L, t);
    for (int i = 1; i < depth; i++)
        if (c->open[i] == self)
            return tojson_fail(c, "table contains itself (a cycle)");
    c->open[depth] = self;
    int marked = 0;
    if (lua_getmetatable(L, t)) {                            /* mt */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &ac_lua_key_array_mt); /* mt array_mt */
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
        return tojson_fail(c, "table key of type %s (JSON object keys are strings)",
                              lua_typename(L, badtype));
    int array = strings == 0 && count == max && (count > 0 || marked);
    if (marked && !array)
        return tojson_fail(c, "table with agentcore.array_mt has keys other than 1..n");
    if (!array && count > 0)
        return tojson_fail(c, "table mixes string and integer keys, or is a sparse array "
                                 "(an array has exactly the keys 1..n)");
    return array ? tojson_array(L, t, max, depth, c) : tojson_object(L, t, depth, c);
}

static json_t *tojson_rec(lua_State *L, int idx, int depth, tojson_t *c)
{
    if (++c->values > AC_LUA_JSON_MAX_VALUES)
        return tojson_fail(c, "more than %d values", AC_LUA_JSON_MAX_VALUES);
    if (lua_type(L, idx) != LUA_TTABLE && lua_type(L, idx) != LUA_TSTRING && tojson_grow(c, 24) != 0)
        return NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = lua_tonumber(L, idx);
        if (!isfinite(d))
            return tojson_fail(c, "%s is not valid JSON", isnan(d) ? "NaN" : "infinity");
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (tojson_grow(c, n + 2) != 0) /* before the copy: a huge string is refused uncopied */
            return NULL;
        json_t *j = json_stringn(s, n);
        return j ? j : tojson_fail(c, "string is not valid UTF-8");
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return json_null(); /* agentcore.null and cjson.null */
        break;
    case LUA_TTABLE: return tojson_table(L, idx, depth, c);
    }
    return tojson_fail(c, "a %s cannot be converted to JSON", luaL_typename(L, idx));
}

json_t *ac_lua_to_json_limited(lua_State *L, int idx, const char *root, size_t max_bytes,
                               const char *limit_name, size_t *bytes, ac_err_t *err)
{
    tojson_t c;
    memset(&c, 0, sizeof c);
    c.max_bytes = max_bytes;
    c.limit_name = limit_name ? limit_name : "limit";
    c.wpos = sizeof c.where - 1;
    c.where[c.wpos] = '\0';
    json_t *j = tojson_rec(L, lua_absindex(L, idx), 1, &c);
    if (bytes)
        *bytes = c.bytes;
    if (j == NULL) {
        const char *path = c.where + c.wpos;
        if (root == NULL && *path == '.')
            path++; /* "a.b" rather than ".a.b" */
        if (c.too_big)
            ac_err_set(err, AC_ERR_INTERNAL, "%s is %s", root ? root : "the value", c.msg);
        else if (root || *path)
            ac_err_set(err, AC_ERR_INTERNAL, "%s (at %s%s)", c.msg, root ? root : "", path);
        else
            ac_err_set(err, AC_ERR_INTERNAL, "%s", c.msg);
    }
    return j;
}

json_t *ac_lua_to_json_named(lua_State *L, int idx, const char *root, ac_err_t *err)
{
    return ac_lua_to_json_limited(L, idx, root, 0, NULL, NULL, err);
}

json_t *ac_lua_to_json(lua_State *L, int idx, ac_err_t *err)
{
    return ac_lua_to_json_named(L, idx, NULL, err);
}

/* ---- the sandbox's cjson ----------------------------------------------------------------------
 * jansson values are malloc'd, outside the state's memory cap and its garbage collector: each
 * one lives in a box (a userdata whose C finalizer frees it), so that a Lua error raised while
 * it is held (memory, a limit) cannot leak it. */

static const char box_mt_key = 0;

/* Frees the boxed value as soon as it is done with: the finalizer is only for the paths a Lua
 * error leaves, since a finalizer that meets the state's memory cap can be skipped (its value leaked:
 * the Lua fuzzer found it). */
static void box_free(json_t **slot)
{
    json_decref(*slot);
    *slot = NULL;
}

static int box_gc(lua_State *L)
{
    box_free(lua_touserdata(L, 1));
    return 0;
}

static json_t **box_new(lua_State *L)
{
    json_t **slot = lua_newuserdatauv(L, sizeof *slot, 0); /* box */
    *slot = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &box_mt_key);        /* box mt */
    lua_setmetatable(L, -2);                               /* box */
    return slot;
}

static int cjson_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    size_t cap = ac_lua_host_of(L)->limits.max_string_bytes;
    json_t **slot = box_new(L); /* v box */
    ac_err_t err = AC_ERR_INIT;
    if ((*slot = ac_lua_to_json_limited(L, 1, "cjson.encode's value", cap, "limits.max_string_bytes",
                                        NULL, &err)) == NULL) {
        lua_pushfstring(L, "cjson.encode: %s", err.message);
        ac_err_clear(&err);
        return lua_error(L);
    }
    size_t n = json_dumpb(*slot, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n ? n : 1);
    json_dumpb(*slot, p, n, JSON_COMPACT | JSON_ENCODE_ANY);
    luaL_pushresultsize(&b, n); /* box string */
    box_free(slot);
    return 1;
}

/* Values a JSON text holds at most: one per ',' ':' or opening bracket outside strings, plus one.
 * Counted before jansson allocates anything. */
static size_t count_values(const char *s, size_t n)
{
    size_t v = 1;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == ',' || ch == '[' || ch == '{') {
            v++;
        }
    }
    return v;
}

static int cjson_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    /* jansson keeps ~64 bytes a value outside the state's cap: bound that by the call's cap */
    size_t max = AC_LUA_JSON_MAX_VALUES, call = ac_lua_host_of(L)->limits.max_call_bytes;
    if (call && call / 64 < max)
        max = call / 64;
    if (count_values(s, n) > max)
        return luaL_error(L, "cjson.decode: more than %d values", (int)max);
    json_t **slot = box_new(L); /* s box */
    json_error_t jerr;
    if ((*slot = json_loadb(s, n, JSON_DECODE_ANY, &jerr)) == NULL)
        return luaL_error(L, "cjson.decode: %s at position %d", jerr.text, jerr.position);
    ac_lua_push_json(L, *slot); /* s box value */
    box_free(slot);
    return 1;
}

int ac_lua_open_cjson(lua_State *L)
{
    lua_createtable(L, 0, 1);                       /* mt */
    lua_pushcfunction(L, box_gc);                   /* mt gc */
    lua_setfield(L, -2, "__gc");                    /* mt */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &box_mt_key); /* (empty) */
    lua_createtable(L, 0, 3);                       /* cjson */
    lua_pushcfunction(L, cjson_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, cjson_decode);
    lua_setfield(L, -2, "decode");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
