-- Specs for plugins/agents/support.lua. Its reward: spec/rewards/support_spec.lua; its data
-- generator: spec/examples/support_data_spec.lua.
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
