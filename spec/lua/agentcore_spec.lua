-- Specs for the plugin runtime library: lua/agentcore/init.lua and lua/agentcore/util.lua.
-- (Inside the host the same functions run on the C core's null and array_mt: tests/unit/lua/test_lua_host.c.)
package.path = "./lua/?.lua;./lua/?/init.lua;./plugins/?.lua;" .. package.path

local ac = require("agentcore")
local util = require("agentcore.util")

describe("agentcore", function()
  it("says it runs outside the host here", function()
    assert.is_false(ac.in_host)
  end)

  it("uses cjson.null as null, like the host", function()
    assert.are.equal(require("cjson").null, ac.null)
    assert.is_true(ac.is_null(ac.null))
    assert.is_false(ac.is_null(nil))
    assert.is_false(ac.is_null(false))
  end)

  it("marks arrays with array_mt, new or given", function()
    local a = ac.array()
    assert.are.equal(ac.array_mt, getmetatable(a))
    local t = { 1, 2 }
    assert.are.equal(t, ac.array(t))
    assert.are.equal(ac.array_mt, getmetatable(t))
  end)

  describe("is_array", function()
    it("accepts keys 1..n and marked tables, even empty", function()
      assert.is_true(ac.is_array({ 1, 2, 3 }))
      assert.is_true(ac.is_array({ [1] = "a", [2] = "b" }))
      assert.is_true(ac.is_array(ac.array()))
    end)
    it("rejects objects, holes, mixed keys, empty plain tables and non-tables", function()
      assert.is_false(ac.is_array({ a = 1 }))
      assert.is_false(ac.is_array({ [1] = 1, [3] = 3 }))
      assert.is_false(ac.is_array({ 1, a = 2 }))
      assert.is_false(ac.is_array({ [0] = 1 }))
      assert.is_false(ac.is_array({ [1.5] = 1 }))
      assert.is_false(ac.is_array({}))
      assert.is_false(ac.is_array("x"))
      assert.is_false(ac.is_array(nil))
    end)
  end)

  describe("is_object", function()
    it("accepts tables with string keys only, and {}", function()
      assert.is_true(ac.is_object({}))
      assert.is_true(ac.is_object({ a = 1, b = { 2 } }))
    end)
    it("rejects arrays, marked tables, null and non-tables", function()
      assert.is_false(ac.is_object({ 1, 2 }))
      assert.is_false(ac.is_object(ac.array()))
      assert.is_false(ac.is_object({ a = 1, [2] = 2 }))
      assert.is_false(ac.is_object(ac.null))
      assert.is_false(ac.is_object("x"))
    end)
  end)
end)

describe("agentcore.util", function()
  it("trims whitespace on both sides", function()
    assert.are.equal("a b", util.trim("  a b \t\n"))
    assert.are.equal("a", util.trim("a"))
    assert.are.equal("", util.trim(" \t\r\n\v\f"))
    assert.are.equal("", util.trim(""))
  end)

  it("trims a long run of spaces in linear time", function()
    local s = "x" .. string.rep(" ", 200000) .. "y" .. string.rep(" ", 200000)
    local t0 = os.clock()
    assert.are.equal(200002, #util.trim(s))
    assert.is_true(os.clock() - t0 < 0.5)
  end)

  it("normalizes by trimming and lowercasing", function()
    assert.are.equal("add 3 and 4", util.normalize("  Add 3 AND 4 "))
  end)

  it("tells non-empty strings", function()
    assert.is_true(util.is_nonempty_string(" x "))
    assert.is_false(util.is_nonempty_string("  \t"))
    assert.is_false(util.is_nonempty_string(""))
    assert.is_false(util.is_nonempty_string(3))
  end)

  it("splits on a plain separator, keeping empty parts", function()
    assert.are.same({ "a", "b", "", "c" }, util.split("a,b,,c"))
    assert.are.same({ "a.b", "c" }, util.split("a.b::c", "::"))
    assert.are.same({ "" }, util.split(""))
    assert.has_error(function() util.split("a", "") end)
  end)

  it("checks prefixes and suffixes", function()
    assert.is_true(util.starts_with("agentcore", "agent"))
    assert.is_false(util.starts_with("agent", "agentcore"))
    assert.is_true(util.ends_with("plugin.lua", ".lua"))
    assert.is_true(util.ends_with("x", ""))
    assert.is_false(util.ends_with("lua", ".lua"))
  end)

  it("sorts keys, numbers before strings", function()
    assert.are.same({ 1, 2, "a", "b" }, util.sorted_keys({ b = 1, a = 1, [2] = 1, [1] = 1 }))
  end)

  it("deep-copies tables, keeping metatables and shared structure", function()
    local shared = { 1 }
    local t = ac.array({ { x = shared, y = shared } })
    local c = util.deepcopy(t)
    assert.are.same(t, c)
    assert.are_not.equal(t[1], c[1])
    assert.are.equal(c[1].x, c[1].y)
    assert.are.equal(ac.array_mt, getmetatable(c))
    local cyc = {}
    cyc.self = cyc
    local cc = util.deepcopy(cyc)
    assert.are.equal(cc, cc.self)
  end)

  it("builds validator problems with 0-based JSON positions", function()
    local p = {}
    util.problem(p, "training_data", 8, "query", "must be a non-empty string")
    util.problem(p, "evaluation_data", 1, nil, "must be an object")
    util.problem(p, "training_data", nil, nil, "needs at least 100 queries, got 3")
    assert.are.same({
      { index = 7, field = "training_data[7].query", error = "must be a non-empty string" },
      { index = 0, field = "evaluation_data[0]", error = "must be an object" },
      { field = "training_data", error = "needs at least 100 queries, got 3" },
    }, p)
  end)
end)
