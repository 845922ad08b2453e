/* The typed plugin calls of plugin.h on plugins written into a temp dir: the agent contract
 * (tools as an array with typed argument slots, optional observe / legal / candidates), every
 * call of an episode (init, observe, legal, candidates, step with the policy's arguments,
 * final), the failed-tool path, output limits, the episode's random numbers; rewards;
 * validators; and the webhook-policy header rule (ac_webhook_header_check). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"

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

/* Whether the JSON value v equals the JSON text want; prints both when not. */
static int json_is(const json_t *v, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    int ok = v && w && json_equal(v, w);
    if (!ok) {
        char *got = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "  (got %s, want %s)\n", got ? got : "NULL", want);
        free(got);
    }
    json_decref(w);
    return ok;
}

/* ---- agents: the contract --------------------------------------------------------------------- */

/* Expects ac_agent_open of a file with `body` to fail with a message containing `part`. */
static int agent_rejected(ac_lua_host_t *h, const char *name, const char *body, const char *part)
{
    char rel[128];
    snprintf(rel, sizeof rel, "agents/%s.lua", name);
    write_file(rel, "%s", body);
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, name, &err);
    int ok = a == NULL && has(err.message, part);
    if (!ok)
        fprintf(stderr, "  (%s -> %s)\n", name, a ? "accepted" : err.message);
    ac_agent_close(a);
    ac_err_clear(&err);
    return ok;
}

/* The text of an agent `local a = {name = 'a', version = '1', <fields>}` with the three
 * required functions and `extra` Lua after them. */
static void small_agent(char *body, size_t cap, const char *fields, const char *extra)
{
    snprintf(body, cap,
             "local a = {name = 'a', version = '1', %s}\n"
             "function a.init() return {} end function a.step() return {}, true end\n"
             "function a.final() return {} end\n%s\nreturn a\n",
             fields, extra ? extra : "");
}

static int rejected_with(ac_lua_host_t *h, const char *name, const char *fields, const char *extra,
                         const char *part)
{
    char body[4096];
    small_agent(body, sizeof body, fields, extra);
    return agent_rejected(h, name, body, part);
}

/* Whether that agent loads. */
static int loads_with(ac_lua_host_t *h, const char *name, const char *fields, const char *extra)
{
    char body[4096], rel[128];
    small_agent(body, sizeof body, fields, extra);
    snprintf(rel, sizeof rel, "agents/%s.lua", name);
    write_file(rel, "%s", body);
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, name, &err);
    if (a == NULL)
        fprintf(stderr, "  (%s -> %s)\n", name, err.message);
    int ok = a != NULL;
    ac_agent_close(a);
    ac_err_clear(&err);
    return ok;
}

