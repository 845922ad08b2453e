-- Support agent: a customer writes about one or more of their orders; the agent finds the
-- orders in the shop's database and acts on them with tool calls whose arguments the policy
-- picks from what it has seen.
--
--   "Hi, this is Maria Lopez. The kettle arrived broken, please refund it."
--     search_orders(text = "Lopez")        -> { orders = { "ORD-4821 kettle, Maria Lopez",
--                                                          "ORD-1093 lamp, Maria Lopez" } }
--     read_order(order_id = "ORD-4821")    -> { order = "ORD-4821", item = "kettle",
--                                               customer = "Maria Lopez", amount = 129.99,
--                                               status = "delivered", city = "Boston" }
--     verify_identity(order_id = "ORD-4821") -> { verified = true, customer = "Maria Lopez" }
--     refund(order_id = "ORD-4821", amount = 129.99) -> { refunded = 129.99 }
--     close_ticket()                       -> the episode ends
--
-- The database. Each query meets its own small shop, the same every time it is asked
-- (agent.world(query): drawn from a generator seeded with the query's text). The customer who
-- writes exists in it with an order for every item the message names and for every order
-- number it quotes ("ORD-4821"), and maybe other orders; a few other customers have orders too,
-- some for the same items, so that searching by item is ambiguous. Amounts, order numbers,
-- statuses and cities are drawn: the message never reveals them, only tool results do. The data
-- generator (examples/support/data.lua) calls agent.world too, to know the right answers.
--
-- The tools behave like a shop's API, nothing more:
--   * a call the backend rejects (an unknown order, a refund above what is left to refund, an
--     unknown city or customer) changes nothing and answers { error = "..." }, as an HTTP API
--     answers 4xx: the agent reads it and goes on. (A raised error would end the episode and
--     count as a plugin failure, which a job tolerates only up to training.max_failure_rate:
--     an untrained policy that picks its own arguments makes such calls all the time.)
--   * close_ticket ends the episode.
-- The shop's policy is NOT enforced by the tools: "verify the customer's identity before a
-- refund over $100" is for the agent to learn from the reward (plugins/rewards/support.lua
-- gives 0 to an episode that breaks it). No observe, no legal: the policy sees the message and
-- every earlier call and result, as the host renders them, and the cities the shop ships to
-- (agent.candidates: the choices of change_address's city). track_shipment and send_coupon are
-- real tools that no request needs.
--
-- Results that list several orders give each as one string ("ORD-4821 kettle, Maria Lopez"):
-- an order's number stays next to its item and customer whatever the order in which the host
-- renders the keys of a table.

local ac = require("agentcore")
local new_rng = require("agentcore.rng").new

local agent = {
  name = "support",
  version = "2.0.0",
  description = "Customer support over an order database: finds the orders a message is about, "
    .. "verifies the customer when the shop's policy asks for it, refunds, exchanges, changes the "
    .. "delivery city or escalates, then closes the ticket",
  tools = {
    { name = "search_orders", args = { { name = "text", type = "word" } }, cost_usd = 0.00002,
      description = "orders whose customer's first or last name, or whose item, is this word" },
    { name = "read_order", args = { { name = "order_id", type = "id" } }, cost_usd = 0.00001,
      description = "an order's item, customer, amount, status and delivery city" },
    { name = "verify_identity", args = { { name = "order_id", type = "id" } }, cost_usd = 0.00005,
      description = "confirms the identity of an order's customer with a one-time code" },
    { name = "refund", args = { { name = "order_id", type = "id" }, { name = "amount", type = "number" } },
      cost_usd = 0.0001, description = "refunds an amount of an order (at most what is left to refund)" },
    { name = "exchange", args = { { name = "order_id", type = "id" } }, cost_usd = 0.0001,
      description = "ships a replacement of the order's item" },
    { name = "change_address", args = { { name = "order_id", type = "id" }, { name = "city", type = "candidate" } },
      cost_usd = 0.00005, description = "delivers the order to another of the cities the shop ships to" },
    { name = "escalate", args = { { name = "order_id", type = "id" } }, cost_usd = 0.0002,
      description = "hands the order's case to a manager" },
    { name = "track_shipment", args = { { name = "order_id", type = "id" } }, cost_usd = 0.00001,
      description = "carrier and tracking number of an order" },
    { name = "send_coupon", args = { { name = "customer", type = "word" } }, cost_usd = 0.00005,
      description = "sends a 10 % coupon to a customer (first or last name)" },
    { name = "close_ticket", cost_usd = 0, description = "ends the conversation" },
  },
  max_steps = 14,
}

-- The shop's policy, which the reward checks: a refund over this needs verify_identity first.
agent.VERIFY_OVER_USD = 100

local FIRST = { "Maria", "James", "Aisha", "Tom", "Elena", "Kenji", "Sara", "Omar", "Lucy", "Pedro",
  "Nina", "Victor", "Hannah", "Ravi", "Chloe", "Igor", "Fatima", "Leo", "Grace", "Marco" }
local LAST = { "Lopez", "Smith", "Khan", "Brown", "Rossi", "Tanaka", "Novak", "Haddad", "Fischer", "Silva",
  "Petrov", "Dubois", "Weber", "Patel", "Moreau", "Ivanov", "Nasser", "Berg", "Chen", "Conti" }
local ITEMS = { "kettle", "backpack", "lamp", "sweater", "speaker", "helmet", "chair", "blender", "toaster",
  "headset", "keyboard", "monitor", "jacket", "tripod", "mixer", "camera" }
local CITIES = { "Denver", "Boston", "Austin", "Seattle", "Chicago", "Portland", "Miami", "Atlanta",
  "Dallas", "Phoenix", "Detroit", "Oakland" }
local STATUSES = { "processing", "shipped", "delivered" }
local CARRIERS = { "UPS", "FedEx", "DHL" }
agent.FIRST, agent.LAST, agent.ITEMS, agent.CITIES = FIRST, LAST, ITEMS, CITIES

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[string.lower(v)] = v end
  return s
end
local FIRST_SET, LAST_SET, ITEM_SET, CITY_SET = set_of(FIRST), set_of(LAST), set_of(ITEMS), set_of(CITIES)

-- What the message names, in order: a first and a last name, items and order numbers.
local function mentions(query)
  local m = { items = {}, ids = {} }
  local seen = {}
  for w in string.gmatch(query, "[%w%-]+") do
    local lw = string.lower(w)
    if string.match(w, "^ORD%-%d+$") then
      if not seen[w] then m.ids[#m.ids + 1] = w; seen[w] = true end
    elseif ITEM_SET[lw] then
      if not seen[lw] then m.items[#m.items + 1] = ITEM_SET[lw]; seen[lw] = true end
    elseif FIRST_SET[lw] and not m.first then
      m.first = FIRST_SET[lw]
    elseif LAST_SET[lw] and not m.last then
      m.last = LAST_SET[lw]
    end
  end
  return m
end

-- Draws an amount: as often under the verification limit as over it, never on it, and never
-- a whole number of dollars (129.99, not 129).
local function draw_amount(rng)
  local cents
  if rng.int(0, 1) == 0 then cents = rng.int(15, 98) * 100 + rng.int(1, 99)
  else cents = rng.int(101, 399) * 100 + rng.int(1, 99) end
  return cents / 100
end

-- The shop a query meets. Returns
--   { writer = "Maria Lopez", orders = { {id, item, customer, first, last, amount, status, city,
--     carrier}, ... } (the shop's order of rows), by_id = { [id] = order }, by_item = the
--     writer's orders by item }.
function agent.world(query)
  if type(query) ~= "string" then error("support: query must be a string", 2) end
  local rng = new_rng("support|" .. query)
  local m = mentions(query)
  local used_first, used_last, used_ids = {}, {}, {}
  for _, id in ipairs(m.ids) do used_ids[id] = true end
  local function pick_unused(list, used)
    local v
    repeat v = rng.pick(list) until not used[v]
    used[v] = true
    return v
  end
  local function new_id()
    local id
    repeat id = string.format("ORD-%04d", rng.int(1000, 9999)) until not used_ids[id]
    used_ids[id] = true
    return id
  end
  local first = m.first or pick_unused(FIRST, used_first)
  local last = m.last or pick_unused(LAST, used_last)
  used_first[first], used_last[last] = true, true
  local orders, by_id, by_item = {}, {}, {}
  local function add(id, item, f, l)
    local o = { id = id, item = item, first = f, last = l, customer = f .. " " .. l,
      amount = draw_amount(rng), status = rng.pick(STATUSES), city = rng.pick(CITIES),
      carrier = rng.pick(CARRIERS), tracking = string.format("1Z%08d", rng.int(0, 99999999)) }
    orders[#orders + 1] = o
    by_id[id] = o
    return o
  end
  -- the writer's orders: the items named, the order numbers quoted, and up to two others
  local taken = {}
  for _, item in ipairs(m.items) do taken[item] = true end
  local function other_item()
    local item
    repeat item = rng.pick(ITEMS) until not taken[item]
    taken[item] = true
    return item
  end
  for _, item in ipairs(m.items) do by_item[item] = add(new_id(), item, first, last) end
  for _, id in ipairs(m.ids) do add(id, other_item(), first, last) end
  for _ = 1, rng.int(0, 2) do add(new_id(), other_item(), first, last) end
  -- other customers; each named item is ordered by one of them too
  local others = {}
  for k = 1, rng.int(3, 4) do
    others[k] = { pick_unused(FIRST, used_first), pick_unused(LAST, used_last) }
  end
  for _, item in ipairs(m.items) do
    local c = rng.pick(others)
    add(new_id(), item, c[1], c[2])
  end
  for _, c in ipairs(others) do
    for _ = 1, rng.int(1, 2) do add(new_id(), rng.pick(ITEMS), c[1], c[2]) end
  end
  -- the shop lists its orders in no meaningful order
  for i = #orders, 2, -1 do
    local j = rng.int(1, i)
    orders[i], orders[j] = orders[j], orders[i]
  end
  return { writer = first .. " " .. last, first = first, last = last, orders = orders, by_id = by_id,
    by_item = by_item }
end

-- The values of "candidate" arguments: the cities the shop ships to (change_address's city),
-- as a shop's API lists the choices of a field.
function agent.candidates()
  local list = ac.array()
  for i, c in ipairs(CITIES) do list[i] = c end
  return list
end

function agent.init(query)
  if type(query) ~= "string" then error("support: query must be a string", 0) end
  return { world = agent.world(query), refunded = {}, verified = {}, actions = {}, closed = false }
end

local function money(x) return string.format("%.2f", x) end

-- An order by the id the policy chose (a string such as "ORD-4821"; a number never names one).
local function order_of(state, id)
  if type(id) ~= "string" then return nil end
  return state.world.by_id[id]
end

local function rejected(message) return { error = message } end

-- A customer by first or last name (any case), for send_coupon.
local function customer_named(state, name)
  if type(name) ~= "string" then return nil end
  local n = string.lower(name)
  for _, o in ipairs(state.world.orders) do
    if string.lower(o.first) == n or string.lower(o.last) == n then return o.customer end
  end
  return nil
end

local TOOLS = {}

function TOOLS.search_orders(state, args)
  local w = type(args.text) == "string" and string.lower(args.text) or ""
  local rows = ac.array()
  for _, o in ipairs(state.world.orders) do
    if string.lower(o.first) == w or string.lower(o.last) == w or o.item == w then
      rows[#rows + 1] = o.id .. " " .. o.item .. ", " .. o.customer
    end
  end
  return { orders = rows }
end

function TOOLS.read_order(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  return { order = o.id, item = o.item, customer = o.customer, amount = o.amount, status = o.status,
    city = o.city }
end

function TOOLS.verify_identity(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  state.verified[o.customer] = true
  return { verified = true, customer = o.customer }
end

function TOOLS.track_shipment(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  if o.status == "processing" then return { status = o.status } end
  return { status = o.status, carrier = o.carrier, tracking = o.tracking }
end

function TOOLS.refund(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  local amount = args.amount
  if type(amount) ~= "number" or amount <= 0 then return rejected("the amount must be a positive number") end
  local left = o.amount - (state.refunded[o.id] or 0)
  if amount > left + 1e-9 then
    return rejected(money(amount) .. " is more than the " .. money(left) .. " left to refund on " .. o.id)
  end
  state.refunded[o.id] = (state.refunded[o.id] or 0) + amount
  state.actions[#state.actions + 1] = { tool = "refund", order = o.id, amount = amount,
    verified = state.verified[o.customer] == true }
  return { refunded = amount }
end

function TOOLS.exchange(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  state.actions[#state.actions + 1] = { tool = "exchange", order = o.id }
  return { replacement = "a new " .. o.item .. " ships in 3 days" }
end

function TOOLS.change_address(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  local city = type(args.city) == "string" and CITY_SET[string.lower(args.city)]
  if not city then return rejected("unknown city " .. tostring(args.city)) end
  state.actions[#state.actions + 1] = { tool = "change_address", order = o.id, city = city }
  return { ships_to = city }
end

function TOOLS.escalate(state, args)
  local o = order_of(state, args.order_id)
  if not o then return rejected("no order " .. tostring(args.order_id)) end
  state.actions[#state.actions + 1] = { tool = "escalate", order = o.id }
  return { escalated = true, message = "a manager will contact " .. o.customer }
end

function TOOLS.send_coupon(state, args)
  local customer = customer_named(state, args.customer)
  if not customer then return rejected("no customer " .. tostring(args.customer)) end
  state.actions[#state.actions + 1] = { tool = "send_coupon", customer = customer }
  return { sent = true }
end

function agent.step(state, tool, args)
  if state.closed then error("support: the ticket is closed", 0) end
  if tool == "close_ticket" then
    state.closed = true
    return { closed = true }, true
  end
  local fn = TOOLS[tool]
  if not fn then error("support: unknown tool '" .. tostring(tool) .. "'", 0) end
  return fn(state, args or {}), false
end

-- What changed in the shop, for the record (the reward reads the trajectory's calls).
function agent.final(state)
  local actions = ac.array()
  for i, a in ipairs(state.actions) do actions[i] = a end
  return { actions = actions, closed = state.closed }
end

return agent
