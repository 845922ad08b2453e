-- A result that is small in Lua (one string shared 1000 times) but 8 GB as JSON.
-- expect: failed: limits.max_result_bytes
return require("hostile_base").agent("h_shared_string_bomb", "step", function()
  local s, t = string.rep("x", 8 * 1024 * 1024), {}
  for i = 1, 1000 do t[i] = s end
  return t
end)
