/* Lua host: sandbox, limits, error locations, JSON <-> Lua, and plugin reload, on code and
 * plugins written into a temp dir. The typed agent/reward/validator calls: test_plugin.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/lua_host.h"
#include "lua/lua_json.h"
#include "lua/plugin.h"

#include "check.h"

static char src_dir[1024], lua_dir[1100], tmp_dir[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_file(const char *rel, const char *fmt, ...)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, rel);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static int has(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

/* Runs code; returns the result (NULL on error, with the message in err). */
static json_t *run(ac_lua_host_t *h, const char *code, ac_err_t *err)
{
    json_t *r = NULL;
    ac_err_clear(err);
    if (ac_lua_host_run(h, code, "@tests/chunk.lua", &r, err) != 0)
        return NULL;
    return r;
}

/* Whether code runs and returns true. */
static int run_true(ac_lua_host_t *h, const char *code)
{
    ac_err_t err = AC_ERR_INIT;
    json_t *r = run(h, code, &err);
    int ok = r && json_is_true(r);
    if (!ok)
        fprintf(stderr, "  (%s -> %s)\n", code, r ? "not true" : err.message);
    json_decref(r);
    ac_err_clear(&err);
    return ok;
}

/* Whether code fails with a message containing `part`. */
static int run_fails(ac_lua_host_t *h, const char *code, const char *part)
{
    ac_err_t err = AC_ERR_INIT;
    json_t *r = run(h, code, &err);
    int ok = r == NULL && has(err.message, part);
    if (!ok)
        fprintf(stderr, "  (%s -> %s)\n", code, r ? "succeeded" : err.message);
    json_decref(r);
    ac_err_clear(&err);
    return ok;
}

/* ---- JSON round trips through Lua ------------------------------------------------------------ */

typedef struct {
    const json_t *in;
    const char *check; /* Lua code receiving the value as `...`, returning true */
    json_t *out;
    int checked;
    ac_err_t conv;
} rt_ctx_t;

static int rt_k(lua_State *L)
{
    rt_ctx_t *c = lua_touserdata(L, 1);
    ac_lua_push_json(L, c->in); /* v */
    if (c->check) {
        luaL_loadbufferx(L, c->check, strlen(c->check), "=check", "t"); /* v f */
        lua_pushvalue(L, -2);                                          /* v f v */
        lua_call(L, 1, 1);                                             /* v ok */
        c->checked = lua_toboolean(L, -1);
        lua_pop(L, 1); /* v */
    }
    c->out = ac_lua_to_json(L, -1, &c->conv);
    return 0;
}

static json_t *round_trip(ac_lua_host_t *h, const json_t *in, const char *check, int *checked,
                          ac_err_t *err)
{
    rt_ctx_t c = {in, check, NULL, 0, AC_ERR_INIT};
    if (ac_lua_host_pcall(h, rt_k, &c, "round trip", err) != 0) {
        json_decref(c.out);
        return NULL;
    }
    if (checked)
        *checked = c.checked;
    if (c.out == NULL)
        *err = c.conv;
    return c.out;
}

/* Converts what `code` returns to JSON and compares it with the JSON text `want`; with want
 * NULL, expects a conversion error containing `part`. */
static int converts(ac_lua_host_t *h, const char *code, const char *want, const char *part)
{
    ac_err_t err = AC_ERR_INIT;
    json_t *r = run(h, code, &err);
    int ok;
    if (want) {
        json_t *w = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        ok = r && w && json_equal(r, w);
        if (!ok) {
            char *got = r ? json_dumps(r, JSON_ENCODE_ANY) : NULL;
            fprintf(stderr, "  (%s -> %s, want %s)\n", code, got ? got : err.message, want);
            free(got);
        }
        json_decref(w);
    } else {
        ok = r == NULL && has(err.message, part);
        if (!ok)
            fprintf(stderr, "  (%s -> %s)\n", code, r ? "converted" : err.message);
    }
    json_decref(r);
    ac_err_clear(&err);
    return ok;
}

