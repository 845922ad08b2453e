-- A hostile validator: it raises cjson's nesting limit and decodes 400,000 nested arrays (which
-- overflowed the C stack and killed the server when plugins could configure cjson).
return {
  name = "h_cjson",
  version = "1",
  validate = function(training, evaluation, limits)
    local c = require("cjson")
    if c.decode_max_depth then c.decode_max_depth(2 ^ 30) end
    c.decode(("["):rep(400000) .. ("]"):rep(400000))
    return {}
  end,
}
