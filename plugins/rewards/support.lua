-- Reward for the support agent.
--
-- expected_outcome = { resolution = "refunded", order_id = 4821,
--                      tools = { "lookup_order", "verify_customer", "refund", "reply" } }
--   1.0  the tools used are exactly expected_outcome.tools, in order, none failed, and the
--        final resolution (and order_id, when given) is the expected one;
--   0.5  the same resolution, the expected tools appear in order, but extra harmless calls
--        were made (a verify_customer or check_shipping that was not needed);
--   0    anything else: wrong resolution, a failed call, a missing reply, a state change
--        (refund, cancel_order, update_address) that was not asked for, or a required
--        verify_customer that came after the refund (or never).
-- Success is the 1.0 case. tool_accuracy: the fraction of steps that did not fail and belong to
-- a longest in-order match (longest common subsequence) with the expected tools.

local CHANGES = { refund = true, cancel_order = true, update_address = true }

local function tools_of(steps)
  local tools, failed = {}, false
  for i, step in ipairs(steps) do
    tools[i] = type(step.action) == "table" and step.action.tool or nil
    if type(step.result) == "table" and step.result.error ~= nil then failed = true end
  end
  return tools, failed
end

-- Is want a subsequence of got?
local function in_order(got, want)
  local j = 1
  for _, t in ipairs(got) do
    if want[j] ~= nil and t == want[j] then j = j + 1 end
  end
  return j > #want
end

-- Length of the longest common subsequence of got (failed steps excluded) and want.
local function lcs(got, bad, want)
  local prev = {}
  for j = 0, #want do prev[j] = 0 end
  for i = 1, #got do
    local cur = { [0] = 0 }
    for j = 1, #want do
      if not bad[i] and got[i] == want[j] then cur[j] = prev[j - 1] + 1
      else cur[j] = math.max(prev[j], cur[j - 1]) end
    end
    prev = cur
  end
  return prev[#want]
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

return {
  name = "support",
  version = "1.0.0",
  description = "1 for the expected tool sequence and resolution, 0.5 with extra harmless calls, else 0",
  range = { 0, 1 },
  success_threshold = 1.0,
  score = function(trajectory, expected)
    if type(expected) ~= "table" or type(expected.resolution) ~= "string"
        or type(expected.tools) ~= "table" then
      error("support reward: expected_outcome needs resolution (string) and tools (array)", 0)
    end
    local steps = trajectory.steps or {}
    local got, failed = tools_of(steps)
    local final = type(trajectory.final) == "table" and trajectory.final or {}
    local all_in_order = in_order(got, expected.tools)
    local accuracy = nil
    if #steps > 0 then
      local bad = {}
      for i, step in ipairs(steps) do
        bad[i] = type(step.result) == "table" and step.result.error ~= nil
      end
      accuracy = lcs(got, bad, expected.tools) / #steps
    end
    local info = { tool_accuracy = accuracy, success = false }
    local right_case = final.resolution == expected.resolution
      and (expected.order_id == nil or type(expected.order_id) ~= "number"
        or final.order_id == expected.order_id)
    if failed or not right_case or got[#got] ~= "reply" or not all_in_order then
      return 0.0, info
    end
    if same_list(got, expected.tools) then
      info.success = true
      return 1.0, info
    end
    local wanted = {}
    for _, t in ipairs(expected.tools) do wanted[t] = true end
    for _, t in ipairs(got) do
      if CHANGES[t] and not wanted[t] then return 0.0, info end
    end
    return 0.5, info
  end,
}
