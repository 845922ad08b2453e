-- agentcore: the runtime library every plugin may require.
--   local ac = require("agentcore")
-- Inside the host the values come from the C core (agentcore.core); under plain Lua (busted
-- specs) equivalent ones are made here, so that plugins can be tested without the server.

local M = { _VERSION = "agentcore 1" }

local in_host, core = pcall(require, "agentcore.core")
if not in_host then
  -- cjson.null is the light userdata NULL, the same value the host uses for JSON null.
  local has_cjson, cjson = pcall(require, "cjson")
  core = {
    null = has_cjson and cjson.null
      or setmetatable({}, { __name = "agentcore.null", __tostring = function() return "null" end }),
    array_mt = { __name = "agentcore.array" },
  }
end

-- JSON null: what the host hands over for null, and what turns into null on the way out.
M.null = core.null
-- The metatable of every array the host hands over, so that an empty one goes back out as [].
-- Read-only: it is shared by every plugin on the thread.
M.array_mt = core.array_mt
-- Whether this code runs inside the agentcore host (false under busted).
M.in_host = in_host

-- Marks t (default: a new table) as a JSON array, so that it converts to [] even when empty.
function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

function M.is_null(v)
  return v == M.null
end

-- An array as the host sees it: a table with array_mt, or with exactly the keys 1..n (n >= 1).
function M.is_array(v)
  if type(v) ~= "table" then return false end
  if getmetatable(v) == M.array_mt then return true end
  local n, max = 0, 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
    if k > max then max = k end
  end
  return n > 0 and n == max
end

-- A JSON object: a table that is not marked as an array and has only string keys ({} counts).
function M.is_object(v)
  if type(v) ~= "table" or getmetatable(v) == M.array_mt then return false end
  for k in pairs(v) do
    if type(k) ~= "string" then return false end
  end
  return true
end

return M