static void test_json(ac_lua_host_t *h)
{
    const char *doc = "{\"i\": 1, \"f\": 1.0, \"neg\": -5, \"big\": 9007199254740993,"
                      " \"n\": null, \"e\": [], \"o\": {}, \"t\": true,"
                      " \"nested\": {\"a\": [1, [2, {\"b\": null}]]},"
                      " \"u\": \"h\\u00e9llo \\u2713 \\ud83d\\ude00\", \"z\": \"a\\u0000b\"}";
    json_t *in = json_loads(doc, JSON_ALLOW_NUL, NULL);
    const char *check =
        "local v = ...; local ac = require('agentcore')\n"
        "return math.type(v.i) == 'integer' and math.type(v.f) == 'float'\n"
        " and v.big == 9007199254740993\n"
        " and v.n == ac.null and v.n == require('cjson').null and getmetatable(v.e) == ac.array_mt\n"
        " and #v.e == 0 and next(v.o) == nil and getmetatable(v.o) == nil and v.t == true\n"
        " and v.nested.a[2][2].b == ac.null and v.u == 'h\\u{e9}llo \\u{2713} \\u{1F600}' and #v.z == 3";
    ac_err_t err = AC_ERR_INIT;
    int checked = 0;
    json_t *out = round_trip(h, in, check, &checked, &err);
    CHECK(checked, "JSON -> Lua: integer, float, null sentinel (= cjson.null), empty array with "
                   "array_mt, empty object, nesting, unicode, NUL");
    CHECK(out && json_equal(in, out), "JSON -> Lua -> JSON round trip is exact (int vs float kept)");
    char *text = out ? json_dumps(json_object_get(out, "f"), JSON_ENCODE_ANY) : NULL;
    CHECK(text && strcmp(text, "1.0") == 0, "a float 1.0 goes back out as 1.0, not 1");
    free(text);
    json_decref(out);
    json_decref(in);

    CHECK(converts(h, "return {1, 2, 3}", "[1, 2, 3]", NULL), "keys 1..n are an array");
    CHECK(converts(h, "return {}", "{}", NULL), "an empty plain table is an object");
    CHECK(converts(h, "return require('agentcore').array()", "[]", NULL),
          "an empty table with array_mt is []");
    CHECK(converts(h, "local ac = require('agentcore') return {a = ac.null, b = {ac.null, 2}}",
                   "{\"a\": null, \"b\": [null, 2]}", NULL), "agentcore.null is null");
    CHECK(converts(h, "return 3", "3", NULL) && converts(h, "return 3.0", "3.0", NULL) &&
              converts(h, "return 2^53", "9007199254740992.0", NULL),
          "Lua integers and floats keep their kind");
    CHECK(converts(h, "return 0/0", NULL, "NaN is not valid JSON"), "NaN rejected");
    CHECK(converts(h, "return {x = {1, 1/0}}", NULL, "infinity is not valid JSON (at result.x[2])"),
          "infinity rejected, with its path");
    CHECK(converts(h, "local t = {} t.self = t return t", NULL, "cycle"), "cycle rejected");
    CHECK(converts(h, "local t = {} return {a = t, b = t}", "{\"a\": {}, \"b\": {}}", NULL),
          "a table shared twice (no cycle) is fine");
    CHECK(converts(h, "return {[true] = 1}", NULL, "key of type boolean"),
          "non-string key rejected");
    CHECK(converts(h, "return {1, 2, a = 3}", NULL, "mixes"), "mixed keys rejected");
    CHECK(converts(h, "return {[1] = 1, [3] = 3}", NULL, "sparse"), "sparse array rejected");
    CHECK(converts(h, "return {f = print}", NULL, "function cannot be converted to JSON (at result.f)"),
          "function rejected");
    CHECK(converts(h, "return {s = '\\xff'}", NULL, "not valid UTF-8 (at result.s)"),
          "invalid UTF-8 rejected");
    CHECK(converts(h, "return {['\\xff'] = 1}", NULL, "key is not valid UTF-8"),
          "invalid UTF-8 key rejected");
    CHECK(converts(h, "local t = {} for i = 1, 200 do t = {t} end return t", NULL,
                   "nested deeper than 128"), "Lua value nested too deep rejected");
    CHECK(converts(h, "local t = {1} for i = 1, 40 do t = {t, t} end return t", NULL,
                   "more than 1000000 values"), "a shared-table bomb stops at the value cap");
    CHECK(converts(h, "local a = require('agentcore').array({1}) a.x = 1 return a", NULL,
                   "array_mt has keys other than 1..n"), "array_mt with string keys rejected");

    json_t *deep = json_array();
    for (int i = 0; i < 200; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    out = round_trip(h, deep, NULL, NULL, &err);
    CHECK(out == NULL && has(err.message, "nested deeper than 128"),
          "JSON nested deeper than the cap fails the call, not the process");
    json_decref(deep);
    ac_err_clear(&err);
}

/* ---- sandbox and limits ------------------------------------------------------------------------ */

/* ---- what a plugin cannot change or escape ------------------------------------------------- */

static void test_isolation(ac_lua_host_t *h)
{
    CHECK(run_fails(h, "string.lower = function() return 'poisoned' end", "read-only table (field 'lower')") &&
              run_true(h, "return string.lower('AbC') == 'abc' and ('AbC'):lower() == 'abc'"),
          "library functions cannot be replaced");
    CHECK(run_fails(h, "table.newfield = 1", "read-only") && run_fails(h, "math.pi = 3", "read-only") &&
              run_fails(h, "utf8.char = nil", "read-only") && run_fails(h, "os.time = nil", "read-only"),
          "every library table is read-only");
    CHECK(run_fails(h, "rawset(string, 'lower', print)", "rawset: the table is read-only") &&
              run_fails(h, "rawset(_G, 'print', nil)", "rawset: the table is read-only"),
          "rawset refuses read-only tables");
    CHECK(run_true(h, "return getmetatable(string) == false and getmetatable('') == false"),
          "the metatables of library tables and strings are out of reach");
    CHECK(run_fails(h, "setmetatable(string, nil)", "protected metatable"),
          "a read-only table's metatable cannot be replaced");
    CHECK(run_true(h, "local n = 0 for k, v in pairs(math) do n = n + 1 end return n > 20 and math.floor(2.5) == 2"),
          "pairs and reads still see a read-only table's fields");
    CHECK(run_fails(h, "local ac = require('agentcore'); ac.array_mt.__gc = function() end", "read-only") &&
              run_fails(h, "local ac = require('agentcore'); ac.array_mt.__index = error", "read-only") &&
              run_fails(h, "rawset(require('agentcore').array_mt, '__index', error)", "read-only"),
          "agentcore.array_mt is read-only");
    CHECK(run_true(h, "local ac = require('agentcore') return getmetatable(ac.array{}) == ac.array_mt"),
          "arrays still carry agentcore.array_mt");
    CHECK(run_fails(h, "require('agentcore.util').trim = nil", "read-only") &&
              run_fails(h, "require('agentcore').null = 1", "read-only") &&
              run_true(h, "return require('agentcore.util').trim(' x ') == 'x'"),
          "modules handed out by require are read-only");
    CHECK(converts(h, "return require('agentcore.util')", NULL, "cannot be converted") &&
              converts(h, "local m = require('mods.consts') return m.list", "[1,2,3]", NULL) &&
              converts(h, "local m = require('mods.consts') return m", "{\"list\":[1,2,3],\"name\":\"c\"}", NULL),
          "a read-only table converts to JSON as the fields it shows");
    CHECK(run_true(h, "return #require('mods.consts').list == 3 and require('mods.consts').list[2] == 2"),
          "# and indexing work on read-only arrays");
    CHECK(run_fails(h, "getmetatable(_ENV).__index = {}", "attempt to index a boolean value"),
          "a chunk cannot reach the built-in globals through its environment's metatable");
    CHECK(run_true(h, "return require('cjson').decode_max_depth == nil and require('cjson').encode_max_depth == nil "
                      "and require('cjson').new == nil and require('cjson').encode_keep_buffer == nil"),
          "cjson has no settings a plugin could change");
    CHECK(run_fails(h, "local c = require('cjson'); c.decode_max_depth = function() end", "read-only"),
          "cjson's table is read-only");
    CHECK(run_fails(h, "return require('cjson').decode(('['):rep(400000) .. (']'):rep(400000))", "cjson.decode:"),
          "a deeply nested cjson.decode fails cleanly instead of overflowing the C stack");
    CHECK(converts(h, "return require('cjson').decode('{\"a\":[1,2.5,null],\"e\":[]}')",
                   "{\"a\":[1,2.5,null],\"e\":[]}", NULL),
          "cjson.decode keeps integers, nulls and empty arrays");
    CHECK(run_true(h, "local c = require('cjson') local ac = require('agentcore') "
                      "return c.encode({1, 'x', {a = true}}) == '[1,\"x\",{\"a\":true}]' and c.encode(ac.array{}) == '[]'"
                      " and c.encode(c.null) == 'null'"),
          "cjson.encode follows the host's JSON rules");
    CHECK(run_fails(h, "local s = string.rep('x', 1e7) local t = {} for i = 1, 100 do t[i] = s end "
                       "return require('cjson').encode(t)", "larger than"),
          "cjson.encode stops at limits.max_string_bytes");
    CHECK(run_true(h, "return coroutine == nil and debug == nil and io == nil and package == nil and load == nil"),
          "no coroutine, debug, io or package library");
}

static void test_escapes(ac_lua_host_t *h)
{
    ac_lua_limits_t limits = *ac_lua_host_limits(h), fast = limits;
    fast.max_instructions = 2000000;
    fast.max_wall_ms = 1000;
    ac_lua_host_set_limits(h, &fast);
    static const struct {
        const char *code, *what;
        int may_return; /* Lua itself ends it (stack overflow), with a value */
    } escapes[] = {
        {"return xpcall(function() error('x') end, function(m) while true do end end)",
         "a message handler that loops", 0},
        {"return xpcall(function() while true do end end, function(m) while true do end end)",
         "a message handler of a limit error that loops", 0},
        {"local ok = pcall(function() while true do end end) while true do end", "looping after a caught limit", 0},
        {"do local x <close> = setmetatable({}, {__close = function() while true do end end}) end",
         "a __close handler that loops", 0},
        {"do local x <close> = setmetatable({}, {__close = function() while true do end end}) error('e') end",
         "a __close handler that loops while an error unwinds", 0},
        {"local t = setmetatable({}, {__index = function(t, k) while true do end end}) return t.x",
         "a metamethod that loops", 0},
        {"local t = {} table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end)",
         "a sort comparator that loops", 0},
        {"local s = string.gsub('aaaa', 'a', function() while true do end end)", "a gsub callback that loops", 0},
        {"local function f() return xpcall(f, f) end return f()", "recursion through xpcall", 1},
        {"local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
         "recursion through a metamethod", 0},
        {"local t = setmetatable({}, {__tostring = function(t) return tostring(t) end}) return tostring(t)",
         "recursion through __tostring", 0},
        {"error(setmetatable({}, {__tostring = function() while true do end end}))",
         "an error object whose __tostring loops", 0},
    };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        ac_err_t err = AC_ERR_INIT;
        double t0 = now_s();
        json_t *r = run(h, escapes[i].code, &err);
        double dt = now_s() - t0;
        char what[160];
        snprintf(what, sizeof what, "%s ends with an error within the limits", escapes[i].what);
        int ok = (escapes[i].may_return || (r == NULL && err.code != 0)) && dt < 3.0;
        CHECK(ok, what);
        if (!ok)
            fprintf(stderr, "  (%.2f s, %s)\n", dt, r ? "returned" : err.message);
        json_decref(r);
        ac_err_clear(&err);
        CHECK(run_true(h, "return 1 + 1 == 2"), "the state works after it");
    }
    ac_lua_host_set_limits(h, &limits);
}

