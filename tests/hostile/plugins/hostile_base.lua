-- The small, valid agent every hostile plugin wraps: it runs `attack` in the hook named by
-- `where` ("init", "observe" or "step"). What the attack returns from step becomes the step's
-- params and result; from observe, the observation.
local M = {}

function M.agent(name, where, attack)
  local agent = {
    name = name,
    version = "1",
    actions = { "go", "answer" },
    tools = { go = { cost_usd = 0 }, answer = { cost_usd = 0 } },
    max_steps = 4,
  }
  function agent.init(query)
    if where == "init" then attack() end
    return { n = 0 }
  end
  function agent.observe(state)
    if where == "observe" then return attack() or "step" end
    return "step " .. state.n
  end
  function agent.legal(state) return { "go", "answer" } end
  function agent.step(state, action)
    state.n = state.n + 1
    if where == "step" then
      local params, result = attack()
      return params or {}, result or {}, action == "answer"
    end
    return {}, {}, action == "answer"
  end
  function agent.final(state) return { answer = state.n } end
  return agent
end

return M
