-- Shared by the inventory specs (spec/agents/, spec/rewards/ and spec/examples/inventory_*):
-- an episode's context and the items of a request.
local new_rng = require("agentcore.rng").new
local M = {}

-- The context the host passes agent.init: the stock an episode sees is drawn from ctx.rng.
function M.ctx(seed) return { seed = seed, episode = 0, iteration = 1, rng = new_rng(seed) } end

-- The item words and quantities of a request, in order ("3 kettles" -> {"kettles", 3}).
function M.lines_of(query)
  local out = {}
  for qty, word in query:gmatch("(%d+) (%a+)") do out[#out + 1] = { word = word, qty = tonumber(qty) } end
  return out
end

return M
