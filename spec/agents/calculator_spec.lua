-- Specs for plugins/agents/calculator.lua: tools whose operands the policy picks. Its reward:
-- spec/rewards/calculator_spec.lua; its data generator: spec/examples/calculator_data_spec.lua.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.calculator")
local reward = require("rewards.calculator")
local data = require("calculator.data")

local episode = require("helpers.episode")
local calc = require("helpers.calculator")
local numbers, chain = calc.numbers, calc.chain

local OPERATIONS = { "add", "subtract", "multiply", "divide", "power", "modulo" }
local ARG_TYPES = { number = true, word = true, id = true, any = true, candidate = true }

local function run(query, policy) return episode.run(agent, query, policy) end

-- The policy that reads the chain: each operation on the right operands, then answer.
local function script(q)
  local c = chain(q)
  return function(_, view, k)
    if k <= #c then return c[k].tool, { a = c[k].a, b = c[k].b } end
    local last = view.steps[#view.steps]
    return "answer", { value = last and last.result.value or numbers(q.query)[1] }
  end
end

-- A simple deterministic generator for "random" policies in specs.
local function lcg(seed)
  local x = seed
  return function(n) x = (x * 1103515245 + 12345) % 2147483648; return x % n + 1 end
end

describe("calculator agent", function()
  it("follows the plugin contract: tools as an array with typed arguments", function()
    assert.are.equal("string", type(agent.name))
    assert.are.equal("string", type(agent.version))
    assert.is_nil(agent.actions, "the old contract's actions")
    for _, f in ipairs({ "init", "step", "final" }) do
      assert.are.equal("function", type(agent[f]), f)
    end
    -- it shows the policy nothing of its own and restricts nothing: the host renders the history
    assert.is_nil(agent.observe)
    assert.is_nil(agent.legal)
    assert.is_nil(agent.candidates)
    assert.are.equal(7, agent.max_steps)
    assert.are.same({ "add", "subtract", "multiply", "divide", "power", "modulo", "answer" }, episode.tool_names(agent))
    local seen = {}
    for i, t in ipairs(agent.tools) do
      assert.is_nil(seen[t.name], "duplicate tool " .. t.name)
      seen[t.name] = true
      assert.are.equal("number", type(t.cost_usd), t.name)
      assert.is_true(t.cost_usd >= 0)
      assert.are.equal("string", type(t.description), t.name)
      assert.is_true(#t.args >= 1 and #t.args <= 4, t.name)
      for _, arg in ipairs(t.args) do
        assert.are.equal("string", type(arg.name))
        assert.is_true(ARG_TYPES[arg.type], t.name .. "." .. arg.name)
        assert.are.equal("number", arg.type, "the calculator's operands are numbers")
      end
      local names = {}
      for k, arg in ipairs(t.args) do names[k] = arg.name end
      assert.are.same(t.name == "answer" and { "value" } or { "a", "b" }, names, t.name)
      assert.are.equal(i == #agent.tools and 0 or 0.0001, t.cost_usd, t.name)
    end
    assert.are.equal("string", type(reward.name))
    assert.are.equal("function", type(reward.score))
    assert.are.same({ -1, 1 }, reward.range)
  end)

  it("solves 'Start with 7, add 5, then multiply by 3.' with tool calls", function()
    local s = agent.init("Start with 7, add 5, then multiply by 3.")
    local r, done = agent.step(s, "add", { a = 7, b = 5 })
    assert.are.same({ value = 12 }, r)
    assert.is_false(done)
    r, done = agent.step(s, "multiply", { a = 12, b = 3 })
    assert.are.same({ value = 36 }, r)
    assert.is_false(done)
    r, done = agent.step(s, "answer", { value = 36 })
    assert.are.same({ answer = 36 }, r)
    assert.is_true(done)
    assert.are.same({ answer = 36 }, agent.final(s))
  end)

  it("does the arithmetic of every tool, integral results as integers", function()
    local function calc(tool, a, b)
      local r, done = agent.step(agent.init("q"), tool, { a = a, b = b })
      assert.is_false(done)
      return r.value
    end
    assert.are.equal(12, calc("add", 7, 5))
    assert.are.equal(-2.5, calc("add", -5, 2.5))
    assert.are.equal(2, calc("subtract", 7, 5))
    assert.are.equal(-2, calc("subtract", 5, 7)) -- the order is the policy's choice
    assert.are.equal(36, calc("multiply", 12, 3))
    assert.are.equal(5, calc("divide", 20, 4))
    assert.are.equal("integer", math.type(calc("divide", 20, 4)))
    assert.are.equal(3.5, calc("divide", 7, 2))
    assert.are.equal(1024, calc("power", 2, 10))
    assert.are.equal("integer", math.type(calc("power", 2, 10)))
    assert.are.equal(0.5, calc("power", 2, -1))
    assert.are.equal(2, calc("modulo", 17, 5))
    assert.are.equal(-1, calc("modulo", -7, 3)) -- the sign of the dividend, as math.fmod
    assert.are.equal(1.5, calc("modulo", 7.5, 2))
  end)

  it("answers a call it cannot compute with an error the policy reads; fails only on a broken contract", function()
    local function refused(tool, args, part)
      local result, done = agent.step(agent.init("q"), tool, args)
      assert.is_false(done, tool)
      assert.is_nil(result.value, tool)
      assert.matches(part, result.error, 1, true)
    end
    refused("divide", { a = 3, b = 0 }, "divide: division by zero")
    refused("modulo", { a = 3, b = 0 }, "modulo: division by zero")
    refused("power", { a = 2, b = 13 }, "power: exponent too large")
    refused("power", { a = 2, b = -13 }, "power: exponent too large")
    refused("power", { a = 1e300, b = 2 }, "power: the result is not a finite number")
    refused("multiply", { a = 1e300, b = 1e300 }, "multiply: the result is not a finite number")
    -- what the host never sends (a tool it does not declare, a call after the answer, a query
    -- that is not text) is the plugin failing, with a message
    local ok, err = pcall(agent.step, agent.init("q"), "sqrt", { a = 4, b = 0 })
    assert.is_false(ok)
    assert.matches("unknown tool 'sqrt'", err, 1, true)
    local s = agent.init("q")
    agent.step(s, "answer", { value = 1 })
    ok, err = pcall(agent.step, s, "add", { a = 1, b = 2 })
    assert.is_false(ok)
    assert.matches("the episode has ended", err, 1, true)
    ok, err = pcall(agent.init, 42)
    assert.is_false(ok)
    assert.matches("query must be a string", err, 1, true)
    -- in an episode, refused calls go on until max_steps; repeating one costs 0.05 each time
    local traj = run("Start with 3, divide by 0.", function() return "divide", { a = 3, b = 0 } end)
    assert.are.equal(agent.max_steps, #traj.steps)
    for _, step in ipairs(traj.steps) do
      assert.matches("division by zero", step.result.error, 1, true)
    end
    assert.is_true(traj.truncated)
    assert.is_nil(traj.final.answer)
    local r, info = reward.score(traj, { answer = 3, ops = { "divide" }, values = { 3 } })
    assert.is_true(math.abs(r + 0.05 * (agent.max_steps - 1)) < 1e-12, r)
    assert.is_false(info.success)
    assert.are.equal(0, info.tool_accuracy)
  end)

  local d = data.generate(42)
  local splits = { training_data = d.training_data, validation_data = d.validation_data,
                   evaluation_data = d.evaluation_data, templates = d.tests.templates,
                   compositions = d.tests.compositions }

  it("solves every query of every split with the scripted calls (reward 1, success, tool accuracy 1)", function()
    for name, list in pairs(splits) do
      for _, q in ipairs(list) do
        local traj = run(q.query, script(q))
        assert.are.equal(#q.expected_outcome.ops + 1, #traj.steps, q.query)
        local r, info = reward.score(traj, q.expected_outcome)
        assert.are.equal(1, r, name .. ": " .. q.query)
        assert.is_true(info.success, q.query)
        assert.are.equal(1, info.tool_accuracy, q.query)
      end
    end
  end)

  it("is not solved by any fixed operation on the first two numbers (<= 30 %)", function()
    for _, tool in ipairs(OPERATIONS) do
      local wins = 0
      for _, q in ipairs(d.evaluation_data) do
        local nums = numbers(q.query)
        local traj = run(q.query, function(_, view, k)
          if k == 1 then return tool, { a = nums[1], b = nums[2] } end
          return "answer", { value = view.steps[1].result.value }
        end)
        if reward.score(traj, q.expected_outcome) == 1 then wins = wins + 1 end
      end
      assert.is_true(wins / #d.evaluation_data <= 0.30, tool .. " solves " .. wins / #d.evaluation_data)
    end
  end)

  it("is rarely solved by random calls on the numbers seen (<= 10 %), never with an empty legal set", function()
    local rand = lcg(12345)
    local wins, n = 0, 0
    for _, q in ipairs(d.evaluation_data) do
      local traj = run(q.query, function(_, view)
        local seen = numbers(q.query)
        for _, s in ipairs(view.steps) do
          if type(s.result) == "table" and type(s.result.value) == "number" then seen[#seen + 1] = s.result.value end
        end
        local tool = view.legal[rand(#view.legal)]
        if tool == "answer" then return tool, { value = seen[rand(#seen)] } end
        return tool, { a = seen[rand(#seen)], b = seen[rand(#seen)] }
      end)
      local r = reward.score(traj, q.expected_outcome)
      assert.is_true(r >= -1 and r <= 1, r)
      n = n + 1
      if r == 1 then wins = wins + 1 end
    end
    assert.is_true(wins / n <= 0.10, "random calls solve " .. wins / n)
  end)
end)
