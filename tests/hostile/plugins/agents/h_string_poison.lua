-- Replace a library function: this silently changed the observations of a later job of another
-- principal that ran in the same Lua state.
-- expect: failed: read-only table (field 'lower')
return require("hostile_base").agent("h_string_poison", "step", function()
  string.lower = function() return "poisoned" end
end)
