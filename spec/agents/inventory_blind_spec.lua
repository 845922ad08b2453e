-- Specs for plugins/agents/inventory_blind.lua, the inventory agent blind to its tool results (the
-- control of bench/learning.md), against the real agent (plugins/agents/inventory.lua): the same
-- calls give the same episodes, final answers and rewards, and the policy is shown nothing of what
-- the tools returned. Its reward: spec/rewards/inventory_blind_spec.lua.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local real = require("agents.inventory")
local blind = require("agents.inventory_blind")
local reward = require("rewards.inventory")
local blind_reward = require("rewards.inventory_blind")
local data = require("inventory.data")
local tc = require("helpers.tool_calls")
local inventory = require("helpers.inventory")
local new_rng = require("agentcore.rng").new
local ctx, lines_of = inventory.ctx, inventory.lines_of

local TOOLS = { "check_stock", "place_order", "back_order", "check_price", "list_suppliers", "finish" }

-- Runs the same calls on both agents, each with the episode's generator from the same seed.
-- choose(k, real_steps) gives the k-th call (it may read the real agent's results: a policy that
-- can see them) or nil to stop (a truncated episode). Returns both trajectories as the host
-- records them ({ query, steps = { {action, result} }, final, truncated }).
local function lockstep(query, seed, choose)
  local a, b = real.init(query, ctx(seed)), blind.init(query, ctx(seed))
  local ta, tb = { query = query, steps = {} }, { query = query, steps = {} }
  local done = false
  while not done and #ta.steps < real.max_steps do
    local tool, args = choose(#ta.steps + 1, ta.steps)
    if tool == nil then break end
    local ok_a, ra, da = pcall(real.step, a, tool, args)
    local ok_b, rb, db = pcall(blind.step, b, tool, args)
    assert.are.equal(ok_a, ok_b, tool)
    if not ok_a then
      assert.are.equal(ra, rb) -- the same message: the host records the same failed call
      ra, rb, da, db = { error = ra }, { error = rb }, true, true
    end
    assert.are.equal(da, db, tool)
    ta.steps[#ta.steps + 1] = { action = { tool = tool, params = args }, result = ra }
    tb.steps[#tb.steps + 1] = { action = { tool = tool, params = args }, result = rb }
    done = da
  end
  ta.final, tb.final = real.final(a), blind.final(b)
  ta.truncated, tb.truncated = not done, not done
  return ta, tb
end

-- Checks each item, then orders or back-orders it as the real check_stock's result says, with
-- the query's words (offered to both policies).
local function reader(query)
  local lines, i, phase = lines_of(query), 1, "check"
  return function(_, steps)
    local x = lines[i]
    if x == nil then return "finish", {} end
    if phase == "check" then
      phase = "order"
      return "check_stock", { item = x.word }
    end
    i, phase = i + 1, "check"
    return steps[#steps].result.available > 0 and "place_order" or "back_order", { item = x.word, qty = x.qty }
  end
end

-- Any tool with any word or number of the query (and a few the warehouse refuses), n calls.
local function random_calls(query, seed, n)
  local rng = new_rng(seed)
  local words, numbers = {}, { 0, 2.5, 1000 }
  for w in query:gmatch("%a+") do words[#words + 1] = w end
  for q in query:gmatch("%d+") do numbers[#numbers + 1] = tonumber(q) end
  return function(k)
    if k > n then return nil end
    local tool = rng.pick(TOOLS)
    if tool == "finish" then return tool, {} end
    return tool, { item = rng.pick(words), qty = rng.pick(numbers) }
  end
end

-- The real final answer, without the results the blind one adds.
local function without_results(final)
  local out = {}
  for k, v in pairs(final) do if k ~= "results" then out[k] = v end end
  return out
end

local d = data.generate(7)

describe("inventory agent blind to tool results", function()
  it("has the real agent's tools, argument types and step limit", function()
    tc.check_contract(blind)
    assert.are.same(real.tools, blind.tools)
    assert.are.equal(real.max_steps, blind.max_steps)
    assert.are.equal("inventory_blind", blind.name)
  end)

  it("shows the policy the same empty result at every call, whatever the stock", function()
    -- two episodes of one request whose stock differs: the real agent shows it, the blind one not
    local query = "Order 3 kettles."
    local seen = {}
    for seed = 1, 40 do
      local a, b = lockstep(query, seed, reader(query))
      local kind = a.steps[1].result.available > 0 and "in" or "out"
      local view = {}
      for i, step in ipairs(b.steps) do
        assert.are.same({}, step.result)
        assert.are.same({}, tc.render(step.result, {})) -- no token of it reaches the context
        view[i] = step.action.tool
      end
      seen[kind] = seen[kind] or { real = a.steps[1].result, blind = b.steps[1].result }
      assert.are.equal(kind == "in" and "place_order" or "back_order", a.steps[2].action.tool)
    end
    assert.is_not_nil(seen["in"])
    assert.is_not_nil(seen["out"])
    assert.are_not.same(seen["in"].real, seen["out"].real)
    assert.are.same(seen["in"].blind, seen["out"].blind)
  end)

  it("ends every episode with the real agent's final answer and reward for the same calls", function()
    local seed, successes, n = 0, 0, 0
    for name, set in pairs(tc.splits(d)) do
      for j, q in ipairs(set) do
        if j > 40 then break end
        for _, policy in ipairs({ reader(q.query), random_calls(q.query, seed, 1 + seed % 14) }) do
          seed = seed + 1
          local a, b = lockstep(q.query, seed, policy)
          -- the same final answer, plus the true results, one per step
          assert.are.same(a.final, without_results(b.final))
          local results = {}
          for i, step in ipairs(a.steps) do results[i] = step.result end
          assert.are.same(results, b.final.results)
          -- the same reward and info
          local r, info = reward.score(a, q.expected_outcome)
          local rb, info_b = blind_reward.score(b, q.expected_outcome)
          assert.are.equal(r, rb, name .. ": " .. q.query)
          assert.are.same(info, info_b)
          n = n + 1
          successes = successes + (info.success and 1 or 0)
        end
      end
    end
    assert.is_true(successes > n / 3, successes .. " of " .. n) -- the readers' episodes succeed
  end)

  it("raises where the real agent raises, with the same message", function()
    for _, case in ipairs({ { "sell", {} }, { "check_stock", { item = "mug" }, after_finish = true } }) do
      local a, b = real.init("Order 2 mugs.", ctx(1)), blind.init("Order 2 mugs.", ctx(1))
      if case.after_finish then real.step(a, "finish", {}); blind.step(b, "finish", {}) end
      local ok_a, ea = pcall(real.step, a, case[1], case[2])
      local ok_b, eb = pcall(blind.step, b, case[1], case[2])
      assert.is_false(ok_a)
      assert.is_false(ok_b)
      assert.are.equal(ea, eb)
    end
  end)
end)
