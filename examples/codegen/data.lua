-- Data generator for the codegen agent (plugins/agents/codegen.lua).
--
--   local data = require("codegen.data").generate(42)      -- 256 training, 64 held-out
--   data.training_data[1] --> { query = "Write a function to sort a list in descending order.",
--     expected_outcome = { task = "sort_desc", snippets = { "sort", "reverse_list" },
--                          test_passed = true, execution_time_ms = 100 } }
--
-- 16 task kinds (small classic coding tasks and their neighbours: sort vs. sort descending,
-- reverse a list vs. a string, sum vs. sum of the distinct values, ...), each with several
-- phrasings, framed by a request ("Write a function to", "Help me", ...) and an ending.
-- Queries cycle through the tasks in a seed-shuffled order, so every task is about equally
-- frequent. Deterministic for a seed (own 64-bit LCG, never math.random); no held-out query
-- text equals a training query text.

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64
M.TIME_LIMIT_MS = 100

local new_rng = require("agentcore.rng").new

-- Task kind -> the snippets that solve it (in order) and its phrasings (bare infinitives).
M.TASKS = {
  { task = "sort", snippets = { "sort" }, phrases = {
    "sort a list", "sort a list of numbers", "sort numbers in ascending order",
    "order a list from smallest to largest", "put a list of numbers in increasing order" } },
  { task = "sort_desc", snippets = { "sort", "reverse_list" }, phrases = {
    "sort a list in descending order", "sort numbers from largest to smallest",
    "order a list from biggest to smallest", "sort a list in decreasing order" } },
  { task = "reverse_list", snippets = { "reverse_list" }, phrases = {
    "reverse a list", "reverse the order of the elements in a list",
    "flip a list of numbers back to front", "return a list in reverse order" } },
  { task = "unique", snippets = { "unique" }, phrases = {
    "remove duplicates from a list", "keep only the distinct values of a list",
    "deduplicate a list", "drop repeated numbers from a list" } },
  { task = "count_unique", snippets = { "unique", "length" }, phrases = {
    "count the distinct values in a list", "count how many unique numbers a list has",
    "return the number of different elements in a list" } },
  { task = "sum_unique", snippets = { "unique", "sum" }, phrases = {
    "sum the distinct values in a list", "add up the unique numbers of a list",
    "compute the total of the different values in a list" } },
  { task = "sum", snippets = { "sum" }, phrases = {
    "sum a list", "add up all numbers in a list", "compute the total of a list of numbers",
    "return the sum of a list" } },
  { task = "max", snippets = { "max" }, phrases = {
    "find the maximum", "find the largest number in a list", "return the biggest element of a list",
    "get the maximum value of a list" } },
  { task = "min", snippets = { "min" }, phrases = {
    "find the minimum", "find the smallest number in a list", "return the lowest element of a list",
    "get the minimum value of a list" } },
  { task = "length", snippets = { "length" }, phrases = {
    "count the elements of a list", "return the length of a list", "find how many items a list has" } },
  { task = "reverse_string", snippets = { "reverse_string" }, phrases = {
    "reverse a string", "reverse the characters of a string", "spell a word backwards",
    "return a string backwards" } },
  { task = "uppercase", snippets = { "uppercase" }, phrases = {
    "convert a string to uppercase", "make a string all capital letters", "turn text into upper case" } },
  { task = "count_vowels", snippets = { "count_vowels" }, phrases = {
    "count vowels", "count the vowels in a string", "find how many vowels a word has",
    "return the number of vowels in a text" } },
  { task = "palindrome", snippets = { "is_palindrome" }, phrases = {
    "check palindrome", "check if a string is a palindrome",
    "test whether a word reads the same backwards", "tell if a phrase is a palindrome" } },
  { task = "fizzbuzz", snippets = { "fizzbuzz" }, phrases = {
    "solve fizzbuzz", "play fizzbuzz up to n", "produce the fizzbuzz sequence up to n",
    "generate fizzbuzz output for the numbers up to n" } },
  { task = "factorial", snippets = { "factorial" }, phrases = {
    "compute the factorial of n", "calculate n factorial", "return the factorial of a number",
    "multiply all whole numbers up to n" } },
}

local REQUESTS = { "Write a function to ", "Write a Lua function to ", "Implement a function to ",
  "Create a helper to ", "Can you write code to ", "I need a function to ", "Please write a routine to ",
  "Show me a function to ", "Build a small function to ", "Make a function to ", "Help me ",
  "Code a function to " }
local ENDINGS = { "", ".", " please.", " in Lua.", " for me." }

local function draw_text(rng, spec)
  return rng.pick(REQUESTS) .. rng.pick(spec.phrases) .. rng.pick(ENDINGS)
end

function M.generate(seed, n_train, n_eval)
  n_train = n_train or M.DEFAULT_TRAIN
  n_eval = n_eval or M.DEFAULT_EVAL
  local rng = new_rng(seed)
  local order = {}
  for i = 1, #M.TASKS do order[i] = M.TASKS[i] end
  for i = #order, 2, -1 do  -- Fisher-Yates
    local j = rng.int(1, i)
    order[i], order[j] = order[j], order[i]
  end
  local seen, all = {}, {}
  local attempts = 0
  while #all < n_train + n_eval do
    local spec = order[#all % #order + 1]
    attempts = attempts + 1
    if attempts > 100 * (n_train + n_eval) + 1000 then
      error("codegen data: could not draw enough distinct queries")
    end
    local text = draw_text(rng, spec)
    local key = string.lower(text)  -- the validator compares lowercased texts
    if not seen[key] then
      seen[key] = true
      local snippets = {}
      for i, s in ipairs(spec.snippets) do snippets[i] = s end
      all[#all + 1] = { query = text, expected_outcome = { task = spec.task, snippets = snippets,
        test_passed = true, execution_time_ms = M.TIME_LIMIT_MS } }
    end
  end
  local training, evaluation = {}, {}
  for i, q in ipairs(all) do
    if i <= n_train then training[#training + 1] = q else evaluation[#evaluation + 1] = q end
  end
  return { training_data = training, evaluation_data = evaluation }
end

return M
