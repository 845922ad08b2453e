-- The same when the file loads: the plugin does not load, the job fails at start.
-- expect: failed: read-only table (field 'lower')
string.lower = function() return "poisoned" end
return require("hostile_base").agent("h_string_poison_load", "step", function() end)