static void test_contract(ac_lua_host_t *h)
{
    const char *one = "tools = {{name = 'x'}}";
    CHECK(agent_rejected(h, "noname", "local a = {version = '1', tools = {{name = 'x'}}} return a",
                         "plugins/agents/noname.lua: missing field 'name'"),
          "agent without name rejected, naming the file and field");
    CHECK(agent_rejected(h, "noversion", "local a = {name = 'a', tools = {{name = 'x'}}} "
                                         "function a.init() end function a.step() end function a.final() end return a",
                         "missing field 'version'"),
          "agent without version rejected");
    CHECK(agent_rejected(h, "nostep", "local a = {name = 'a', version = '1', tools = {{name = 'x'}}} "
                                      "function a.init() end function a.final() end return a",
                         "plugins/agents/nostep.lua: missing function 'step'"),
          "agent without step rejected: missing function 'step'");
    CHECK(agent_rejected(h, "noinit", "local a = {name = 'a', version = '1', tools = {{name = 'x'}}} "
                                      "function a.step() end function a.final() end return a",
                         "missing function 'init'"),
          "agent without init rejected");
    CHECK(agent_rejected(h, "nofinal", "local a = {name = 'a', version = '1', tools = {{name = 'x'}}} "
                                       "function a.init() end function a.step() end return a",
                         "missing function 'final'"),
          "agent without final rejected");

    /* the old contract, refused with a pointer to the new one */
    CHECK(agent_rejected(h, "oldcontract",
                         "local a = {name = 'a', version = '1', actions = {'add', 'answer'},\n"
                         "  tools = {add = {cost_usd = 0.0001}}}\n"
                         "function a.init() return {} end function a.observe() return '' end\n"
                         "function a.legal() return {'add'} end\n"
                         "function a.step(s, action) return {}, {}, true end function a.final() end\n"
                         "return a\n",
                         "'actions' is the old agent contract: declare 'tools' as an array"),
          "an agent declaring the old 'actions' is refused");
    CHECK(rejected_with(h, "oldactions", "actions = {'x'}, tools = {{name = 'x'}}", NULL, "(docs/plugins.md)"),
          "... with a message pointing to docs/plugins.md, even when it also declares tools");

    /* tools: an array of tables with unique names */
    CHECK(rejected_with(h, "notools", "", NULL, "'tools' must be an array of tools {name = ..., args = {...}} (got nil)"),
          "an agent without tools rejected");
    CHECK(rejected_with(h, "strtools", "tools = 'add'", NULL, "'tools' must be an array of tools"),
          "tools that is a string rejected");
    CHECK(rejected_with(h, "maptools", "tools = {add = {cost_usd = 0}, answer = {}}", NULL,
                        "'tools' must be an array (keys 1..n only)"),
          "tools as a map {name = {...}} (the old shape) rejected: not an array");
    CHECK(rejected_with(h, "mixtools", "tools = {{name = 'x'}, y = {name = 'y'}}", NULL,
                        "'tools' must be an array (keys 1..n only)"),
          "tools with an extra key rejected");
    CHECK(rejected_with(h, "emptytools", "tools = {}", NULL, "'tools' must have 1 to 64 entries (has 0)"),
          "empty tools rejected");
    CHECK(rejected_with(h, "manytools", "tools = {}", "for i = 1, 65 do a.tools[i] = {name = 't' .. i} end",
                        "'tools' must have 1 to 64 entries (has 65)"),
          "65 tools rejected");
    CHECK(loads_with(h, "sixtyfour", "tools = {}", "for i = 1, 64 do a.tools[i] = {name = 't' .. i} end"),
          "64 tools load");
    CHECK(rejected_with(h, "strtool", "tools = {{name = 'x'}, 'y'}", NULL, "tools[2] must be a table"),
          "a tool that is not a table rejected");
    CHECK(rejected_with(h, "noname2", "tools = {{name = 'x'}, {cost_usd = 1}}", NULL,
                        "tools[2].name must be a non-empty string"),
          "a tool without a name rejected");
    CHECK(rejected_with(h, "emptyname", "tools = {{name = ''}}", NULL, "tools[1].name must be a non-empty string"),
          "a tool with an empty name rejected");
    CHECK(rejected_with(h, "numname", "tools = {{name = 7}}", NULL, "tools[1].name must be a string (got number)"),
          "a tool with a number for a name rejected");
    CHECK(rejected_with(h, "dup", "tools = {{name = 'x'}, {name = 'y'}, {name = 'x'}}", NULL,
                        "tools[3] ('x') repeats an earlier tool"),
          "duplicate tool names rejected");
    CHECK(rejected_with(h, "negcost", "tools = {{name = 'x', cost_usd = -1}}", NULL,
                        "tools.x.cost_usd must be a number from 0 to 1e6"),
          "negative tool cost rejected");
    CHECK(rejected_with(h, "strcost", "tools = {{name = 'x', cost_usd = 'free'}}", NULL,
                        "tools.x.cost_usd must be a number from 0 to 1e6"),
          "non-number tool cost rejected");
    CHECK(rejected_with(h, "hugecost", "tools = {{name = 'x', cost_usd = 2e6}}", NULL,
                        "tools.x.cost_usd must be a number from 0 to 1e6"),
          "tool cost above 1e6 rejected");
    CHECK(rejected_with(h, "numdesc", "tools = {{name = 'x', description = 5}}", NULL,
                        "tools[1].description must be a string (got number)"),
          "a non-string description rejected");

    /* arguments: an array of {name, type} with a known type, at most AC_AGENT_MAX_ARGS */
    CHECK(rejected_with(h, "strargs", "tools = {{name = 'x', args = 'a'}}", NULL,
                        "tools.x.args must be an array of {name = ..., type = ...}"),
          "args that is not a table rejected");
    CHECK(rejected_with(h, "strarg", "tools = {{name = 'x', args = {'a'}}}", NULL,
                        "tools.x.args[1] must be a table {name = ..., type = ...}"),
          "an argument that is not a table rejected");
    CHECK(rejected_with(h, "mapargs", "tools = {{name = 'x', args = {a = {type = 'number'}}}}", NULL,
                        "tools.x.args must be an array"),
          "args as a map {a = {type = ...}} rejected (else the tool silently takes no argument)");
    CHECK(rejected_with(h, "noargname", "tools = {{name = 'x', args = {{type = 'number'}}}}", NULL,
                        "tools.x.args[1].name must be a non-empty string"),
          "an argument without a name rejected");
    CHECK(rejected_with(h, "dupargs", "tools = {{name = 'x', args = {{name = 'a'}, {name = 'a', type = 'word'}}}}",
                        NULL, "tools.x.args[2] repeats the argument name 'a'"),
          "duplicate argument names rejected");
    CHECK(rejected_with(h, "badtype", "tools = {{name = 'x', args = {{name = 'a', type = 'float'}}}}", NULL,
                        "tools.x.args[1].type must be \"number\", \"word\", \"id\", \"any\" or \"candidate\""),
          "an unknown argument type rejected, listing the types");
    CHECK(rejected_with(h, "numtype", "tools = {{name = 'x', args = {{name = 'a', type = 1}}}}", NULL,
                        "tools.x.args[1].type must be a string (got number)"),
          "a non-string argument type rejected");
    char five[512];
    snprintf(five, sizeof five, "tools = {{name = 'x', args = {{name = 'a'}, {name = 'b'}, {name = 'c'}, {name = 'd'}, "
                                "{name = 'e'}}}}");
    CHECK(AC_AGENT_MAX_ARGS == 4 && rejected_with(h, "fiveargs", five, NULL, "tools.x takes 5 arguments (at most 4)"),
          "a tool with more than AC_AGENT_MAX_ARGS arguments rejected");
    CHECK(rejected_with(h, "nocands", "tools = {{name = 'x', args = {{name = 'item', type = 'candidate'}}}}", NULL,
                        "an argument of type \"candidate\" needs agent.candidates(state)"),
          "a \"candidate\" argument without agent.candidates rejected");
    CHECK(loads_with(h, "withcands", "tools = {{name = 'x', args = {{name = 'item', type = 'candidate'}}}}",
                     "function a.candidates() return {'a'} end"),
          "... and accepted with agent.candidates");

    /* optional functions: absent is fine, anything but a function is not */
    CHECK(rejected_with(h, "numobserve", one, "a.observe = 5", "'observe' must be a function (got number)"),
          "observe that is not a function rejected");
    CHECK(rejected_with(h, "strlegal", one, "a.legal = 'x'", "'legal' must be a function (got string)"),
          "legal that is not a function rejected");
    CHECK(rejected_with(h, "tblcands", one, "a.candidates = {}", "'candidates' must be a function (got table)"),
          "candidates that is not a function rejected");
    CHECK(rejected_with(h, "badsteps", "tools = {{name = 'x'}}, max_steps = 0", NULL, "'max_steps' must be an integer"),
          "max_steps 0 rejected");
    CHECK(rejected_with(h, "floatsteps", "tools = {{name = 'x'}}, max_steps = 2.5", NULL,
                        "'max_steps' must be an integer"),
          "max_steps 2.5 rejected");

    /* loading */
    CHECK(agent_rejected(h, "notable", "return 42", "must return a table (got number)"),
          "a module that returns no table rejected");
    CHECK(agent_rejected(h, "syntax", "return {", "plugins/agents/syntax.lua:1:"),
          "a syntax error names file:line");
    CHECK(agent_rejected(h, "raises", "local x = nil\nreturn x.y", "plugins/agents/raises.lua:2:"),
          "an error while loading names file:line");
    CHECK(agent_rejected(h, "usesio", "io.write('x') return {}", "plugins/agents/usesio.lua:1:"),
          "a plugin touching io fails to load");
    write_file("agents/bin.lua", "\x1bLua");
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_agent_open(h, "bin", &err) == NULL && has(err.message, "binary chunk"),
          "a binary plugin file rejected");
    CHECK(ac_agent_open(h, "Bad/../x", &err) == NULL && err.code == AC_ERR_INVALID_PARAMS,
          "a plugin name outside ^[a-z0-9_-]+$ rejected");
    CHECK(ac_agent_open(h, "absent", &err) == NULL && err.code == AC_ERR_NOT_FOUND,
          "a missing plugin is Not found");
    write_file("rewards/badrange.lua", "return {name = 'r', version = '1', range = {1, 0}, "
                                       "score = function() return 0 end}");
    CHECK(ac_reward_open(h, "badrange", &err) == NULL && has(err.message, "'range' must be"),
          "reward with range min >= max rejected");
    write_file("rewards/noscore.lua", "return {name = 'r', version = '1', range = {0, 1}}");
    CHECK(ac_reward_open(h, "noscore", &err) == NULL && has(err.message, "missing function 'score'"),
          "reward without score rejected");
    write_file("validators/novalidate.lua", "return {name = 'v', version = '1'}");
    CHECK(ac_validator_open(h, "novalidate", &err) == NULL &&
              has(err.message, "missing function 'validate'"),
          "validator without validate rejected");
    ac_err_clear(&err);
}

/* ---- agents: an episode ------------------------------------------------------------------------ */

/* Tools 0 add(a, b), 1 fail, 2 answer(value), 3 pick(item: candidate, who: word, ref: id, x: any
 * by default), 4 peek (no arguments). The query selects a misbehaviour. Line numbers matter. */
