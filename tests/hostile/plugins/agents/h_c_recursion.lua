-- Deep recursion through C functions (gsub calling back into Lua, __index calling itself).
-- expect: failed: stack overflow
return require("hostile_base").agent("h_c_recursion", "step", function()
  local function f(s) return (string.gsub(s, ".", f)) end
  f("ab")
end)
