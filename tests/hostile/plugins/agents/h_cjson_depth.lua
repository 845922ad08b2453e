-- Raise cjson's nesting limit, then decode 400,000 nested arrays: this overflowed the C stack
-- (SIGSEGV) and, being in agent.step, crash-looped the server at every restart.
-- expect: failed: decode_max_depth
return require("hostile_base").agent("h_cjson_depth", "step", function()
  local c = require("cjson")
  c.decode_max_depth(2 ^ 30)
  c.decode(("["):rep(400000) .. ("]"):rep(400000))
end)
