-- A finalizer that loops, planted on the metatable every array the host makes gets: finalizers
-- run with hooks off, at any allocation, in any later call (and again after a restart).
-- expect: failed: read-only table
return require("hostile_base").agent("h_gc_loop", "step", function()
  require("agentcore").array_mt.__gc = function() while true do end end
end)
