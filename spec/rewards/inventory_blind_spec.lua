-- Specs for plugins/rewards/inventory_blind.lua: the inventory reward on the results the blind
-- agent hid. That it scores every episode as the inventory reward scores the real agent's is in
-- spec/agents/inventory_blind_spec.lua; here, what it does with what the host adds.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.inventory_blind")
local reward = require("rewards.inventory")
local blind_reward = require("rewards.inventory_blind")
local tc = require("helpers.tool_calls")
local ctx = require("helpers.inventory").ctx

describe("inventory_blind reward", function()
  local exp = { items = { { item = "mug", qty = 3 } }, min_steps = 3 }

  it("has the inventory reward's range and success threshold", function()
    assert.are.same(reward.range, blind_reward.range)
    assert.are.equal(reward.success_threshold, blind_reward.success_threshold)
  end)

  it("scores the true results, not the empty ones the policy saw", function()
    for seed = 1, 20 do
      local traj = tc.run(agent, "Order 3 mugs.", tc.script({ { "check_stock", { item = "mugs" } },
        { "place_order", { item = "mugs", qty = 3 } }, { "back_order", { item = "mugs", qty = 3 } },
        { "finish", {} } }), ctx(seed))
      local in_stock = traj.final.stock.mug > 0
      local r, info = blind_reward.score(traj, exp)
      -- in stock: ordered, then a back-order nobody asked for; out: refused, then back-ordered
      assert.are.equal(not in_stock, info.success, seed)
      assert.are.equal(in_stock and 0.6 * 4 / 4 - 0.05 - 0.01 or 1 - 0.05, r)
      assert.are.same({}, traj.steps[2].result)
    end
  end)

  it("keeps the host's record of a call that raised, which the agent never returned", function()
    local traj = tc.run(agent, "Order 3 mugs.", tc.script({ { "check_stock", { item = "mugs" } },
      { "finish", {} }, }), ctx(3))
    traj.steps[3] = { action = { tool = "check_stock", params = { item = "mugs" } },
      result = { error = "inventory: the request is finished" } }
    assert.are.equal(2, #traj.final.results)
    local _, info = blind_reward.score(traj, exp)
    assert.are.equal(2 / 3, info.tool_accuracy) -- the third call failed
    assert.is_false(info.success)
  end)
end)
