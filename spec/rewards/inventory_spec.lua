-- Specs for plugins/rewards/inventory.lua, on episodes of the inventory agent.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.inventory")
local reward = require("rewards.inventory")
local tc = require("helpers.tool_calls")
local ctx = require("helpers.inventory").ctx

describe("inventory reward", function()
  local exp = { items = { { item = "mug", qty = 3 } }, min_steps = 3 }
  local function episode(seed_wanted_empty, calls)
    for seed = 1, 100 do
      local s = agent.init("Order 3 mugs.", ctx(seed))
      if (agent.step(s, "check_stock", { item = "mug" }).available == 0) == seed_wanted_empty then
        return tc.run(agent, "Order 3 mugs.", tc.script(calls), ctx(seed))
      end
    end
  end
  local check = { "check_stock", { item = "mugs" } }
  local place = { "place_order", { item = "mugs", qty = 3 } }
  local back = { "back_order", { item = "mugs", qty = 3 } }
  local finish = { "finish", {} }

  it("is 1 for the right call after the check, whichever the stock asks for", function()
    local r, info = reward.score(episode(false, { check, place, finish }), exp)
    assert.are.equal(1, r)
    assert.is_true(info.success)
    r, info = reward.score(episode(true, { check, back, finish }), exp)
    assert.are.equal(1, r)
    assert.is_true(info.success)
  end)

  it("accepts a rejected place_order followed by the back-order, at the price of the call", function()
    local traj = episode(true, { place, back, finish })
    assert.matches("in stock", traj.steps[1].result.error)
    local r, info = reward.score(traj, exp)
    assert.is_true(info.success)
    assert.are.equal(1, r) -- two calls: no more than check + back-order
    traj = episode(true, { check, place, back, finish })
    r, info = reward.score(traj, exp)
    assert.is_true(info.success)
    assert.are.equal(0.95, r)
  end)

  it("counts a back-order of an item in stock as a wrong order", function()
    local r, info = reward.score(episode(false, { check, back, finish }), exp)
    assert.is_false(info.success)
    assert.are.equal(0.6 * 1 / 4 - 0.05, r)
  end)

  it("gives partial credit for the check and for each item handled", function()
    local two = { items = { { item = "mug", qty = 3 }, { item = "lamp", qty = 4 } }, min_steps = 5 }
    local traj = episode(false, { check, place, finish })
    local r, info = reward.score(traj, two)
    assert.is_false(info.success)
    assert.are.equal(0.6 * 4 / 8, r)
    assert.are.equal(0.6 * 1 / 4, (reward.score(episode(false, { check, finish }), exp)))
    assert.are.equal(0, (reward.score(episode(false, { finish }), exp)))
    -- the right call without finish: all milestones, no success
    r, info = reward.score(episode(false, { check, place }), exp)
    assert.are.equal(0.6, r)
    assert.is_false(info.success)
  end)

  it("refuses an expected_outcome without items", function()
    assert.has_error(function() reward.score({ steps = {} }, {}) end)
    assert.has_error(function() reward.score({ steps = {} }, { items = { { item = "mug", qty = "3" } } }) end)
  end)
end)
