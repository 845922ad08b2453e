/* libFuzzer target: fuzzed Lua source run as a plugin chunk in the sandbox (lua_host.h) under
 * tight limits, then a probe that checks the sandbox is still whole.
 * Build and run: tests/fuzz/run.sh SECONDS fuzz_lua.
 *
 * The input is the chunk's text (any bytes: most inputs are syntax errors, which is a path too).
 * Checks (abort() on a violation, so libFuzzer reports it with the input):
 *   - no crash, no sanitizer report, no leak; the call returns (libFuzzer's -timeout catches a
 *     call that does not);
 *   - after the call the state is usable and unchanged for the next plugin: a probe chunk finds
 *     the library functions it knew before, agentcore.array_mt still empty and read-only,
 *     require's modules intact, and none of the chunk's globals;
 *   - the state's memory stays under its cap.
 * The host is made again every HOST_RUNS inputs, so long runs stay bounded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_host.h"

#define HOST_RUNS 2000

static ac_lua_host_t *host;
static int runs;

static const char probe[] =
    "local ac = require('agentcore') local c = require('cjson')\n"
    "return string.lower('AB') == 'ab' and ('AB'):lower() == 'ab' and math.floor(1.5) == 1\n"
    "  and table.concat({'a', 'b'}) == 'ab' and type(pcall) == 'function' and type(xpcall) == 'function'\n"
    "  and type(setmetatable) == 'function' and type(rawset) == 'function' and type(require) == 'function'\n"
    "  and next(ac.array_mt) == nil and getmetatable(ac.array{}) == ac.array_mt and getmetatable(ac.array_mt) == false\n"
    "  and pcall(rawset, ac.array_mt, '__index', 1) == false and pcall(rawset, string, 'x', 1) == false\n"
    "  and c.encode(ac.array{}) == '[]' and c.decode('[1]')[1] == 1 and ac.null == c.null\n"
    "  and require('agentcore.util').trim(' a ') == 'a' and x == nil and fuzzed == nil\n"
    "  and getmetatable('') == false and coroutine == nil and load == nil";

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_lua: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void make_host(void)
{
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    limits.max_instructions = 200000;
    limits.max_wall_ms = 500;
    limits.max_call_bytes = (size_t)8 << 20;
    limits.max_state_bytes = (size_t)32 << 20;
    limits.max_pattern_cost = 1e6;
    limits.max_string_bytes = (size_t)1 << 20;
    ac_err_t err = AC_ERR_INIT;
    const char *src = getenv("AC_SOURCE_DIR");
    char lua_dir[4096], plugins_dir[4096];
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", src && *src ? src : AC_SOURCE_DIR);
    snprintf(plugins_dir, sizeof plugins_dir, "%s/plugins", src && *src ? src : AC_SOURCE_DIR);
    if ((host = ac_lua_host_create(lua_dir, plugins_dir, &limits, &err)) == NULL)
        fail("cannot create the host", err.message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (host == NULL || ++runs % HOST_RUNS == 0) {
        ac_lua_host_destroy(host);
        make_host();
    }
    char *code = malloc(size + 1);
    if (code == NULL)
        return 0;
    memcpy(code, data, size);
    code[size] = '\0'; /* a NUL inside cuts the chunk: the loader reads text up to it */
    json_t *result = NULL;
    ac_err_t err = AC_ERR_INIT;
    ac_lua_host_run(host, code, "=fuzzed", &result, &err);
    json_decref(result);
    ac_err_clear(&err);
    free(code);

    const ac_lua_limits_t *l = ac_lua_host_limits(host);
    if (ac_lua_host_memory(host) > l->max_state_bytes)
        fail("the state is over its memory cap", NULL);
    result = NULL;
    if (ac_lua_host_run(host, probe, "=probe", &result, &err) != 0)
        fail("the probe failed after the input", err.message);
    if (!json_is_true(result))
        fail("the sandbox changed after the input", NULL);
    json_decref(result);
    return 0;
}
