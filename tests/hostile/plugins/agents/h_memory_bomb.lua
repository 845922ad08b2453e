-- A table that grows without end.
-- expect: failed: not enough memory | wall-clock limit exceeded | abandoned
return require("hostile_base").agent("h_memory_bomb", "step", function()
  local t = {}
  for i = 1, 1e10 do t[i] = i end
end)