static const char *agent_src =
    "local agent = {\n"                                                                        /* 1 */
    "  name = 'calc', version = '%s',\n"                                                       /* 2 */
    "  tools = {\n"                                                                            /* 3 */
    "    { name = 'add', args = { { name = 'a', type = 'number' }, { name = 'b', type = 'number' } },\n"
    "      cost_usd = 0.0001, description = 'adds a and b' },\n"                              /* 5 */
    "    { name = 'fail', cost_usd = 0.5 },\n"                                                 /* 6 */
    "    { name = 'answer', args = { { name = 'value', type = 'number' } } },\n"               /* 7 */
    "    { name = 'pick', args = { { name = 'item', type = 'candidate' }, { name = 'who', type = 'word' },\n"
    "      { name = 'ref', type = 'id' }, { name = 'x' } } },\n"                               /* 9 */
    "    { name = 'peek' },\n"                                                                 /* 10 */
    "  },\n"                                                                                   /* 11 */
    "  max_steps = 5,\n"                                                                       /* 12 */
    "}\n"                                                                                      /* 13 */
    "function agent.init(query) return { q = query, n = 0 } end\n"                             /* 14 */
    "function agent.observe(s) return '%s' .. s.q .. ' | ' .. s.n end\n"                       /* 15 */
    "function agent.legal(s)\n"                                                                /* 16 */
    "  if s.q == 'bogus' then return { 'nope' } end\n"                                         /* 17 */
    "  if s.q == 'none' then return {} end\n"                                                  /* 18 */
    "  if s.q == 'notlist' then return 'add' end\n"                                            /* 19 */
    "  if s.q == 'numlist' then return { 1 } end\n"                                            /* 20 */
    "  if s.q == 'some' then return { 'answer', 'add' } end\n"                                 /* 21 */
    "  return { 'add', 'fail', 'answer', 'pick', 'peek' }\n"                                   /* 22 */
    "end\n"                                                                                    /* 23 */
    "function agent.candidates(s)\n"                                                           /* 24 */
    "  if s.q == 'cstr' then return 'ORD-1' end\n"                                             /* 25 */
    "  if s.q == 'cbool' then return { 'a', true } end\n"                                      /* 26 */
    "  if s.q == 'cmany' then local t = {} for i = 1, 65 do t[i] = 'c' .. i end return t end\n" /* 27 */
    "  if s.q == 'cmap' then return { first = 'a' } end\n"                                     /* 28 */
    "  if s.q == 'cmixed' then return { 'a', 'b', x = 1 } end\n"                               /* 29 */
    "  if s.q == 'cempty' then return {} end\n"                                                /* 30 */
    "  if s.q == 'cerror' then error('no candidates today') end\n"                             /* 31 */
    "  return { 'ORD-1', 42, 'red shoes' }\n"                                                  /* 32 */
    "end\n"                                                                                    /* 33 */
    "function agent.step(s, tool, args)\n"                                                     /* 34 */
    "  if tool == 'fail' then error('tool broke') end\n"                                       /* 35 */
    "  if s.q == 'nan' then return { v = 0/0 }, false end\n"                                   /* 36 */
    "  if s.q == 'loop' then while true do end end\n"                                          /* 37 */
    "  if tool == 'answer' then s.answer = args.value return nil, true end\n"                  /* 38 */
    "  if tool == 'peek' then return { args = type(args), empty = next(args) == nil }, false end\n"
    "  if tool == 'pick' then\n"                                                               /* 40 */
    "    return { item = args.item, who = args.who, ref = args.ref, x = args.x }, false\n"     /* 41 */
    "  end\n"                                                                                  /* 42 */
    "  s.n = s.n + args.a + args.b\n"                                                          /* 43 */
    "  return { value = s.n, ta = math.type(args.a), tb = math.type(args.b) }, false\n"        /* 44 */
    "end\n"                                                                                    /* 45 */
    "function agent.final(s) return { answer = s.answer, n = s.n } end\n"                      /* 46 */
    "return agent\n";

static ac_agent_t *open_calc(ac_lua_host_t *h, const char *name, const char *version, const char *prefix)
{
    char body[8192], rel[128];
    snprintf(body, sizeof body, agent_src, version, prefix);
    snprintf(rel, sizeof rel, "agents/%s.lua", name);
    write_file(rel, "%s", body);
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, name, &err);
    if (a == NULL)
        fprintf(stderr, "  (%s)\n", err.message);
    ac_err_clear(&err);
    return a;
}

static int step_with(ac_agent_t *a, ac_episode_t *ep, int tool, const char *args_json, json_t **result,
                     int *done, size_t *bytes, ac_err_t *err)
{
    json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
    int rc = ac_agent_step(a, ep, tool, args, result, done, bytes, err);
    json_decref(args);
    return rc;
}