static void test_watch(ac_lua_host_t *h)
{
    ac_lua_watch_t w = {0};
    ac_lua_host_set_watch(h, &w);
    CHECK(run_true(h, "return true") && atomic_load(&w.deadline_ns) == 0 && !ac_lua_host_interrupted(h),
          "a call publishes its deadline only while it runs");
    atomic_store(&w.interrupt, 1);
    ac_err_t err = AC_ERR_INIT;
    json_t *r = run(h, "local n = 0 while true do n = n + 1 end", &err);
    CHECK(r == NULL && has(err.message, "interrupted") && ac_lua_host_interrupted(h),
          "an interrupted host refuses to start calls");
    ac_err_clear(&err);
    atomic_store(&w.interrupt, 0);
    CHECK(run_true(h, "return true") && !ac_lua_host_interrupted(h), "it works again once the flag is cleared");
    ac_lua_host_set_watch(h, NULL);
}

static void test_sandbox(ac_lua_host_t *h)
{
    CHECK(run_true(h, "return io == nil and load == nil and dofile == nil and loadfile == nil "
                      "and collectgarbage == nil and string.dump == nil and debug == nil and "
                      "package == nil and coroutine == nil"),
          "io, load, dofile, loadfile, collectgarbage, string.dump, debug, package absent");
    CHECK(run_true(h, "return os.execute == nil and os.exit == nil and os.getenv == nil and "
                      "os.remove == nil and type(os.time()) == 'number' and os.clock() >= 0"),
          "os has only time and clock");
    CHECK(run_true(h, "return type(pcall) == 'function' and select('#', 1, 2) == 2 and "
                      "rawequal(1, 1) and rawlen({1}) == 1 and tostring(1) == '1' and "
                      "utf8.char(233) == '\\u{e9}' and math.floor(1.5) == 1 and "
                      "table.concat({1, 2}) == '12'"),
          "base, table, string, math and utf8 usable");
    CHECK(run_true(h, "return require('cjson').decode('[1]')[1] == 1"), "cjson preloaded");
    CHECK(run_true(h, "return getmetatable('') == false"), "the string metatable is hidden");
    CHECK(run_fails(h, "return require('../x')", "bad module name"), "require of ../x rejected");
    CHECK(run_fails(h, "return require('a..b')", "bad module name") &&
              run_fails(h, "return require('a/b')", "bad module name"),
          "require of a..b and a/b rejected");
    CHECK(run_fails(h, "return require('nope.nothing')", "module 'nope.nothing' not found"),
          "require of a missing module says where it looked");
    write_file("binmod.lua", "\x1bLuaT fake bytecode");
    CHECK(run_fails(h, "return require('binmod')", "binary chunk"),
          "require of a binary chunk rejected");
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_lua_host_run(h, "\x1bLua", "=bin", NULL, &err) != 0 && has(err.message, "binary"),
          "a binary chunk is rejected by the loader");
    ac_err_clear(&err);
    write_file("mods/helper.lua", "helper_global = 1\nreturn {twice = function(x) return 2 * x end}");
    CHECK(run_true(h, "return require('mods.helper').twice(21) == 42 and "
                      "require('mods.helper') == require('mods.helper') and helper_global == nil"),
          "require finds plugins/a/b.lua, caches it, and keeps its globals to itself");
    write_file("mods/broken.lua", "return {");
    CHECK(run_fails(h, "return require('mods.broken')", "plugins/mods/broken.lua:1:") &&
              run_fails(h, "return require('mods.broken')", "plugins/mods/broken.lua:1:"),
          "a module with a syntax error reports it again on the next require");
    write_file("mods/loop_a.lua", "return require('mods.loop_b')");
    write_file("mods/loop_b.lua", "return require('mods.loop_a')");
    CHECK(run_fails(h, "return require('mods.loop_a')", "module 'mods.loop_a' requires itself"),
          "a require loop is reported");
    CHECK(run_fails(h, "return require('x:1:')", "tests/chunk.lua:1: require: bad module name"),
          "a message that merely contains ':1:' still gets the caller's location");
    CHECK(run_true(h, "return require('agentcore').null ~= nil and "
                      "require('agentcore.util').trim('  a b  ') == 'a b'"),
          "require finds lua/agentcore/init.lua and lua/agentcore/util.lua");
    CHECK(run_true(h, "x = 5 return x == 5") && run_true(h, "return x == nil"),
          "a chunk's globals are its own");
    CHECK(run_fails(h, "_G.y = 1", "read-only table (field 'y')"), "writing a shared global is refused");
    CHECK(run_fails(h, "setmetatable({}, {__gc = function() end})", "__gc"),
          "__gc metamethods refused");
    CHECK(run_true(h, "return getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a == 1"),
          "setmetatable still works");
}

