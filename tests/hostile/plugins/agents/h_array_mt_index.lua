-- Make every array the host hands over raise: this failed another principal's job with the
-- attacker's message.
-- expect: failed: read-only table
return require("hostile_base").agent("h_array_mt_index", "step", function()
  require("agentcore").array_mt.__index = error
end)