static void test_agent(ac_lua_host_t *h)
{
    ac_agent_t *a = open_calc(h, "calc", "1.0", "");
    CHECK(a != NULL, "a valid agent loads");
    if (a == NULL)
        return;
    ac_err_t err = AC_ERR_INIT;
    CHECK(a->n_actions == 5 && strcmp(a->actions[0], "add") == 0 && strcmp(a->actions[2], "answer") == 0 &&
              strcmp(a->actions[4], "peek") == 0 && strcmp(a->tools[3].name, "pick") == 0 &&
              strcmp(a->version, "1.0") == 0 && strcmp(a->path, "plugins/agents/calc.lua") == 0 &&
              strcmp(a->name, "calc") == 0,
          "agent handle: tools in declaration order (the policy's indices), version, path");
    CHECK(a->tools[0].n_args == 2 && strcmp(a->tools[0].args[0].name, "a") == 0 &&
              strcmp(a->tools[0].args[1].name, "b") == 0 && a->tools[0].args[1].kind == AC_ARG_NUMBER &&
              a->tools[1].n_args == 0 && a->tools[4].n_args == 0 && a->max_args == 4,
          "argument slots: names and kinds in order, tools without args, max_args");
    CHECK(a->tools[3].args[0].kind == AC_ARG_CANDIDATE && a->tools[3].args[1].kind == AC_ARG_WORD &&
              a->tools[3].args[2].kind == AC_ARG_ID && a->tools[3].args[3].kind == AC_ARG_ANY,
          "argument types candidate, word, id; an argument without a type is \"any\"");
    CHECK(ac_arg_kind_from_name("number") == AC_ARG_NUMBER && ac_arg_kind_from_name("candidate") == AC_ARG_CANDIDATE &&
              ac_arg_kind_from_name("float") == -1 && strcmp(ac_arg_kind_name(AC_ARG_ID), "id") == 0 &&
              strcmp(ac_arg_kind_name(99), "?") == 0,
          "argument kind names, both ways");
    CHECK(a->tools[0].cost_micro_usd == 100 && a->tools[1].cost_micro_usd == 500000 &&
              a->tools[2].cost_micro_usd == 0 && a->max_steps == 5,
          "tool costs in micro-USD (absent: 0), max_steps");
    CHECK(a->tools[0].description && strcmp(a->tools[0].description, "adds a and b") == 0 &&
              a->tools[1].description == NULL,
          "tool descriptions (absent: NULL)");
    CHECK(a->has_observe && a->has_legal && a->has_candidates, "the optional functions it defines are flagged");

    ac_episode_t ep = AC_EPISODE_INIT;
    json_t *q = json_string("hello");
    CHECK(ac_agent_init(a, q, NULL, &ep, &err) == 0, "init starts an episode");
    char *buf = NULL;
    size_t cap = 0, len = 0, bytes = 0;
    CHECK(ac_agent_observe(a, &ep, &buf, &cap, &len, &err) == 0 && strcmp(buf, "hello | 0") == 0 && len == 9,
          "observe returns the text");
    uint8_t mask[5] = {0};
    CHECK(ac_agent_legal(a, &ep, mask, &err) == 0 && mask[0] && mask[1] && mask[2] && mask[3] && mask[4],
          "legal fills the mask");
    json_t *list = NULL;
    CHECK(ac_agent_candidates(a, &ep, &list, &err) == 0 && json_is(list, "[\"ORD-1\", 42, \"red shoes\"]"),
          "candidates returns the values, strings and numbers, in order");
    json_decref(list);

    json_t *result = NULL;
    int done = -1;
    int rc = step_with(a, &ep, 0, "{\"a\": 3, \"b\": 4}", &result, &done, &bytes, &err);
    CHECK(rc == 0 && json_is(result, "{\"value\": 7, \"ta\": \"integer\", \"tb\": \"integer\"}") && done == 0 &&
              bytes > 20 && bytes < 80,
          "step(state, tool, args) gets the chosen arguments by name; returns result, done and its size");
    json_decref(result);
    rc = step_with(a, &ep, 0, "{\"a\": 2.5, \"b\": 1}", &result, &done, NULL, &err);
    CHECK(rc == 0 && json_is(result, "{\"value\": 10.5, \"ta\": \"float\", \"tb\": \"integer\"}"),
          "number arguments keep their Lua type: 2.5 a float, 1 an integer");
    json_decref(result);
    CHECK(ac_agent_observe(a, &ep, &buf, &cap, &len, &err) == 0 && strcmp(buf, "hello | 10.5") == 0,
          "the episode state lives on between calls");
    rc = ac_agent_step(a, &ep, 4, NULL, &result, &done, NULL, &err);
    CHECK(rc == 0 && json_is(result, "{\"args\": \"table\", \"empty\": true}") && done == 0,
          "a tool without arguments gets an empty table (args NULL)");
    json_decref(result);
    rc = step_with(a, &ep, 4, "{}", &result, &done, NULL, &err);
    CHECK(rc == 0 && json_is(result, "{\"args\": \"table\", \"empty\": true}"), "... and with args {}");
    json_decref(result);
    rc = step_with(a, &ep, 3, "{\"item\": \"red shoes\", \"who\": \"alice\", \"ref\": \"ORD-1\", \"x\": 42}", &result,
                   &done, NULL, &err);
    CHECK(rc == 0 && json_is(result, "{\"item\": \"red shoes\", \"who\": \"alice\", \"ref\": \"ORD-1\", \"x\": 42}"),
          "string and number arguments reach the tool as given");
    json_decref(result);

    rc = ac_agent_step(a, &ep, 1, NULL, &result, &done, NULL, &err);
    const char *emsg = json_string_value(json_object_get(result, "error"));
    CHECK(rc == AC_AGENT_TOOL_FAILED && done == 1 && json_object_size(result) == 1 &&
              has(emsg, "plugins/agents/calc.lua:35: tool broke") && has(err.message, "tool broke"),
          "a Lua error in step is a failed tool call: {error = 'file:line: msg'}, done, err set");
    json_decref(result);
    ac_err_clear(&err);
    rc = step_with(a, &ep, 2, "{\"value\": 11}", &result, &done, NULL, &err);
    CHECK(rc == 0 && json_is_null(result) && done == 1, "a nil result becomes null; done ends the episode");
    json_decref(result);
    json_t *answer = NULL;
    CHECK(ac_agent_final(a, &ep, &answer, &err) == 0 && json_is(answer, "{\"answer\": 11, \"n\": 10.5}"),
          "final returns the answer");
    json_decref(answer);
    result = json_true(); /* a sentinel: the call must reset it */
    CHECK(ac_agent_step(a, &ep, 5, NULL, &result, &done, NULL, &err) == -1 && result == NULL &&
              has(err.message, "tool 5 out of range (5 tools)"),
          "a tool index past the tools is an error, not a failed tool call");
    CHECK(ac_agent_step(a, &ep, -1, NULL, &result, &done, NULL, &err) == -1 && result == NULL,
          "a negative tool index is an error");
    ac_agent_episode_free(a, &ep);
    CHECK(ep._state == -2 && ac_agent_final(a, &ep, &answer, &err) == -1 &&
              ac_agent_step(a, &ep, 0, NULL, &result, &done, NULL, &err) == -1 && result == NULL,
          "a freed episode cannot be used (step is an error, not a failed tool call)");
    ac_agent_episode_free(a, &ep); /* twice: a no-op */

    /* legal and candidates that break the contract, a step returning NaN, a step looping */
    const char *queries[] = {"bogus", "none", "notlist", "numlist", "some", "nan", "loop",
                             "cstr", "cbool", "cmany", "cmap", "cmixed", "cempty", "cerror"};
    enum { NQ = sizeof queries / sizeof queries[0] };
    ac_episode_t eps[NQ];
    for (int i = 0; i < NQ; i++) {
        json_t *qq = json_string(queries[i]);
        eps[i] = (ac_episode_t)AC_EPISODE_INIT;
        CHECK(ac_agent_init(a, qq, NULL, &eps[i], &err) == 0, queries[i]);
        json_decref(qq);
    }
    CHECK(ac_agent_legal(a, &eps[0], mask, &err) == -1 && has(err.message, "legal returned 'nope', which is not one of the tools"),
          "legal naming an unknown tool is an error");
    CHECK(ac_agent_legal(a, &eps[1], mask, &err) == -1 && has(err.message, "legal returned no tool"),
          "legal with no tool is an error");
    CHECK(ac_agent_legal(a, &eps[2], mask, &err) == -1 &&
              has(err.message, "legal must return an array of tool names (got string)"),
          "legal returning a string is an error");
    CHECK(ac_agent_legal(a, &eps[3], mask, &err) == -1 && has(err.message, "legal()[1] must be a tool name (got number)"),
          "legal listing a number is an error");
    memset(mask, 1, sizeof mask);
    CHECK(ac_agent_legal(a, &eps[4], mask, &err) == 0 && mask[0] && !mask[1] && mask[2] && !mask[3] && !mask[4],
          "legal marks exactly the tools it names");
    result = json_true(); /* a sentinel: the call must reset it */
    CHECK(step_with(a, &eps[5], 0, "{\"a\": 1, \"b\": 2}", &result, &done, NULL, &err) == -1 &&
              has(err.message, "NaN is not valid JSON (at result.v)") && result == NULL,
          "step returning NaN is a contract error, not a tool failure");
    double t0 = now_s();
    rc = step_with(a, &eps[6], 0, "{\"a\": 1, \"b\": 2}", &result, &done, NULL, &err);
    CHECK(rc == AC_AGENT_TOOL_FAILED && done == 1 && has(err.message, "calc.lua:37: instruction budget") &&
              has(json_string_value(json_object_get(result, "error")), "instruction budget") && now_s() - t0 < 30,
          "a step that loops forever is a failed tool call with file:line");
    json_decref(result);
    list = json_true(); /* a sentinel: the call must reset it */
    CHECK(ac_agent_candidates(a, &eps[7], &list, &err) == -1 && list == NULL &&
              has(err.message, "candidates must return an array of strings or numbers (got string)"),
          "candidates returning a string is an error");
    CHECK(ac_agent_candidates(a, &eps[8], &list, &err) == -1 &&
              has(err.message, "candidates()[2] must be a string or a number (got boolean)"),
          "a candidate that is neither a string nor a number is an error");
    CHECK(ac_agent_candidates(a, &eps[9], &list, &err) == -1 &&
              has(err.message, "candidates returned 65 values (at most 64)"),
          "more than AC_AGENT_MAX_CANDIDATES candidates is an error");
    CHECK(ac_agent_candidates(a, &eps[10], &list, &err) == -1 && list == NULL &&
              has(err.message, "candidates must return an array"),
          "candidates returning a table with string keys is an error, not an empty list");
    CHECK(ac_agent_candidates(a, &eps[11], &list, &err) == -1 && list == NULL && has(err.message, "candidates"),
          "candidates returning an array with an extra key is an error");
    CHECK(ac_agent_candidates(a, &eps[12], &list, &err) == 0 && json_is_array(list) && json_array_size(list) == 0,
          "candidates returning {} is an empty array");
    json_decref(list);
    CHECK(ac_agent_candidates(a, &eps[13], &list, &err) == -1 && list == NULL &&
              has(err.message, "plugins/agents/calc.lua:31: no candidates today"),
          "an error in candidates names file:line");
    for (int i = 0; i < NQ; i++)
        ac_agent_episode_free(a, &eps[i]);

    /* throughput of the calls of the rollout's inner loop (the host's context rendering and the
     * policy are measured by bench/rollout_bench.c) */
    json_t *args = json_pack("{s:i, s:i}", "a", 3, "b", 4), *ans = json_pack("{s:i}", "value", 21);
    int steps = 0;
    t0 = now_s();
    for (int e = 0; e < 2000; e++) {
        ac_agent_init(a, q, NULL, &ep, &err);
        for (int s = 0; s < 4; s++, steps++) {
            ac_agent_observe(a, &ep, &buf, &cap, &len, &err);
            ac_agent_legal(a, &ep, mask, &err);
            ac_agent_candidates(a, &ep, &list, &err);
            json_decref(list);
            ac_agent_step(a, &ep, s < 3 ? 0 : 2, s < 3 ? args : ans, &result, &done, NULL, &err);
            json_decref(result);
        }
        ac_agent_final(a, &ep, &answer, &err);
        json_decref(answer);
        ac_agent_episode_free(a, &ep);
    }
    double dt = now_s() - t0;
    /* a figure, not a test: throughput is measured in bench/ (a loaded machine is slower) */
    printf("     (%d steps of observe+legal+candidates+step(args) in %.3f s: %.0f steps/s)\n", steps, dt, steps / dt);
    json_decref(args);
    json_decref(ans);
    json_decref(q);
    free(buf);
    ac_agent_close(a);
    ac_err_clear(&err);
}

