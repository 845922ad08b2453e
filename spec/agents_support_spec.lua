-- Specs for the support agent, its reward and its data generator.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.support")
local reward = require("rewards.support")
local data = require("support.data")
local tc = require("helpers.tool_calls")

local QUERY = "Hi, this is Maria Lopez. The kettle arrived broken, please refund it."

-- A policy that reads what a person would read: it searches by the customer's last name, takes
-- the order number from the search row of the item (or the number quoted in the message), the
-- amount from read_order's result, verifies when that amount is over the limit, acts, closes.
-- It is told the kind of each request and the item or number it names (refs_of below: what the
-- policy must learn to read from the text), never an order number found by search or an amount.
local function solver(q, refs)
  local exp = q.expected_outcome
  local last = nil
  for _, l in ipairs(agent.LAST) do
    if q.query:find(l, 1, true) then last = l end
  end
  local needs_search = false
  for _, ref in ipairs(refs) do needs_search = needs_search or ref.item ~= nil end
  local i, phase, amount = 1, "find", nil
  local function row_id(steps, item)
    for _, s in ipairs(steps) do
      if s.action.tool == "search_orders" then
        for _, row in ipairs(s.result.orders) do
          local id = row:match("^(ORD%-%d+) " .. item .. ",")
          if id then return id end
        end
      end
    end
  end
  return function(k, steps)
    if k == 1 and needs_search then return "search_orders", { text = last } end
    local r = exp.requests[i]
    if r == nil then return "close_ticket", {} end
    local ref = refs[i]
    local id = ref.id or row_id(steps, ref.item)
    assert.is_not_nil(id, "no order found for request " .. i .. " of " .. q.query)
    if r.action == "refund" then
      if phase == "find" then
        phase = "read"
        return "read_order", { order_id = id }
      end
      if phase == "read" then
        amount = steps[#steps].result.amount -- what read_order showed
        if amount > agent.VERIFY_OVER_USD then
          phase = "verified"
          return "verify_identity", { order_id = id }
        end
      end
      i, phase = i + 1, "find"
      return "refund", { order_id = id, amount = amount }
    end
    i, phase = i + 1, "find"
    if r.action == "change_address" then return "change_address", { order_id = id, city = r.city } end
    return r.action, { order_id = id }
  end
end

-- Which order request i of a generated query names: { id = "ORD-4821" } or { item = "kettle" },
-- read from the query text in request order (items and quoted numbers appear in that order).
local function refs_of(q)
  local refs = {}
  for w in q.query:gmatch("[%w%-]+") do
    if w:match("^ORD%-%d+$") then refs[#refs + 1] = { id = w } end
    for _, item in ipairs(agent.ITEMS) do
      if w:lower() == item then refs[#refs + 1] = { item = item } end
    end
  end
  return refs
end

local d = data.generate(42)
local splits = tc.splits(d)

describe("support agent", function()
  it("declares its tools with argument types, and neither observe nor legal", function()
    local names = tc.check_contract(agent)
    for _, n in ipairs({ "search_orders", "read_order", "verify_identity", "refund", "exchange", "change_address",
      "escalate", "close_ticket", "track_shipment", "send_coupon" }) do
      assert.is_true(names[n], n)
    end
    assert.is_nil(agent.observe)
    assert.is_nil(agent.legal)
    assert.are.same({ "order_id", "amount" }, { tc.tool(agent, "refund").args[1].name, tc.tool(agent, "refund").args[2].name })
    assert.are.equal("number", tc.tool(agent, "refund").args[2].type)
    -- change_address's city: one of the cities the shop ships to
    assert.are.equal("candidate", tc.tool(agent, "change_address").args[2].type)
    assert.are.same(agent.CITIES, agent.candidates(agent.init(QUERY)))
  end)

  it("builds the same shop for the same message, with the writer's orders in it", function()
    local a, b = agent.world(QUERY), agent.world(QUERY)
    assert.are.same(a, b)
    assert.are.equal("Maria Lopez", a.writer)
    local kettle = a.by_item.kettle
    assert.are.equal("Maria Lopez", kettle.customer)
    -- some other customer has a kettle too: a search by item finds more than the writer's
    local kettles = 0
    for _, o in ipairs(a.orders) do if o.item == "kettle" then kettles = kettles + 1 end end
    assert.is_true(kettles >= 2)
    -- a quoted order number is the writer's order
    local w = agent.world("Please refund order ORD-4821.")
    assert.are.equal(w.writer, w.by_id["ORD-4821"].customer)
    -- another message, another shop
    assert.are_not.equal(kettle.id, agent.world(QUERY .. " Thanks.").by_item.kettle.id)
  end)

  it("draws amounts on both sides of the verification limit, never on it", function()
    local over, n = 0, 0
    for _, q in ipairs(d.training_data) do
      for _, o in ipairs(agent.world(q.query).orders) do
        n = n + 1
        assert.are_not.equal(agent.VERIFY_OVER_USD, o.amount)
        assert.are_not.equal(math.floor(o.amount), o.amount)
        if o.amount > agent.VERIFY_OVER_USD then over = over + 1 end
      end
    end
    assert.is_true(over / n > 0.4 and over / n < 0.6, over / n)
  end)

  it("searches by name or item, reads orders, and answers unknown orders with an error", function()
    local s = agent.init(QUERY)
    local r = agent.step(s, "search_orders", { text = "Lopez" })
    local id
    for _, row in ipairs(r.orders) do
      assert.matches(", Maria Lopez$", row)
      id = id or row:match("^(ORD%-%d+) kettle,")
    end
    assert.is_not_nil(id)
    local by_item = agent.step(s, "search_orders", { text = "KETTLE" })
    assert.is_true(#by_item.orders >= 2)
    assert.are.same({}, agent.step(s, "search_orders", { text = "broken" }).orders)
    local o, done = agent.step(s, "read_order", { order_id = id })
    assert.is_false(done)
    assert.are.equal("kettle", o.item)
    assert.are.equal("number", type(o.amount))
    assert.matches("no order", agent.step(s, "read_order", { order_id = "ORD-0000" }).error)
    assert.matches("no order", agent.step(s, "read_order", { order_id = o.amount }).error) -- a number names no order
  end)

  it("rejects writes the shop's backend would refuse, changing nothing", function()
    local s = agent.init(QUERY)
    local o = s.world.by_item.kettle
    assert.matches("no order", agent.step(s, "refund", { order_id = "ORD-0000", amount = 5 }).error)
    assert.matches("more than", agent.step(s, "refund", { order_id = o.id, amount = o.amount + 1 }).error)
    assert.matches("positive", agent.step(s, "refund", { order_id = o.id, amount = -3 }).error)
    assert.matches("unknown city", agent.step(s, "change_address", { order_id = o.id, city = "kettle" }).error)
    assert.matches("no customer", agent.step(s, "send_coupon", { customer = "kettle" }).error)
    assert.are.same({}, agent.final(s).actions)
    -- a whole refund, then nothing is left to refund
    assert.are.same({ refunded = o.amount }, agent.step(s, "refund", { order_id = o.id, amount = o.amount }))
    assert.matches("more than the 0.00 left", agent.step(s, "refund", { order_id = o.id, amount = 1 }).error)
    assert.are.same({ closed = true }, (agent.step(s, "close_ticket", {})))
    assert.has_error(function() agent.step(s, "read_order", { order_id = o.id }) end, "support: the ticket is closed")
    local f = agent.final(s)
    assert.is_true(f.closed)
    assert.are.equal(1, #f.actions)
    assert.is_false(f.actions[1].verified)
  end)

  it("does not enforce the verification policy itself (the reward does)", function()
    local s = agent.init(QUERY)
    local o = s.world.by_item.kettle
    local r = agent.step(s, "refund", { order_id = o.id, amount = o.amount })
    assert.are.equal(o.amount, r.refunded)
  end)

  it("solves every generated message with arguments taken from what the policy sees", function()
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        local traj = tc.run(agent, q.query, solver(q, refs_of(q)))
        local r, info = reward.score(traj, q.expected_outcome)
        assert.is_true(info.success, name .. ": " .. q.query)
        assert.are.equal(1, r, q.query)
        assert.are.equal(q.expected_outcome.min_steps, #traj.steps, q.query)
        assert.are.equal(1, info.tool_accuracy)
      end
    end
  end)
end)

describe("support reward", function()
  local q = { query = QUERY }
  local world = agent.world(QUERY)
  local o = world.by_item.kettle
  local high = o.amount > agent.VERIFY_OVER_USD
  local function expect(verify)
    return { customer = "Maria Lopez", min_steps = verify and 5 or 4,
      requests = { { action = "refund", order_id = o.id, amount = o.amount, verify = verify } } }
  end
  local function play(calls) return tc.run(agent, q.query, tc.script(calls)) end
  local search = { "search_orders", { text = "Lopez" } }
  local read = { "read_order", { order_id = o.id } }
  local verify = { "verify_identity", { order_id = o.id } }
  local refund = { "refund", { order_id = o.id, amount = o.amount } }
  local close = { "close_ticket", {} }

  it("is 1 for the fewest calls, less 0.05 a call beyond, never below 0.8 on success", function()
    local exp = expect(high)
    local calls = high and { search, read, verify, refund, close } or { search, read, refund, close }
    local r, info = reward.score(play(calls), exp)
    assert.are.equal(1, r)
    assert.is_true(info.success)
    table.insert(calls, 2, { "track_shipment", { order_id = o.id } })
    r, info = reward.score(play(calls), exp)
    assert.is_true(info.success)
    assert.are.equal(0.95, r)
    assert.is_true(info.tool_accuracy < 1)
  end)

  it("allows verifying for a small refund, at the price of a call", function()
    local exp = expect(false)
    exp.requests[1].amount = o.amount
    local r, info = reward.score(play({ search, read, verify, refund, close }), exp)
    assert.is_true(info.success)
    assert.are.equal(0.95, r)
  end)

  it("gives 0 to a refund over the limit before verification, even when it is then closed", function()
    local exp = expect(true)
    local r, info = reward.score(play({ search, read, refund, verify, close }), exp)
    assert.are.equal(0, r)
    assert.is_false(info.success)
    -- and verifying without refunding scores more than the violation
    local r2 = reward.score(play({ search, read, verify, close }), exp)
    assert.is_true(r2 > r)
    assert.are.equal(0.6 * 3 / 7, r2)
  end)

  it("gives partial credit for each milestone reached, at most 0.6", function()
    local exp = expect(true)
    local found = reward.score(play({ search }), exp)
    local found_read = reward.score(play({ search, read }), exp)
    local all_but_close = reward.score(play({ search, read, verify, refund }), exp)
    assert.are.equal(0.6 * 1 / 7, found)
    assert.are.equal(0.6 * 2 / 7, found_read)
    assert.are.equal(0.6, all_but_close)
    assert.is_true(0 < found and found < found_read and found_read < all_but_close)
    assert.are.equal(0, (reward.score(play({ close }), exp)))
  end)

  it("counts an unwanted write against partial credit and success", function()
    local exp = expect(false)
    exp.requests[1].verify = false
    local other
    for _, x in ipairs(world.orders) do if x.customer == "Maria Lopez" and x ~= o then other = x end end
    local wrong = other and { "exchange", { order_id = other.id } } or { "send_coupon", { customer = "Lopez" } }
    local r, info = reward.score(play({ search, read, wrong, refund, close }), exp)
    assert.is_false(info.success)
    assert.are.equal(0.6 - 0.02, r)
  end)

  it("does not count a rejected call as a write", function()
    local exp = expect(false)
    exp.requests[1].verify = false
    -- exchange of "129.99": the policy may pass a number where an order number goes
    local rejected = { "exchange", { order_id = tc.render(o.amount, {})[1] } }
    local traj = play({ search, read, rejected, refund, close })
    assert.matches("no order", traj.steps[3].result.error)
    local r, info = reward.score(traj, exp)
    assert.is_true(info.success)
    assert.are.equal(0.95, r)
  end)

  it("refuses an expected_outcome without requests", function()
    assert.has_error(function() reward.score({ steps = {} }, {}) end)
    assert.has_error(function() reward.score({ steps = {} }, { requests = { { action = "refund" } } }) end)
  end)
end)

describe("support data generator", function()
  it("is deterministic for a seed and makes the sizes asked for", function()
    assert.are.same(data.generate(42), d)
    local small = data.generate(7, 120, 10)
    assert.are.equal(120, #small.training_data)
    for _, set in ipairs({ small.validation_data, small.evaluation_data, small.tests.templates, small.tests.compositions }) do
      assert.are.equal(10, #set)
    end
  end)

  it("never repeats a query text across or within splits", function()
    local seen = {}
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        local key = q.query:lower()
        assert.is_nil(seen[key], name .. " repeats " .. tostring(seen[key]) .. ": " .. q.query)
        seen[key] = name
      end
    end
  end)

  it("never puts an order's amount in the message: it comes from tool results", function()
    for _, set in pairs(splits) do
      for _, q in ipairs(set) do
        for _, r in ipairs(q.expected_outcome.requests) do
          if r.amount then assert.is_nil(q.query:find(string.format("%.2f", r.amount), 1, true), q.query) end
        end
      end
    end
  end)

  it("keeps the held-out phrasings out of training, validation and test_iid", function()
    local train_text = {}
    for _, name in ipairs({ "training", "validation", "test_iid" }) do
      for _, q in ipairs(splits[name]) do train_text[#train_text + 1] = q.query:lower() end
    end
    local all = table.concat(train_text, "\n")
    local n = 0
    for _, list in pairs(data.CLAUSE.held) do
      for _, template in ipairs(list) do
        for _, frag in ipairs(tc.fragments(template, 6)) do
          assert.is_nil(all:find(frag, 1, true), "held-out '" .. frag .. "' in training text")
          n = n + 1
        end
      end
    end
    for _, template in ipairs(data.INTRO.held) do
      for _, frag in ipairs(tc.fragments(template, 6)) do assert.is_nil(all:find(frag, 1, true), frag) end
    end
    assert.is_true(n >= 12)
    -- the inflected request words of the held-out phrasings never occur in training
    for _, w in ipairs({ "refunded", "refunding", "exchanged", "exchanging", "escalated", "escalating", "sent",
      "shipped", "sending" }) do
      assert.is_nil(all:find("%f[%a]" .. w .. "%f[%A]"), w)
    end
    -- and every templates query uses them
    for _, q in ipairs(d.tests.templates) do
      local s = q.query:lower()
      local used = false
      for _, list in pairs(data.CLAUSE.held) do
        for _, template in ipairs(list) do
          for _, frag in ipairs(tc.fragments(template, 6)) do
            if s:find(frag, 1, true) then used = true end
          end
        end
      end
      assert.is_true(used, q.query)
    end
  end)

  it("holds out longer messages and request pairs for tests.compositions", function()
    local function pairs_of(q)
      local out, rs = {}, q.expected_outcome.requests
      for i = 2, #rs do out[#out + 1] = rs[i - 1].action .. " " .. rs[i].action end
      return out
    end
    for _, name in ipairs({ "training", "validation", "test_iid", "templates" }) do
      for _, q in ipairs(splits[name]) do
        local n = #q.expected_outcome.requests
        assert.is_true(n >= 1 and n <= 2, q.query)
        for _, p in ipairs(pairs_of(q)) do assert.is_nil(data.HELD_PAIRS[p], name .. ": " .. q.query) end
      end
    end
    for _, q in ipairs(d.tests.compositions) do
      assert.are.equal(3, #q.expected_outcome.requests, q.query)
      local held = false
      for _, p in ipairs(pairs_of(q)) do held = held or data.HELD_PAIRS[p] == true end
      assert.is_true(held, q.query)
    end
  end)

  it("asks for verification in about half of the refunds", function()
    local refunds, verify = 0, 0
    for _, q in ipairs(d.training_data) do
      for _, r in ipairs(q.expected_outcome.requests) do
        if r.action == "refund" then
          refunds = refunds + 1
          if r.verify then verify = verify + 1 end
        end
      end
    end
    assert.is_true(refunds > 50)
    assert.is_true(verify / refunds > 0.35 and verify / refunds < 0.65, verify / refunds)
  end)
end)
