-- The inventory agent (plugins/agents/inventory.lua), blind to its tool results: the control of
-- the learning benchmark (bench/learning.md), which shows what a policy scores when it cannot
-- read check_stock's answer.
--
-- Everything is the real agent's: the same tools, the same warehouse, the same draws from the
-- episode's generator, the same final answer. Only what the policy sees differs: every call
-- answers the same empty result {}, whatever the tool did, so the context holds the query and
-- the calls the policy made, and nothing the warehouse said. The true results stay in the
-- state, and the final answer carries them (final.results, one per step, in order) for the
-- reward plugins/rewards/inventory_blind.lua, which puts them back into the trajectory and
-- scores it with the inventory reward. The final answer reaches the reward only; the policy
-- never sees it.
--
-- A call the real agent raises on (an unknown tool, a call after finish) raises here too, with
-- the same message: the host records the same failed call.

local ac = require("agentcore")
local inventory = require("agents.inventory") -- read-only: its tables are shared, not changed

local BLIND = {}

local agent = {
  name = "inventory_blind",
  version = "1.0.0",
  description = "The inventory agent with every tool result hidden from the policy (the blind "
    .. "control of the learning benchmark)",
  tools = inventory.tools,
  max_steps = inventory.max_steps,
}

function agent.init(query, ctx)
  return { inner = inventory.init(query, ctx), results = {} }
end

function agent.step(state, tool, args)
  local result, done = inventory.step(state.inner, tool, args)
  state.results[#state.results + 1] = result
  return BLIND, done
end

-- The real agent's final answer, with the results the policy did not see.
function agent.final(state)
  local real = inventory.final(state.inner)
  local answer = {}
  for k, v in pairs(real) do answer[k] = v end
  local results = ac.array()
  for i, r in ipairs(state.results) do results[i] = r end
  answer.results = results
  return answer
end

return agent
