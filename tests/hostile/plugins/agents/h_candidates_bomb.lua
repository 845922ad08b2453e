-- Candidates of 4 MiB each, offered for the policy to choose from.
-- expect: failed: limits.max_observation_bytes
return require("hostile_base").agent("h_candidates_bomb", "candidates", function()
  local s = string.rep("c", 4 * 1024 * 1024)
  return { s, s }
end)
