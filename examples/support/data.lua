-- Data generator for the support agent (plugins/agents/support.lua).
--
--   local data = require("support.data").generate(42, 256, 64)
--   data.training_data[1] --> { query = "Hi, this is Maria Lopez. Please refund the kettle.",
--     expected_outcome = { customer = "Maria Lopez", min_steps = 5,
--       requests = { { action = "refund", order_id = "ORD-4821", amount = 129.99, verify = true } } } }
--
-- A message: the customer introduces themselves (required when a request names an item, the
-- agent then has to search the orders by name or item), then asks for one to three things,
-- each about an item ("the kettle") or an order number ("order ORD-4821"): a refund, an
-- exchange, delivery to another city, or escalation to a manager. The answers (which order,
-- what amount, whether the shop's policy asks for verification) come from agent.world(query),
-- the shop the agent itself builds for that message, so the data and the agent always agree.
--
-- Splits, each drawn from its own part of the space so that they test generalisation:
--   training_data, validation_data, evaluation_data (test_iid): one or two requests in the
--     training phrasings, never the request pairs held out below;
--   tests.templates: one or two requests in phrasings never used in training (other word
--     orders and inflections of the same request words: "should be refunded", "exchanging");
--   tests.compositions: three requests, each message with at least one pair of consecutive
--     requests that no training message has (an exchange then an escalation, an address
--     change then a refund).
-- No query text occurs in two splits. Deterministic for a seed (agentcore.rng, never
-- math.random).

local here = select(2, ...)  -- this file's path when loaded by require

local function load_agent()
  local ok, agent = pcall(require, "agents.support")
  if ok or type(package) ~= "table" then return ok and agent or error(agent, 0) end
  -- Loaded without plugins/ on package.path: find it next to this file.
  local root = type(here) == "string" and here:match("^(.-)examples[/\\]support[/\\]data%.lua$")
  package.path = (root or "./") .. "plugins/?.lua;" .. package.path
  return require("agents.support")
end
local agent = load_agent()

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64

local new_rng = require("agentcore.rng").new

local ACTIONS = { "refund", "exchange", "change_address", "escalate" }
-- consecutive requests that only tests.compositions has
local HELD_PAIRS = { ["exchange escalate"] = true, ["change_address refund"] = true }
M.HELD_PAIRS = HELD_PAIRS

local INTRO = {
  train = { "Hi, this is {first} {last}.", "{first} {last} here.", "Hello, my name is {first} {last}.",
    "Dear support, I am {first} {last}." },
  held = { "Good morning from {first} {last}.", "{first} {last} writing." },
}

-- {obj}: "the kettle", "my kettle", "order ORD-4821", "my order ORD-4821"; {city}: a city.
local CLAUSE = {
  train = {
    refund = { "please refund {obj}", "I want a refund for {obj}", "can you refund {obj}?",
      "{obj} arrived broken, refund it please" },
    exchange = { "please exchange {obj}", "I want to exchange {obj}", "can you exchange {obj} for a new one?",
      "{obj} is the wrong size, exchange it please" },
    change_address = { "please send {obj} to {city}", "change the address of {obj} to {city}",
      "can you ship {obj} to {city}?", "I moved, send {obj} to {city} please" },
    escalate = { "please escalate {obj} to a manager", "I want a manager to look at {obj}",
      "can you escalate my complaint about {obj}?", "{obj} is a disaster, escalate it please" },
  },
  held = {
    refund = { "{obj} should be refunded", "I am asking for {obj} to be refunded",
      "refunding {obj} would help" },
    exchange = { "{obj} should be exchanged", "I am asking for {obj} to be exchanged",
      "exchanging {obj} would help" },
    change_address = { "{obj} should be sent to {city}", "I am asking for {obj} to be shipped to {city}",
      "sending {obj} to {city} would help" },
    escalate = { "{obj} should be escalated to a manager", "I am asking for {obj} to be escalated",
      "escalating {obj} would help" },
  },
}

local OBJ_ITEM = { "the {item}", "my {item}" }
local OBJ_ID = { "order {id}", "my order {id}" }
local JOIN = { " Also, ", " And ", " Then " }
local END = { "", " Thanks.", " Thank you!" }

local function fill(template, vars) return (string.gsub(template, "{(%a+)}", vars)) end
local function capital(s) return (string.gsub(s, "^%l", string.upper)) end

-- A chain of `len` actions: held pairs only when `held` (and then at least one), each action
-- at most once.
local function draw_actions(rng, len, held)
  for _ = 1, 500 do
    local acts, used, has_held, ok = {}, {}, false, true
    for k = 1, len do
      local a = rng.pick(ACTIONS)
      if used[a] then ok = false break end
      used[a] = true
      acts[k] = a
      if k > 1 and HELD_PAIRS[acts[k - 1] .. " " .. a] then
        has_held = true
        if not held then ok = false end
      end
    end
    if ok and (has_held or not held) then return acts end
  end
  error("support data: cannot draw " .. len .. " requests")
end

-- One message of `len` requests in the given phrasing ("train" or "held").
local function draw_query(rng, len, phrasing, held_pairs)
  local acts = draw_actions(rng, len, held_pairs)
  local first, last = rng.pick(agent.FIRST), rng.pick(agent.LAST)
  local refs, items, ids, any_item = {}, {}, {}, false
  for k = 1, len do
    if rng.int(1, 10) <= 7 then
      local item
      repeat item = rng.pick(agent.ITEMS) until not items[item]
      items[item] = true
      refs[k] = { item = item, text = fill(rng.pick(OBJ_ITEM), { item = item }) }
      any_item = true
    else
      local id
      repeat id = string.format("ORD-%04d", rng.int(1000, 9999)) until not ids[id]
      ids[id] = true
      refs[k] = { id = id, text = fill(rng.pick(OBJ_ID), { id = id }) }
    end
  end
  local parts = {}
  if any_item or rng.int(0, 1) == 1 then
    parts[1] = fill(rng.pick(INTRO[phrasing]), { first = first, last = last }) .. " "
  end
  local cities = {}
  for k, a in ipairs(acts) do
    local city = rng.pick(agent.CITIES)
    cities[k] = city
    local clause = fill(rng.pick(CLAUSE[phrasing][a]), { obj = refs[k].text, city = city })
    if k > 1 then parts[#parts + 1] = rng.pick(JOIN) .. clause else parts[#parts + 1] = capital(clause) end
    if not string.match(clause, "[%.%?!]$") then parts[#parts + 1] = "." end
  end
  parts[#parts + 1] = rng.pick(END)
  local query = table.concat(parts)

  -- the answers, from the shop the agent builds for this message
  local world = agent.world(query)
  local requests, min_steps = {}, (any_item and 1 or 0) + 1
  for k, a in ipairs(acts) do
    local o = refs[k].item and world.by_item[refs[k].item] or world.by_id[refs[k].id]
    assert(o and o.customer == world.writer, "support data: the shop lacks an order of the message")
    local r = { action = a, order_id = o.id }
    if a == "refund" then
      r.amount = o.amount
      r.verify = o.amount > agent.VERIFY_OVER_USD
      min_steps = min_steps + 2 + (r.verify and 1 or 0)
    else
      min_steps = min_steps + 1
    end
    if a == "change_address" then r.city = cities[k] end
    requests[k] = r
  end
  return { query = query, expected_outcome = { customer = world.writer, requests = requests,
    min_steps = min_steps } }
end

-- n distinct queries (not in seen) drawn by draw(rng).
local function split(rng, n, seen, draw)
  local out, attempts = {}, 0
  while #out < n do
    attempts = attempts + 1
    if attempts > 200 * n + 1000 then error("support data: could not draw enough distinct queries") end
    local q = draw(rng)
    local key = string.lower(q.query) -- the validator compares lowercased texts
    if not seen[key] then
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
  local function iid(r) return draw_query(r, r.int(1, 2), "train", false) end
  return {
    training_data = split(rng, n_train, seen, iid),
    validation_data = split(rng, n_eval, seen, iid),
    evaluation_data = split(rng, n_eval, seen, iid),
    tests = {
      templates = split(rng, n_eval, seen, function(r) return draw_query(r, r.int(1, 2), "held", false) end),
      compositions = split(rng, n_eval, seen, function(r) return draw_query(r, 3, "train", true) end),
    },
  }
end

M.ACTIONS, M.INTRO, M.CLAUSE, M.JOIN = ACTIONS, INTRO, CLAUSE, JOIN

return M
