-- Specs for examples/inventory/data.lua: the inventory agent's data generator and its splits.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.inventory")
local data = require("inventory.data")
local tc = require("helpers.tool_calls")
local lines_of = require("helpers.inventory").lines_of

local d = data.generate(42)
local splits = tc.splits(d)

describe("inventory data generator", function()
  it("is deterministic for a seed and makes the sizes asked for", function()
    assert.are.same(data.generate(42), d)
    local small = data.generate(7, 120, 10)
    assert.are.equal(120, #small.training_data)
    assert.are.equal(10, #small.tests.compositions)
  end)

  it("never repeats a query text across or within splits", function()
    tc.assert_unique_queries(splits)
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
