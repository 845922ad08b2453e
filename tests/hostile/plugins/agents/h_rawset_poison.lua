-- The same through rawset, which skips metamethods.
-- expect: failed: rawset: the table is read-only
return require("hostile_base").agent("h_rawset_poison", "step", function()
  rawset(string, "lower", function() return "poisoned" end)
end)
