-- Reward for the inventory agent (plugins/agents/inventory.lua).
--
-- expected_outcome = { items = { { item = "kettle", qty = 3 }, { item = "lamp", qty = 5 } },
--                      min_steps = 5 }   -- check and order each item, finish (optional)
--
-- Which call is right for an item depends on the stock the episode drew, which the agent's
-- final answer reports (trajectory.final.stock: what the warehouse had of every item a call
-- touched): place_order(item, qty) when it had some, back_order(item, qty) when it had none.
--
-- Success: every item handled once, by the right call with the quantity asked for, no other
-- order or back-order, and finish as the last call.
-- Reward:
--   success: 1 - 0.05 per call beyond min_steps, at least 0.8;
--   otherwise partial credit, at most 0.6: 0.6 x the share of the milestones reached (for each
--     item its stock checked: 1; handled right: 3), less 0.05 for each order or back-order
--     nobody asked for (a wrong item or quantity, a back-order of an item in stock, a second
--     one) and 0.01 per call beyond min_steps.
-- A rejected call (a result with an error, e.g. place_order of an item out of stock) changes
-- nothing and counts as a call only.
-- tool_accuracy: the share of calls that did not fail, are not a tool no request needs
-- (check_price, list_suppliers) and, for orders, handled a requested item right.

local WRITES = { place_order = true, back_order = true }
local DISTRACTORS = { check_price = true, list_suppliers = true }
local HANDLE = 3
local HARM = 0.05

local function failed(step)
  return type(step.result) ~= "table" or step.result.error ~= nil
end

local function check(expected)
  if type(expected) ~= "table" or type(expected.items) ~= "table" or #expected.items == 0 then
    error("inventory reward: expected_outcome.items must be a non-empty array", 0)
  end
  for i, x in ipairs(expected.items) do
    if type(x) ~= "table" or type(x.item) ~= "string" or math.type(x.qty) ~= "integer" then
      error("inventory reward: expected_outcome.items[" .. i .. "] needs item (string) and qty (integer)", 0)
    end
  end
end

local M = {
  name = "inventory",
  version = "1.0.0",
  description = "1 when every item is ordered from stock or back-ordered as the stock requires (less 0.05 "
    .. "a call beyond the fewest), else 0.6 x the milestones reached",
  range = { 0, 1 },
  success_threshold = 0.8,
}

function M.score(trajectory, expected)
  check(expected)
  local final = type(trajectory.final) == "table" and trajectory.final or {}
  local stock = type(final.stock) == "table" and final.stock or {}
  local steps = type(trajectory.steps) == "table" and trajectory.steps or {}
  local items = expected.items
  local checked, handled = {}, {}
  local harm, right = 0, 0
  for _, step in ipairs(steps) do
    local action = type(step.action) == "table" and step.action or {}
    local tool = action.tool
    local bad = failed(step)
    local ok = not bad and not DISTRACTORS[tool]
    local r = step.result
    if tool == "check_stock" and not bad then
      for i, x in ipairs(items) do if r.item == x.item then checked[i] = true end end
    end
    if WRITES[tool] and not bad then
      local matched = nil
      for i, x in ipairs(items) do
        if not handled[i] and r.item == x.item and r.qty == x.qty then
          local in_stock = (tonumber(stock[x.item]) or 0) > 0
          if (tool == "place_order") == in_stock then matched = i end
          break
        end
      end
      if matched then handled[matched] = true else harm, ok = harm + 1, false end
    end
    if ok then right = right + 1 end
  end
  local hits, total, all = 0, 0, true
  for i in ipairs(items) do
    total = total + 1 + HANDLE
    hits = hits + (checked[i] and 1 or 0) + (handled[i] and HANDLE or 0)
    all = all and handled[i] == true
  end
  local last = steps[#steps]
  local finished = last ~= nil and type(last.action) == "table" and last.action.tool == "finish"
  local info = { tool_accuracy = #steps > 0 and right / #steps or nil }
  info.success = all and finished and harm == 0
  local extra = math.max(0, #steps - (tonumber(expected.min_steps) or #steps))
  if info.success then return math.max(0.8, 1 - 0.05 * extra), info end
  local partial = 0.6 * hits / total - HARM * harm - 0.01 * extra
  return math.min(0.6, math.max(0.0, partial)), info
end

return M
