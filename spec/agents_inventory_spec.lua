-- Specs for the inventory agent, its reward and its data generator.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.inventory")
local reward = require("rewards.inventory")
local data = require("inventory.data")
local tc = require("helpers.tool_calls")
local new_rng = require("agentcore.rng").new

local function ctx(seed) return { seed = seed, episode = 0, iteration = 1, rng = new_rng(seed) } end

-- The item words and quantities of a request, in order ("3 kettles" -> {"kettles", 3}).
local function lines_of(query)
  local out = {}
  for qty, word in query:gmatch("(%d+) (%a+)") do out[#out + 1] = { word = word, qty = tonumber(qty) } end
  return out
end

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

describe("inventory data generator", function()
  it("is deterministic for a seed and makes the sizes asked for", function()
    assert.are.same(data.generate(42), d)
    local small = data.generate(7, 120, 10)
    assert.are.equal(120, #small.training_data)
    assert.are.equal(10, #small.tests.compositions)
  end)

  it("never repeats a query text across or within splits", function()
    local seen = {}
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        local key = q.query:lower()
        assert.is_nil(seen[key], name .. ": " .. q.query)
        seen[key] = name
      end
    end
  end)

  it("names catalog items, with the quantities the reward expects", function()
    for _, set in pairs(splits) do
      for _, q in ipairs(set) do
        local lines = lines_of(q.query)
        assert.are.equal(#q.expected_outcome.items, #lines, q.query)
        for k, x in ipairs(lines) do
          assert.are.equal(q.expected_outcome.items[k].item, agent.catalog_item(x.word))
          assert.are.equal(q.expected_outcome.items[k].qty, x.qty)
        end
      end
    end
  end)

  it("keeps the held-out phrasings out of training, validation and test_iid", function()
    local text = {}
    for _, name in ipairs({ "training", "validation", "test_iid", "compositions" }) do
      for _, q in ipairs(splits[name]) do text[#text + 1] = q.query:lower() end
    end
    local all = table.concat(text, "\n")
    for _, template in ipairs(data.TEMPLATE.held) do
      local frags = tc.fragments(template, 4)
      assert.is_true(#frags > 0, template)
      for _, frag in ipairs(frags) do assert.is_nil(all:find(frag, 1, true), frag) end
    end
    for _, w in ipairs({ "ordered", "ordering", "needed", "buying" }) do
      assert.is_nil(all:find("%f[%a]" .. w .. "%f[%A]"), w)
    end
    for _, q in ipairs(d.tests.templates) do
      local used = false
      for _, template in ipairs(data.TEMPLATE.held) do
        local ok = true
        for _, frag in ipairs(tc.fragments(template, 4)) do ok = ok and q.query:lower():find(frag, 1, true) ~= nil end
        used = used or ok
      end
      assert.is_true(used, q.query)
    end
  end)

  it("makes tests.compositions longer than anything in training", function()
    for _, name in ipairs({ "training", "validation", "test_iid", "templates" }) do
      for _, q in ipairs(splits[name]) do assert.is_true(#q.expected_outcome.items <= 3, q.query) end
    end
    for _, q in ipairs(d.tests.compositions) do
      local n = #q.expected_outcome.items
      assert.is_true(n == 4 or n == 5, q.query)
    end
  end)
end)
