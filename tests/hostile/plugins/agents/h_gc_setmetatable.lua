-- A finalizer of its own.
-- expect: failed: __gc metamethods are not allowed
return require("hostile_base").agent("h_gc_setmetatable", "step", function()
  setmetatable({}, { __gc = function() while true do end end })
end)
