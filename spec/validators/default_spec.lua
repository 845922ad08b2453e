-- Specs for plugins/validators/default.lua (the host runs the same file: tests/unit/lua/test_plugin.c).
package.path = "./lua/?.lua;./lua/?/init.lua;./plugins/?.lua;" .. package.path

local ac = require("agentcore")
local validator = require("validators.default")

local function set(n, prefix)
  local list = {}
  for i = 1, n do
    list[i] = { query = (prefix or "train") .. " query " .. i, expected_outcome = { answer = i } }
  end
  return list
end

-- The problems as "field: error" lines, for compact expectations.
local function lines(problems)
  local out = {}
  for i, p in ipairs(problems) do out[i] = p.field .. ": " .. p.error end
  return out
end

local function find(problems, field)
  for _, p in ipairs(problems) do
    if p.field == field then return p end
  end
end

describe("validators.default", function()
  it("follows the plugin contract", function()
    assert.are.equal("default", validator.name)
    assert.are.equal("string", type(validator.version))
    assert.are.equal("function", type(validator.validate))
  end)

  it("accepts good data with an empty array of problems", function()
    local problems = validator.validate(set(100), set(20, "eval"), { min_training = 100 })
    assert.are.same({}, problems)
    assert.are.equal(ac.array_mt, getmetatable(problems))
  end)

  it("accepts missing and empty evaluation data", function()
    assert.are.same({}, validator.validate(set(100), nil, { min_training = 100 }))
    assert.are.same({}, validator.validate(set(100), {}, { min_training = 100 }))
    assert.are.same({}, validator.validate(set(100), ac.array(), { min_training = 100 }))
  end)

  it("needs limits.min_training training queries, 100 by default", function()
    assert.are.same({ "training_data: needs at least 5 queries, got 4" },
      lines(validator.validate(set(4), {}, { min_training = 5 })))
    assert.are.same({ "training_data: needs at least 100 queries, got 99" },
      lines(validator.validate(set(99), {})))
    assert.are.same({}, validator.validate(set(5), {}, { min_training = 5 }))
  end)

  it("allows at most 10000 queries per set", function()
    assert.are.same({}, validator.validate(set(10000), {}, { min_training = 1 }))
    local p = validator.validate(set(10001), set(10001, "eval"), { min_training = 1 })
    assert.are.same({ "training_data: must have at most 10000 queries, got 10001",
      "evaluation_data: must have at most 10000 queries, got 10001" }, lines(p))
  end)

  it("allows a query of 4096 bytes, not 4097", function()
    local train = set(2)
    train[1].query = string.rep("a", 4096)
    train[2].query = string.rep("\u{e9}", 2049) -- 4098 bytes, 2049 characters
    local p = validator.validate(train, {}, { min_training = 1 })
    assert.are.same({ "training_data[1].query: must be at most 4096 bytes, got 4098" }, lines(p))
    assert.are.equal(1, p[1].index)
  end)

  it("requires a non-empty query string", function()
    local train = set(5)
    train[1].query = ""
    train[2].query = " \t\n"
    train[3].query = 42
    train[4].query = nil
    train[5].query = ac.null
    local p = validator.validate(train, {}, { min_training = 1 })
    assert.are.same({
      "training_data[0].query: must be a non-empty string",
      "training_data[1].query: must be a non-empty string",
      "training_data[2].query: must be a non-empty string",
      "training_data[3].query: must be a non-empty string",
      "training_data[4].query: must be a non-empty string",
    }, lines(p))
    for i, problem in ipairs(p) do assert.are.equal(i - 1, problem.index) end
  end)

  it("requires an object expected_outcome", function()
    local train = set(5)
    train[1].expected_outcome = nil
    train[2].expected_outcome = ac.null
    train[3].expected_outcome = ac.array()
    train[4].expected_outcome = { 1, 2 }
    train[5].expected_outcome = "yes"
    local p = validator.validate(train, {}, { min_training = 1 })
    assert.are.same({
      "training_data[0].expected_outcome: is required (an object)",
      "training_data[1].expected_outcome: is required (an object)",
      "training_data[2].expected_outcome: must be an object",
      "training_data[3].expected_outcome: must be an object",
      "training_data[4].expected_outcome: must be an object",
    }, lines(p))
  end)

  it("accepts an empty object as expected_outcome", function()
    local train = set(1)
    train[1].expected_outcome = {}
    assert.are.same({}, validator.validate(train, {}, { min_training = 1 }))
  end)

  it("requires each item to be an object", function()
    local train = set(3)
    train[1] = "add 3 and 4"
    train[2] = { "add 3 and 4" }
    train[3] = ac.null
    local p = validator.validate(train, {}, { min_training = 1 })
    assert.are.same({
      "training_data[0]: must be an object with query and expected_outcome",
      "training_data[1]: must be an object with query and expected_outcome",
      "training_data[2]: must be an object with query and expected_outcome",
    }, lines(p))
  end)

  it("requires the sets to be arrays", function()
    assert.are.same({ "training_data: is required (an array of queries)" },
      lines(validator.validate(nil, {}, { min_training = 0 })))
    assert.are.same({ "training_data: must be an array of queries",
      "evaluation_data: must be an array of queries" },
      lines(validator.validate({ query = "x" }, "eval", { min_training = 0 })))
  end)

  it("rejects evaluation queries copied from training, after trimming and lowercasing", function()
    local train, eval = set(3), set(3, "eval")
    eval[1].query = "  TRAIN Query 2\t"
    eval[3].query = "train query 3"
    local p = validator.validate(train, eval, { min_training = 1 })
    assert.are.same({
      "evaluation_data[0].query: copies training_data[1].query (same text after trimming and lowercasing)",
      "evaluation_data[2].query: copies training_data[2].query (same text after trimming and lowercasing)",
    }, lines(p))
    assert.are.equal(0, p[1].index)
  end)

  it("names the first training copy when training repeats a query", function()
    local train, eval = set(3), set(1, "eval")
    train[3].query = "train query 1"
    eval[1].query = "Train query 1"
    local p = validator.validate(train, eval, { min_training = 1 })
    assert.are.same({
      "evaluation_data[0].query: copies training_data[0].query (same text after trimming and lowercasing)",
    }, lines(p))
  end)

  it("reports every problem at once", function()
    local train, eval = set(10), set(2, "eval")
    train[2].query = ""
    train[2].expected_outcome = 3
    train[5] = 7
    eval[2].query = "TRAIN QUERY 4"
    eval[1].expected_outcome = nil
    local p = validator.validate(train, eval, { min_training = 20 })
    assert.are.equal(6, #p)
    assert.are.equal("needs at least 20 queries, got 10", find(p, "training_data").error)
    assert.is_nil(find(p, "training_data").index)
    assert.are.equal(1, find(p, "training_data[1].query").index)
    assert.is_not_nil(find(p, "training_data[1].expected_outcome"))
    assert.are.equal(4, find(p, "training_data[4]").index)
    assert.is_not_nil(find(p, "evaluation_data[0].expected_outcome"))
    assert.are.equal(1, find(p, "evaluation_data[1].query").index)
  end)

  it("checks 10000 queries quickly", function()
    local t0 = os.clock()
    validator.validate(set(10000), set(2000, "eval"), { min_training = 100 })
    assert.is_true(os.clock() - t0 < 1)
  end)
end)
