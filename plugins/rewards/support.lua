-- Reward for the support agent (plugins/agents/support.lua).
--
-- expected_outcome = {
--   customer = "Maria Lopez",
--   requests = { { action = "refund", order_id = "ORD-4821", amount = 129.99, verify = true },
--                { action = "change_address", order_id = "ORD-1093", city = "Denver" } },
--   min_steps = 6 }          -- the fewest calls that do it all (optional: no efficiency term)
--
-- Success: every request done once with the right order and arguments (a refund of the order's
-- whole amount, the city asked for), no other write (a refund, exchange, address change,
-- escalation or coupon nobody asked for, or one on the wrong order), the shop's policy kept (a
-- refund with verify = true comes after a verify_identity of that customer), and the ticket
-- closed by the last call.
--
-- Reward:
--   success: 1 - 0.05 per call beyond min_steps, at least 0.8 (verifying the customer for a
--            small refund is allowed, but costs a call);
--   a policy violation (a refund with verify = true before the customer was verified): 0;
--   otherwise partial credit, at most 0.6: 0.6 x the share of the milestones reached (for each
--     request its order found, i.e. its number in a result: 1; for a refund its order read: 1
--     and, when needed, the customer verified: 1; the request done right: 4), less 0.02 for
--     each write nobody asked for.
-- info.step_rewards gives each call what it added (a milestone reached, an unwanted write, -0.6
-- for the violation), the last call closing the sum to the episode's reward: the trainer then
-- credits each call with what followed it. (Against the outcome reward alone, same budget: 600
-- iterations of the bag policy reached 0.23 validation success either way, and a higher
-- validation reward, 0.43 against 0.31, with step rewards.)
-- A rejected call (a result with an error) changes nothing and counts as a call only. That
-- includes a second refund of an order refunded in full (the backend refuses it), which trained
-- policies make and then close the ticket on its error. Counting it as an unwanted write, as a
-- second exchange is, was tried: validation success of seeds 1-4 went from 0.95-0.98 to
-- 0.63-0.98 (seed 1 then looped after its one refund), so the rule stays as it is.
-- Why these numbers: with a wrong write worth 0 and no cost per call, GRPO runs settled on
-- "search, then read_order until max_steps" (0.2-0.3, never risking a write) and never found
-- the writes; a violation must score below verifying without refunding (0.3), or the policy
-- would learn to skip the verification.
-- tool_accuracy: the share of calls that did not fail, are not a tool no request needs
-- (track_shipment, send_coupon) and, for writes, did a request without breaking the policy.

local WRITES = { refund = true, exchange = true, change_address = true, escalate = true, send_coupon = true }
local DISTRACTORS = { track_shipment = true, send_coupon = true }
local ACT = 4     -- a request done right weighs four milestones
local HARM = 0.02 -- what each unwanted write costs in partial credit

local function failed(step)
  return type(step.result) ~= "table" or step.result.error ~= nil
end

-- Every order number in a value (strings of results: "ORD-4821 kettle, Maria Lopez").
local function collect_ids(v, into)
  if type(v) == "string" then
    for id in string.gmatch(v, "ORD%-%d+") do into[id] = true end
  elseif type(v) == "table" then
    for _, x in pairs(v) do collect_ids(x, into) end
  end
end

local function same_amount(a, b)
  return type(a) == "number" and type(b) == "number" and math.abs(a - b) < 0.005
end

-- Does write step `call` (tool, params) do request r?
local function does(r, tool, p)
  if tool ~= r.action or p.order_id ~= r.order_id then return false end
  if tool == "refund" then return same_amount(p.amount, r.amount) end
  if tool == "change_address" then
    return type(p.city) == "string" and string.lower(p.city) == string.lower(r.city or "")
  end
  return true
end

