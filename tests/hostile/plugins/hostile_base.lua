-- The small, valid agent every hostile plugin wraps: it runs `attack` in the function named by
-- `where` ("init", "observe", "candidates" or "step"). What the attack returns from step becomes
-- the step's result; from observe, the observation; from candidates, the candidate list.
local M = {}

function M.agent(name, where, attack)
  local agent = {
    name = name,
    version = "1",
    tools = {
      { name = "go", args = { { name = "n", type = "number" } }, cost_usd = 0 },
      { name = "answer", cost_usd = 0 },
    },
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
  if where == "candidates" then
    function agent.candidates(state) return attack() or {} end
  end
  function agent.step(state, tool, args)
    state.n = state.n + 1
    if where == "step" then
      local result = attack()
      return result or {}, tool == "answer"
    end
    return { n = args.n }, tool == "answer"
  end
  function agent.final(state) return { answer = state.n } end
  return agent
end

return M
