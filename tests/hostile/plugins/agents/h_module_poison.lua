-- Change a module every plugin of the job shares.
-- expect: failed: read-only table (field 'trim')
return require("hostile_base").agent("h_module_poison", "step", function()
  require("agentcore.util").trim = function() return "poisoned" end
end)
