-- Prints a generated data set as the JSON that training.start_grpo takes:
--   {"training_data": [...], "evaluation_data": [...]}
--
-- usage: lua5.4 examples/gen_data.lua NAME [SEED [N_TRAIN [N_EVAL]]]
--   NAME is calculator, support, files or inventory (examples/NAME/data.lua); SEED defaults to 42.
--   lua5.4 examples/gen_data.lua calculator 42 > /tmp/calculator.json
--
-- Runs from any directory: module paths are taken relative to this script.

local script = arg and arg[0] or "examples/gen_data.lua"
local root = script:match("^(.*)examples[/\\][^/\\]*$") or "./"
package.path = root .. "plugins/?.lua;" .. root .. "lua/?.lua;" .. root .. "lua/?/init.lua;"
  .. root .. "examples/?.lua;" .. package.path

local function usage(message)
  io.stderr:write("gen_data: ", message, "\n",
    "usage: lua5.4 examples/gen_data.lua NAME [SEED [N_TRAIN [N_EVAL]]]\n")
  os.exit(2)
end

local function integer_arg(i, name)
  local v = arg[i]
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then usage(name .. " must be a non-negative integer, got '" .. v .. "'") end
  return n
end

local name = arg[1]
if not name or not name:match("^[%w_]+$") then usage("NAME must be a generator name") end
local seed = integer_arg(2, "SEED") or 42
local n_train, n_eval = integer_arg(3, "N_TRAIN"), integer_arg(4, "N_EVAL")

local ok, generator = pcall(require, name .. ".data")
if not ok then
  if tostring(generator):find("module '" .. name .. ".data' not found", 1, true) then
    usage("no generator examples/" .. name .. "/data.lua")
  end
  usage(tostring(generator))
end

local cjson = require("cjson")
local data = generator.generate(seed, n_train, n_eval)
-- cjson writes an empty Lua table as {}; the API wants arrays here.
local function array_json(list)
  if #list == 0 then return "[]" end
  return cjson.encode(list)
end
io.write('{"training_data": ', array_json(data.training_data),
  ', "evaluation_data": ', array_json(data.evaluation_data), "}\n")
