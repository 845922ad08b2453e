-- A to-be-closed variable whose __close loops, while an error unwinds through it.
-- expect: failed: instruction budget exceeded | wall-clock limit exceeded
return require("hostile_base").agent("h_close_loop", "step", function()
  do
    local x <close> = setmetatable({}, { __close = function() while true do end end })
    error("unwind")
  end
end)
