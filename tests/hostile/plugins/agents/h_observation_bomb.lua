-- An observation of 4 MiB.
-- expect: failed: limits.max_observation_bytes
return require("hostile_base").agent("h_observation_bomb", "observe", function()
  return string.rep("o", 4 * 1024 * 1024)
end)
