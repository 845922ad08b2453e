-- Data generator for the inventory agent (plugins/agents/inventory.lua).
--
--   local data = require("inventory.data").generate(42, 256, 64)
--   data.training_data[1] --> { query = "Order 3 kettles and 5 lamps.",
--     expected_outcome = { items = { { item = "kettle", qty = 3 }, { item = "lamp", qty = 5 } },
--                          min_steps = 5 } }
--
-- A request lists goods with their quantities (2 to 12, each item once). Whether an item is
-- ordered or back-ordered is not in the data: the agent draws the stock per episode, and the
-- reward reads it from the episode's final answer.
--
-- Splits, each drawn from its own part of the space so that they test generalisation:
--   training_data, validation_data, evaluation_data (test_iid): one to three items, the
--     training phrasings;
--   tests.templates: one to three items in phrasings never used in training (other word
--     orders and inflections of the same request words: "should be ordered", "ordering",
--     "needed");
--   tests.compositions: four or five items (longer requests than any in training).
-- No query text occurs in two splits. Deterministic for a seed (agentcore.rng, never
-- math.random).

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64

local new_rng = require("agentcore.rng").new

-- the items requests name (the catalog of plugins/agents/inventory.lua)
local ITEMS = { "kettle", "lamp", "chair", "desk", "mug", "towel", "pillow", "blanket", "candle", "vase",
  "mirror", "rug", "basket", "clock", "stool", "plate", "bowl", "jar", "tray", "fan" }
M.ITEMS = ITEMS

local TEMPLATE = {
  train = { "Order {list}.", "Please order {list} for the shop.", "We need {list}.", "Can you order {list}?",
    "Buy {list} please.", "The shop needs {list}." },
  held = { "{list} should be ordered.", "Ordering {list} would help.", "{list} are needed.",
    "We are ordering {list}.", "Buying {list} is the plan." },
}

local function list_text(rng, lines)
  local parts = {}
  for k, x in ipairs(lines) do
    parts[k] = x.qty .. " " .. x.item .. "s"
  end
  if #parts == 1 then return parts[1] end
  return table.concat(parts, ", ", 1, #parts - 1) .. rng.pick({ " and ", ", and " }) .. parts[#parts]
end

local function draw_query(rng, n_items, phrasing)
  local lines, used = {}, {}
  for k = 1, n_items do
    local item
    repeat item = rng.pick(ITEMS) until not used[item]
    used[item] = true
    lines[k] = { item = item, qty = rng.int(2, 12) }
  end
  local text = string.gsub(rng.pick(TEMPLATE[phrasing]), "{list}", list_text(rng, lines))
  text = string.gsub(text, "^%l", string.upper)
  return { query = text, expected_outcome = { items = lines, min_steps = 2 * n_items + 1 } }
end

-- n distinct queries (not in seen) drawn by draw(rng).
local function split(rng, n, seen, draw)
  local out, attempts = {}, 0
  while #out < n do
    attempts = attempts + 1
    if attempts > 200 * n + 1000 then error("inventory data: could not draw enough distinct queries") end
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
  local function iid(r) return draw_query(r, r.int(1, 3), "train") end
  return {
    training_data = split(rng, n_train, seen, iid),
    validation_data = split(rng, n_eval, seen, iid),
    evaluation_data = split(rng, n_eval, seen, iid),
    tests = {
      templates = split(rng, n_eval, seen, function(r) return draw_query(r, r.int(1, 3), "held") end),
      compositions = split(rng, n_eval, seen, function(r) return draw_query(r, r.int(4, 5), "train") end),
    },
  }
end

M.TEMPLATE = TEMPLATE

return M
