-- The plain infinite loop.
-- expect: failed: instruction budget exceeded | wall-clock limit exceeded
return require("hostile_base").agent("h_loop", "step", function()
  while true do end
end)
