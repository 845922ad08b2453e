-- The same through encode_max_depth and a 400,000-deep table.
-- expect: failed: encode_max_depth
return require("hostile_base").agent("h_cjson_encode_depth", "step", function()
  local c = require("cjson")
  c.encode_max_depth(2 ^ 30)
  local t = {}
  for _ = 1, 400000 do t = { t } end
  c.encode(t)
end)
