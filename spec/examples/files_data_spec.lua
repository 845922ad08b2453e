-- Specs for examples/files/data.lua: the files agent's data generator and its splits.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.files")
local data = require("files.data")
local tc = require("helpers.tool_calls")

local d = data.generate(42)
local splits = tc.splits(d)

describe("files data generator", function()
  it("is deterministic for a seed and makes the sizes asked for", function()
    assert.are.same(data.generate(42), d)
    local small = data.generate(7, 120, 10)
    assert.are.equal(120, #small.training_data)
    assert.are.equal(10, #small.tests.templates)
  end)

  it("never repeats a query text across or within splits, nor puts the answer in it", function()
    tc.assert_unique_queries(splits)
    for _, set in pairs(splits) do
      for _, q in ipairs(set) do
        assert.is_nil(q.query:find(q.expected_outcome.answer, 1, true), q.query)
      end
    end
  end)

  it("keeps the held-out phrasings out of training, validation and test_iid", function()
    local text = {}
    for _, name in ipairs({ "training", "validation", "test_iid", "compositions" }) do
      for _, q in ipairs(splits[name]) do text[#text + 1] = q.query:lower() end
    end
    local all = table.concat(text, "\n")
    local frags = {}
    for _, template in ipairs(data.FRAME.held) do
      for _, f in ipairs(tc.fragments(template, 6)) do frags[#frags + 1] = f end
    end
    -- the held-out ways to name a service, filled in with each service ("the service web")
    for _, template in ipairs({ data.TARGET.held[1][2], data.TARGET.held[2][1], data.TARGET.held[2][2] }) do
      for _, svc in ipairs(agent.SERVICES) do
        frags[#frags + 1] = (template:gsub("{svc}", svc)):lower()
      end
    end
    assert.is_true(#frags >= 6 + 3 * #agent.SERVICES)
    for _, f in ipairs(frags) do assert.is_nil(all:find(f, 1, true), f) end
    for _, w in ipairs({ "uses", "finding", "used", "looking", "depending" }) do
      assert.is_nil(all:find("%f[%a]" .. w .. "%f[%A]"), w)
    end
    for _, q in ipairs(d.tests.templates) do
      local s, used = q.query:lower(), false
      for _, f in ipairs(frags) do used = used or s:find(f, 1, true) ~= nil end
      assert.is_true(used, q.query)
    end
  end)

  it("asks tests.compositions what training never asks: longer chains, held keys through a dependency", function()
    for _, name in ipairs({ "training", "validation", "test_iid", "templates" }) do
      for _, q in ipairs(splits[name]) do
        local e = q.expected_outcome
        assert.is_true(#e.chain <= 2, q.query)
        if #e.chain == 2 then assert.is_nil(data.HELD_KEYS[e.key], q.query) end
      end
    end
    local long, held = 0, 0
    for _, q in ipairs(d.tests.compositions) do
      local e = q.expected_outcome
      if #e.chain == 3 then long = long + 1
      else
        assert.are.equal(2, #e.chain)
        assert.is_true(data.HELD_KEYS[e.key], q.query)
        held = held + 1
      end
    end
    assert.is_true(long > 10 and held > 10)
  end)
end)