static void test_limits(ac_lua_host_t *h)
{
    ac_err_t err = AC_ERR_INIT;
    double t0 = now_s();
    json_t *r = NULL;
    int rc = ac_lua_host_run(h, "local n = 0\nwhile true do n = n + 1 end", "@tests/loop.lua", &r,
                             &err);
    double dt = now_s() - t0;
    CHECK(rc != 0 && has(err.message, "tests/loop.lua:2: instruction budget exceeded"),
          "an infinite loop is stopped with file:line and a clear message");
    printf("     (stopped after %.2f s: %s)\n", dt, err.message);
    CHECK(run_true(h, "return 1 + 1 == 2"), "the next call after a loop works");
    CHECK(run_fails(h, "while true do pcall(function() while true do end end) end",
                    "instruction budget exceeded"), "pcall cannot catch the instruction budget");
    CHECK(run_fails(h, "local ok = xpcall(function() while true do end end, function(m) return m end)"
                       " while true do end", "instruction budget exceeded"),
          "xpcall cannot catch it either");
    CHECK(run_true(h, "return pcall(error, 'x') == false"), "pcall still catches plain errors");

    ac_lua_limits_t saved = *ac_lua_host_limits(h), wall = saved;
    wall.max_instructions = 0;
    wall.max_wall_ms = 200;
    ac_lua_host_set_limits(h, &wall);
    t0 = now_s();
    CHECK(run_fails(h, "while true do end", "wall-clock limit exceeded (200 ms"),
          "the wall-clock deadline stops a loop when the budget is off");
    dt = now_s() - t0;
    CHECK(dt < 1.0, "... within the deadline plus a hook interval");
    ac_lua_host_set_limits(h, &saved);

    size_t base = ac_lua_host_memory(h);
    /* a 16 MiB cap for the bomb: under ASan, filling the default 128 MiB can take longer than
     * the wall-clock limit, which would then stop the call first */
    ac_lua_limits_t small = saved;
    small.max_call_bytes = (size_t)16 << 20;
    ac_lua_host_set_limits(h, &small);
    CHECK(run_fails(h, "local t, i = {}, 0 while true do i = i + 1 t[i] = {i} end",
                    "not enough memory"), "a table bomb fails with not enough memory");
    ac_lua_host_set_limits(h, &saved);
    CHECK(ac_lua_host_memory(h) < base + (4u << 20), "... and its memory is collected at once");
    CHECK(run_true(h, "local t = {} for i = 1, 1000 do t[i] = {i} end return #t == 1000"),
          "the next call after a table bomb works");
    CHECK(run_fails(h, "return #string.rep('x', 1e9)", "not enough memory"),
          "string.rep('x', 1e9) fails with not enough memory");
    CHECK(run_fails(h, "local s = 'x' while true do s = s .. s end", "not enough memory"),
          "a doubling string fails with not enough memory");
    CHECK(run_true(h, "return #string.rep('ab', 1000, ',') == 2999"),
          "the next call after a string bomb works");
    t0 = now_s();
    CHECK(run_true(h, "return string.rep('', 1e18) == '' and ('x'):rep(0) == ''"),
          "string.rep of an empty string returns at once");
    CHECK(now_s() - t0 < 0.5, "... in well under a second");
    CHECK(run_fails(h, "table.move({}, 1, math.maxinteger - 1, 1)", "table.move: range"),
          "table.move over a huge range refused");

    t0 = now_s();
    CHECK(run_fails(h, "return string.find(string.rep('a', 250), '.-.-.-.-b')",
                    "string.find: pattern '.-.-.-.-b' is too costly"),
          "the pathological string.find pattern is refused with a clear error");
    dt = now_s() - t0;
    CHECK(dt < 1.0, "... in under a second");
    printf("     (refused in %.4f s)\n", dt);
    CHECK(run_fails(h, "return string.rep('a', 100000):match('a*b')", "string.match"),
          "a quadratic match over 100 KB refused");
    CHECK(run_fails(h, "for w in string.rep('a', 60):gmatch('.-.-.-.-.-b') do end",
                    "string.gmatch") &&
              run_fails(h, "return (string.rep('a', 60):gsub('.-.-.-.-.-b', ''))", "string.gsub"),
          "gmatch and gsub are guarded too");
    CHECK(run_true(h, "local n = 0 for l in ('x'):rep(20000):gmatch('[^\\n]+') do n = n + #l end "
                      "return n == 20000"),
          "a quantifier that ends the pattern counts once ([^\\n]+ over one 20 KB line passes)");
    CHECK(run_fails(h, "for l in ('x'):rep(20000):gmatch('(.-)\\n') do end",
                    "pattern '(.-)\\010' is too costly for a 20000-byte subject"),
          "a refused pattern is shown with its control bytes escaped");
    CHECK(run_fails(h, "return ('x'):rep(2^20):find(('x'):rep(2^16)..'y', 1, true)", "too costly"),
          "a plain find of a long needle in a long haystack is refused");
    t0 = now_s();
    CHECK(run_true(h, "local s = ('word '):rep(20000)\n"
                      "local a = s:gsub('%s+', ' ')\n"
                      "local b = s:match('^%s*(.-)%s*$')\n"
                      "local c = ('add 3 and 4'):match('(%d+) and (%d+)')\n"
                      "local n = 0 for w in s:gmatch('%a+') do n = n + 1 end\n"
                      "return #a == 100000 and #b == 99999 and c == '3' and n == 20000 and "
                      "s:find('word', 1, true) == 1"),
          "common patterns on a 100 KB subject pass the guard");
    printf("     (common patterns: %.3f s)\n", now_s() - t0);
    CHECK(run_fails(h, "local t = {} t[#t + 1] = string.rep()", "tests/chunk.lua:1: bad argument"),
          "an error raised in a C function gets the caller's file:line");
    CHECK(run_fails(h, "error({})", "tests/chunk.lua:1: (error object is a table value)"),
          "a non-string error object gets file:line");
    ac_err_t e0 = AC_ERR_INIT;
    CHECK(run(h, "error('as is', 0)", &e0) == NULL && strcmp(e0.message, "as is") == 0,
          "error(msg, 0) keeps its message as is (Lua's 'no position')");
    ac_err_clear(&e0);
    ac_err_clear(&err);
}

