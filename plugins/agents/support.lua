-- Support agent: answers a customer message about an order with dependent tool calls.
--
-- "Please refund order #4821, it arrived broken"   (order 4821: delivered, $129.99)
--   -> lookup_order, verify_customer, refund, reply
-- The order database is fake and in memory: agent.order_for(id) derives every field of an
-- order (status, amount, item, customer, carrier, ...) from its number with a fixed hash, so the
-- same query always meets the same order and no data needs to be stored.
--
-- Rules the tools and agent.legal enforce (what is possible at all):
--   * lookup_order comes first; without an order number in the message only reply follows;
--   * refund needs a delivered order, and verify_customer first when it is over
--     REFUND_LIMIT_USD; cancel_order and update_address need an order that has not shipped
--     (status processing); every tool runs at most once; reply ends the episode.
-- What the policy has to learn (the reward checks it against expected_outcome.tools):
--   * which tools the request needs (refund, shipping status, cancellation, address change,
--     or just information), and when to stop;
--   * to verify the customer when a refund is wanted but not yet possible (the observation says
--     "amount:high");
--   * that a cancellation asked for on an order that has shipped gets the shipping details
--     instead (check_shipping, then reply: "it can no longer be cancelled or redirected").
-- Why the verification is a legal() rule and not only a reward rule, and why a late request
-- gets check_shipping rather than a bare reply: in simulated GRPO runs (linear softmax policy
-- over the same features) the policy got stuck refunding unverified (all of a group scored 0, so
-- nothing was learned) and a bare reply, right for several cases, soaked up the exploration of
-- the others. For the same reason address changes need no verification (and the generator
-- asks for them on unshipped orders only, see examples/support/data.lua).
--
-- Observation: the message (lowercase words, numbers as "num"), "step:N", the tools done so
-- far ("done:lookup_order done:verify_customer") and, once looked up, the order's facts in
-- words: "status:delivered amount:high" (amount is "high" over the limit, else "low").

local agent = {
  name = "support",
  version = "1.0.0",
  description = "Customer support for orders: looks the order up, verifies the customer when "
    .. "needed, refunds, cancels, changes the address or reports shipping, then replies",
  actions = { "lookup_order", "verify_customer", "check_shipping", "refund", "cancel_order",
    "update_address", "reply" },
  tools = {
    lookup_order = { cost_usd = 0.0002, description = "reads the order named in the message" },
    verify_customer = { cost_usd = 0.0005, description = "confirms the customer's identity" },
    check_shipping = { cost_usd = 0.0002, description = "carrier, tracking number and delivery date" },
    refund = { cost_usd = 0.001, description = "refunds a delivered order" },
    cancel_order = { cost_usd = 0.0005, description = "cancels an order that has not shipped" },
    update_address = { cost_usd = 0.0005, description = "changes the address of an order that has not shipped" },
    reply = { cost_usd = 0.0001, description = "answers the customer and ends the episode" },
  },
  max_steps = 8,
}

local REFUND_LIMIT_USD = 100
agent.REFUND_LIMIT_USD = REFUND_LIMIT_USD

local STATUSES = { "processing", "shipped", "delivered" }
local ITEMS = { "desk lamp", "coffee grinder", "wool sweater", "bluetooth speaker", "hiking boots",
  "office chair", "cast iron pan", "backpack", "wireless mouse", "yoga mat", "rain jacket",
  "kettle", "monitor stand", "board game", "electric toothbrush", "camera tripod" }
local CUSTOMERS = { "Alex Kim", "Maria Lopez", "Sam Patel", "Jordan Lee", "Priya Shah", "Chris Novak",
  "Lena Fischer", "Omar Haddad", "Grace Chen", "Tom Brady", "Ines Duarte", "Ken Sato" }
local CARRIERS = { "UPS", "FedEx", "DHL", "USPS" }

-- splitmix64 finalizer: a well-mixed 64-bit hash of an integer.
local function mix(x)
  x = x + 0x9E3779B97F4A7C15
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end

