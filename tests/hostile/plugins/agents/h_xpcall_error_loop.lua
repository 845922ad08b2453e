-- The same with an ordinary error first.
-- expect: failed: instruction budget exceeded | wall-clock limit exceeded
return require("hostile_base").agent("h_xpcall_error_loop", "step", function()
  xpcall(function() error("x") end, function(m) while true do end end)
end)
