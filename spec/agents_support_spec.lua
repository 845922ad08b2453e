-- Specs for the support agent, its reward and its data generator.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.support")
local reward = require("rewards.support")
local data = require("support.data")
local cjson = require("cjson")

local episode = require("helpers.episode")
local function run(query, policy) return episode.run(agent, query, policy) end

local function script_for(tools)
  return function(_, _, k) return tools[k] end
end

local contains = episode.contains

local all_queries = episode.all_queries

-- An order number whose order fits pred.
local function find_order(pred)
  for id = 1000, 99999 do
    if pred(agent.order_for(id)) then return id end
  end
  error("no such order")
end

local learnability = require("helpers.learnability")
local TOKENIZERS = learnability.TOKENIZERS
local function imitation_success(d, tokenize, epochs)
  return learnability.imitation_success(agent, reward, d, tokenize, epochs, run, function(e) return script_for(e.tools) end)
end

local HIGH = find_order(function(o) return o.status == "delivered" and o.amount_usd > 100 end)
local LOW = find_order(function(o) return o.status == "delivered" and o.amount_usd <= 100 end)
local PROCESSING = find_order(function(o) return o.status == "processing" end)
local SHIPPED = find_order(function(o) return o.status == "shipped" end)

describe("support agent", function()
  it("follows the plugin contract", function()
    assert.are.equal("string", type(agent.name))
    assert.are.equal("string", type(agent.version))
    for _, f in ipairs({ "init", "observe", "legal", "step", "final" }) do
      assert.are.equal("function", type(agent[f]), f)
    end
    for _, a in ipairs(agent.actions) do
      assert.are.equal("number", type(agent.tools[a].cost_usd), a)
    end
    for name in pairs(agent.tools) do assert.is_true(contains(agent.actions, name), name) end
    assert.are.equal("string", type(reward.name))
    assert.are.equal("string", type(reward.version))
    assert.are.same({ 0, 1 }, reward.range)
  end)

  it("derives the same fake order from the same number", function()
    assert.are.same(agent.order_for(4821), agent.order_for(4821))
    assert.are_not.same(agent.order_for(4821), agent.order_for(4822))
    local statuses = {}
    for id = 1000, 1300 do
      local o = agent.order_for(id)
      statuses[o.status] = true
      assert.is_true(o.amount_usd >= 5 and o.amount_usd < 400)
      assert.is_string(o.item)
      assert.is_string(o.customer)
    end
    assert.is_true(statuses.processing and statuses.shipped and statuses.delivered)
  end)

  it("finds the order number and the new address in a message", function()
    assert.are.equal(4821, agent.order_id_of("Please refund order #4821, it arrived broken"))
    assert.are.equal(4821, agent.order_id_of("order number 4821 to 12 Elm Street"))
    assert.are.equal(4821, agent.order_id_of("Where is order 4821?"))
    assert.are.equal(4821, agent.order_id_of("Where is 4821?"))
    assert.is_nil(agent.order_id_of("Where is my parcel?"))
    assert.are.equal("12 Elm Street", agent.address_of("send #4821 to 12 Elm Street instead"))
    assert.are.equal("7 Old Mill Road", agent.address_of("Update #4821 to 7 Old Mill Road."))
    assert.is_nil(agent.address_of("cancel #4821"))
  end)

  it("refunds a high-value order only after verification, then replies", function()
    local q = "Please refund order #" .. HIGH .. ", it arrived broken"
    local s = agent.init(q)
    assert.are.same({ "lookup_order" }, agent.legal(s))
    agent.step(s, "lookup_order")
    assert.matches("| step:1 done:lookup_order | status:delivered amount:high", agent.observe(s), 1, true)
    local legal = agent.legal(s)
    assert.is_false(contains(legal, "refund"))
    assert.is_true(contains(legal, "verify_customer"))
    assert.is_false(contains(legal, "cancel_order"))
    assert.is_false(contains(legal, "lookup_order"))
    agent.step(s, "verify_customer")
    assert.is_true(contains(agent.legal(s), "refund"))
    local _, r = agent.step(s, "refund")
    assert.is_true(r.verified)
    assert.is_false(contains(agent.legal(s), "refund"))
    local _, r2, done = agent.step(s, "reply")
    assert.is_true(done)
    assert.are.equal("refunded", r2.resolution)
    assert.matches("refunded %$", r2.message)
    assert.are.same({}, agent.legal(s))
    local f = agent.final(s)
    assert.are.equal(HIGH, f.order_id)
    assert.are.same({ "lookup_order", "verify_customer", "refund", "reply" }, f.tools)
  end)

  it("refuses an unverified refund over the limit and infeasible changes", function()
    local s = agent.init("refund #" .. HIGH)
    agent.step(s, "lookup_order")
    assert.has_error(function() agent.step(s, "refund") end, "refund: over $100.00 needs verify_customer first")
    s = agent.init("refund #" .. LOW)
    agent.step(s, "lookup_order")
    assert.is_true(contains(agent.legal(s), "refund"))
    s = agent.init("cancel #" .. SHIPPED)
    agent.step(s, "lookup_order")
    assert.is_false(contains(agent.legal(s), "cancel_order"))
    assert.has_error(function() agent.step(s, "cancel_order") end)
    s = agent.init("cancel #" .. PROCESSING)
    agent.step(s, "lookup_order")
    assert.is_true(contains(agent.legal(s), "cancel_order"))
    assert.is_false(contains(agent.legal(s), "refund"))
  end)

  it("asks for the order number when the message has none", function()
    local traj = run("Where is my parcel?", script_for({ "lookup_order", "reply" }))
    assert.is_false(traj.steps[1].result.found)
    assert.are.equal("need_order", traj.final.resolution)
    assert.matches("order number", traj.final.reply)
    local s = agent.init("Where is my parcel?")
    agent.step(s, "lookup_order")
    assert.are.same({ "reply" }, agent.legal(s))
  end)

  local d = data.generate(42)
  local all = all_queries(d)

  it("solves every generated query with the scripted sequence (reward 1, success)", function()
    for _, q in ipairs(all) do
      local traj = run(q.query, script_for(q.expected_outcome.tools))
      local r, info = reward.score(traj, q.expected_outcome)
      assert.are.equal(1, r, q.query)
      assert.is_true(info.success, q.query)
      assert.are.equal(1, info.tool_accuracy, q.query)
      assert.is_string(cjson.encode(traj.final))
    end
  end)

  it("gives 0 to wrong sequences and 0.5 to harmless extra calls", function()
    local refund_high = { resolution = "refunded", order_id = HIGH,
      tools = { "lookup_order", "verify_customer", "refund", "reply" } }
    local q = "Please refund order #" .. HIGH .. ", it arrived broken"
    local function score(tools, expected, query)
      return (reward.score(run(query or q, script_for(tools)), expected))
    end
    assert.are.equal(1, score(refund_high.tools, refund_high))
    assert.are.equal(0, score({ "lookup_order", "refund", "reply" }, refund_high))
    assert.are.equal(0, score({ "lookup_order", "refund", "verify_customer", "reply" }, refund_high))
    assert.are.equal(0, score({ "lookup_order", "reply" }, refund_high))
    assert.are.equal(0, score({ "lookup_order", "verify_customer", "refund" }, refund_high))  -- no reply
    assert.are.equal(0.5, score({ "lookup_order", "verify_customer", "check_shipping", "refund", "reply" },
      refund_high))

    local refund_low = { resolution = "refunded", order_id = LOW, tools = { "lookup_order", "refund", "reply" } }
    local ql = "Refund order " .. LOW .. " please"
    assert.are.equal(1, score(refund_low.tools, refund_low, ql))
    assert.are.equal(0.5, score({ "lookup_order", "verify_customer", "refund", "reply" }, refund_low, ql))

    local info = { resolution = "info", order_id = LOW, tools = { "lookup_order", "reply" } }
    local qi = "How much did I pay for order " .. LOW .. "?"
    assert.are.equal(1, score(info.tools, info, qi))
    assert.are.equal(0, score({ "lookup_order", "refund", "reply" }, info, qi))      -- unasked refund
    assert.are.equal(0.5, score({ "lookup_order", "verify_customer", "reply" }, info, qi))

    -- the wrong order
    local other = { resolution = "info", order_id = LOW + 1, tools = { "lookup_order", "reply" } }
    assert.are.equal(0, score(info.tools, other, qi))
    -- a failed call
    local traj = run(qi, script_for({ "lookup_order", "cancel_order" }))
    assert.is_truthy(traj.steps[2].result.error)
    assert.are.equal(0, (reward.score(traj, info)))
  end)

  it("gives 0 to a wrong next tool on every generated query", function()
    for _, q in ipairs(all) do
      local tools = q.expected_outcome.tools
      local traj = run(q.query, function(_, legal, k)
        if k == 2 then
          for _, a in ipairs(legal) do
            if a ~= tools[2] and a ~= "verify_customer" and a ~= "check_shipping" then return a end
          end
          for _, a in ipairs(legal) do if a ~= tools[2] then return a end end
        end
        return tools[k] or "reply"
      end)
      local r, info = reward.score(traj, q.expected_outcome)
      assert.is_true(r < 1, q.query)
      assert.is_false(info.success)
    end
  end)

  it("never offers an empty legal set before the end (random rollouts)", function()
    local x = 4242
    local function rand(n) x = (x * 1103515245 + 12345) % 2147483648; return x % n + 1 end
    for _, q in ipairs(all) do
      for _ = 1, 3 do
        local traj, _, legals = run(q.query, function(_, legal) return legal[rand(#legal)] end)
        assert.is_false(traj.truncated, q.query)
        for _, step in ipairs(traj.steps) do assert.is_nil(step.result.error, q.query) end
        for _, legal in ipairs(legals) do
          for _, a in ipairs(legal) do assert.is_true(contains(agent.actions, a)) end
        end
        local r = reward.score(traj, q.expected_outcome)
        assert.is_true(r == 0 or r == 0.5 or r == 1)
      end
    end
  end)

  it("shows the request, the order's facts and the progress, never the order number", function()
    for _, q in ipairs(all) do
      local _, observations = run(q.query, script_for(q.expected_outcome.tools))
      local o = agent.order_for(q.expected_outcome.order_id)
      for k, obs in ipairs(observations) do
        assert.is_nil(obs:find("%d%d"), obs)
        assert.is_truthy(obs:find("step:" .. (k - 1), 1, true), obs)
        local words = q.query:lower():gsub("%d+", " num "):gsub("[^%a]+", " "):gsub("^ ", ""):gsub(" $", "")
        assert.are.equal(1, (obs:find(words, 1, true)), obs)
        if k > 1 then
          assert.is_truthy(obs:find("status:" .. o.status, 1, true), obs)
          assert.is_truthy(obs:find("amount:" .. (o.amount_usd > 100 and "high" or "low"), 1, true), obs)
          assert.is_truthy(obs:find("done:" .. q.expected_outcome.tools[k - 1], 1, true), obs)
        end
      end
    end
  end)

  it("has observations from which a linear model learns the tool sequences (held-out >= 90 %)", function()
    for name, tokenize in pairs(TOKENIZERS) do
      local rate = imitation_success(d, tokenize, 12)
      assert.is_true(rate >= 0.90, name .. " tokenizer: held-out success " .. rate)
    end
  end)
end)

describe("support reward", function()
  local function traj(tools, resolution)
    local steps = {}
    for i, t in ipairs(tools) do steps[i] = { action = { tool = t, params = {} }, result = { ok = true } } end
    return { query = "q", steps = steps, final = { resolution = resolution, order_id = 7 }, truncated = false }
  end
  local expected = { resolution = "refunded", order_id = 7,
    tools = { "lookup_order", "verify_customer", "refund", "reply" } }

  it("checks the order of the calls itself, whatever the agent allowed", function()
    assert.are.equal(1, (reward.score(traj(expected.tools, "refunded"), expected)))
    assert.are.equal(0, (reward.score(traj({ "lookup_order", "refund", "verify_customer", "reply" },
      "refunded"), expected)))
    assert.are.equal(0, (reward.score(traj({ "lookup_order", "refund", "reply" }, "refunded"), expected)))
    assert.are.equal(0, (reward.score(traj({ "lookup_order", "verify_customer", "refund", "cancel_order",
      "reply" }, "refunded"), expected)))
    assert.are.equal(0.5, (reward.score(traj({ "lookup_order", "verify_customer", "check_shipping",
      "refund", "reply" }, "refunded"), expected)))
    local r, info = reward.score(traj({ "lookup_order", "check_shipping", "reply" }, "shipping_info"),
      expected)
    assert.are.equal(0, r)
    assert.are.equal(2 / 3, info.tool_accuracy)
    info = select(2, reward.score(traj({ "lookup_order", "refund", "verify_customer", "reply" }, "refunded"),
      expected))
    assert.are.equal(3 / 4, info.tool_accuracy)
    assert.are.equal(0, (reward.score({ query = "q", steps = {}, final = {} }, expected)))
  end)

  it("rejects an expected_outcome without resolution or tools", function()
    assert.has_error(function() reward.score({ steps = {}, final = {} }, { resolution = "info" }) end)
    assert.has_error(function() reward.score({ steps = {}, final = {} }, { tools = {} }) end)
  end)
end)

describe("support data generator", function()
  it("makes >= 200 training and >= 50 held-out queries by default, every case often", function()
    local d = data.generate(5)
    assert.is_true(#d.training_data >= 200)
    assert.is_true(#d.evaluation_data >= 50)
    local counts = {}
    for _, q in ipairs(all_queries(d)) do
      local e = q.expected_outcome
      counts[e.resolution .. "/" .. #e.tools] = (counts[e.resolution .. "/" .. #e.tools] or 0) + 1
      assert.are.equal(e.order_id, agent.order_id_of(q.query), q.query)
      assert.are.equal("integer", math.type(e.order_id))
      assert.matches('"order_id":' .. e.order_id .. "[,}]", cjson.encode(q))
    end
    -- refunded/3, refunded/4, shipping_info/3 (x2), cancelled/3, address_updated/3, info/2
    assert.is_true(counts["refunded/3"] >= 40 and counts["refunded/4"] >= 40)
    assert.is_true(counts["cancelled/3"] >= 40 and counts["address_updated/3"] >= 40)
    assert.is_true(counts["shipping_info/3"] >= 80 and counts["info/2"] >= 40)
    local d2 = data.generate(5, 16, 8)
    assert.are.equal(16, #d2.training_data)
    assert.are.equal(8, #d2.evaluation_data)
  end)

  it("is deterministic for a seed and differs across seeds", function()
    assert.are.same(data.generate(9), data.generate(9))
    assert.are_not.same(data.generate(9).training_data, data.generate(10).training_data)
  end)

  it("keeps held-out texts apart from training texts", function()
    for _, seed in ipairs({ 1, 2, 42 }) do
      local d = data.generate(seed)
      local seen = {}
      for _, q in ipairs(d.training_data) do
        assert.is_nil(seen[q.query:lower()], q.query)
        seen[q.query:lower()] = true
      end
      for _, q in ipairs(d.evaluation_data) do assert.is_nil(seen[q.query:lower()], q.query) end
    end
  end)
end)
