/* JSON <-> Lua: the rules of the plugin contract for every value that crosses the boundary
 * (queries, trajectories, tool params and results, answers), and the sandbox's `cjson`.
 *
 * Integers stay integers, reals stay floats, null is agentcore.null (the light userdata NULL,
 * which is also cjson.null), arrays carry agentcore.array_mt so that an empty one goes back out
 * as [] rather than {}. */
#ifndef AC_LUA_JSON_H
#define AC_LUA_JSON_H

#include <lua.h>
#include <stddef.h>

#include "base/err.h"

/* JSON handed across the boundary: nesting depth and number of values per conversion. */
#define AC_LUA_JSON_MAX_DEPTH 128
#define AC_LUA_JSON_MAX_VALUES 1000000

/* Pushes v onto L: objects become tables with string keys, arrays become tables 1..n with the
 * metatable agentcore.array_mt, NULL pushes nil. Raises a Lua error past AC_LUA_JSON_MAX_DEPTH
 * or when memory runs out: call it only inside ac_lua_host_pcall. */
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
/* The same with a bound on the size of the value as JSON text (an upper estimate: strings and
 * keys count in full, every other value a few bytes), checked while converting so that a
 * value far too large is refused before it is copied: "result is larger than N bytes (limit)".
 * *bytes (may be NULL) receives the estimate. max_bytes 0: no bound. limit_name names the
 * limit in the message ("limits.max_result_bytes"). */
json_t *ac_lua_to_json_limited(lua_State *L, int idx, const char *root, size_t max_bytes,
                               const char *limit_name, size_t *bytes, ac_err_t *err);

/* The sandbox's cjson module, {encode, decode, null}: encode follows the rules above (so arrays
 * stay arrays) and stops at the host's max_string_bytes; decode gives what ac_lua_push_json
 * gives. Neither has settings a plugin could change. */
int ac_lua_open_cjson(lua_State *L);

#endif
