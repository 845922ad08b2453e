-- Data generator for the calculator agent (plugins/agents/calculator.lua).
--
--   local data = require("calculator.data").generate(42, 256, 64)
--   data.training_data[1] --> { query = "Start with 7, add 5, then multiply by 3.",
--                                expected_outcome = { answer = 36, ops = { "add", "multiply" },
--                                                     values = { 12, 36 } } }
--
-- A query is a starting number and a chain of operations, each a clause with its operand:
-- add, subtract, subtract it FROM a number (the operands swap), multiply, divide. Every
-- intermediate value is a positive integer below 2000 and no number appears twice in a query.
--
-- Splits, each drawn from its own part of the space so that they test generalisation:
--   training_data, validation_data, evaluation_data (test_iid): 1 to 3 operations, the training
--     phrasings, and never the operation pairs held out below;
--   tests.templates: the same chains in phrasings never used in training (other inflections and
--     word orders of the same operation words: "adding 5", "5 gets added");
--   tests.compositions: 4 or 5 operations, each chain with at least one pair of consecutive
--     operations that no training query has (divide then add, subtract-from then multiply).
-- No query text occurs in two splits. Deterministic for a seed (agentcore.rng, never
-- math.random).

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64

local new_rng = require("agentcore.rng").new
M.new_rng = new_rng

local OPS = { "add", "sub", "rsub", "mul", "div" }
local TOOL = { add = "add", sub = "subtract", rsub = "subtract", mul = "multiply", div = "divide" }
-- consecutive operations that only tests.compositions has
local HELD_PAIRS = { ["div add"] = true, ["rsub mul"] = true }
M.HELD_PAIRS = HELD_PAIRS

local START = {
  train = { "Start with {n}", "Take {n}", "Begin with {n}", "Think of {n}" },
  held = { "Let the number be {n}", "The first number is {n}" },
}

local CLAUSE = {
  train = {
    add = { "add {n}", "plus {n}", "increase it by {n}", "add {n} to it" },
    sub = { "subtract {n}", "minus {n}", "decrease it by {n}", "take away {n}" },
    rsub = { "subtract it from {n}", "take it away from {n}" },
    mul = { "multiply by {n}", "times {n}", "multiply it by {n}" },
    div = { "divide by {n}", "divide it by {n}", "split it into {n} equal parts" },
  },
  held = {
    add = { "adding {n}", "{n} gets added", "and add on {n}" },
    sub = { "subtracting {n}", "{n} gets subtracted", "and take {n} away" },
    rsub = { "subtracting it from {n}", "it gets taken away from {n}" },
    mul = { "multiplying by {n}", "it gets multiplied by {n}" },
    div = { "dividing by {n}", "it gets divided by {n}", "split into {n} parts" },
  },
}

local JOIN = {
  train = { ", ", ", then ", ", and then ", ". Then ", ", after that " },
  held = { "; next ", ", and next " },
}
local END = { ".", "?", ". What is the result?" }

-- The operand of `op` applied to v, or nil when none keeps the chain in range.
local function operand(rng, op, v, used)
  local n
  if op == "add" then n = rng.int(2, 50)
  elseif op == "sub" then if v < 4 then return nil end n = rng.int(2, math.min(v - 1, 60))
  elseif op == "rsub" then n = v + rng.int(1, 40)
  elseif op == "mul" then if v > 200 then return nil end n = rng.int(2, 9)
  else
    local ds = {}
    for d = 2, 12 do if v % d == 0 and v // d >= 2 then ds[#ds + 1] = d end end
    if #ds == 0 then return nil end
    n = rng.pick(ds)
  end
  if used[n] then return nil end
  return n
end

local function apply(op, v, n)
  if op == "add" then return v + n
  elseif op == "sub" then return v - n
  elseif op == "rsub" then return n - v
  elseif op == "mul" then return v * n
  else return v // n end
end

-- A chain of `len` operations: held pairs only when `held` (and then at least one).
local function draw_ops(rng, len, held)
  for _ = 1, 200 do
    local ops, has_held, ok = {}, false, true
    for k = 1, len do
      ops[k] = rng.pick(OPS)
      if k > 1 and HELD_PAIRS[ops[k - 1] .. " " .. ops[k]] then
        has_held = true
        if not held then ok = false end
      end
    end
    if ok and (has_held or not held) then return ops end
  end
  error("calculator data: cannot draw a chain of " .. len .. " operations")
end

-- Numbers for the chain: start, operands, answer; nil when this draw fails.
local function draw_numbers(rng, ops)
  local used = {}
  local v = rng.int(2, 30)
  used[v] = true
  local nums, values = { v }, {}
  for _, op in ipairs(ops) do
    local n = operand(rng, op, v, used)
    if not n then return nil end
    used[n] = true
    nums[#nums + 1] = n
    v = apply(op, v, n)
    if v < 1 or v > 2000 then return nil end
    values[#values + 1] = v
  end
  return nums, v, values
end

local function fill(template, n) return (string.gsub(template, "{n}", tostring(n))) end

-- One query of `len` operations in the given phrasing ("train" or "held").
local function draw_query(rng, len, phrasing, held_pairs)
  local ops = draw_ops(rng, len, held_pairs)
  local nums, answer, values
  for _ = 1, 50 do
    nums, answer, values = draw_numbers(rng, ops)
    if nums then break end
  end
  if not nums then return nil end
  local parts = { fill(rng.pick(START[phrasing]), nums[1]) }
  local tools = {}
  for k, op in ipairs(ops) do
    parts[#parts + 1] = rng.pick(JOIN[phrasing]) .. fill(rng.pick(CLAUSE[phrasing][op]), nums[k + 1])
    tools[k] = TOOL[op]
  end
  parts[#parts + 1] = rng.pick(END)
  return { query = table.concat(parts), expected_outcome = { answer = answer, ops = tools, values = values } }
end

-- n distinct queries (not in seen) drawn by draw(rng).
local function split(rng, n, seen, draw)
  local out, attempts = {}, 0
  while #out < n do
    attempts = attempts + 1
    if attempts > 200 * n + 1000 then error("calculator data: could not draw enough distinct queries") end
    local q = draw(rng)
    local key = q and string.lower(q.query) -- the validator compares lowercased texts
    if key and not seen[key] then
      seen[key] = true
      out[#out + 1] = q
    end
  end
  return out
end

function M.generate(seed, n_train, n_eval)
  n_train = n_train or M.DEFAULT_TRAIN
  n_eval = n_eval or M.DEFAULT_EVAL
  local rng = new_rng(seed)
  local seen = {}
  local function iid(r) return draw_query(r, r.int(1, 3), "train", false) end
  return {
    training_data = split(rng, n_train, seen, iid),
    validation_data = split(rng, n_eval, seen, iid),
    evaluation_data = split(rng, n_eval, seen, iid),
    tests = {
      templates = split(rng, n_eval, seen, function(r) return draw_query(r, r.int(1, 3), "held", false) end),
      compositions = split(rng, n_eval, seen, function(r) return draw_query(r, r.int(4, 5), "train", true) end),
    },
  }
end

M.START, M.CLAUSE, M.JOIN = START, CLAUSE, JOIN

return M
