-- Inventory agent: a shop manager asks for goods; whether each can be ordered now or has to be
-- back-ordered depends on the warehouse's stock, which only a tool result shows.
--
--   "Order 3 kettles and 5 lamps."
--     check_stock(item = "kettles")          -> { item = "kettle", available = 0 }
--     back_order(item = "kettle", qty = 3)   -> { backorder = "BO-4821", item = "kettle", qty = 3,
--                                                 eta_days = 12 }
--     check_stock(item = "lamps")            -> { item = "lamp", available = 27 }
--     place_order(item = "lamp", qty = 5)    -> { order = "PO-1093", item = "lamp", qty = 5 }
--     finish()                               -> the episode ends
--
-- The stock is drawn per episode from the episode's generator (ctx.rng): the first time a call
-- touches an item, it is out of stock (0) or in stock with plenty (15 to 60, more than any
-- request asks for), each with probability 1/2. The same query therefore needs place_order in
-- one episode and back_order in the next: a policy that ignores the tool results is right
-- about half the time per item. Reruns draw the same stock (the host seeds ctx.rng from the
-- job's seed and the episode's place).
--
-- Tools take the item as a word of what the policy has seen: singular or plural ("kettle",
-- "kettles"), any case. A call the warehouse rejects (an item not in the catalog, place_order
-- for more than is in stock, a quantity that is not a positive whole number) changes nothing
-- and answers { error = "..." }; the agent reads it and goes on. finish ends the episode.
-- check_price and list_suppliers are real tools that no request needs. No observe, no legal.

local ac = require("agentcore")

local agent = {
  name = "inventory",
  version = "1.0.0",
  description = "Orders goods for a shop: checks the warehouse's stock of each item, then places "
    .. "an order when it is in stock or a back-order when it is not",
  tools = {
    { name = "check_stock", args = { { name = "item", type = "word" } }, cost_usd = 0.00001,
      description = "how many of an item the warehouse has" },
    { name = "place_order", args = { { name = "item", type = "word" }, { name = "qty", type = "number" } },
      cost_usd = 0.0001, description = "orders qty of an item from stock (no more than is available)" },
    { name = "back_order", args = { { name = "item", type = "word" }, { name = "qty", type = "number" } },
      cost_usd = 0.0001, description = "orders qty of an item to be delivered when it is restocked" },
    { name = "check_price", args = { { name = "item", type = "word" } }, cost_usd = 0.00001,
      description = "an item's unit price" },
    { name = "list_suppliers", args = { { name = "item", type = "word" } }, cost_usd = 0.00001,
      description = "who supplies an item" },
    { name = "finish", cost_usd = 0, description = "ends the request" },
  },
  max_steps = 14,
}

local CATALOG = { "kettle", "lamp", "chair", "desk", "mug", "towel", "pillow", "blanket", "candle", "vase",
  "mirror", "rug", "basket", "clock", "stool", "plate", "bowl", "jar", "tray", "fan" }
local SUPPLIERS = { "Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark" }
agent.CATALOG = CATALOG

local IN_CATALOG = {}
for i, item in ipairs(CATALOG) do IN_CATALOG[item] = i end

-- "Kettles" -> "kettle"; nil when the word names no catalog item.
local function catalog_item(word)
  if type(word) ~= "string" then return nil end
  local w = string.lower(word)
  if IN_CATALOG[w] then return w end
  local singular = string.match(w, "^(.-)s$")
  if singular and IN_CATALOG[singular] then return singular end
  return nil
end
agent.catalog_item = catalog_item

function agent.init(query, ctx)
  if type(query) ~= "string" then error("inventory: query must be a string", 0) end
  local rng = ctx and ctx.rng
  if not rng then error("inventory: init needs ctx.rng (the episode's generator)", 0) end
  return { rng = rng, stock = {}, orders = {}, backorders = {}, finished = false, next_id = 0 }
end

