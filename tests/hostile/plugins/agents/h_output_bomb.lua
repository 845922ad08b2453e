-- Step results of 8 MiB each: two iterations grew the data directory to 632 MB.
-- expect: failed: limits.max_result_bytes
return require("hostile_base").agent("h_output_bomb", "step", function()
  return { r = string.rep("x", 8 * 1024 * 1024) }
end)
