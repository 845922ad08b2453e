-- Reward for the codegen agent: 1 when the program's test outcome is the expected one, else 0.
--
-- expected_outcome = { task = "sort_desc", test_passed = true, execution_time_ms = 100,
--                      snippets = { "sort", "reverse_list" } }      (snippets is optional)
-- The tests are derived from the task kind: this file holds a reference implementation and
-- the input type of every task, written independently of the agent's snippet library. The
-- agent's run_tests records the program's output on its probe inputs (trajectory.final.runs);
-- the program passes when at least MIN_RUNS of those inputs have the task's input type, none
-- failed, every output equals the reference output, and execution_time_ms (when given) was
-- not exceeded. A program never run has not passed.
-- tool_accuracy (when snippets is given): a use_* step is right when it names the expected
-- snippet at that position; run_tests and answer are right when they did not fail.

local MIN_RUNS = 3

local function copy(list)
  local out = {}
  for i = 1, #list do out[i] = list[i] end
  return out
end

local function ascending(list)
  local out = copy(list)
  -- insertion sort: deliberately not the agent's table.sort
  for i = 2, #out do
    local v, j = out[i], i - 1
    while j >= 1 and out[j] > v do out[j + 1] = out[j]; j = j - 1 end
    out[j + 1] = v
  end
  return out
end

local function distinct(list)
  local out, seen = {}, {}
  for i = 1, #list do
    local v = list[i]
    if not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  return out
end

local function total(list)
  local t = 0
  for i = 1, #list do t = t + list[i] end
  return t
end

local function letters_only(s) return (string.gsub(string.lower(s), "[^%w]", "")) end

local TASKS = {
  sort = { input = "list", ref = ascending },
  sort_desc = { input = "list", ref = function(l)
    local a, out = ascending(l), {}
    for i = #a, 1, -1 do out[#out + 1] = a[i] end
    return out
  end },
  reverse_list = { input = "list", ref = function(l)
    local out = {}
    for i = 1, #l do out[i] = l[#l + 1 - i] end
    return out
  end },
  unique = { input = "list", ref = distinct },
  count_unique = { input = "list", ref = function(l) return #distinct(l) end },
  sum_unique = { input = "list", ref = function(l) return total(distinct(l)) end },
  sum = { input = "list", ref = total },
  max = { input = "list", ref = function(l) return ascending(l)[#l] end },
  min = { input = "list", ref = function(l) return ascending(l)[1] end },
  length = { input = "list", ref = function(l) return #l end },
  reverse_string = { input = "string", ref = function(s)
    local out = {}
    for i = #s, 1, -1 do out[#out + 1] = string.sub(s, i, i) end
    return table.concat(out)
  end },
  uppercase = { input = "string", ref = function(s)
    return (string.gsub(s, "%l", function(c) return string.char(string.byte(c) - 32) end))
  end },
  count_vowels = { input = "string", ref = function(s)
    local n = 0
    for c in string.gmatch(string.lower(s), ".") do
      if c == "a" or c == "e" or c == "i" or c == "o" or c == "u" then n = n + 1 end
    end
    return n
  end },
  palindrome = { input = "string", ref = function(s)
    local t = letters_only(s)
    for i = 1, #t // 2 do
      if string.sub(t, i, i) ~= string.sub(t, #t + 1 - i, #t + 1 - i) then return false end
    end
    return true
  end },
  fizzbuzz = { input = "number", ref = function(n)
    local out = {}
    for i = 1, n do
      local word = (i % 3 == 0 and "Fizz" or "") .. (i % 5 == 0 and "Buzz" or "")
      out[i] = word ~= "" and word or tostring(i)
    end
    return out
  end },
  factorial = { input = "number", ref = function(n)
    if n <= 1 then return 1 end
    local p = 1
    for i = n, 2, -1 do p = p * i end
    return p
  end },
}

local function kind_of(v)
  local t = type(v)
  if t == "table" then return "list" end
  return t
end

local function equal(a, b)
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if not equal(a[i], b[i]) then return false end end
  return true
end

-- Did the program pass the task's tests? Returns passed, number of checked runs.
local function check(task, final, limit_ms)
  if type(final) ~= "table" or type(final.runs) ~= "table" then return false, 0 end
  local checked = 0
  for _, run in ipairs(final.runs) do
    if type(run) == "table" and kind_of(run.input) == task.input then
      if run.error ~= nil then return false, checked end
      local ok, want = pcall(task.ref, run.input)
      if not ok or not equal(run.output, want) then return false, checked end
      checked = checked + 1
    end
  end
  if checked < MIN_RUNS then return false, checked end
  if type(limit_ms) == "number" and type(final.execution_time_ms) == "number"
      and final.execution_time_ms > limit_ms then
    return false, checked
  end
  return true, checked
end

local function tool_accuracy(steps, want)
  if type(want) ~= "table" or #steps == 0 then return nil end
  local right, k = 0, 0
  for _, step in ipairs(steps) do
    local tool = type(step.action) == "table" and step.action.tool or ""
    local failed = type(step.result) == "table" and step.result.error ~= nil
    local name = string.match(tool, "^use_(.+)$")
    if name then
      k = k + 1
      if not failed and want[k] == name then right = right + 1 end
    elseif not failed then
      right = right + 1
    end
  end
  return right / #steps
end

return {
  name = "codegen",
  version = "1.0.0",
  description = "1 when the program passes the task's tests (as expected_outcome.test_passed says)",
  range = { 0, 1 },
  success_threshold = 1.0,
  tasks = TASKS,
  score = function(trajectory, expected)
    if type(expected) ~= "table" or type(expected.task) ~= "string" or not TASKS[expected.task] then
      error("codegen reward: expected_outcome.task must be one of the known tasks, got "
        .. tostring(type(expected) == "table" and expected.task or nil), 0)
    end
    local passed, checked = check(TASKS[expected.task], trajectory.final, expected.execution_time_ms)
    local want = expected.test_passed ~= false
    local ok = passed == want
    return ok and 1.0 or 0.0, {
      success = ok,
      test_passed = passed,
      tests_checked = checked,
      tool_accuracy = tool_accuracy(trajectory.steps or {}, expected.snippets),
    }
  end,
}
