-- Shared by the agent specs: driving an agent plugin the way the C rollout loop does.
local assert = require("luassert") -- busted gives specs, not modules, its assert
local M = {}

-- Runs one episode of `agent` on `query`; policy(state, legal, k) returns the k-th action.
-- Returns the trajectory (as the reward plugin sees it), the observations and the legal sets.
-- A tool error ends the episode with {error = message} as its result, as in the host.
function M.run(agent, query, policy)
  local state = agent.init(query)
  local steps, observations, legals = {}, {}, {}
  local done = false
  while not done and #steps < agent.max_steps do
    local legal = agent.legal(state)
    assert.is_true(#legal > 0, "legal() is empty before the episode ended: " .. query)
    observations[#observations + 1] = agent.observe(state)
    legals[#legals + 1] = legal
    local action = policy(state, legal, #steps + 1)
    local ok, params, result, d = pcall(agent.step, state, action)
    if not ok then result, d = { error = params }, true; params = {} end
    steps[#steps + 1] = { action = { tool = action, params = params }, result = result }
    done = d
  end
  return { query = query, steps = steps, final = agent.final(state), truncated = not done },
    observations, legals
end

function M.contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

-- Training and evaluation queries of a generated data set, in one list.
function M.all_queries(d)
  local all = {}
  for _, q in ipairs(d.training_data) do all[#all + 1] = q end
  for _, q in ipairs(d.evaluation_data) do all[#all + 1] = q end
  return all
end

return M
