-- Specs for the calculator agent, its reward and its data generator.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.calculator")
local reward = require("rewards.calculator")
local data = require("calculator.data")
local cjson = require("cjson")

local OPS = { "add", "subtract", "subtract_from", "multiply", "divide" }

local episode = require("helpers.episode")
local function run(query, policy) return episode.run(agent, query, policy) end

local function script(expected)
  local seq = { "extract_numbers" }
  for _, op in ipairs(expected.ops) do seq[#seq + 1] = op end
  seq[#seq + 1] = "answer"
  return function(_, _, k) return seq[k] end
end

local contains = episode.contains

local all_queries = episode.all_queries

local learnability = require("helpers.learnability")
local TOKENIZERS = learnability.TOKENIZERS
local function imitation_success(d, tokenize, epochs)
  return learnability.imitation_success(agent, reward, d, tokenize, epochs, run, script)
end

describe("calculator agent", function()
  it("follows the plugin contract", function()
    assert.are.equal("string", type(agent.name))
    assert.are.equal("string", type(agent.version))
    for _, f in ipairs({ "init", "observe", "legal", "step", "final" }) do
      assert.are.equal("function", type(agent[f]), f)
    end
    assert.is_true(#agent.actions >= 2)
    for _, a in ipairs(agent.actions) do
      assert.are.equal("table", type(agent.tools[a]), "tools entry for " .. a)
      assert.are.equal("number", type(agent.tools[a].cost_usd))
      assert.is_true(agent.tools[a].cost_usd >= 0)
    end
    for name in pairs(agent.tools) do assert.is_true(contains(agent.actions, name), name) end
    assert.are.equal("string", type(reward.name))
    assert.are.equal("string", type(reward.version))
    assert.are.equal("function", type(reward.score))
    assert.are.same({ 0, 1 }, reward.range)
  end)

  it("solves 'add 3 and 4, then multiply by 5' step by step", function()
    local s = agent.init("add 3 and 4, then multiply by 5")
    assert.are.same({ "extract_numbers" }, agent.legal(s))
    local _, r = agent.step(s, "extract_numbers")
    assert.are.same({ 3, 4, 5 }, r.numbers)
    assert.are.equal("add num and num | step:1 ops:0", agent.observe(s))
    assert.is_false(contains(agent.legal(s), "answer"))
    local p, r2 = agent.step(s, "add")
    assert.are.same({ a = 3, b = 4 }, p)
    assert.are.same({ value = 7 }, r2)
    assert.are.equal("multiply by num | step:2 ops:1", agent.observe(s))
    agent.step(s, "multiply")
    assert.are.same({ "answer" }, agent.legal(s))
    local _, r3, done = agent.step(s, "answer")
    assert.is_true(done)
    assert.are.same({ answer = 35 }, r3)
    assert.are.same({ answer = 35 }, agent.final(s))
    assert.are.same({}, agent.legal(s))
  end)

  it("reads 'subtract 9 from 20' as subtract_from and keeps exact division integral", function()
    local traj = run("subtract 9 from 20", script({ ops = { "subtract_from" } }))
    assert.are.equal(11, traj.final.answer)
    traj = run("Divide 20 by 4.", script({ ops = { "divide" } }))
    assert.are.equal("integer", math.type(traj.final.answer))
    assert.are.equal(5, traj.final.answer)
    local ok, err = pcall(agent.step, (function()
      local s = agent.init("divide 3 by 0"); agent.step(s, "extract_numbers"); return s
    end)(), "divide")
    assert.is_false(ok)
    assert.matches("division by zero", err)
  end)

  it("lets a query with fewer than two numbers answer at once", function()
    local s = agent.init("what is seven")
    agent.step(s, "extract_numbers")
    assert.are.same({ "answer" }, agent.legal(s))
  end)

  local d = data.generate(42)
  local all = all_queries(d)

  it("solves every generated query with the scripted sequence (reward 1, success)", function()
    for _, q in ipairs(all) do
      local traj = run(q.query, script(q.expected_outcome))
      local r, info = reward.score(traj, q.expected_outcome)
      assert.are.equal(1, r, q.query)
      assert.is_true(info.success, q.query)
      assert.are.equal(1, info.tool_accuracy, q.query)
    end
  end)

  it("gives 0 to a wrong operation", function()
    for _, q in ipairs(all) do
      local ops = {}
      for i, op in ipairs(q.expected_outcome.ops) do ops[i] = op end
      ops[1] = ops[1] == "add" and "multiply" or "add"
      local r, info = reward.score(run(q.query, script({ ops = ops })), q.expected_outcome)
      assert.are.equal(0, r, q.query)
      assert.is_false(info.success)
      assert.is_true(info.tool_accuracy < 1)
    end
    -- and to an unanswered episode
    local r = reward.score({ query = "x", steps = {}, final = { unanswered = true } }, { answer = 3 })
    assert.are.equal(0, r)
  end)

  it("never offers an empty legal set before the end (random rollouts)", function()
    local x = 12345
    local function rand(n) x = (x * 1103515245 + 12345) % 2147483648; return x % n + 1 end
    for _, q in ipairs(all) do
      local traj, _, legals = run(q.query, function(_, legal) return legal[rand(#legal)] end)
      assert.is_false(traj.truncated, q.query)
      for _, legal in ipairs(legals) do
        for _, a in ipairs(legal) do assert.is_true(contains(agent.actions, a)) end
      end
      local r = reward.score(traj, q.expected_outcome)
      assert.is_true(r == 0 or r == 1)
    end
  end)

  it("shows the operation words and a progress marker, never the numbers", function()
    local cues = {
      add = { "add", "plus", "sum", "total", "more", "increase", "altogether", "another" },
      subtract = { "minus", "left", "difference", "take", "decrease", "sold", "loses", "subtract",
        "gave", "bad", "remain" },
      subtract_from = { "from", "less" },
      multiply = { "times", "multiply", "multiplied", "product", "each", "groups", "rows" },
      divide = { "divide", "divided", "split", "share", "quotient", "equal", "equally" },
    }
    for _, q in ipairs(all) do
      local _, observations = run(q.query, script(q.expected_outcome))
      for k, op in ipairs(q.expected_outcome.ops) do
        local obs = observations[k + 1]
        assert.matches("| step:" .. k .. " ops:" .. (k - 1), obs, 1, true)
        local text = obs:match("^(.-) | ")
        assert.is_nil(text:find("%d"), obs)
        local seen = false
        for _, cue in ipairs(cues[op]) do
          if (" " .. text .. " "):find(" " .. cue .. " ", 1, true) then seen = true end
        end
        assert.is_true(seen, op .. " cue missing in: " .. obs)
      end
    end
  end)

  it("has observations from which a linear model learns the operations (held-out >= 95 %)", function()
    for name, tokenize in pairs(TOKENIZERS) do
      local rate = imitation_success(d, tokenize, 12)
      assert.is_true(rate >= 0.95, name .. " tokenizer: held-out success " .. rate)
    end
  end)

  it("is not solved by any fixed action preference (<= 30 %)", function()
    local best = 0
    local function permutations(list, n, f)
      n = n or #list
      if n <= 1 then return f(list) end
      for i = 1, n do
        list[n], list[i] = list[i], list[n]
        permutations(list, n - 1, f)
        list[n], list[i] = list[i], list[n]
      end
    end
    permutations({ table.unpack(OPS) }, nil, function(order)
      local wins = 0
      for _, q in ipairs(d.evaluation_data) do
        local traj = run(q.query, function(_, legal)
          for _, a in ipairs(order) do if contains(legal, a) then return a end end
          return legal[1]
        end)
        wins = wins + reward.score(traj, q.expected_outcome)
      end
      best = math.max(best, wins / #d.evaluation_data)
    end)
    assert.is_true(best <= 0.30, "a fixed preference solves " .. best)
  end)
end)

describe("calculator reward", function()
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
end)

describe("calculator data generator", function()
  it("makes >= 200 training and >= 50 held-out queries by default", function()
    local d = data.generate(1)
    assert.is_true(#d.training_data >= 200)
    assert.is_true(#d.evaluation_data >= 50)
    local d2 = data.generate(1, 30, 10)
    assert.are.equal(30, #d2.training_data)
    assert.are.equal(10, #d2.evaluation_data)
  end)

  it("is deterministic for a seed and differs across seeds", function()
    assert.are.same(data.generate(7), data.generate(7))
    assert.are.same(data.generate("abc"), data.generate("abc"))
    assert.are_not.same(data.generate(7).training_data, data.generate(8).training_data)
  end)

  it("keeps held-out texts apart from training texts", function()
    for _, seed in ipairs({ 1, 2, 42 }) do
      local d = data.generate(seed)
      local seen = {}
      for _, q in ipairs(d.training_data) do
        assert.is_nil(seen[q.query:lower()], "duplicate training query " .. q.query)
        seen[q.query:lower()] = true
      end
      for _, q in ipairs(d.evaluation_data) do assert.is_nil(seen[q.query:lower()], q.query) end
    end
  end)

  it("writes JSON-able expected outcomes with integer answers and a unique solution", function()
    local d = data.generate(42)
    local counts = {}
    for _, q in ipairs(all_queries(d)) do
      local e = q.expected_outcome
      assert.are.equal("integer", math.type(e.answer))
      assert.is_true(e.answer >= 1)
      assert.is_true(#e.ops == 1 or #e.ops == 2)
      for _, op in ipairs(e.ops) do
        assert.is_true(contains(OPS, op))
        counts[op] = (counts[op] or 0) + 1
      end
      local json = cjson.encode(q)
      assert.matches('"answer":' .. e.answer .. "[,}]", json)
      local nums = agent.init(q.query).all_numbers
      assert.are.equal(#e.ops + 1, #nums, q.query)
      assert.are.equal(1, data.count_solutions(nums, e.answer), q.query)
    end
    for _, op in ipairs(OPS) do assert.is_true((counts[op] or 0) >= 30, op) end
  end)
end)
