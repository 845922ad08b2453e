-- Calculator agent: arithmetic word problems solved with explicit tool calls.
--
-- An episode is: extract_numbers, then one operation per remaining number, then answer.
--   "add 3 and 4, then multiply by 5"  ->  extract_numbers, add, multiply, answer  (= 35)
-- The numbers are taken in the order they appear in the query; the first one is the working
-- value, and every operation combines the working value with the next unused number:
--   add: v + n   subtract: v - n   subtract_from: n - v   multiply: v * n   divide: v / n
-- ("subtract 9 from 20" reads 9 first, so it is subtract_from: 20 - 9.)
--
-- What the policy sees (agent.observe) is built so that the one real decision, which operation
-- comes next, can be read off the words:
--   * the query is split into clauses at "then" / "after that" / "afterwards", and only the
--     clause that holds the next operand is shown ("add 3 and 4, then multiply by 5" shows
--     "add num and num" for the first operation and "multiply by num" for the second);
--   * numbers are replaced by the word "num": the state does the arithmetic, the policy never
--     has to look at values;
--   * a progress marker "step:N ops:K" says where the episode is, without operation names (so
--     that a done "add" is never confused with an "add" in the query).
-- agent.legal removes the senseless choices: first only extract_numbers, then only operations
-- while numbers are left, then only answer (every extracted number must be used).
-- Queries with fewer than two numbers go straight from extract_numbers to answer.

local agent = {
  name = "calculator",
  version = "1.0.0",
  description = "Solves arithmetic word problems: extracts the numbers, applies one operation "
    .. "per number in query order, and answers with the working value.",
  actions = { "extract_numbers", "add", "subtract", "subtract_from", "multiply", "divide", "answer" },
  tools = {
    extract_numbers = { cost_usd = 0.0001, description = "reads the numbers of the query, in order" },
    add = { cost_usd = 0.0001, description = "working value + next number" },
    subtract = { cost_usd = 0.0001, description = "working value - next number" },
    subtract_from = { cost_usd = 0.0001, description = "next number - working value" },
    multiply = { cost_usd = 0.0001, description = "working value * next number" },
    divide = { cost_usd = 0.0001, description = "working value / next number" },
    answer = { cost_usd = 0, description = "ends the episode with the working value" },
  },
  max_steps = 8,
}

local OPS = {
  add = function(a, b) return a + b end,
  subtract = function(a, b) return a - b end,
  subtract_from = function(a, b) return b - a end,
  multiply = function(a, b) return a * b end,
  divide = function(a, b)
    if b == 0 then error("divide: division by zero", 0) end
    return a / b
  end,
}

-- Integral floats (20 / 4 = 5.0) become integers, so that answers read 5, not 5.0.
local function tidy(x)
  if math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 2^53 then
    return math.tointeger(x)
  end
  return x
end

-- Splits text into lowercase words; every number becomes the word "num" and is collected.
-- Returns tokens ({ w = word, num = index or nil }) and the numbers in query order.
local function tokenize(text)
  local s = string.lower(text)
  local toks, nums = {}, {}
  local i, n = 1, #s
  while i <= n do
    local a, b = string.find(s, "^%d+%.%d+", i)
    if not a then a, b = string.find(s, "^%d+", i) end
    if a then
      nums[#nums + 1] = tidy(tonumber(string.sub(s, a, b)))
      toks[#toks + 1] = { w = "num", num = #nums }
      i = b + 1
    else
      a, b = string.find(s, "^%a+", i)
      if a then
        toks[#toks + 1] = { w = string.sub(s, a, b) }
        i = b + 1
      else
        i = i + 1
      end
    end
  end
  return toks, nums
end

local function join(toks, from, to)
  local out = {}
  for i = from, to do out[#out + 1] = toks[i].w end
  return table.concat(out, " ")
end

-- Clauses end at "then", "after that" and "afterwards"; a dangling "and" is dropped.
-- Returns an array of { text = "...", nums = { [index] = true } }.
local function split_clauses(toks)
  local clauses = {}
  local start, i = 1, 1
  local function close(last)
    local first = start
    while first <= last and toks[first].w == "and" do first = first + 1 end
    while last >= first and toks[last].w == "and" do last = last - 1 end
    if last >= first then
      local c = { text = join(toks, first, last), nums = {} }
      for k = first, last do
        if toks[k].num then c.nums[toks[k].num] = true end
      end
      clauses[#clauses + 1] = c
    end
  end
  while i <= #toks do
    local w = toks[i].w
    local width = 0
    if w == "then" or w == "afterwards" then
      width = 1
    elseif w == "after" and toks[i + 1] and toks[i + 1].w == "that" then
      width = 2
    end
    if width > 0 then
      close(i - 1)
      start = i + width
      i = start
    else
      i = i + 1
    end
  end
  close(#toks)
  return clauses
end

function agent.init(query)
  if type(query) == "table" then query = query.query end
  if type(query) ~= "string" then error("calculator: query must be a string", 0) end
  local toks, nums = tokenize(query)
  return {
    query = query,
    text = join(toks, 1, #toks),
    clauses = split_clauses(toks),
    all_numbers = nums,  -- known to the state only; shown to the policy after extract_numbers
    numbers = nil,       -- set by extract_numbers
    next_index = 2,      -- the next unused number
    value = nil,         -- the working value
    ops = {},
    steps = 0,
    answered = false,
  }
end

-- The clause that holds the operand of the next operation (or the whole query).
local function focus(state)
  for _, c in ipairs(state.clauses) do
    if c.nums[state.next_index] then return c.text end
  end
  if #state.clauses > 0 then return state.clauses[#state.clauses].text end
  return state.text
end

function agent.observe(state)
  if not state.numbers then
    return state.text .. " | step:0"
  end
  return focus(state) .. " | step:" .. state.steps .. " ops:" .. #state.ops
end

function agent.legal(state)
  if state.answered then return {} end
  if not state.numbers then return { "extract_numbers" } end
  if #state.numbers >= 2 and state.next_index <= #state.numbers then
    return { "add", "subtract", "subtract_from", "multiply", "divide" }
  end
  return { "answer" }
end

function agent.step(state, action)
  if state.answered then error("calculator: the episode has ended", 0) end
  state.steps = state.steps + 1
  if action == "extract_numbers" then
    if state.numbers then error("extract_numbers: numbers already extracted", 0) end
    state.numbers = state.all_numbers
    state.value = state.numbers[1]
    local result = { count = #state.numbers }
    if #state.numbers > 0 then result.numbers = state.numbers end
    return { text = state.query }, result, false
  elseif action == "answer" then
    state.answered = true
    return { value = state.value }, { answer = state.value }, true
  end
  local op = OPS[action]
  if not op then error("calculator: unknown action '" .. tostring(action) .. "'", 0) end
  if not state.numbers then error(action .. ": extract the numbers first", 0) end
  local b = state.numbers[state.next_index]
  if b == nil then error(action .. ": no number left", 0) end
  local a = state.value
  state.value = tidy(op(a, b))
  state.next_index = state.next_index + 1
  state.ops[#state.ops + 1] = action
  return { a = a, b = b }, { value = state.value }, false
end

function agent.final(state)
  if state.answered then return { answer = state.value } end
  return { answer = nil, unanswered = true }
end

return agent