/* An agent with none of the optional functions: nothing to observe, every tool legal, no
 * candidates. */
/* A plugin may hand the host tables of a module it required (read-only): its tools, a legal
 * list, candidates. The host reads their fields as the plugin does. */
static void test_module_tables(ac_lua_host_t *h)
{
    write_file("agents/shared_tools.lua",
               "return { tools = { { name = 'go', args = { { name = 'n', type = 'number' } } }, { name = 'stop' } },\n"
               "  legal = { 'stop' }, candidates = { 'ORD-1', 42 } }\n");
    write_file("agents/reuser.lua",
               "local shared = require('agents.shared_tools')\n"
               "return { name = 'reuser', version = '1', tools = shared.tools,\n"
               "  init = function(q) return {} end,\n"
               "  legal = function(s) return shared.legal end,\n"
               "  candidates = function(s) return shared.candidates end,\n"
               "  step = function(s, tool, args) return {}, true end,\n"
               "  final = function(s) return {} end }\n");
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, "reuser", &err);
    CHECK(a != NULL && a->n_actions == 2 && a->tools[0].n_args == 1 && strcmp(a->tools[0].args[0].name, "n") == 0,
          "an agent declaring a required module's tools loads with them (arguments included)");
    if (a == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        ac_err_clear(&err);
        return;
    }
    ac_episode_t ep = AC_EPISODE_INIT;
    json_t *q = json_string("q"), *list = NULL;
    uint8_t mask[2] = {1, 1};
    CHECK(ac_agent_init(a, q, NULL, &ep, &err) == 0 && ac_agent_legal(a, &ep, mask, &err) == 0 && !mask[0] && mask[1],
          "... its legal list may be a module's table");
    CHECK(ac_agent_candidates(a, &ep, &list, &err) == 0 && json_is(list, "[\"ORD-1\", 42]"),
          "... and so may its candidates");
    json_decref(list);
    json_decref(q);
    ac_agent_episode_free(a, &ep);
    ac_agent_close(a);
    ac_err_clear(&err);
}

static void test_optional_absent(ac_lua_host_t *h)
{
    write_file("agents/bare.lua",
               "return { name = 'bare', version = '1',\n"
               "  tools = { { name = 'go', args = { { name = 'n', type = 'number' } } }, { name = 'stop' } },\n"
               "  init = function(q) return { q = q } end,\n"
               "  step = function(s, tool, args) return { tool = tool, n = args.n }, tool == 'stop' end,\n"
               "  final = function(s) return s.q end }\n");
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, "bare", &err);
    CHECK(a != NULL, "an agent with only init, step and final loads");
    if (a == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        return;
    }
    CHECK(!a->has_observe && !a->has_legal && !a->has_candidates && a->max_steps == 0 && a->max_args == 1,
          "no optional function flagged; no max_steps (0)");
    ac_episode_t ep = AC_EPISODE_INIT;
    json_t *q = json_string("q"), *list = NULL, *result = NULL, *answer = NULL;
    char *buf = NULL;
    size_t cap = 0, len = 99;
    uint8_t mask[2] = {0, 0};
    int done = -1;
    CHECK(ac_agent_init(a, q, NULL, &ep, &err) == 0 && ac_agent_observe(a, &ep, &buf, &cap, &len, &err) == 0 &&
              len == 0,
          "without observe: no extra text (length 0)");
    CHECK(ac_agent_legal(a, &ep, mask, &err) == 0 && mask[0] == 1 && mask[1] == 1, "without legal: every tool is legal");
    CHECK(ac_agent_candidates(a, &ep, &list, &err) == 0 && json_is_array(list) && json_array_size(list) == 0,
          "without candidates: an empty array");
    json_decref(list);
    CHECK(step_with(a, &ep, 0, "{\"n\": 5}", &result, &done, NULL, &err) == 0 &&
              json_is(result, "{\"tool\": \"go\", \"n\": 5}") && done == 0,
          "step gets the tool's name and its arguments");
    json_decref(result);
    CHECK(ac_agent_step(a, &ep, 1, NULL, &result, &done, NULL, &err) == 0 && done == 1, "a tool may end the episode");
    json_decref(result);
    CHECK(ac_agent_final(a, &ep, &answer, &err) == 0 && json_is(answer, "\"q\""), "final");
    json_decref(answer);
    ac_agent_episode_free(a, &ep);

    /* the optional functions present but returning the wrong type */
    write_file("agents/badobs.lua",
               "return { name = 'badobs', version = '1', tools = { { name = 'go' } },\n"
               "  init = function(q) return {} end, observe = function(s) return 42 end,\n"
               "  step = function(s) return {}, true end, final = function(s) return {} end }\n");
    ac_agent_t *b = ac_agent_open(h, "badobs", &err);
    CHECK(b && ac_agent_init(b, q, NULL, &ep, &err) == 0 && ac_agent_observe(b, &ep, &buf, &cap, &len, &err) == -1 &&
              has(err.message, "observe must return a string (got number)"),
          "observe returning a number is an error");
    if (b)
        ac_agent_episode_free(b, &ep);
    ac_agent_close(b);
    write_file("agents/badinit.lua",
               "return { name = 'badinit', version = '1', tools = { { name = 'go' } },\n"
               "  init = function(q) return 'state' end,\n"
               "  step = function(s) return {}, true end, final = function(s) return {} end }\n");
    b = ac_agent_open(h, "badinit", &err);
    CHECK(b && ac_agent_init(b, q, NULL, &ep, &err) == -1 && has(err.message, "init must return a table (got string)"),
          "init returning a string is an error");
    ac_agent_close(b);
    free(buf);
    json_decref(q);
    ac_agent_close(a);
    ac_err_clear(&err);
}