-- The fake database: the order with this number (any integer; always exists).
function agent.order_for(id)
  id = math.tointeger(id)
  if not id then error("order_for: the order number must be an integer", 2) end
  local h = mix(id)
  local function field(salt, n) return (mix(h + salt) >> 1) % n + 1 end
  local cents = 500 + ((mix(h + 7) >> 1) % 39500)   -- $5.00 .. $399.99
  if cents % 100 == 0 then cents = cents - 1 end
  local customer = CUSTOMERS[field(3, #CUSTOMERS)]
  return {
    order_id = id,
    status = STATUSES[field(1, #STATUSES)],
    item = ITEMS[field(2, #ITEMS)],
    customer = customer,
    email = string.lower((string.gsub(customer, " ", "."))) .. "@example.com",
    amount_usd = cents / 100,
    carrier = CARRIERS[field(4, #CARRIERS)],
    tracking = string.format("TRK%09d", (mix(h + 5) >> 1) % 1000000000),
    days = field(6, 9),  -- days since shipping / delivery, or until shipping
  }
end

-- The order number of a message: "#4821", "order 4821", "order number 4821", else the first
-- number of three or more digits.
local function order_id_of(text)
  local s = string.lower(text)
  local id = string.match(s, "#%s*(%d+)") or string.match(s, "order%s+number%s+(%d+)")
    or string.match(s, "order%s+no%.?%s+(%d+)") or string.match(s, "order%s+(%d+)")
    or string.match(s, "%f[%d](%d%d%d+)%f[%D]")
  return id and math.tointeger(tonumber(id)) or nil
end
agent.order_id_of = order_id_of

-- The new address of an address change: "... to 12 Elm Street" (the house number, then words
-- up to a street suffix, at most five).
local SUFFIXES = { street = true, st = true, avenue = true, ave = true, road = true, rd = true,
  lane = true, ln = true, drive = true, dr = true, way = true, boulevard = true, blvd = true,
  court = true, place = true, square = true }
local function address_of(text)
  local number, rest = string.match(text, "[Tt]o%s+(%d+)%s+(.*)$")
  if not number then return nil end
  local parts = { number }
  for w in string.gmatch(rest, "%S+") do
    local word = string.match(w, "^(%a+)")
    if not word or #parts > 5 then break end
    parts[#parts + 1] = word
    if SUFFIXES[string.lower(word)] or word ~= w then break end  -- suffix or punctuation ends it
  end
  if #parts < 2 then return nil end
  return table.concat(parts, " ")
end
agent.address_of = address_of

local function words(text)
  local s = string.gsub(string.lower(text), "%d+", " num ")
  local out = {}
  for w in string.gmatch(s, "%a+") do out[#out + 1] = w end
  return table.concat(out, " ")
end

function agent.init(query)
  if type(query) == "table" then query = query.query end
  if type(query) ~= "string" then error("support: query must be a string", 0) end
  return { query = query, text = words(query), order_id = order_id_of(query), order = nil,
    looked_up = false, used = {}, done_list = {}, steps = 0, replied = false, changes = {} }
end

function agent.observe(state)
  local parts = { state.text, "|", "step:" .. state.steps }
  for _, tool in ipairs(state.done_list) do parts[#parts + 1] = "done:" .. tool end
  if state.looked_up then
    local o = state.order
    if o then
      parts[#parts + 1] = "| status:" .. o.status
      parts[#parts + 1] = "amount:" .. (o.amount_usd > REFUND_LIMIT_USD and "high" or "low")
    else
      parts[#parts + 1] = "| order:unknown"
    end
  end
  return table.concat(parts, " ")
end

function agent.legal(state)
  if state.replied then return {} end
  if not state.looked_up then return { "lookup_order" } end
  local legal = {}
  local o = state.order
  if o then
    local function offer(tool, ok) if ok and not state.used[tool] then legal[#legal + 1] = tool end end
    offer("verify_customer", true)
    offer("check_shipping", true)
    offer("refund", o.status == "delivered" and (state.verified or o.amount_usd <= REFUND_LIMIT_USD))
    offer("cancel_order", o.status == "processing")
    offer("update_address", o.status == "processing")
  end
  legal[#legal + 1] = "reply"
  return legal
end

local function money(x) return string.format("$%.2f", x) end

-- The reply the customer gets, from what was done.
local function compose_reply(state)
  local o = state.order
  if not o then
    if state.order_id then
      return "I could not find order #" .. state.order_id .. ". Could you check the number?"
    end
    return "Could you tell me your order number (for example #1234)?"
  end
  local c = state.changes
  local greeting = "Hi " .. o.customer:match("^(%S+)") .. ", "
  if c.refunded then
    return greeting .. "I have refunded " .. money(o.amount_usd) .. " for your " .. o.item
      .. " (order #" .. o.order_id .. "). It will reach your account in 3-5 business days."
  elseif c.cancelled then
    return greeting .. "order #" .. o.order_id .. " (" .. o.item .. ") is cancelled; you will not be charged."
  elseif c.address then
    return greeting .. "order #" .. o.order_id .. " will now ship to " .. c.address .. "."
  elseif c.shipping then
    local s = c.shipping
    if o.status == "processing" then
      return greeting .. "order #" .. o.order_id .. " has not shipped yet; it should ship within "
        .. o.days .. " days."
    end
    local where
    if o.status == "shipped" then
      where = "is on its way with " .. s.carrier .. " (tracking " .. s.tracking .. "), shipped "
        .. o.days .. " days ago."
    else
      where = "was delivered by " .. s.carrier .. " " .. o.days .. " days ago (tracking "
        .. s.tracking .. ")."
    end
    return greeting .. "order #" .. o.order_id .. " " .. where
      .. " As it has left our warehouse, it can no longer be cancelled or redirected."
  end
  return greeting .. "order #" .. o.order_id .. " (" .. o.item .. ", " .. money(o.amount_usd)
    .. ") is " .. o.status .. "."
end

local function resolution(state)
  local c = state.changes
  if not state.order then return "need_order" end
  if c.refunded then return "refunded" end
  if c.cancelled then return "cancelled" end
  if c.address then return "address_updated" end
  if c.shipping then return "shipping_info" end
  return "info"
end

function agent.step(state, action)
  if state.replied then error("support: the episode has ended", 0) end
  if not agent.tools[action] then error("support: unknown action '" .. tostring(action) .. "'", 0) end
  if state.used[action] then error(action .. ": already done", 0) end
  if action ~= "lookup_order" and action ~= "reply" and not state.order then
    error(action .. ": look the order up first", 0)
  end
  local o = state.order
  if (action == "refund" and o.status ~= "delivered")
      or ((action == "cancel_order" or action == "update_address") and o.status ~= "processing") then
    error(action .. ": order #" .. o.order_id .. " is " .. o.status, 0)
  end
  if action == "refund" and o.amount_usd > REFUND_LIMIT_USD and not state.verified then
    error("refund: over " .. money(REFUND_LIMIT_USD) .. " needs verify_customer first", 0)
  end
  state.steps = state.steps + 1
  state.used[action] = true
  state.done_list[#state.done_list + 1] = action

  if action == "lookup_order" then
    state.looked_up = true
    if not state.order_id then
      return { order_id = nil }, { found = false, reason = "no order number in the message" }, false
    end
    state.order = agent.order_for(state.order_id)
    o = state.order
    return { order_id = state.order_id }, { found = true, order_id = o.order_id, status = o.status,
      item = o.item, customer = o.customer, amount_usd = o.amount_usd }, false
  elseif action == "verify_customer" then
    state.verified = true
    return { order_id = o.order_id, email = o.email },
      { verified = true, customer = o.customer, method = "one-time code sent to " .. o.email }, false
  elseif action == "check_shipping" then
    state.changes.shipping = { carrier = o.carrier, tracking = o.tracking }
    local result = { status = o.status }
    if o.status ~= "processing" then
      result.carrier, result.tracking = o.carrier, o.tracking
    end
    if o.status == "processing" then result.ships_in_days = o.days
    elseif o.status == "shipped" then result.shipped_days_ago = o.days
    else result.delivered_days_ago = o.days end
    return { order_id = o.order_id }, result, false
  elseif action == "refund" then
    state.changes.refunded = true
    return { order_id = o.order_id, amount_usd = o.amount_usd },
      { refunded_usd = o.amount_usd, verified = state.verified == true }, false
  elseif action == "cancel_order" then
    state.changes.cancelled = true
    return { order_id = o.order_id }, { cancelled = true, refunded_usd = o.amount_usd }, false
  elseif action == "update_address" then
    local address = address_of(state.query)
    if not address then
      return { order_id = o.order_id }, { updated = false, reason = "no new address in the message" }, false
    end
    state.changes.address = address
    return { order_id = o.order_id, address = address }, { updated = true, address = address }, false
  end
  -- reply
  state.replied = true
  state.reply = compose_reply(state)
  return { order_id = state.order_id }, { message = state.reply, resolution = resolution(state) }, true
end

function agent.final(state)
  local tools = {}
  for i, t in ipairs(state.done_list) do tools[i] = t end
  return { order_id = state.order_id, resolution = resolution(state), reply = state.reply,
    tools = tools, replied = state.replied }
end

return agent
