-- Specs for the calculator agent (tools whose operands the policy picks), its reward and its
-- data generator with its generalisation splits.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.calculator")
local reward = require("rewards.calculator")
local data = require("calculator.data")
local cjson = require("cjson")

local episode = require("helpers.episode")
local contains = episode.contains

local OPERATIONS = { "add", "subtract", "multiply", "divide", "power", "modulo" }
local ARG_TYPES = { number = true, word = true, id = true, any = true, candidate = true }

local function run(query, policy) return episode.run(agent, query, policy) end

-- The numbers of a query, in order.
local function numbers(text)
  local out = {}
  for n in text:gmatch("%d+") do out[#out + 1] = math.tointeger(tonumber(n)) end
  return out
end

-- The chain behind a generated query: per operation its tool, its operands a and b in the order
-- the tool takes them, and its internal kind ("sub" or "rsub" for subtract: subtracting FROM a
-- number swaps the operands). Read from the query's numbers (start, then one operand per
-- operation) and the expected intermediate values.
local function chain(q)
  local e, nums = q.expected_outcome, numbers(q.query)
  assert.are.equal(#e.ops + 1, #nums, q.query)
  local v, out = nums[1], {}
  for k, tool in ipairs(e.ops) do
    local n, want = nums[k + 1], e.values[k]
    local step
    if tool == "add" then step = { tool = tool, a = v, b = n, kind = "add" }
    elseif tool == "multiply" then step = { tool = tool, a = v, b = n, kind = "mul" }
    elseif tool == "divide" then step = { tool = tool, a = v, b = n, kind = "div" }
    elseif tool == "subtract" and v - n == want then step = { tool = tool, a = v, b = n, kind = "sub" }
    elseif tool == "subtract" and n - v == want then step = { tool = tool, a = n, b = v, kind = "rsub" }
    else error("no operation of " .. q.query .. " gives " .. tostring(want)) end
    out[k] = step
    v = want
  end
  return out
end

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

describe("calculator reward", function()
  local expected = { answer = 36, ops = { "add", "multiply" }, values = { 12, 36 } }
  local function traj(calls, answer)
    local steps = {}
    -- distinct arguments per call: a repeated call costs 0.05, tested on its own below
    for i, c in ipairs(calls) do steps[i] = { action = { tool = c[1], params = { a = i } }, result = c[2] } end
    return { query = "q", steps = steps, final = { answer = answer } }
  end

  it("compares numbers exactly, integer and float alike, within range", function()
    local t = function(a) return { query = "q", steps = {}, final = { answer = a } } end
    assert.are.equal(1, (reward.score(t(35.0), { answer = 35 })))
    assert.are.equal(1, (reward.score(t(0.1 + 0.2), { answer = 0.3 })))
    assert.are.equal(0, (reward.score(t(36), { answer = 35 })))
    assert.are.equal(0, (reward.score(t("35"), { answer = 35 })))
    assert.are.equal(0, (reward.score({ query = "q", steps = {}, final = "x" }, { answer = 35 })))
    assert.is_nil(select(2, reward.score(t(35), { answer = 35 })).tool_accuracy)
    assert.has_error(function() reward.score(t(35), {}) end)
  end)

  it("gives partial credit for the intermediate values reached in order, success for the answer only", function()
    local r, info = reward.score(traj({ { "add", { value = 12 } }, { "multiply", { value = 36 } },
                                        { "answer", { answer = 36 } } }, 36), expected)
    assert.are.equal(1, r)
    assert.is_true(info.success)
    assert.are.equal(1, info.tool_accuracy)
    -- the right chain, a wrong answer: half of the way
    r, info = reward.score(traj({ { "add", { value = 12 } }, { "multiply", { value = 36 } },
                                  { "answer", { answer = 35 } } }, 35), expected)
    assert.are.equal(0.5, r)
    assert.is_false(info.success)
    -- one value of two, with an extra call in between: a quarter
    r = reward.score(traj({ { "subtract", { value = 2 } }, { "add", { value = 12 } }, { "power", { value = 1 } } }, nil),
                     expected)
    assert.are.equal(0.25, r)
    -- values out of order count only in order
    r = reward.score(traj({ { "multiply", { value = 36 } }, { "add", { value = 12 } } }, nil), expected)
    assert.are.equal(0.25, r)
    -- no values, nothing reached, or no steps: 0
    assert.are.equal(0, (reward.score(traj({ { "add", { value = 13 } } }, nil), expected)))
    assert.are.equal(0, (reward.score(traj({}, nil), expected)))
    assert.are.equal(0, (reward.score(traj({ { "add", { value = 12 } } }, nil), { answer = 36 })))
    -- a failed call reaches nothing and is a wrong step
    r, info = reward.score(traj({ { "add", { value = 12 } }, { "divide", { error = "divide: division by zero" } } }, nil),
                           expected)
    assert.are.equal(0.25, r)
    assert.are.equal(0.5, info.tool_accuracy)
    -- tool accuracy: the expected operation at each position
    r, info = reward.score(traj({ { "multiply", { value = 35 } }, { "multiply", { value = 36 } },
                                  { "answer", { answer = 36 } } }, 36), expected)
    assert.are.equal(1, r)
    assert.is_true(math.abs(info.tool_accuracy - 2 / 3) < 1e-12)
  end)

  it("charges 0.05 for a call that repeats an earlier one, per step, so the call that progressed earns more", function()
    local steps = {
      { action = { tool = "add", params = { a = 5, b = 7 } }, result = { value = 12 } },
      { action = { tool = "add", params = { b = 7, a = 5 } }, result = { value = 12 } },
      { action = { tool = "add", params = { a = 5, b = 8 } }, result = { value = 13 } },
    }
    local r, info = reward.score({ query = "q", steps = steps, final = {} }, expected)
    assert.is_true(math.abs(r - 0.20) < 1e-12, r)
    assert.are.equal(0.25, info.step_rewards[1])
    assert.is_true(math.abs(info.step_rewards[2] + 0.05) < 1e-12)
    assert.are.equal(0, info.step_rewards[3])
  end)
end)

describe("calculator data generator", function()
  local HELD = data.HELD_PAIRS

  -- Whether text reads as START (JOIN CLAUSE)+ END in the given phrasing ("train" or "held");
  -- the operations it reads, in order, when it does.
  local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end
  local function pattern(template) return "^" .. escape(template):gsub("{n}", "%%d+") end
  local ENDS = { ".", "?", ". What is the result?" }
  local function parse(text, phrasing)
    local function rest(s, ops)
      for _, e in ipairs(ENDS) do if s == e then return ops end end
      for _, join in ipairs(data.JOIN[phrasing]) do
        if s:sub(1, #join) == join then
          local after = s:sub(#join + 1)
          for op, clauses in pairs(data.CLAUSE[phrasing]) do
            for _, clause in ipairs(clauses) do
              local m = after:match(pattern(clause))
              if m then
                local more = { table.unpack(ops) }
                more[#more + 1] = op
                local got = rest(after:sub(#m + 1), more)
                if got then return got end
              end
            end
          end
        end
      end
      return nil
    end
    for _, start in ipairs(data.START[phrasing]) do
      local m = text:match(pattern(start))
      if m then
        local got = rest(text:sub(#m + 1), {})
        if got and #got > 0 then return got end
      end
    end
    return nil
  end

  local function has_held_pair(kinds)
    for k = 2, #kinds do
      if HELD[kinds[k - 1] .. " " .. kinds[k]] then return true end
    end
    return false
  end

  it("makes the splits of the sizes asked, 256 and 64 by default", function()
    local d = data.generate(1)
    assert.are.equal(256, #d.training_data)
    for _, l in ipairs({ d.validation_data, d.evaluation_data, d.tests.templates, d.tests.compositions }) do
      assert.are.equal(64, #l)
    end
    local d2 = data.generate(1, 30, 10)
    assert.are.equal(30, #d2.training_data)
    for _, l in ipairs({ d2.validation_data, d2.evaluation_data, d2.tests.templates, d2.tests.compositions }) do
      assert.are.equal(10, #l)
    end
  end)

  it("is deterministic for a seed and differs across seeds", function()
    assert.are.same(data.generate(7), data.generate(7))
    assert.are.same(data.generate("abc"), data.generate("abc"))
    assert.are_not.same(data.generate(7).training_data, data.generate(8).training_data)
  end)

  for _, seed in ipairs({ 1, 2, 42 }) do
    local d = data.generate(seed)
    local iid = { training_data = d.training_data, validation_data = d.validation_data,
                  evaluation_data = d.evaluation_data }
    local all = { training_data = d.training_data, validation_data = d.validation_data,
                  evaluation_data = d.evaluation_data, templates = d.tests.templates,
                  compositions = d.tests.compositions }

    it("puts no query text in two splits, nor twice in one (seed " .. seed .. ")", function()
      local where = {}
      for name, list in pairs(all) do
        for _, q in ipairs(list) do
          local key = q.query:lower()
          assert.is_nil(where[key], q.query .. " in " .. name .. " and " .. tostring(where[key]))
          where[key] = name
        end
      end
    end)

    it("writes chains as claimed: positive integer values up to 2000, distinct numbers (seed " .. seed .. ")", function()
      for name, list in pairs(all) do
        for _, q in ipairs(list) do
          local e = q.expected_outcome
          assert.are.equal(#e.ops, #e.values, q.query)
          assert.are.equal(e.values[#e.values], e.answer, q.query)
          assert.are.equal("integer", math.type(e.answer))
          for _, v in ipairs(e.values) do
            assert.are.equal("integer", math.type(v), q.query)
            assert.is_true(v >= 1 and v <= 2000, q.query)
          end
          for _, op in ipairs(e.ops) do
            assert.is_true(contains({ "add", "subtract", "multiply", "divide" }, op), op)
          end
          local nums, seen = numbers(q.query), {}
          for _, n in ipairs(nums) do
            assert.is_nil(seen[n], "a number twice in " .. q.query)
            seen[n] = true
          end
          chain(q) -- the values follow from the numbers
          assert.matches('"answer":' .. e.answer .. "[,}]", cjson.encode(q))
        end
      end
    end)

    it("keeps the held-out phrasings and operation pairs out of training (seed " .. seed .. ")", function()
      local lengths = {}
      for name, list in pairs(iid) do
        for _, q in ipairs(list) do
          local ops = parse(q.query, "train")
          assert.is_truthy(ops, name .. " does not read in the training phrasings: " .. q.query)
          assert.is_nil(parse(q.query, "held"), q.query)
          local kinds = {}
          for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
          assert.are.same(kinds, ops, q.query)
          assert.is_true(#kinds >= 1 and #kinds <= 3, q.query)
          assert.is_false(has_held_pair(kinds), name .. " has a held-out pair: " .. q.query)
          lengths[#kinds] = (lengths[#kinds] or 0) + 1
        end
      end
      for n = 1, 3 do assert.is_true((lengths[n] or 0) >= 30, n .. " operations") end
    end)

    it("tests.templates: the same chains in phrasings no training query uses (seed " .. seed .. ")", function()
      for _, q in ipairs(d.tests.templates) do
        local ops = parse(q.query, "held")
        assert.is_truthy(ops, "does not read in the held-out phrasings: " .. q.query)
        assert.is_nil(parse(q.query, "train"), q.query)
        local kinds = {}
        for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
        assert.are.same(kinds, ops, q.query)
        assert.is_true(#kinds >= 1 and #kinds <= 3, q.query)
        assert.is_false(has_held_pair(kinds), q.query)
      end
      -- no template of a START, CLAUSE or JOIN of the held-out phrasings is one of training's
      for _, part in ipairs({ "START", "JOIN" }) do
        for _, t in ipairs(data[part].held) do assert.is_false(contains(data[part].train, t), t) end
      end
      for op, clauses in pairs(data.CLAUSE.held) do
        for _, t in ipairs(clauses) do assert.is_false(contains(data.CLAUSE.train[op], t), t) end
      end
    end)

    it("tests.compositions: 4 or 5 operations with a pair training never has (seed " .. seed .. ")", function()
      local pairs_seen = {}
      for _, q in ipairs(d.tests.compositions) do
        local ops = parse(q.query, "train")
        assert.is_truthy(ops, "does not read in the training phrasings: " .. q.query)
        local kinds = {}
        for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
        assert.are.same(kinds, ops, q.query)
        assert.is_true(#kinds == 4 or #kinds == 5, q.query)
        assert.is_true(has_held_pair(kinds), "no held-out pair in " .. q.query)
        for k = 2, #kinds do pairs_seen[kinds[k - 1] .. " " .. kinds[k]] = true end
      end
      for pair in pairs(HELD) do assert.is_true(pairs_seen[pair], "no composition has " .. pair) end
    end)
  end
end)
