-- Shared by the calculator specs (spec/agents/calculator_spec.lua and
-- spec/examples/calculator_data_spec.lua): reading the operations back out of a generated query.
local assert = require("luassert") -- busted gives specs, not modules, its assert
local M = {}

-- The numbers of a query, in order.
local function numbers(text)
  local out = {}
  for n in text:gmatch("%d+") do out[#out + 1] = math.tointeger(tonumber(n)) end
  return out
end

-- The chain behind a generated query: per operation its tool, its operands a and b in the order
-- the tool takes them, and its internal kind ("sub" or "rsub" for subtract: subtracting FROM a
-- number swaps the operands). Read from the query's numbers (start, then one operand per
-- operation) and the expected intermediate values.
local function chain(q)
  local e, nums = q.expected_outcome, numbers(q.query)
  assert.are.equal(#e.ops + 1, #nums, q.query)
  local v, out = nums[1], {}
  for k, tool in ipairs(e.ops) do
    local n, want = nums[k + 1], e.values[k]
    local step
    if tool == "add" then step = { tool = tool, a = v, b = n, kind = "add" }
    elseif tool == "multiply" then step = { tool = tool, a = v, b = n, kind = "mul" }
    elseif tool == "divide" then step = { tool = tool, a = v, b = n, kind = "div" }
    elseif tool == "subtract" and v - n == want then step = { tool = tool, a = v, b = n, kind = "sub" }
    elseif tool == "subtract" and n - v == want then step = { tool = tool, a = n, b = v, kind = "rsub" }
    else error("no operation of " .. q.query .. " gives " .. tostring(want)) end
    out[k] = step
    v = want
  end
  return out
end

M.numbers = numbers
M.chain = chain

return M
