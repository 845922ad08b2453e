-- agentcore.util: small string and table helpers for plugins.
--   local util = require("agentcore.util")
-- Everything here runs in linear time, so none of it can trip the host's pattern guard.

local M = {}

local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

-- s without leading and trailing whitespace. (s:match("^%s*(.-)%s*$") does the same but is
-- quadratic on long runs of spaces.)
function M.trim(s)
  local i = string.find(s, "%S")
  if not i then return "" end
  local j = #s
  while SPACE[string.byte(s, j)] do j = j - 1 end
  return string.sub(s, i, j)
end

-- The form under which two query texts count as the same: trimmed and lowercased.
function M.normalize(s)
  return string.lower(M.trim(s))
end

function M.is_nonempty_string(v)
  return type(v) == "string" and string.find(v, "%S") ~= nil
end

-- Splits s at every occurrence of the plain string sep (default ","); keeps empty parts.
function M.split(s, sep)
  sep = sep or ","
  assert(#sep > 0, "split: empty separator")
  local parts, from = {}, 1
  while true do
    local a, b = string.find(s, sep, from, true)
    if not a then break end
    parts[#parts + 1] = string.sub(s, from, a - 1)
    from = b + 1
  end
  parts[#parts + 1] = string.sub(s, from)
  return parts
end

function M.starts_with(s, prefix)
  return string.sub(s, 1, #prefix) == prefix
end

function M.ends_with(s, suffix)
  return suffix == "" or string.sub(s, -#suffix) == suffix
end

-- The keys of t, sorted (numbers before strings), for deterministic iteration.
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    return a < b
  end)
  return keys
end

-- A copy of v that shares no table with it (metatables are kept, not copied).
function M.deepcopy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local copy = {}
  seen[v] = copy
  for k, x in pairs(v) do copy[M.deepcopy(k, seen)] = M.deepcopy(x, seen) end
  return setmetatable(copy, getmetatable(v))
end

-- Appends a validator problem to list. set is "training_data" or "evaluation_data"; i is the
-- Lua index of the item (nil for a problem with the whole set); field is the item's field (nil
-- for the item itself). index and field follow the JSON the client sent: 0-based.
--   util.problem(p, "training_data", 8, "query", "must be a non-empty string")
--   --> { index = 7, field = "training_data[7].query", error = "must be a non-empty string" }
function M.problem(list, set, i, field, message)
  local where = set
  if i then where = string.format("%s[%d]", set, i - 1) end
  if field then where = where .. "." .. field end
  list[#list + 1] = { index = i and i - 1 or nil, field = where, error = message }
  return list
end

return M