/* ---- reloading plugins ------------------------------------------------------------------------ */

/* The agent contract itself is tested in test_plugin.c; reload is the host's: an agent whose
 * observation says which version runs. */
static const char *agent_src =
    "local agent = { name = 'rl', version = '%s', tools = { { name = 'go', args = { { name = 'n', type = 'number' } } } } }\n"
    "function agent.init(query) return { q = query, n = 0 } end\n"
    "function agent.observe(s) return '%s' .. s.q .. ' | ' .. s.n end\n"
    "function agent.step(s, tool, args) s.n = s.n + args.n return { n = s.n }, false end\n"
    "function agent.final(s) return { answer = s.n } end\n"
    "return agent\n";

static void test_reload(ac_lua_host_t *h)
{
    char body[4096];
    snprintf(body, sizeof body, agent_src, "1", "v1 ");
    write_file("agents/rl.lua", "%s", body);
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *old = ac_agent_open(h, "rl", &err);
    CHECK(old && strcmp(old->version, "1") == 0, "reload: version 1 loads");
    if (old == NULL)
        return;
    json_t *q = json_string("q");
    ac_episode_t ep_old = AC_EPISODE_INIT, ep_new = AC_EPISODE_INIT;
    ac_agent_init(old, q, NULL, &ep_old, &err);

    snprintf(body, sizeof body, agent_src, "2", "v2-changed ");
    write_file("agents/rl.lua", "%s", body);
    ac_agent_t *same = ac_agent_open(h, "rl", &err);
    CHECK(same == old, "within reload_interval_ms the file is not looked at again");
    ac_agent_close(same);
    ac_lua_host_recheck_plugins(h);
    ac_agent_t *cur = ac_agent_open(h, "rl", &err);
    CHECK(cur && cur != old && strcmp(cur->version, "2") == 0, "a new lookup gets the new version");
    char *buf = NULL;
    size_t cap = 0, len;
    CHECK(ac_agent_observe(old, &ep_old, &buf, &cap, &len, &err) == 0 && strcmp(buf, "v1 q | 0") == 0,
          "a handle held across the reload keeps the old behaviour");
    json_t *args = json_pack("{s:i}", "n", 2), *res = NULL;
    int done = -1;
    CHECK(strcmp(old->tools[0].args[0].name, "n") == 0 &&
              ac_agent_step(old, &ep_old, 0, args, &res, &done, NULL, &err) == 0 &&
              json_integer_value(json_object_get(res, "n")) == 2 && done == 0,
          "... and its tools and their arguments");
    json_decref(res);
    json_decref(args);
    ac_agent_init(cur, q, NULL, &ep_new, &err);
    CHECK(ac_agent_observe(cur, &ep_new, &buf, &cap, &len, &err) == 0 &&
              strcmp(buf, "v2-changed q | 0") == 0, "the new handle has the new behaviour");
    ac_agent_episode_free(old, &ep_old);
    ac_agent_close(old); /* the last holder of version 1: freed now */

    write_file("agents/rl.lua", "local agent = {\nname = 'rl' version = '3'}\nreturn agent\n");
    ac_lua_host_recheck_plugins(h);
    CHECK(ac_agent_open(h, "rl", &err) == NULL && has(err.message, "plugins/agents/rl.lua:2:"),
          "a broken new version: the lookup reports its error with file:line");
    CHECK(ac_agent_observe(cur, &ep_new, &buf, &cap, &len, &err) == 0 &&
              strcmp(buf, "v2-changed q | 0") == 0, "... and the working version keeps working");
    ac_lua_limits_t saved = *ac_lua_host_limits(h), eager = saved;
    eager.reload_interval_ms = 0;
    ac_lua_host_set_limits(h, &eager);
    snprintf(body, sizeof body, agent_src, "4", "v4 ");
    write_file("agents/rl.lua", "%s", body);
    ac_agent_t *fixed = ac_agent_open(h, "rl", &err);
    CHECK(fixed && strcmp(fixed->version, "4") == 0,
          "with reload_interval_ms 0 every lookup sees a fixed file");
    ac_lua_host_set_limits(h, &saved);
    ac_agent_episode_free(cur, &ep_new);
    ac_agent_close(cur);
    ac_agent_close(fixed);
    json_decref(q);
    free(buf);
    ac_err_clear(&err);
}