local function check(expected)
  if type(expected) ~= "table" or type(expected.requests) ~= "table" or #expected.requests == 0 then
    error("support reward: expected_outcome.requests must be a non-empty array", 0)
  end
  for i, r in ipairs(expected.requests) do
    if type(r) ~= "table" or type(r.action) ~= "string" or type(r.order_id) ~= "string" then
      error("support reward: expected_outcome.requests[" .. i .. "] needs action and order_id", 0)
    end
  end
end

local M = {
  name = "support",
  version = "2.0.0",
  description = "1 when every request is done right under the shop's policy (less 0.05 a call beyond the "
    .. "fewest), 0 for a policy violation or an unwanted write, else 0.6 x the milestones reached",
  range = { 0, 1 },
  success_threshold = 0.8,
}

function M.score(trajectory, expected)
  check(expected)
  local steps = type(trajectory.steps) == "table" and trajectory.steps or {}
  local requests = expected.requests
  local found, read, verified_req, done = {}, {}, {}, {}
  local seen_ids, verified = {}, {}
  local harmful, violation = 0, false
  local right = 0
  local total = 0
  for _, r in ipairs(requests) do
    total = total + 1 + ACT + (r.action == "refund" and (r.verify and 2 or 1) or 0)
  end
  -- milestones reached so far; each step's reward is what it added (the trainer uses them as
  -- per-step rewards, the last step closing the sum to the episode's reward)
  local function hits_now()
    local h = 0
    for i, r in ipairs(requests) do
      h = h + (found[i] and 1 or 0) + (done[i] and ACT or 0)
      if r.action == "refund" then
        h = h + (read[i] and 1 or 0) + ((r.verify and verified_req[i]) and 1 or 0)
      end
    end
    return h
  end
  local step_rewards, sum = {}, 0
  for k, step in ipairs(steps) do
    local before, harm_before = hits_now(), harmful
    local action = type(step.action) == "table" and step.action or {}
    local tool = action.tool
    local p = type(action.params) == "table" and action.params or {}
    local bad = failed(step)
    local ok = not bad and not DISTRACTORS[tool]
    local violated = false
    if not bad then
      collect_ids(step.result, seen_ids)
      if tool == "verify_identity" and step.result.verified == true and type(step.result.customer) == "string" then
        verified[step.result.customer] = true
      end
    end
    for i, r in ipairs(requests) do
      if tool == "read_order" and not bad and p.order_id == r.order_id then read[i] = true end
    end
    if WRITES[tool] and not bad then
      local matched = nil
      for i, r in ipairs(requests) do
        if not done[i] and does(r, tool, p) then matched = i; break end
      end
      if matched == nil then
        harmful, ok = harmful + 1, false
      else
        local r = requests[matched]
        if r.verify and not verified[expected.customer] then violation, violated, ok = true, true, false end
        done[matched] = true
      end
    end
    if ok then right = right + 1 end
    for i, r in ipairs(requests) do
      if seen_ids[r.order_id] then found[i] = true end
      if r.verify and verified[expected.customer] then verified_req[i] = true end
    end
    local rk = 0.6 * (hits_now() - before) / total - HARM * (harmful - harm_before)
    if violated then rk = rk - 0.6 end
    step_rewards[k], sum = rk, sum + rk
  end
  local all_done = true
  for i in ipairs(requests) do all_done = all_done and done[i] == true end
  local last = steps[#steps]
  local closed = last ~= nil and type(last.action) == "table" and last.action.tool == "close_ticket"
    and not failed(last)
  local info = { tool_accuracy = #steps > 0 and right / #steps or nil }
  info.success = all_done and closed and harmful == 0 and not violation
  local extra = math.max(0, #steps - (tonumber(expected.min_steps) or #steps))
  local reward
  if info.success then reward = math.max(0.8, 1 - 0.05 * extra)
  elseif violation then reward = 0.0
  else reward = math.min(0.6, math.max(0.0, 0.6 * hits_now() / total - HARM * harmful)) end
  if #steps > 0 then
    step_rewards[#steps] = step_rewards[#steps] + (reward - sum)
    info.step_rewards = step_rewards
  end
  return reward, info
end

return M
