-- A pattern that backtracks for minutes inside one C call, where no hook runs.
-- expect: failed: too costly
return require("hostile_base").agent("h_pattern_bomb", "step", function()
  string.find(string.rep("a", 250), ".-.-.-.-b")
end)