/* What an agent hands back is bounded: observation, candidates, each result, each answer. */
static void test_output_limits(void)
{
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    limits.max_observation_bytes = 1000;
    limits.max_result_bytes = 5000;
    ac_err_t err = AC_ERR_INIT;
    ac_lua_host_t *h = ac_lua_host_create(lua_dir, tmp_dir, &limits, &err);
    write_file("agents/bomb.lua",
               "return { name = 'bomb', version = '1',\n"
               "  tools = { { name = 'small', args = { { name = 'n', type = 'number' } } }, { name = 'big' },\n"
               "            { name = 'huge' } },\n"
               "  init = function(q) return { q = q } end,\n"
               "  observe = function(s) return s.q == 'long' and string.rep('o', 2000) or 'fine' end,\n"
               "  candidates = function(s) return { s.q == 'long' and string.rep('c', 2000) or 'c' } end,\n"
               "  step = function(s, tool, args)\n"
               "    if tool == 'small' then return { r = string.rep('x', 100), n = args.n }, false end\n"
               "    if tool == 'big' then return { r = string.rep('x', 6000) }, false end\n"
               "    local t, s8 = {}, string.rep('y', 4000) for i = 1, 1000 do t[i] = s8 end\n"
               "    return t, false\n"
               "  end,\n"
               "  final = function(s) return { a = string.rep('z', 9000) } end }\n");
    ac_agent_t *a = h ? ac_agent_open(h, "bomb", &err) : NULL;
    CHECK(a != NULL, "the output-bomb agent loads");
    if (a == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        ac_lua_host_destroy(h);
        return;
    }
    ac_episode_t ep = AC_EPISODE_INIT, ep2 = AC_EPISODE_INIT;
    json_t *q = json_string("long"), *q2 = json_string("short"), *result = NULL, *answer = NULL, *list = NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, bytes = 0;
    int done = 0;
    CHECK(ac_agent_init(a, q, NULL, &ep, &err) == 0 && ac_agent_observe(a, &ep, &buf, &cap, &len, &err) != 0 &&
              has(err.message, "limits.max_observation_bytes"),
          "an observation over limits.max_observation_bytes is an error");
    ac_err_clear(&err);
    CHECK(ac_agent_candidates(a, &ep, &list, &err) != 0 && list == NULL && has(err.message, "limits.max_observation_bytes"),
          "candidates over limits.max_observation_bytes are an error");
    ac_err_clear(&err);
    CHECK(ac_agent_init(a, q2, NULL, &ep2, &err) == 0 && ac_agent_observe(a, &ep2, &buf, &cap, &len, &err) == 0 &&
              ac_agent_candidates(a, &ep2, &list, &err) == 0 && json_is(list, "[\"c\"]"),
          "... small ones pass");
    json_decref(list);
    CHECK(step_with(a, &ep, 0, "{\"n\": 1}", &result, &done, &bytes, &err) == 0 && bytes > 100 && bytes < 200,
          "a small result passes, with its size");
    json_decref(result);
    CHECK(ac_agent_step(a, &ep, 1, NULL, &result, &done, NULL, &err) == -1 && result == NULL &&
              has(err.message, "result is larger than 5000 bytes (limits.max_result_bytes)"),
          "a step result over limits.max_result_bytes is an error, not a failed tool call");
    ac_err_clear(&err);
    double t0 = now_s();
    CHECK(ac_agent_step(a, &ep, 2, NULL, &result, &done, NULL, &err) == -1 &&
              has(err.message, "limits.max_result_bytes") && now_s() - t0 < 0.5,
          "a result of 4 MB made of one shared string is refused before it is copied");
    ac_err_clear(&err);
    CHECK(ac_agent_final(a, &ep, &answer, &err) != 0 && answer == NULL && has(err.message, "answer is larger than"),
          "a final answer over the limit is an error");
    ac_err_clear(&err);
    ac_agent_episode_free(a, &ep);
    ac_agent_episode_free(a, &ep2);
    json_decref(q);
    json_decref(q2);
    free(buf);
    ac_agent_close(a);
    ac_lua_host_destroy(h);
}

/* Plugins draw random numbers from their episode's generator: reproducible from ctx.seed,
 * independent of what other episodes draw in between. */
static void test_episode_rng(ac_lua_host_t *h)
{
    write_file("agents/dice.lua",
               "return { name = 'dice', version = '1', tools = { { name = 'roll' } },\n"
               "  init = function(q, ctx) return { ctx = ctx, first = math.random(1, 1000000) } end,\n"
               "  observe = function(s) return tostring(s.first) .. ' ' .. s.ctx.rng.int(1, 1000000) end,\n"
               "  candidates = function(s) return { math.random(1, 1000000) } end,\n"
               "  step = function(s, tool, args) return { r = math.random(), p = s.ctx.rng:pick({ 'a', 'b', 'c' }),\n"
               "    seed = s.ctx.seed, e = s.ctx.episode, it = s.ctx.iteration }, false end,\n"
               "  final = function(s) return {} end }\n");
    ac_err_t err = AC_ERR_INIT;
    ac_agent_t *a = ac_agent_open(h, "dice", &err);
    CHECK(a != NULL, "an agent using ctx and math.random loads");
    if (a == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        return;
    }
    json_t *q = json_string("q");
    char *buf = NULL, texts[3][64];
    size_t cap = 0, len = 0;
    json_t *results[3], *cands[3];
    ac_episode_ctx_t ctx[3] = {{42, 0, 7}, {42, 1, 7}, {43, 2, 7}};
    ac_episode_t eps[3] = {AC_EPISODE_INIT, AC_EPISODE_INIT, AC_EPISODE_INIT};
    /* episodes 0 and 2 interleaved; episode 1 (same seed as 0) alone afterwards */
    int order[3] = {0, 2, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        if (i == 1) {
            /* episode 2 draws more first: must not shift episode 1 */
            json_t *r2 = NULL;
            int d = 0;
            ac_agent_step(a, &eps[2], 0, NULL, &r2, &d, NULL, &err);
            json_decref(r2);
        }
        CHECK(ac_agent_init(a, q, &ctx[i], &eps[i], &err) == 0 &&
                  ac_agent_observe(a, &eps[i], &buf, &cap, &len, &err) == 0 &&
                  ac_agent_candidates(a, &eps[i], &cands[i], &err) == 0,
              "init, observe and candidates with a ctx");
        snprintf(texts[i], sizeof texts[i], "%s", buf ? buf : "");
        int done = 0;
        CHECK(ac_agent_step(a, &eps[i], 0, NULL, &results[i], &done, NULL, &err) == 0, "step draws");
    }
    CHECK(strcmp(texts[0], texts[1]) == 0 && json_equal(cands[0], cands[1]) &&
              json_equal(json_object_get(results[0], "r"), json_object_get(results[1], "r")) &&
              json_equal(json_object_get(results[0], "p"), json_object_get(results[1], "p")),
          "the same seed draws the same numbers, whatever other episodes drew in between");
    CHECK(strcmp(texts[0], texts[2]) != 0, "another seed draws other numbers");
    CHECK(json_integer_value(json_object_get(results[1], "seed")) == 42 &&
              json_integer_value(json_object_get(results[1], "e")) == 1 &&
              json_integer_value(json_object_get(results[1], "it")) == 7,
          "ctx carries seed, episode and iteration");
    json_t *x1 = NULL, *x2 = NULL, *x3 = NULL;
    CHECK(ac_lua_host_run(h, "return math.random(1, 1000000000)", "=a", &x1, &err) == 0 &&
              ac_lua_host_run(h, "return math.random(1, 1000000000)", "=b", &x2, &err) == 0 && json_equal(x1, x2),
          "every call outside an episode starts from the same seed");
    CHECK(ac_lua_host_run(h, "local a = math.random(1, 100) math.randomseed(5) local b = math.random(1, 100) "
                             "math.randomseed(5) return b == math.random(1, 100) and math.random(0) ~= nil",
                          "=c", &x3, &err) == 0 && json_is_true(x3),
          "math.randomseed restarts the generator");
    json_decref(x1);
    json_decref(x2);
    json_decref(x3);
    for (int i = 0; i < 3; i++) {
        json_decref(results[i]);
        json_decref(cands[i]);
        ac_agent_episode_free(a, &eps[i]);
    }
    free(buf);
    json_decref(q);
    ac_agent_close(a);
    ac_err_clear(&err);
}

