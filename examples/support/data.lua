-- Data generator for the support agent (plugins/agents/support.lua).
--
--   local data = require("support.data").generate(42)      -- 256 training, 64 held-out
--   data.training_data[1] --> { query = "Please refund order #4821, it arrived broken.",
--     expected_outcome = { resolution = "refunded", order_id = 4821,
--                          tools = { "lookup_order", "verify_customer", "refund", "reply" } } }
--
-- Seven cases, equally frequent: refund under / over the verification limit, shipping status,
-- cancellation before / after shipping (too late: the customer gets the shipping details),
-- address change (before shipping only), and a plain question about the order. Address
-- changes that come too late are left out on purpose: with them, the shipping words of address
-- requests ("shipping address", "ship it to") pulled every address request to check_shipping
-- and the real trainer never found update_address (0 of 64 held-out address changes). The order number is drawn until the agent's fake database
-- (agent.order_for) holds an order that fits the case, so the expected tools follow from the
-- same data the agent will see. Deterministic for a seed (own 64-bit LCG, never math.random);
-- no held-out query text equals a training query text.

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

local PHRASES = {
  refund = {
    "Please refund {ref}, it arrived broken.",
    "I want my money back for {ref}.",
    "{ref} was damaged when it arrived, I would like a refund.",
    "Can I get a refund for {ref}? The item doesn't work.",
    "Refund {ref} please, it is the wrong size.",
    "I'd like to return {ref} and get refunded.",
    "The item in {ref} stopped working after a day. Refund please.",
  },
  shipping = {
    "Where is {ref}?",
    "Has {ref} shipped yet?",
    "When will {ref} arrive?",
    "Can you track {ref} for me?",
    "What's the delivery status of {ref}?",
    "I'm still waiting for {ref}, where is it?",
  },
  cancel = {
    "Please cancel {ref}.",
    "I changed my mind, cancel {ref}.",
    "Can you cancel {ref} before it ships?",
    "I no longer need {ref}, please cancel it.",
    "Stop {ref}, I want to cancel it.",
  },
  address = {
    "Please change the shipping address of {ref} to {addr}.",
    "I moved, please send {ref} to {addr}.",
    "Update the delivery address for {ref} to {addr}.",
    "Can you ship {ref} to {addr} instead of my old address?",
    "Wrong address on {ref}: it should go to {addr}.",
  },
  info = {
    "How much did I pay for {ref}?",
    "What did I buy in {ref}?",
    "What is the total of {ref}?",
    "Which item is in {ref}?",
    "Can you tell me what {ref} contains?",
  },
}

local REFS = { "order #{id}", "order {id}", "order number {id}", "my order #{id}", "#{id}" }
local STREETS = { "Elm", "Oak", "Maple", "Cedar", "Pine", "Birch", "Lake", "Hill", "Park", "River",
  "Mill", "Church" }
local SUFFIXES = { "Street", "Avenue", "Road", "Lane", "Drive" }

local LIMIT = agent.REFUND_LIMIT_USD
local LOOKUP, VERIFY, REPLY = "lookup_order", "verify_customer", "reply"

-- The cases: intent, which orders fit, the tools that solve it and the resolution.
M.CASES = {
  { case = "refund_low", intent = "refund", resolution = "refunded",
    fits = function(o) return o.status == "delivered" and o.amount_usd <= LIMIT end,
    tools = { LOOKUP, "refund", REPLY } },
  { case = "refund_high", intent = "refund", resolution = "refunded",
    fits = function(o) return o.status == "delivered" and o.amount_usd > LIMIT end,
    tools = { LOOKUP, VERIFY, "refund", REPLY } },
  { case = "shipping", intent = "shipping", resolution = "shipping_info",
    fits = function() return true end,
    tools = { LOOKUP, "check_shipping", REPLY } },
  { case = "cancel", intent = "cancel", resolution = "cancelled",
    fits = function(o) return o.status == "processing" end,
    tools = { LOOKUP, "cancel_order", REPLY } },
  { case = "cancel_too_late", intent = "cancel", resolution = "shipping_info",
    fits = function(o) return o.status ~= "processing" end,
    tools = { LOOKUP, "check_shipping", REPLY } },
  { case = "address", intent = "address", resolution = "address_updated",
    fits = function(o) return o.status == "processing" end,
    tools = { LOOKUP, "update_address", REPLY } },
  { case = "info", intent = "info", resolution = "info",
    fits = function() return true end,
    tools = { LOOKUP, REPLY } },
}

local function draw(rng, case)
  local id, order
  repeat
    id = rng.int(1000, 99999)
    order = agent.order_for(id)
  until case.fits(order)
  local ref = string.gsub(rng.pick(REFS), "{id}", tostring(id))
  local addr = rng.int(1, 250) .. " " .. rng.pick(STREETS) .. " " .. rng.pick(SUFFIXES)
  local text = string.gsub(rng.pick(PHRASES[case.intent]), "{(%a+)}", { ref = ref, addr = addr })
  text = string.gsub(text, "^%l", string.upper)
  local tools = {}
  for i, t in ipairs(case.tools) do tools[i] = t end
  return { query = text, expected_outcome = { resolution = case.resolution, order_id = id, tools = tools } }
end

function M.generate(seed, n_train, n_eval)
  n_train = n_train or M.DEFAULT_TRAIN
  n_eval = n_eval or M.DEFAULT_EVAL
  local rng = new_rng(seed)
  local order = {}
  for i = 1, #M.CASES do order[i] = M.CASES[i] end
  for i = #order, 2, -1 do
    local j = rng.int(1, i)
    order[i], order[j] = order[j], order[i]
  end
  local seen, all = {}, {}
  local attempts = 0
  while #all < n_train + n_eval do
    attempts = attempts + 1
    if attempts > 100 * (n_train + n_eval) + 1000 then
      error("support data: could not draw enough distinct queries")
    end
    local q = draw(rng, order[#all % #order + 1])
    local key = string.lower(q.query)  -- the validator compares lowercased texts
    if not seen[key] then
      seen[key] = true
      all[#all + 1] = q
    end
  end
  local training, evaluation = {}, {}
  for i, q in ipairs(all) do
    if i <= n_train then training[#training + 1] = q else evaluation[#evaluation + 1] = q end
  end
  return { training_data = training, evaluation_data = evaluation }
end

return M
