-- Data generator for the calculator agent (plugins/agents/calculator.lua).
--
--   local data = require("calculator.data").generate(42)        -- 256 training, 64 held-out
--   data.training_data[1] --> { query = "Multiply 7 by 6.", expected_outcome = { answer = 42,
--                                ops = { "multiply" } } }
--
-- Half the queries need one operation, half need two (composed clauses such as "add 3 and 4,
-- then multiply by 5", or short stories). Operations are drawn uniformly, so no single
-- operation solves more than about a quarter of the queries. Numbers are chosen so that every
-- intermediate value is a positive integer and so that exactly one sequence of operations gives
-- the answer (the reward then identifies the right operations). Deterministic for a seed: the
-- generator uses its own 64-bit LCG, never math.random. Held-out queries come from the same
-- phrasings with other numbers; no held-out query text equals a training query text.

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64

local OPERATIONS = { "add", "subtract", "subtract_from", "multiply", "divide" }

-- A deterministic RNG shared by the generators (lua/agentcore/rng.lua).
local new_rng = require("agentcore.rng").new
M.new_rng = new_rng

-- One-operation phrasings; {1} and {2} are the numbers in the order they appear.
local SINGLE = {
  add = {
    "What is {1} plus {2}?",
    "Add {1} and {2}.",
    "What is the sum of {1} and {2}?",
    "I had {1} apples and bought {2} more. How many apples do I have now?",
    "There are {1} birds on a tree and {2} more birds join them. How many birds are there in total?",
    "Calculate the total of {1} and {2}.",
    "Increase {1} by {2}.",
    "A library has {1} books and receives {2} new ones. How many books does it have altogether?",
  },
  subtract = {
    "What is {1} minus {2}?",
    "I had {1} apples and ate {2}, how many are left?",
    "What is the difference between {1} and {2}?",
    "What is {1} take away {2}?",
    "Decrease {1} by {2}.",
    "A shop had {1} shirts and sold {2}. How many shirts remain?",
    "Tom has {1} marbles and loses {2}. How many marbles does he still have?",
  },
  subtract_from = {
    "Subtract {1} from {2}.",
    "Take {1} away from {2}.",
    "What is {1} less than {2}?",
    "Remove {1} from {2}, what is left?",
    "Deduct {1} from {2}.",
    "What do you get if you subtract {1} from {2}?",
  },
  multiply = {
    "What is {1} times {2}?",
    "Multiply {1} by {2}.",
    "What is the product of {1} and {2}?",
    "There are {1} boxes with {2} pens in each box. How many pens are there?",
    "What is {1} multiplied by {2}?",
    "How much is {1} groups of {2}?",
    "A garden has {1} rows of {2} flowers each. How many flowers are there?",
  },
  divide = {
    "What is {1} divided by {2}?",
    "Divide {1} by {2}.",
    "Split {1} cookies equally among {2} kids. How many cookies does each kid get?",
    "Share {1} candies equally between {2} friends. How many does each friend get?",
    "What is the quotient of {1} and {2}?",
    "{1} students are put into {2} equal teams. How many students are in each team?",
  },
}

-- First clause of a composed two-operation query.
local FIRST = {
  add = { "add {1} and {2}", "start with {1} plus {2}", "take the sum of {1} and {2}", "find {1} plus {2}" },
  subtract = { "take {1} minus {2}", "start with {1} minus {2}",
    "find the difference between {1} and {2}", "compute {1} take away {2}" },
  subtract_from = { "subtract {1} from {2}", "take {1} away from {2}", "deduct {1} from {2}" },
  multiply = { "multiply {1} by {2}", "take the product of {1} and {2}", "start with {1} times {2}",
    "compute {1} multiplied by {2}" },
  divide = { "divide {1} by {2}", "start with {1} divided by {2}", "split {1} into {2} equal parts",
    "take the quotient of {1} and {2}" },
}

-- Second clause: combines the result with {3}.
local SECOND = {
  add = { "add {3}", "add {3} to the result", "increase it by {3}", "add another {3}" },
  subtract = { "subtract {3}", "take away {3}", "subtract {3} from the result", "decrease it by {3}",
    "minus {3}" },
  subtract_from = { "subtract the result from {3}", "take that away from {3}", "subtract it from {3}",
    "deduct that from {3}" },
  multiply = { "multiply by {3}", "multiply the result by {3}", "times {3}", "multiply it by {3}" },
  divide = { "divide by {3}", "divide the result by {3}", "split it into {3} equal parts",
    "divide it by {3}" },
}

local CONNECTIVES = { ", then ", ", and then ", " and then ", ". Then ", ", after that ", ". After that, ",
  ", afterwards " }
local PREFIXES = { "", "", "Please ", "First " }
local ENDINGS = { ".", ".", "?", ". What do you get?", ". What is the result?" }

-- Two-operation stories; each fixes its operations.
local STORIES = {
  { ops = { "add", "subtract" },
    text = "I had {1} apples and bought {2} more, then I ate {3}. How many apples are left?" },
  { ops = { "multiply", "add" },
    text = "A box holds {1} rows of {2} eggs. Then {3} more eggs are added. How many eggs are there?" },
  { ops = { "subtract", "divide" },
    text = "Sam had {1} stickers and gave away {2}, then shared the rest equally among {3} friends. "
      .. "How many stickers did each friend get?" },
  { ops = { "add", "multiply" },
    text = "A team has {1} boys, and {2} more girls join. After that, each player brings {3} balls. "
      .. "How many balls are there?" },
  { ops = { "multiply", "subtract" },
    text = "There are {1} bags with {2} oranges in each bag, then {3} oranges go bad. "
      .. "How many good oranges are left?" },
  { ops = { "divide", "add" },
    text = "Split {1} pencils equally among {2} students, then each student gets {3} more. "
      .. "How many pencils does each student have?" },
  { ops = { "subtract", "multiply" },
    text = "A shop had {1} lamps and sold {2}. Then it packs {3} bulbs for each remaining lamp. "
      .. "How many bulbs does it pack?" },
  { ops = { "add", "divide" },
    text = "Ann picked {1} cherries and Ben picked {2} more, then they split them equally into {3} bowls. "
      .. "How many cherries are in each bowl?" },
}

local APPLY = {
  add = function(a, b) return a + b end,
  subtract = function(a, b) return a - b end,
  subtract_from = function(a, b) return b - a end,
  multiply = function(a, b) return a * b end,
  divide = function(a, b) if b == 0 then return nil end return a / b end,
}

-- Numbers for the first operation (both operands, in text order).
local function first_operands(rng, op)
  if op == "add" then return rng.int(2, 50), rng.int(2, 50)
  elseif op == "subtract" then local b = rng.int(2, 40); return b + rng.int(1, 40), b
  elseif op == "subtract_from" then local a = rng.int(2, 40); return a, a + rng.int(1, 40)
  elseif op == "multiply" then return rng.int(2, 12), rng.int(2, 12)
  else local b, q = rng.int(2, 12), rng.int(2, 12); return b * q, b end
end

-- The operand of a later operation given the working value v (nil: no good operand).
local function next_operand(rng, op, v)
  if op == "add" then return rng.int(2, 50)
  elseif op == "subtract" then if v < 3 then return nil end return rng.int(2, math.min(v - 1, 60))
  elseif op == "subtract_from" then return v + rng.int(1, 50)
  elseif op == "multiply" then if v > 100 then return nil end return rng.int(2, 9)
  else
    local divisors = {}
    for d = 2, 12 do if v % d == 0 and v // d >= 2 then divisors[#divisors + 1] = d end end
    if #divisors == 0 then return nil end
    return rng.pick(divisors)
  end
end

local function exact(op, a, b)
  if op == "divide" then return a // b end
  return APPLY[op](a, b)
end

-- How many operation sequences of the same length turn nums into answer.
local function count_solutions(nums, answer)
  local count = 0
  local function walk(v, i)
    if v == nil then return end
    if i > #nums then
      if math.abs(v - answer) < 1e-9 then count = count + 1 end
      return
    end
    for _, op in ipairs(OPERATIONS) do walk(APPLY[op](v, nums[i]), i + 1) end
  end
  walk(nums[1], 2)
  return count
end
M.count_solutions = count_solutions

-- Operands for ops, or nil when this draw failed (the caller draws again).
local function draw_numbers(rng, ops)
  local a, b = first_operands(rng, ops[1])
  local nums = { a, b }
  local v = exact(ops[1], a, b)
  for k = 2, #ops do
    local c = next_operand(rng, ops[k], v)
    if not c then return nil end
    nums[#nums + 1] = c
    v = exact(ops[k], v, c)
  end
  if v < 1 or v > 999 then return nil end
  if count_solutions(nums, v) ~= 1 then return nil end
  return nums, v
end

local function render(template, nums)
  local text = string.gsub(template, "{(%d)}", function(i) return tostring(nums[tonumber(i)]) end)
  return (string.gsub(text, "^%l", string.upper))
end

-- One query: returns text, ops, nums, answer (or nil when this draw failed).
local function draw_query(rng)
  local kind = rng.int(1, 20)
  local ops, template
  if kind <= 10 then
    ops = { rng.pick(OPERATIONS) }
    template = rng.pick(SINGLE[ops[1]])
  elseif kind <= 17 then
    ops = { rng.pick(OPERATIONS), rng.pick(OPERATIONS) }
    template = rng.pick(PREFIXES) .. rng.pick(FIRST[ops[1]]) .. rng.pick(CONNECTIVES)
      .. rng.pick(SECOND[ops[2]]) .. rng.pick(ENDINGS)
  else
    local story = rng.pick(STORIES)
    ops, template = story.ops, story.text
  end
  local nums, answer
  for _ = 1, 50 do
    nums, answer = draw_numbers(rng, ops)
    if nums then break end
  end
  if not nums then return nil end
  return render(template, nums), ops, nums, answer
end

function M.generate(seed, n_train, n_eval)
  n_train = n_train or M.DEFAULT_TRAIN
  n_eval = n_eval or M.DEFAULT_EVAL
  local rng = new_rng(seed)
  local seen = {}
  local all = {}
  local attempts = 0
  while #all < n_train + n_eval do
    attempts = attempts + 1
    if attempts > 100 * (n_train + n_eval) + 1000 then
      error("calculator data: could not draw enough distinct queries")
    end
    local text, ops, _, answer = draw_query(rng)
    local key = text and string.lower(text)  -- the validator compares lowercased texts
    if key and not seen[key] then
      seen[key] = true
      local copy = {}
      for i, op in ipairs(ops) do copy[i] = op end
      all[#all + 1] = { query = text, expected_outcome = { answer = answer, ops = copy } }
    end
  end
  local training, evaluation = {}, {}
  for i, q in ipairs(all) do
    if i <= n_train then training[#training + 1] = q else evaluation[#evaluation + 1] = q end
  end
  return { training_data = training, evaluation_data = evaluation }
end

return M