-- The warehouse's stock of item, drawn the first time anything asks.
local function stock_of(state, item)
  if state.stock[item] == nil then
    state.stock[item] = state.rng.int(0, 1) == 1 and state.rng.int(15, 60) or 0
  end
  return state.stock[item]
end

local function rejected(message) return { error = message } end

local function whole(q)
  return math.type(q) == "integer" or (type(q) == "number" and q == math.floor(q))
end

local function new_id(state, prefix)
  state.next_id = state.next_id + 1
  return string.format("%s-%04d", prefix, 1000 + (7919 * state.next_id + state.rng.int(0, 99)) % 9000)
end

local TOOLS = {}

function TOOLS.check_stock(state, args)
  local item = catalog_item(args.item)
  if not item then return rejected("no item " .. tostring(args.item) .. " in the catalog") end
  return { item = item, available = stock_of(state, item) }
end

function TOOLS.place_order(state, args)
  local item = catalog_item(args.item)
  if not item then return rejected("no item " .. tostring(args.item) .. " in the catalog") end
  local qty = args.qty
  if not whole(qty) or qty < 1 then return rejected("qty must be a positive whole number") end
  qty = math.tointeger(qty)
  local have = stock_of(state, item)
  if qty > have then return rejected("only " .. have .. " " .. item .. " in stock") end
  state.stock[item] = have - qty
  local id = new_id(state, "PO")
  state.orders[#state.orders + 1] = { item = item, qty = qty, id = id }
  return { order = id, item = item, qty = qty }
end

function TOOLS.back_order(state, args)
  local item = catalog_item(args.item)
  if not item then return rejected("no item " .. tostring(args.item) .. " in the catalog") end
  local qty = args.qty
  if not whole(qty) or qty < 1 then return rejected("qty must be a positive whole number") end
  qty = math.tointeger(qty)
  stock_of(state, item) -- a back-order also fixes what the warehouse had when it was made
  local id = new_id(state, "BO")
  state.backorders[#state.backorders + 1] = { item = item, qty = qty, id = id }
  return { backorder = id, item = item, qty = qty, eta_days = state.rng.int(5, 21) }
end

function TOOLS.check_price(state, args)
  local item = catalog_item(args.item)
  if not item then return rejected("no item " .. tostring(args.item) .. " in the catalog") end
  return { item = item, price = (IN_CATALOG[item] * 37 % 40 + 5) + 0.99 }
end

function TOOLS.list_suppliers(state, args)
  local item = catalog_item(args.item)
  if not item then return rejected("no item " .. tostring(args.item) .. " in the catalog") end
  local i = IN_CATALOG[item]
  return { suppliers = { SUPPLIERS[i % #SUPPLIERS + 1], SUPPLIERS[(i * 7) % #SUPPLIERS + 1] } }
end

function agent.step(state, tool, args)
  if state.finished then error("inventory: the request is finished", 0) end
  if tool == "finish" then
    state.finished = true
    return { finished = true, orders = #state.orders, backorders = #state.backorders }, true
  end
  local fn = TOOLS[tool]
  if not fn then error("inventory: unknown tool '" .. tostring(tool) .. "'", 0) end
  return fn(state, args or {}), false
end

-- What the warehouse had (for each item any call touched, before the episode's orders) and
-- what was ordered: the reward needs the stock to know which call was right.
function agent.final(state)
  local had = {}
  for item, left in pairs(state.stock) do
    local ordered = 0
    for _, o in ipairs(state.orders) do if o.item == item then ordered = ordered + o.qty end end
    had[item] = left + ordered
  end
  local orders, backorders = ac.array(), ac.array()
  for i, o in ipairs(state.orders) do orders[i] = { item = o.item, qty = o.qty } end
  for i, o in ipairs(state.backorders) do backorders[i] = { item = o.item, qty = o.qty } end
  return { stock = had, orders = orders, backorders = backorders, finished = state.finished }
end

return agent
