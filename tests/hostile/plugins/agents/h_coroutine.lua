-- Coroutines inside a message handler: the sandbox has no coroutine library.
-- expect: failed: coroutine
return require("hostile_base").agent("h_coroutine", "step", function()
  xpcall(error, function() coroutine.wrap(function() while true do end end)() end)
  coroutine.resume(coroutine.create(function() end))
end)
