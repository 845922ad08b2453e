-- Codegen agent: writes a small program by composing snippets from a library, runs it, answers.
--
-- "Write a function to sort a list in descending order"
--   -> use_sort, use_reverse_list, run_tests, answer
-- The program is a pipeline: each snippet's output is the next one's input
-- (solution(x) = reverse_list(sort(x))). The sandbox has no `load`, so the library is Lua
-- functions kept next to their source text; the source is what the trajectory and the final
-- answer show, the function is what runs. Each source text defines exactly the function it
-- sits next to (spec/agents_codegen_spec.lua compiles the sources outside the sandbox and
-- compares them on the probe inputs).
--
-- run_tests runs the program on fixed probe inputs of the program's input type (lists, strings
-- or a number n) and records every output or error, plus the time taken. The agent never sees
-- expected_outcome, so it cannot know the task's tests: the reward derives them from the task
-- kind and checks the recorded outputs against its own reference (plugins/rewards/codegen.lua).
--
-- Observation: the query (lowercase words) and "step:N snippets:K" (plus "tested" after
-- run_tests); snippet names are not repeated in it, so that a chosen "sort" never reads like
-- the word "sort" of the query. agent.legal allows: first any snippet; then run_tests or a
-- second snippet that fits and makes a difference (see FOLLOWS: after sort only reverse_list
-- or unique, never sum, which would ignore the order); after two snippets only run_tests;
-- after run_tests only answer. Fewer pointless choices matter: with every type-compatible
-- second snippet offered, "unique, then run_tests" was a 1-in-90 guess for an untrained policy
-- and a simulated GRPO run never found it. fizzbuzz and factorial refuse an n they cannot
-- handle (an error, recorded by run_tests) rather than build a huge result.

local agent = {
  name = "codegen",
  version = "1.0.0",
  description = "Composes Lua snippets from a library into a pipeline, runs it on probe inputs "
    .. "and answers with the program",
  max_steps = 6,
}

local MAX_SNIPPETS = 2