/* ---- rewards and validators ------------------------------------------------------------------ */

static const char *reward_src =
    "return {\n"
    "  name = 'r', version = '1', range = {0, 1},\n"
    "  score = function(traj, expected)\n"
    "    local m = expected.mode\n"
    "    if m == 'ok' then return 1.0, {success = true, step_rewards = {0.25, 0.75}, tool_accuracy = 0.5} end\n"
    "    if m == 'half' then return 0.5 end\n"
    "    if m == 'out' then return 1.5 end\n"
    "    if m == 'nan' then return 0/0 end\n"
    "    if m == 'steps' then return 1, {step_rewards = {1}} end\n"
    "    if m == 'acc' then return 1, {tool_accuracy = 2} end\n"
    "    if m == 'str' then return 'x' end\n"
    "    if m == 'shape' then local s = traj.steps\n"
    "      assert(traj.query == 'q' and #s == 2 and traj.truncated == false and traj.final.answer == 3, 'trajectory')\n"
    "      assert(s[1].state.context == 'query: q' and s[1].action.tool == 'go' and s[1].action.params.a == 7 and\n"
    "             s[1].result.value == 12 and s[1].timestamp == '1970-01-01T00:00:01.500Z' and s[1].duration_ms == 2.5,\n"
    "             'first step')\n"
    "      assert(next(s[2].action.params) == nil and type(s[2].result) == 'userdata', 'second step: {} and null')\n"
    "      return 1 end\n"
    "    error('unknown mode ' .. tostring(m))\n"
    "  end,\n"
    "}\n";

static int score(ac_reward_t *r, const char *mode, double *reward, ac_reward_info_t *info,
                 ac_err_t *err)
{
    json_t *query = json_string("q"), *final = json_pack("{s:i}", "answer", 3), *params = json_pack("{s:i}", "a", 7),
           *result = json_pack("{s:i}", "value", 12);
    ac_traj_step_t steps[2] = {{"query: q", "go", params, result, 1500, 2500}, {"query: q", "go", NULL, NULL, 0, 0}};
    ac_trajectory_t traj = {query, steps, 2, final, 0};
    json_t *expected = json_pack("{s:s}", "mode", mode);
    int rc = ac_reward_score(r, &traj, expected, NULL, reward, info, err);
    json_decref(query);
    json_decref(final);
    json_decref(params);
    json_decref(result);
    json_decref(expected);
    return rc;
}

static void test_reward(ac_lua_host_t *h)
{
    write_file("rewards/r.lua", "%s", reward_src);
    ac_err_t err = AC_ERR_INIT;
    ac_reward_t *r = ac_reward_open(h, "r", &err);
    CHECK(r && r->range_min == 0 && r->range_max == 1 && r->success_threshold == 1,
          "reward loads with its range and default threshold");
    if (r == NULL)
        return;
    double v = -1;
    ac_reward_info_t info;
    CHECK(score(r, "ok", &v, &info, &err) == 0 && v == 1.0 && info.success &&
              info.n_step_rewards == 2 && info.step_rewards[1] == 0.75 && info.tool_accuracy == 0.5,
          "score returns reward, success, step rewards and tool accuracy");
    ac_reward_info_clear(&info);
    CHECK(score(r, "half", &v, &info, &err) == 0 && v == 0.5 && !info.success &&
              info.step_rewards == NULL && info.tool_accuracy < 0,
          "defaults: success = reward >= threshold, no step rewards, tool accuracy -1");
    CHECK(score(r, "out", &v, &info, &err) == -1 && has(err.message, "1.5, outside range [0, 1]"),
          "a reward outside the range is an error");
    CHECK(score(r, "nan", &v, &info, &err) == -1 && has(err.message, "score returned NaN"),
          "a NaN reward is an error");
    CHECK(score(r, "steps", &v, &info, &err) == -1 && has(err.message, "1 entries for 2 steps"),
          "step_rewards must have one entry per step");
    CHECK(score(r, "acc", &v, &info, &err) == -1 && has(err.message, "tool_accuracy"),
          "tool_accuracy outside 0..1 is an error");
    CHECK(score(r, "str", &v, NULL, &err) == -1 && has(err.message, "must return a number"),
          "a non-number reward is an error");
    CHECK(score(r, "boom", &v, NULL, &err) == -1 && has(err.message, "plugins/rewards/r.lua:19:"),
          "an error in score names file:line");
    CHECK(score(r, "half", &v, NULL, &err) == 0 && v == 0.5, "the next score works");
    int shaped = score(r, "shape", &v, NULL, &err) == 0 && v == 1;
    if (!shaped)
        fprintf(stderr, "  shape: %s\n", err.message);
    CHECK(shaped, "score sees the trajectory as documented: query, steps (state, action, result, timestamp, "
                  "duration_ms), final, truncated");
    ac_reward_close(r);
    ac_err_clear(&err);
}

static json_t *make_set(int n, const char *prefix)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s query %d", prefix, i);
        json_array_append_new(a, json_pack("{s:s, s:{s:i}}", "query", text, "expected_outcome",
                                           "answer", i));
    }
    return a;
}

