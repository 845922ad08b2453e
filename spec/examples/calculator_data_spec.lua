-- Specs for examples/calculator/data.lua: the calculator's data generator and its generalisation
-- splits.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local data = require("calculator.data")
local cjson = require("cjson")

local contains = require("helpers.episode").contains
local calc = require("helpers.calculator")
local numbers, chain = calc.numbers, calc.chain

describe("calculator data generator", function()
  local HELD = data.HELD_PAIRS

  -- Whether text reads as START (JOIN CLAUSE)+ END in the given phrasing ("train" or "held");
  -- the operations it reads, in order, when it does.
  local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end
  local function pattern(template) return "^" .. escape(template):gsub("{n}", "%%d+") end
  local ENDS = { ".", "?", ". What is the result?" }
  local function parse(text, phrasing)
    local function rest(s, ops)
      for _, e in ipairs(ENDS) do if s == e then return ops end end
      for _, join in ipairs(data.JOIN[phrasing]) do
        if s:sub(1, #join) == join then
          local after = s:sub(#join + 1)
          for op, clauses in pairs(data.CLAUSE[phrasing]) do
            for _, clause in ipairs(clauses) do
              local m = after:match(pattern(clause))
              if m then
                local more = { table.unpack(ops) }
                more[#more + 1] = op
                local got = rest(after:sub(#m + 1), more)
                if got then return got end
              end
            end
          end
        end
      end
      return nil
    end
    for _, start in ipairs(data.START[phrasing]) do
      local m = text:match(pattern(start))
      if m then
        local got = rest(text:sub(#m + 1), {})
        if got and #got > 0 then return got end
      end
    end
    return nil
  end

  local function has_held_pair(kinds)
    for k = 2, #kinds do
      if HELD[kinds[k - 1] .. " " .. kinds[k]] then return true end
    end
    return false
  end

  it("makes the splits of the sizes asked, 256 and 64 by default", function()
    local d = data.generate(1)
    assert.are.equal(256, #d.training_data)
    for _, l in ipairs({ d.validation_data, d.evaluation_data, d.tests.templates, d.tests.compositions }) do
      assert.are.equal(64, #l)
    end
    local d2 = data.generate(1, 30, 10)
    assert.are.equal(30, #d2.training_data)
    for _, l in ipairs({ d2.validation_data, d2.evaluation_data, d2.tests.templates, d2.tests.compositions }) do
      assert.are.equal(10, #l)
    end
  end)

  it("is deterministic for a seed and differs across seeds", function()
    assert.are.same(data.generate(7), data.generate(7))
    assert.are.same(data.generate("abc"), data.generate("abc"))
    assert.are_not.same(data.generate(7).training_data, data.generate(8).training_data)
  end)

  for _, seed in ipairs({ 1, 2, 42 }) do
    local d = data.generate(seed)
    local iid = { training_data = d.training_data, validation_data = d.validation_data,
                  evaluation_data = d.evaluation_data }
    local all = { training_data = d.training_data, validation_data = d.validation_data,
                  evaluation_data = d.evaluation_data, templates = d.tests.templates,
                  compositions = d.tests.compositions }

    it("puts no query text in two splits, nor twice in one (seed " .. seed .. ")", function()
      local where = {}
      for name, list in pairs(all) do
        for _, q in ipairs(list) do
          local key = q.query:lower()
          assert.is_nil(where[key], q.query .. " in " .. name .. " and " .. tostring(where[key]))
          where[key] = name
        end
      end
    end)

    it("writes chains as claimed: positive integer values up to 2000, distinct numbers (seed " .. seed .. ")", function()
      for name, list in pairs(all) do
        for _, q in ipairs(list) do
          local e = q.expected_outcome
          assert.are.equal(#e.ops, #e.values, q.query)
          assert.are.equal(e.values[#e.values], e.answer, q.query)
          assert.are.equal("integer", math.type(e.answer))
          for _, v in ipairs(e.values) do
            assert.are.equal("integer", math.type(v), q.query)
            assert.is_true(v >= 1 and v <= 2000, q.query)
          end
          for _, op in ipairs(e.ops) do
            assert.is_true(contains({ "add", "subtract", "multiply", "divide" }, op), op)
          end
          local nums, seen = numbers(q.query), {}
          for _, n in ipairs(nums) do
            assert.is_nil(seen[n], "a number twice in " .. q.query)
            seen[n] = true
          end
          chain(q) -- the values follow from the numbers
          assert.matches('"answer":' .. e.answer .. "[,}]", cjson.encode(q))
        end
      end
    end)

    it("keeps the held-out phrasings and operation pairs out of training (seed " .. seed .. ")", function()
      local lengths = {}
      for name, list in pairs(iid) do
        for _, q in ipairs(list) do
          local ops = parse(q.query, "train")
          assert.is_truthy(ops, name .. " does not read in the training phrasings: " .. q.query)
          assert.is_nil(parse(q.query, "held"), q.query)
          local kinds = {}
          for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
          assert.are.same(kinds, ops, q.query)
          assert.is_true(#kinds >= 1 and #kinds <= 3, q.query)
          assert.is_false(has_held_pair(kinds), name .. " has a held-out pair: " .. q.query)
          lengths[#kinds] = (lengths[#kinds] or 0) + 1
        end
      end
      for n = 1, 3 do assert.is_true((lengths[n] or 0) >= 30, n .. " operations") end
    end)

    it("tests.templates: the same chains in phrasings no training query uses (seed " .. seed .. ")", function()
      for _, q in ipairs(d.tests.templates) do
        local ops = parse(q.query, "held")
        assert.is_truthy(ops, "does not read in the held-out phrasings: " .. q.query)
        assert.is_nil(parse(q.query, "train"), q.query)
        local kinds = {}
        for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
        assert.are.same(kinds, ops, q.query)
        assert.is_true(#kinds >= 1 and #kinds <= 3, q.query)
        assert.is_false(has_held_pair(kinds), q.query)
      end
      -- no template of a START, CLAUSE or JOIN of the held-out phrasings is one of training's
      for _, part in ipairs({ "START", "JOIN" }) do
        for _, t in ipairs(data[part].held) do assert.is_false(contains(data[part].train, t), t) end
      end
      for op, clauses in pairs(data.CLAUSE.held) do
        for _, t in ipairs(clauses) do assert.is_false(contains(data.CLAUSE.train[op], t), t) end
      end
    end)

    it("tests.compositions: 4 or 5 operations with a pair training never has (seed " .. seed .. ")", function()
      local pairs_seen = {}
      for _, q in ipairs(d.tests.compositions) do
        local ops = parse(q.query, "train")
        assert.is_truthy(ops, "does not read in the training phrasings: " .. q.query)
        local kinds = {}
        for k, step in ipairs(chain(q)) do kinds[k] = step.kind end
        assert.are.same(kinds, ops, q.query)
        assert.is_true(#kinds == 4 or #kinds == 5, q.query)
        assert.is_true(has_held_pair(kinds), "no held-out pair in " .. q.query)
        for k = 2, #kinds do pairs_seen[kinds[k - 1] .. " " .. kinds[k]] = true end
      end
      for pair in pairs(HELD) do assert.is_true(pairs_seen[pair], "no composition has " .. pair) end
    end)
  end
end)
