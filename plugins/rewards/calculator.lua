-- Reward for the calculator agent: 1 for the exact numeric answer; else partial credit for the
-- way there, 0.5 x the share of the expected intermediate values the tool results reached in
-- order (extra calls in between cost nothing but steps). Success is the exact answer only.
-- With expected values the reward is also given per step (info.step_rewards, summing to it): the
-- call that reached the next value earns its share, the answer the rest; a call that repeats an
-- earlier one (same tool and arguments) costs 0.05, and so does each call made once the answer's
-- value is in hand (the work is done: the agent should answer). The range is -1 to 1.
--
-- expected_outcome = { answer = 36, ops = { "add", "multiply" }, values = { 12, 36 } }
--   (ops and values are optional: without values there is no partial credit)
-- tool_accuracy (when ops is given): a step is right when it did not fail and, for an operation
-- step, when it is the expected operation at that position (answer is right whenever it
-- succeeds). Without ops the host's default applies.

local REPEAT = 0.05 -- what a call that repeats an earlier one costs
local DONE = 0.05   -- what a call costs once the last expected value was reached

-- The call of a step: its tool and params, or nil.
local function call_of(step)
  local a = type(step.action) == "table" and step.action or nil
  if not a or type(a.tool) ~= "string" then return nil end
  return a.tool, type(a.params) == "table" and a.params or {}
end

-- Whether two calls are the same: the same tool and the same arguments (compared as values, no
-- string is built: this runs for every pair of an episode's steps).
local function same_call(tool1, p1, tool2, p2)
  if tool1 ~= tool2 then return false end
  local n = 0
  for k, v in pairs(p1) do
    if p2[k] ~= v then return false end
    n = n + 1
  end
  for _ in pairs(p2) do n = n - 1 end
  return n == 0
end

-- Whether step i repeats an earlier step's call.
local function repeats(steps, i)
  local tool, params = call_of(steps[i])
  if not tool then return false end
  for j = 1, i - 1 do
    local t2, p2 = call_of(steps[j])
    if t2 and same_call(tool, params, t2, p2) then return true end
  end
  return false
end

local OPERATIONS = { add = true, subtract = true, multiply = true, divide = true, power = true, modulo = true }

-- Exact, except that integer 35 equals float 35.0 and float noise (0.1 + 0.2) is forgiven.
local function same_number(got, want)
  if type(got) ~= "number" or type(want) ~= "number" then return false end
  if got == want then return true end
  if got ~= got or want ~= want then return false end  -- NaN
  return math.abs(got - want) <= 1e-9 * math.max(1, math.abs(want))
end

local function failed(step)
  return type(step.result) == "table" and step.result.error ~= nil
end

local function tool_of(step)
  return type(step.action) == "table" and step.action.tool or nil
end

local function tool_accuracy(steps, want_ops)
  if type(want_ops) ~= "table" or #steps == 0 then return nil end
  local right, k = 0, 0
  for _, step in ipairs(steps) do
    local tool = tool_of(step)
    if OPERATIONS[tool] then
      k = k + 1
      if not failed(step) and want_ops[k] == tool then right = right + 1 end
    elseif not failed(step) then
      right = right + 1
    end
  end
  return right / #steps
end

-- How many of values (in order) appear among the tool results' values, allowing others between;
-- and, per step, the credit it earned: 0.5 / #values for the step that reached the next value,
-- -DONE for a call after the last one was reached.
local function reached(steps, values)
  local k, per_step = 1, {}
  for i, step in ipairs(steps) do
    per_step[i] = (k > #values and tool_of(step) ~= "answer") and -DONE or 0.0
    local r = step.result
    if k <= #values and type(r) == "table" and same_number(r.value, values[k]) then
      k = k + 1
      per_step[i] = 0.5 / #values
    end
  end
  return k - 1, per_step
end

return {
  name = "calculator",
  version = "2.0.0",
  description = "1 for the exact answer, else 0.5 x the share of the expected intermediate values reached",
  range = { -1, 1 },
  success_threshold = 1.0,
  score = function(trajectory, expected)
    if type(expected) ~= "table" or type(expected.answer) ~= "number" then
      error("calculator reward: expected_outcome.answer must be a number", 0)
    end
    local final = type(trajectory.final) == "table" and trajectory.final or {}
    local ok = same_number(final.answer, expected.answer)
    local info = { success = ok }
    local steps = trajectory.steps or {}
    info.tool_accuracy = tool_accuracy(steps, expected.ops)
    local values = expected.values
    if type(values) ~= "table" or #values == 0 then return ok and 1.0 or 0.0, info end
    -- the same total as step rewards (what each call added), so that GRPO can credit the call
    -- that made the progress rather than every call of the episode alike
    local k, per_step = reached(steps, values)
    local total = 0.5 * k / #values -- the answer earns the rest of 1: calls after the last value still cost
    if ok and #steps > 0 then
      per_step[#steps] = per_step[#steps] + (1.0 - total)
    end
    -- a call that repeats an earlier one (same tool, same arguments) costs a little: it learns
    -- nothing new, and it must not look as good as the next call
    total = 0.0
    for i = 1, #steps do
      if repeats(steps, i) then per_step[i] = per_step[i] - REPEAT end
      total = total + per_step[i]
    end
    if #steps > 0 then info.step_rewards = per_step end
    return total, info
  end,
}
