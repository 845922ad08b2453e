-- Reward for the blind inventory agent (plugins/agents/inventory_blind.lua): the inventory
-- reward (plugins/rewards/inventory.lua), unchanged, on the trajectory as the real agent would
-- have recorded it.
--
-- The blind agent shows the policy an empty result at every step and reports the true ones in
-- its final answer (trajectory.final.results, one per step that returned). This reward puts each
-- back in its step, then scores with the inventory reward: the same episode earns the same reward
-- as with the real agent. A step without a reported result (a call that raised, which ends the
-- episode) keeps the failed call's { error = ... } that the host recorded.

local inventory = require("rewards.inventory")

local M = {
  name = "inventory_blind",
  version = "1.0.0",
  description = "the inventory reward, on the results the blind inventory agent hid from the policy",
  range = { inventory.range[1], inventory.range[2] },
  success_threshold = inventory.success_threshold,
}

function M.score(trajectory, expected)
  local final = type(trajectory.final) == "table" and trajectory.final or {}
  local results = type(final.results) == "table" and final.results or {}
  local steps = {}
  for i, step in ipairs(type(trajectory.steps) == "table" and trajectory.steps or {}) do
    local result = results[i]
    if result == nil then result = step.result end
    steps[i] = { state = step.state, action = step.action, result = result }
  end
  return inventory.score({ query = trajectory.query, steps = steps, final = final,
    truncated = trajectory.truncated }, expected)
end

return M
