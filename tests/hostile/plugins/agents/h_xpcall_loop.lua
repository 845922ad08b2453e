-- A message handler that loops: Lua runs it with hooks off when the error came from a hook, so
-- the instruction budget could never stop it (100 % CPU, cancel and SIGTERM hung).
-- expect: failed: instruction budget exceeded | wall-clock limit exceeded
return require("hostile_base").agent("h_xpcall_loop", "step", function()
  xpcall(function() while true do end end, function(m) while true do end end)
end)
