-- A deep decode without touching any setting: stopped by the fixed limits.
-- expect: failed: cjson.decode
return require("hostile_base").agent("h_cjson_deep", "step", function()
  require("cjson").decode(("["):rep(400000) .. ("]"):rep(400000))
end)
