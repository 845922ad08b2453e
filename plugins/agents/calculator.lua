-- Calculator agent: arithmetic word problems solved with tool calls whose operands the policy
-- picks from what it has seen.
--
--   "Start with 7, add 5, then multiply by 3."
--     add(a = 7, b = 5)        -> { value = 12 }
--     multiply(a = 12, b = 3)  -> { value = 36 }
--     answer(value = 36)       -> the episode ends
--
-- The agent is what a user would write: it declares its tools and does the arithmetic. It does
-- not describe its state to the policy (no observe: the host shows the query and every earlier
-- call and result), and it does not restrict the choices (no legal: any tool may be called with
-- any numbers it has seen). power and modulo are real tools that no query needs.

local agent = {
  name = "calculator",
  version = "2.0.0",
  description = "Solves arithmetic word problems one operation at a time and answers with the result.",
  tools = {
    { name = "add", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a + b" },
    { name = "subtract", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a - b" },
    { name = "multiply", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a * b" },
    { name = "divide", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a / b" },
    { name = "power", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a ^ b" },
    { name = "modulo", args = { { name = "a", type = "number" }, { name = "b", type = "number" } },
      cost_usd = 0.0001, description = "a mod b" },
    { name = "answer", args = { { name = "value", type = "number" } }, cost_usd = 0,
      description = "ends the episode with this value as the answer" },
  },
  max_steps = 7, -- five operations, the answer, and one call to spare
}

-- Integral floats (20 / 4 = 5.0) become integers, so that results read 5, not 5.0.
local function tidy(x)
  if math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 2 ^ 53 then
    return math.tointeger(x)
  end
  return x
end

-- Each returns the value, or nil and why the calculator refuses the call.
local OPS = {
  add = function(a, b) return a + b end,
  subtract = function(a, b) return a - b end,
  multiply = function(a, b) return a * b end,
  divide = function(a, b)
    if b == 0 then return nil, "division by zero" end
    return a / b
  end,
  power = function(a, b)
    if math.abs(b) > 12 then return nil, "exponent too large" end
    return a ^ b
  end,
  modulo = function(a, b)
    if b == 0 then return nil, "division by zero" end
    return math.fmod(a, b)
  end,
}

function agent.init(query)
  if type(query) ~= "string" then error("calculator: query must be a string", 0) end
  return { query = query }
end

function agent.step(state, tool, args)
  if state.answer ~= nil then error("calculator: the episode has ended", 0) end
  if tool == "answer" then
    state.answer = args.value
    return { answer = args.value }, true
  end
  local op = OPS[tool]
  if not op then error("calculator: unknown tool '" .. tostring(tool) .. "'", 0) end
  -- a call the calculator refuses is an answer the policy reads, not a failure of the plugin
  local value, why = op(args.a, args.b)
  if value == nil then return { error = tool .. ": " .. why }, false end
  value = tidy(value)
  if value ~= value or value == math.huge or value == -math.huge then
    return { error = tool .. ": the result is not a finite number" }, false
  end
  return { value = value }, false
end

function agent.final(state)
  return { answer = state.answer }
end

return agent
