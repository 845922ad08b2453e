-- Shared by the agent specs: driving an agent plugin the way the C rollout loop does.
local assert = require("luassert") -- busted gives specs, not modules, its assert
local M = {}

local function contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end
M.contains = contains

-- The tools' names, in declaration order (the policy's tool indices).
function M.tool_names(agent)
  local names = {}
  for i, t in ipairs(agent.tools) do names[i] = t.name end
  return names
end

-- Runs one episode of `agent` on `query`.
--
-- Agents on the contract of tools with arguments (agent.tools an array): policy(state, view, k)
-- returns the k-th call as tool name, args table; view = {legal = tool names (agent.legal, or
-- every tool), candidates = agent.candidates' list (or {}), observation = agent.observe's text
-- (or nil), steps = the calls so far}. Returns the trajectory as the reward plugin sees it
-- ({query, steps = {{action = {tool, params = args}, result}}, final, truncated}), the views and
-- the legal sets.
--
-- Agents still declaring `actions` (the contract before tools had arguments; the host refuses
-- them): policy(state, legal, k) returns the k-th action; step returns params, result, done.
--
-- Either way a tool error ends the episode with {error = message} as its result, as in the host.
function M.run(agent, query, policy, ctx)
  local state = agent.init(query, ctx)
  local steps, views, legals = {}, {}, {}
  local done = false
  local max_steps = agent.max_steps or 20
  while not done and #steps < max_steps do
    local legal = agent.legal and agent.legal(state) or M.tool_names(agent)
    assert.is_true(#legal > 0, "legal() is empty before the episode ended: " .. query)
    legals[#legals + 1] = legal
    if agent.actions ~= nil then
      views[#views + 1] = agent.observe(state)
      local action = policy(state, legal, #steps + 1)
      local ok, params, result, d = pcall(agent.step, state, action)
      if not ok then result, d = { error = params }, true; params = {} end
      steps[#steps + 1] = { action = { tool = action, params = params }, result = result }
      done = d
    else
      local view = { legal = legal, candidates = agent.candidates and agent.candidates(state) or {},
                     observation = agent.observe and agent.observe(state) or nil, steps = steps }
      views[#views + 1] = view
      local tool, args = policy(state, view, #steps + 1)
      assert.is_true(contains(legal, tool), "the policy chose a tool that is not legal: " .. tostring(tool))
      args = args or {}
      local ok, result, d = pcall(agent.step, state, tool, args)
      if not ok then result, d = { error = result }, true end
      steps[#steps + 1] = { action = { tool = tool, params = args }, result = result }
      done = d
    end
  end
  return { query = query, steps = steps, final = agent.final(state), truncated = not done }, views, legals
end

-- Training and evaluation queries of a generated data set, in one list.
function M.all_queries(d)
  local all = {}
  for _, q in ipairs(d.training_data) do all[#all + 1] = q end
  for _, q in ipairs(d.evaluation_data) do all[#all + 1] = q end
  return all
end

return M