int main(void)
{
    const char *env = getenv("AC_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", env && *env ? env : AC_SOURCE_DIR);
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", src_dir);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ac_lua_test.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    static const char *dirs[] = {"agents", "rewards", "validators", "mods"};
    for (int i = 0; i < 4; i++) {
        char d[128];
        snprintf(d, sizeof d, "%s/%s", tmp_dir, dirs[i]);
        mkdir(d, 0700);
    }
    ac_err_t err = AC_ERR_INIT;
    ac_lua_host_t *h = ac_lua_host_create(lua_dir, tmp_dir, NULL, &err);
    CHECK(h != NULL, "a host is created");
    if (h == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        return 1;
    }
    CHECK(ac_lua_host_create("/nonexistent", tmp_dir, NULL, &err) == NULL &&
              has(err.message, "/nonexistent"), "a missing Lua directory is reported");
    ac_err_clear(&err);
    write_file("mods/consts.lua", "return { name = 'c', list = require('agentcore').array{1, 2, 3} }");
    test_sandbox(h);
    test_isolation(h);
    test_escapes(h);
    test_watch(h);
    test_limits(h);
    test_json(h);
    test_reload(h);
    ac_lua_host_destroy(h);
    ac_lua_host_destroy(NULL);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return check_done(__FILE__);
}
