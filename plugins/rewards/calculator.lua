-- Reward for the calculator agent: 1 for the exact numeric answer, else 0.
--
-- expected_outcome = { answer = 35, ops = { "add", "multiply" } }   (ops is optional)
-- tool_accuracy (when ops is given): a step is right when it did not fail and, for an operation
-- step, when it is the expected operation at that position (extract_numbers and answer are right
-- whenever they succeed). Without ops the host's default applies.

local OPERATIONS = { add = true, subtract = true, subtract_from = true, multiply = true, divide = true }

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

return {
  name = "calculator",
  version = "1.0.0",
  description = "1 when the final answer equals expected_outcome.answer, else 0",
  range = { 0, 1 },
  success_threshold = 1.0,
  score = function(trajectory, expected)
    if type(expected) ~= "table" or type(expected.answer) ~= "number" then
      error("calculator reward: expected_outcome.answer must be a number", 0)
    end
    local final = type(trajectory.final) == "table" and trajectory.final or {}
    local ok = same_number(final.answer, expected.answer)
    local info = { success = ok }
    info.tool_accuracy = tool_accuracy(trajectory.steps or {}, expected.ops)
    return ok and 1.0 or 0.0, info
  end,
}
