-- Specs for plugins/rewards/support.lua, on episodes of the support agent.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.support")
local reward = require("rewards.support")
local tc = require("helpers.tool_calls")

local QUERY = "Hi, this is Maria Lopez. The kettle arrived broken, please refund it."

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