static void test_validator(ac_lua_host_t *h)
{
    char plugins[1200];
    snprintf(plugins, sizeof plugins, "%s/plugins", src_dir);
    ac_err_t err = AC_ERR_INIT;
    ac_lua_host_t *repo = ac_lua_host_create(lua_dir, plugins, NULL, &err);
    ac_validator_t *v = repo ? ac_validator_open(repo, "default", &err) : NULL;
    CHECK(v != NULL, "the default validator loads from the repository");
    if (v == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        ac_lua_host_destroy(repo);
        return;
    }
    json_t *train = make_set(100, "train"), *eval = make_set(3, "eval"), *problems = NULL;
    CHECK(ac_validator_run(v, train, eval, 100, &problems, &err) == 0 && json_is_array(problems) &&
              json_array_size(problems) == 0, "good data: an empty array of problems");
    json_decref(problems);
    CHECK(ac_validator_run(v, train, NULL, 100, &problems, &err) == 0 &&
              json_array_size(problems) == 0, "no evaluation data is fine");
    json_decref(problems);

    json_array_set_new(train, 4, json_pack("{s:s, s:{}}", "query", "  ", "expected_outcome"));
    json_array_set_new(train, 7, json_pack("{s:i, s:[]}", "query", 3, "expected_outcome"));
    json_array_set_new(eval, 1, json_pack("{s:s, s:{}}", "query", "  TRAIN Query 9 ",
                                          "expected_outcome"));
    CHECK(ac_validator_run(v, train, eval, 200, &problems, &err) == 0, "bad data: validate runs");
    char *text = json_dumps(problems, JSON_COMPACT | JSON_SORT_KEYS);
    printf("     (problems: %s)\n", text);
    CHECK(json_array_size(problems) == 5 &&
              has(text, "{\"error\":\"must be a non-empty string\",\"field\":\"training_data[4].query\",\"index\":4}") &&
              has(text, "\"field\":\"training_data[7].query\",\"index\":7}") &&
              has(text, "{\"error\":\"must be an object\",\"field\":\"training_data[7].expected_outcome\",\"index\":7}") &&
              has(text, "{\"error\":\"needs at least 200 queries, got 100\",\"field\":\"training_data\"}") &&
              has(text, "{\"error\":\"copies training_data[9].query (same text after trimming and lowercasing)\",\"field\":\"evaluation_data[1].query\",\"index\":1}"),
          "every problem reported with index and field: empty query, non-string query, array "
          "outcome, too few, copied evaluation query");
    free(text);
    json_decref(problems);
    ac_validator_close(v);
    ac_lua_host_destroy(repo);

    write_file("validators/odd.lua", "return {name = 'odd', version = '1', validate = function() "
                                     "return {{field = 'x'}} end}");
    v = ac_validator_open(h, "odd", &err);
    CHECK(v && ac_validator_run(v, train, eval, 1, &problems, &err) == -1 &&
              has(err.message, "problems[1] must be {error = string"),
          "a validator returning malformed problems is an error");
    ac_validator_close(v);
    json_decref(train);
    json_decref(eval);
    ac_err_clear(&err);
}

/* ---- webhook policies: the header rule ------------------------------------------------------- */

static int ok(const char *name, const char *value)
{
    return ac_webhook_header_check(name, strlen(name), value, strlen(value), NULL) == 0;
}

/* refused, with a message naming the header (and containing `why`) */
static int refused(const char *name, size_t nlen, const char *value, size_t vlen, const char *why)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_header_check(name, nlen, value, vlen, &err);
    int good = rc == -1 && err.code == AC_ERR_INTERNAL && strstr(err.message, why) != NULL;
    if (!good)
        fprintf(stderr, "  %s: rc %d, '%s'\n", name, rc, err.message);
    ac_err_clear(&err);
    return good;
}
#define REFUSED(name, value, why) refused(name, strlen(name), value, strlen(value), why)

static void test_webhook_headers(void)
{
    CHECK(ok("x-policy", "yes") && ok("X-Trace_Id.1", "a\tb") && ok("x", "") && ok("Authorization", "Bearer t") &&
              ok("!#$%&'*+-.^_`|~", "v") && ok("x-utf8", "\xc3\xa9t\xc3\xa9"),
          "tokens with printable values (tab, UTF-8, empty) pass");
    const char *owned[] = {"Host", "content-length", "Transfer-Encoding", "CONNECTION", "keep-alive", "TE",
                           "Trailer", "upgrade", "Expect", "Content-Type", "webhook-id", "Webhook-Timestamp",
                           "webhook-signature", "Proxy-Authorization", "proxy-connection", "Proxy-X", NULL};
    int all = 1;
    for (const char **h = owned; *h; h++) {
        char why[160];
        snprintf(why, sizeof why, "header '%s' may not be set by a policy", *h);
        all &= REFUSED(*h, "x", why);
    }
    CHECK(all, "framing, hop-by-hop, Host, Content-Type, Proxy-* and signature headers are refused, any case");
    CHECK(ok("hosts", "x") && ok("x-host", "x") && ok("te2", "x") && ok("proxy", "x"),
          "only those names: look-alikes pass");
    CHECK(REFUSED("bad name", "x", "'bad name' is not an HTTP token") && REFUSED("x:y", "x", "not an HTTP token") &&
              REFUSED("x\r\nInjected", "x", "not an HTTP token") && REFUSED("\xc3\xa9", "x", "not an HTTP token") &&
              REFUSED("", "x", "1 to 128"),
          "names that are not tokens are refused");
    CHECK(refused("x\0y", 3, "v", 1, "not an HTTP token"), "a NUL inside the name is refused");
    CHECK(REFUSED("x-a", "a\r\nInjected: 1", "control character (0x0d)") && REFUSED("x-a", "a\nb", "(0x0a)") &&
              refused("x-a", 3, "a\0b", 3, "(0x00)") && REFUSED("x-a", "a\x7f", "(0x7f)") &&
              REFUSED("x-a", "a\x01", "(0x01)"),
          "values with CR, LF, NUL or other controls are refused");
    char big[AC_WEBHOOK_MAX_HEADER_VALUE + 2];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(REFUSED("x-big", big, "longer than 4096") && ok("x-big", big + 1), "values up to 4096 bytes");
    char name[AC_WEBHOOK_MAX_HEADER_NAME + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK(REFUSED(name, "x", "1 to 128") && ok(name + 1, "x"), "names up to 128 bytes");
}

int main(void)
{
    const char *env = getenv("AC_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", env && *env ? env : AC_SOURCE_DIR);
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", src_dir);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ac_plugin_test.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    static const char *dirs[] = {"agents", "rewards", "validators"};
    for (int i = 0; i < 3; i++) {
        char d[128];
        snprintf(d, sizeof d, "%s/%s", tmp_dir, dirs[i]);
        mkdir(d, 0700);
    }
    ac_err_t err = AC_ERR_INIT;
    /* the default limits, but a wall clock that a busy machine cannot reach before the
     * instruction budget these tests expect (the wall-clock limit has its own checks) */
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    limits.max_wall_ms = 60000;
    ac_lua_host_t *h = ac_lua_host_create(lua_dir, tmp_dir, &limits, &err);
    CHECK(h != NULL, "a host is created");
    if (h == NULL) {
        fprintf(stderr, "  (%s)\n", err.message);
        return 1;
    }
    test_contract(h);
    test_agent(h);
    test_optional_absent(h);
    test_module_tables(h);
    test_episode_rng(h);
    test_output_limits();
    test_reward(h);
    test_validator(h);
    ac_lua_host_destroy(h);
    test_webhook_headers();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return check_done(__FILE__);
}