-- The library. Each entry: input and output type, description, source text, function.
local LIBRARY = {}
local ORDER = {}
local function snippet(name, input, output, description, source, fn)
  LIBRARY[name] = { name = name, input = input, output = output, description = description,
    source = source, fn = fn }
  ORDER[#ORDER + 1] = name
end

snippet("sort", "list", "list", "sorts a list of numbers in ascending order", [[
function sort(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out)
  return out
end
]], function(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out)
  return out
end)

snippet("reverse_list", "list", "list", "reverses the order of a list", [[
function reverse_list(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end
]], function(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end)

snippet("unique", "list", "list", "keeps the first occurrence of every value", [[
function unique(list)
  local out, seen = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  return out
end
]], function(list)
  local out, seen = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  return out
end)

snippet("sum", "list", "number", "adds up a list of numbers", [[
function sum(list)
  local total = 0
  for _, v in ipairs(list) do total = total + v end
  return total
end
]], function(list)
  local total = 0
  for _, v in ipairs(list) do total = total + v end
  return total
end)

snippet("max", "list", "number", "the largest element of a list", [[
function max(list)
  local best = list[1]
  for i = 2, #list do if list[i] > best then best = list[i] end end
  return best
end
]], function(list)
  local best = list[1]
  for i = 2, #list do if list[i] > best then best = list[i] end end
  return best
end)

snippet("min", "list", "number", "the smallest element of a list", [[
function min(list)
  local best = list[1]
  for i = 2, #list do if list[i] < best then best = list[i] end end
  return best
end
]], function(list)
  local best = list[1]
  for i = 2, #list do if list[i] < best then best = list[i] end end
  return best
end)

snippet("length", "list", "number", "the number of elements of a list", [[
function length(list)
  return #list
end
]], function(list)
  return #list
end)

snippet("reverse_string", "string", "string", "the string backwards", [[
function reverse_string(s)
  return string.reverse(s)
end
]], function(s)
  return string.reverse(s)
end)

snippet("uppercase", "string", "string", "the string in capital letters", [[
function uppercase(s)
  return string.upper(s)
end
]], function(s)
  return string.upper(s)
end)

snippet("count_vowels", "string", "number", "how many of a, e, i, o, u (any case) the string has", [[
function count_vowels(s)
  local _, n = string.gsub(string.lower(s), "[aeiou]", "")
  return n
end
]], function(s)
  local _, n = string.gsub(string.lower(s), "[aeiou]", "")
  return n
end)

snippet("is_palindrome", "string", "boolean",
  "whether the string reads the same backwards, ignoring case and non-alphanumerics", [[
function is_palindrome(s)
  local t = string.gsub(string.lower(s), "[^%w]", "")
  return t == string.reverse(t)
end
]], function(s)
  local t = string.gsub(string.lower(s), "[^%w]", "")
  return t == string.reverse(t)
end)

snippet("fizzbuzz", "number", "strings", "the FizzBuzz sequence from 1 to n", [[
function fizzbuzz(n)
  if math.type(n) ~= "integer" or n < 0 or n > 10000 then error("fizzbuzz: n must be an integer in 0..10000") end
  local out = {}
  for i = 1, n do
    if i % 15 == 0 then out[i] = "FizzBuzz"
    elseif i % 3 == 0 then out[i] = "Fizz"
    elseif i % 5 == 0 then out[i] = "Buzz"
    else out[i] = tostring(i) end
  end
  return out
end
]], function(n)
  if math.type(n) ~= "integer" or n < 0 or n > 10000 then error("fizzbuzz: n must be an integer in 0..10000") end
  local out = {}
  for i = 1, n do
    if i % 15 == 0 then out[i] = "FizzBuzz"
    elseif i % 3 == 0 then out[i] = "Fizz"
    elseif i % 5 == 0 then out[i] = "Buzz"
    else out[i] = tostring(i) end
  end
  return out
end)

snippet("factorial", "number", "number", "n! = 1 * 2 * ... * n", [[
function factorial(n)
  if math.type(n) ~= "integer" or n < 0 or n > 20 then error("factorial: n must be an integer in 0..20") end
  local p = 1
  for i = 2, n do p = p * i end
  return p
end
]], function(n)
  if math.type(n) ~= "integer" or n < 0 or n > 20 then error("factorial: n must be an integer in 0..20") end
  local p = 1
  for i = 2, n do p = p * i end
  return p
end)

agent.library = LIBRARY
agent.snippet_names = ORDER

-- Probe inputs per input type: what run_tests feeds the program.
local PROBES = {
  list = { { 3, 1, 2 }, { 5, -2, 9, 5, 0 }, { 7 }, { 4, 4, 1, 8, 1, 6 } },
  string = { "racecar", "Hello World", "A man, a plan, a canal: Panama", "abcde", "" },
  number = { 1, 6, 15 },
}
agent.probes = PROBES

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if not same(a[i], b[i]) then return false end end
  return true
end

-- FOLLOWS[a][b]: snippet b may come right after snippet a. b must take a's output type, must
-- not take a number (n is the caller's, never computed), and must make a difference: b(a(x))
-- must differ from b(x) on some probe input (sum after sort is just sum, max after unique is
-- just max: not offered). Computed once from the library itself.
local FOLLOWS = {}
for _, a in ipairs(ORDER) do
  FOLLOWS[a] = {}
  local sa = LIBRARY[a]
  for _, b in ipairs(ORDER) do
    local sb = LIBRARY[b]
    if b ~= a and sb.input == sa.output and sb.input ~= "number" then
      local differs = sb.input ~= sa.input
      for _, x in ipairs(PROBES[sa.input]) do
        local ok1, y1 = pcall(function() return sb.fn(sa.fn(x)) end)
        local ok2, y2 = pcall(sb.fn, x)
        if ok1 and (not ok2 or not same(y1, y2)) then differs = true end
      end
      FOLLOWS[a][b] = differs or nil
    end
  end
end
agent.follows = FOLLOWS

agent.actions = {}
agent.tools = {}
for _, name in ipairs(ORDER) do
  local action = "use_" .. name
  agent.actions[#agent.actions + 1] = action
  agent.tools[action] = { cost_usd = 0.0001,
    description = "adds " .. name .. " (" .. LIBRARY[name].input .. " -> " .. LIBRARY[name].output
      .. ": " .. LIBRARY[name].description .. ") to the program" }
end
agent.actions[#agent.actions + 1] = "run_tests"
agent.actions[#agent.actions + 1] = "answer"
agent.tools.run_tests = { cost_usd = 0.0005, description = "runs the program on probe inputs" }
agent.tools.answer = { cost_usd = 0, description = "ends the episode with the program" }

local function words(text)
  local out = {}
  for w in string.gmatch(string.gsub(string.lower(text), "%d+", " num "), "%a+") do out[#out + 1] = w end
  return table.concat(out, " ")
end

function agent.init(query)
  if type(query) == "table" then query = query.query end
  if type(query) ~= "string" then error("codegen: query must be a string", 0) end
  return { query = query, text = words(query), program = {}, steps = 0, tested = false,
    answered = false }
end

function agent.observe(state)
  local obs = state.text .. " | step:" .. state.steps .. " snippets:" .. #state.program
  if state.tested then obs = obs .. " tested" end
  return obs
end

function agent.legal(state)
  if state.answered then return {} end
  if state.tested then return { "answer" } end
  local n = #state.program
  if n >= MAX_SNIPPETS then return { "run_tests" } end
  local legal = {}
  local last = state.program[n]
  for _, name in ipairs(ORDER) do
    if not last or FOLLOWS[last][name] then legal[#legal + 1] = "use_" .. name end
  end
  if n > 0 then legal[#legal + 1] = "run_tests" end
  return legal
end

-- The program as source text: the snippets, then solution(x) composing them.
local function program_source(program)
  if #program == 0 then return "" end
  local parts, call = {}, "x"
  for _, name in ipairs(program) do
    parts[#parts + 1] = LIBRARY[name].source
    call = name .. "(" .. call .. ")"
  end
  parts[#parts + 1] = "function solution(x)\n  return " .. call .. "\nend\n"
  return table.concat(parts, "\n")
end

local function run_program(program, input)
  local v = input
  for _, name in ipairs(program) do v = LIBRARY[name].fn(v) end
  return v
end

local function copy_list(program)
  local out = {}
  for i, v in ipairs(program) do out[i] = v end
  return out
end

function agent.step(state, action)
  if state.answered then error("codegen: the episode has ended", 0) end
  state.steps = state.steps + 1
  if action == "run_tests" then
    if #state.program == 0 then error("run_tests: the program is empty", 0) end
    local inputs = PROBES[LIBRARY[state.program[1]].input]
    local runs = {}
    local t0 = os.clock()
    for i, input in ipairs(inputs) do
      local ok, out = pcall(run_program, state.program, input)
      if ok then runs[i] = { input = input, output = out }
      else runs[i] = { input = input, error = tostring(out) } end
    end
    state.execution_time_ms = math.floor((os.clock() - t0) * 1e6 + 0.5) / 1000
    state.runs = runs
    state.tested = true
    return { program = copy_list(state.program), inputs = inputs },
      { runs = runs, execution_time_ms = state.execution_time_ms }, false
  elseif action == "answer" then
    state.answered = true
    return { program = copy_list(state.program) }, { source = program_source(state.program) }, true
  end
  local name = type(action) == "string" and string.match(action, "^use_(.+)$")
  local s = name and LIBRARY[name]
  if not s then error("codegen: unknown action '" .. tostring(action) .. "'", 0) end
  state.program[#state.program + 1] = name
  return { snippet = name },
    { signature = s.input .. " -> " .. s.output, source = s.source, program = copy_list(state.program) },
    false
end

function agent.final(state)
  return {
    program = copy_list(state.program),
    source = program_source(state.program),
    tests_run = state.tested,
    runs = state.runs,
    execution_time_ms = state.execution_time_ms,
    answered = state.answered,
  }
end

return agent
