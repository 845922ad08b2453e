-- Specs for plugins/agents/inventory.lua. Its reward: spec/rewards/inventory_spec.lua; its data
-- generator: spec/examples/inventory_data_spec.lua.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.inventory")
local reward = require("rewards.inventory")
local data = require("inventory.data")
local tc = require("helpers.tool_calls")
local inventory = require("helpers.inventory")
local ctx, lines_of = inventory.ctx, inventory.lines_of

-- Checks each item, then orders it from stock or back-orders it as check_stock's RESULT says.
local function reader(query)
  local lines, i, phase = lines_of(query), 1, "check"
  return function(_, steps)
    local x = lines[i]
    if x == nil then return "finish", {} end
    if phase == "check" then
      phase = "order"
      return "check_stock", { item = x.word }
    end
    local r = steps[#steps].result
    i, phase = i + 1, "check"
    return r.available > 0 and "place_order" or "back_order", { item = r.item, qty = x.qty }
  end
end

-- Orders every item with the same tool, whatever the stock: a policy blind to tool results.
local function blind(tool)
  return function(query)
    local lines, i = lines_of(query), 0
    return function()
      i = i + 1
      local x = lines[i]
      if x == nil then return "finish", {} end
      return tool, { item = x.word, qty = x.qty }
    end
  end
end

local d = data.generate(42)
local splits = tc.splits(d)

describe("inventory agent", function()
  it("declares its tools with argument types, and neither observe nor legal", function()
    local names = tc.check_contract(agent)
    for _, n in ipairs({ "check_stock", "place_order", "back_order", "check_price", "list_suppliers", "finish" }) do
      assert.is_true(names[n], n)
    end
    assert.is_nil(agent.observe)
    assert.is_nil(agent.legal)
    assert.are.equal("number", tc.tool(agent, "place_order").args[2].type)
  end)

  it("draws each item's stock once per episode from the episode's generator, half the time none", function()
    local out, n = 0, 2000
    for seed = 1, n do
      local s = agent.init("Order 3 kettles.", ctx(seed))
      local a = agent.step(s, "check_stock", { item = "kettles" })
      assert.are.equal("kettle", a.item)
      assert.are.same(a, agent.step(s, "check_stock", { item = "Kettle" }))
      if a.available == 0 then out = out + 1 else assert.is_true(a.available >= 15) end
    end
    assert.is_true(out / n > 0.45 and out / n < 0.55, out / n)
    -- the same seed, the same stock
    local a = agent.step(agent.init("x", ctx(99)), "check_stock", { item = "lamp" })
    local b = agent.step(agent.init("x", ctx(99)), "check_stock", { item = "lamp" })
    assert.are.same(a, b)
    assert.has_error(function() agent.init("Order 3 kettles.") end)
  end)

  it("places orders from stock only, back-orders anything, and rejects what the warehouse refuses", function()
    local empty, full
    for seed = 1, 50 do
      local s = agent.init("q", ctx(seed))
      if agent.step(s, "check_stock", { item = "mug" }).available == 0 then empty = empty or s else full = full or s end
    end
    assert.matches("only 0 mug in stock", agent.step(empty, "place_order", { item = "mugs", qty = 3 }).error)
    local b = agent.step(empty, "back_order", { item = "mugs", qty = 3 })
    assert.are.equal("mug", b.item)
    assert.are.equal(3, b.qty)
    local have = agent.step(full, "check_stock", { item = "mug" }).available
    local o = agent.step(full, "place_order", { item = "MUG", qty = 4 })
    assert.are.equal(4, o.qty)
    assert.are.equal(have - 4, agent.step(full, "check_stock", { item = "mug" }).available)
    assert.matches("positive whole", agent.step(full, "place_order", { item = "mug", qty = 2.5 }).error)
    assert.matches("positive whole", agent.step(full, "back_order", { item = "mug", qty = 0 }).error)
    assert.matches("no item order in the catalog", agent.step(full, "check_stock", { item = "order" }).error)
    local done_result, done = agent.step(full, "finish", {})
    assert.is_true(done)
    assert.are.equal(1, done_result.orders)
    assert.has_error(function() agent.step(full, "check_stock", { item = "mug" }) end)
    local f = agent.final(full)
    assert.are.equal(have, f.stock.mug) -- what the warehouse had before the episode's orders
    assert.are.same({ { item = "mug", qty = 4 } }, f.orders)
  end)

  it("solves every generated request when it follows check_stock's result", function()
    local seed = 0
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        seed = seed + 1
        local traj = tc.run(agent, q.query, reader(q.query), ctx(seed))
        local r, info = reward.score(traj, q.expected_outcome)
        assert.is_true(info.success, name .. ": " .. q.query)
        assert.are.equal(1, r)
        assert.are.equal(1, info.tool_accuracy)
      end
    end
  end)

  it("is right about half the time per item for a policy blind to tool results", function()
    for _, tool in ipairs({ "place_order", "back_order" }) do
      local ok, n, ok2, n2 = 0, 0, 0, 0
      for seed = 1, 8 do
        for _, q in ipairs(d.training_data) do
          local traj = tc.run(agent, q.query, blind(tool)(q.query), ctx(seed * 1000 + n + n2))
          local _, info = reward.score(traj, q.expected_outcome)
          if #q.expected_outcome.items == 1 then
            n = n + 1
            ok = ok + (info.success and 1 or 0)
          elseif #q.expected_outcome.items == 2 then
            n2 = n2 + 1
            ok2 = ok2 + (info.success and 1 or 0)
          end
        end
      end
      assert.is_true(ok / n > 0.45 and ok / n < 0.55, tool .. " " .. ok / n)
      assert.is_true(ok2 / n2 > 0.2 and ok2 / n2 < 0.3, tool .. " " .. ok2 / n2)
    end
  end)
end)
