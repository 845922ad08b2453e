-- Specs for examples/support/data.lua: the support agent's data generator and its splits.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local data = require("support.data")
local tc = require("helpers.tool_calls")

local d = data.generate(42)
local splits = tc.splits(d)

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
    tc.assert_unique_queries(splits)
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
