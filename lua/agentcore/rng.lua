-- A small deterministic random number generator for plugins and data generators: the same seed
-- gives the same stream on every machine (math.random is seeded per state and is not).
--
--   local rng = require("agentcore.rng").new(42)     -- or a string seed
--   rng.next()        -- 31 random bits
--   rng.int(1, 6)     -- an integer in [lo, hi]
--   rng.pick(list)    -- an element of a non-empty list
--
-- 64-bit LCG (Knuth's MMIX constants; Lua 5.4 integer arithmetic wraps around), the seed
-- scrambled with splitmix64 first.
local M = {}

function M.new(seed)
  local s
  if type(seed) == "string" then
    s = 1469598103934665603
    for i = 1, #seed do s = (s ~ string.byte(seed, i)) * 1099511628211 end
  else
    s = math.tointeger(seed or 0)
    if not s then error("seed must be an integer or a string", 2) end
  end
  s = s + 0x9E3779B97F4A7C15
  s = (s ~ (s >> 30)) * 0xBF58476D1CE4E5B9
  s = (s ~ (s >> 27)) * 0x94D049BB133111EB
  s = s ~ (s >> 31)
  local rng = {}
  function rng.next()
    s = s * 6364136223846793005 + 1442695040888963407
    return s >> 33
  end
  function rng.int(lo, hi) return lo + rng.next() % (hi - lo + 1) end
  function rng.pick(t) return t[rng.int(1, #t)] end
  return rng
end

return M
