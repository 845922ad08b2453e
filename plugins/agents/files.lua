-- Files agent: answers a question about a small software project by finding and reading its
-- files, as one would in a shell (find, grep, cat), and answers with the value it found.
--
--   "What is the port of the service that web depends on?"
--     find_files(name = "web")              -> { files = { "web/config.yml", "web/main.py",
--                                                            "web/README.md" } }
--     read_file(path = "web/config.yml")    -> { lines = { "host: web-4.internal", "port: 8080",
--                                               "timeout: 30", "replicas: 3", "owner: growth",
--                                               "dependency: cache" } }
--     find_files(name = "cache")            -> { files = { "cache/config.yml", ... } }
--     read_file(path = "cache/config.yml")  -> { lines = { ..., "port: 6379", ... } }
--     answer(value = "6379")                -> the episode ends
--
-- The project. Each query meets its own project, the same every time it is asked
-- (agent.project(query): drawn from a generator seeded with the query's text): twelve services,
-- each a directory with config.yml (host, port, timeout, replicas, owner and the service it
-- depends on), main.py and README.md. The values are drawn, so only reading the files tells
-- them; the dependencies form one chain through all the services. The data generator
-- (examples/files/data.lua) calls agent.project too, to know the answers.
--
-- Tools: find_files and grep take a word the policy picks from what it has seen; read_file and
-- file_info take a path among those that earlier results showed (argument type "candidate":
-- agent.candidates returns them, in the order they were first seen; none before the first
-- find_files or grep, so read_file cannot be called before); answer takes any token the policy
-- has seen and ends the episode. file_info and run_tests are real tools that no question
-- needs. Nothing raises on a policy's choice: a path that does not exist answers
-- { error = "..." }. No observe, no legal.

local ac = require("agentcore")
local new_rng = require("agentcore.rng").new

local agent = {
  name = "files",
  version = "1.0.0",
  description = "Answers questions about a project's services by finding, grepping and reading "
    .. "their files, then answering with the value found",
  tools = {
    { name = "find_files", args = { { name = "name", type = "word" } }, cost_usd = 0.0001,
      description = "paths whose directory or file name (without extension) is this word" },
    { name = "grep", args = { { name = "text", type = "word" } }, cost_usd = 0.0002,
      description = "lines (path: line) that contain this word, at most MAX_GREP" },
    { name = "read_file", args = { { name = "path", type = "candidate" } }, cost_usd = 0.0001,
      description = "a file's lines" },
    { name = "file_info", args = { { name = "path", type = "candidate" } }, cost_usd = 0.0001,
      description = "a file's size and modification date" },
    { name = "run_tests", cost_usd = 0.001, description = "runs the project's tests" },
    { name = "answer", args = { { name = "value", type = "any" } }, cost_usd = 0,
      description = "answers the question with this value and ends the episode" },
  },
  max_steps = 10,
}

local SERVICES = { "web", "api", "auth", "billing", "search", "mail", "cache", "queue", "storage",
  "metrics", "gateway", "payments" }
local TEAMS = { "growth", "platform", "infra", "checkout", "identity", "data", "mobile", "core" }
local KEYS = { "host", "port", "timeout", "replicas", "owner" }
local FILES = { "config.yml", "main.py", "README.md" }
local MAX_FIND, MAX_GREP = 8, 6
agent.SERVICES, agent.KEYS, agent.MAX_GREP = SERVICES, KEYS, MAX_GREP

-- The project of a query: { files = { {path, lines}, ... } (in listing order), by_path,
-- config = { [service] = { host = ..., port = ..., ..., dependency = service or "none" } } }.
function agent.project(query)
  if type(query) ~= "string" then error("files: query must be a string", 2) end
  local rng = new_rng("files|" .. query)
  local order = {}
  for i, s in ipairs(SERVICES) do order[i] = s end
  for i = #order, 2, -1 do
    local j = rng.int(1, i)
    order[i], order[j] = order[j], order[i]
  end
  local config, used_ports = {}, {}
  for i, s in ipairs(order) do
    local port
    repeat port = rng.int(1025, 9999) until not used_ports[port]
    used_ports[port] = true
    config[s] = { host = s .. "-" .. rng.int(1, 9) .. ".internal", port = port, timeout = rng.int(2, 120),
      replicas = rng.int(1, 9), owner = rng.pick(TEAMS), dependency = order[i + 1] or "none" }
  end
  local files, by_path = {}, {}
  for _, s in ipairs(SERVICES) do
    local c = config[s]
    local contents = {
      ["config.yml"] = { "host: " .. c.host, "port: " .. c.port, "timeout: " .. c.timeout,
        "replicas: " .. c.replicas, "owner: " .. c.owner, "dependency: " .. c.dependency },
      ["main.py"] = { "from lib import server", "server.run(\"" .. s .. "\")" },
      ["README.md"] = { "The " .. s .. " service.", "Settings are in config.yml." },
    }
    for _, name in ipairs(FILES) do
      local f = { path = s .. "/" .. name, lines = contents[name], service = s, name = name,
        bytes = 0, modified = string.format("2024-%02d-%02d", rng.int(1, 12), rng.int(1, 28)) }
      for _, line in ipairs(f.lines) do f.bytes = f.bytes + #line + 1 end
      files[#files + 1] = f
      by_path[f.path] = f
    end
  end
  return { files = files, by_path = by_path, config = config }
end

function agent.init(query)
  if type(query) ~= "string" then error("files: query must be a string", 0) end
  return { project = agent.project(query), seen = {}, seen_list = {}, answered = false }
end

-- Paths results have shown, in the order they were first shown: read_file's choices.
local function saw(state, path)
  if not state.seen[path] and #state.seen_list < 64 then
    state.seen[path] = true
    state.seen_list[#state.seen_list + 1] = path
  end
end

function agent.candidates(state)
  local list = ac.array()
  for i, p in ipairs(state.seen_list) do list[i] = p end
  return list
end

local function stem(name) return (string.match(name, "^([^.]+)")) end

local function has_word(line, w)
  for x in string.gmatch(string.lower(line), "[%w_]+") do
    if x == w then return true end
  end
  return false
end

local TOOLS = {}

function TOOLS.find_files(state, args)
  local w = type(args.name) == "string" and string.lower(args.name) or ""
  local out = ac.array()
  for _, f in ipairs(state.project.files) do
    if f.service == w or string.lower(stem(f.name)) == w then
      if #out < MAX_FIND then
        out[#out + 1] = f.path
        saw(state, f.path)
      end
    end
  end
  return { files = out }
end

function TOOLS.grep(state, args)
  local w = type(args.text) == "string" and string.lower(args.text) or ""
  local out = ac.array()
  for _, f in ipairs(state.project.files) do
    for _, line in ipairs(f.lines) do
      if #out < MAX_GREP and has_word(line, w) then
        out[#out + 1] = f.path .. ": " .. line
        saw(state, f.path)
      end
    end
  end
  return { matches = out }
end

local function file_of(state, path)
  return type(path) == "string" and state.project.by_path[path] or nil
end

function TOOLS.read_file(state, args)
  local f = file_of(state, args.path)
  if not f then return { error = "no file " .. tostring(args.path) } end
  local lines = ac.array()
  for i, l in ipairs(f.lines) do lines[i] = l end
  return { lines = lines }
end

function TOOLS.file_info(state, args)
  local f = file_of(state, args.path)
  if not f then return { error = "no file " .. tostring(args.path) } end
  return { bytes = f.bytes, modified = f.modified }
end

function TOOLS.run_tests()
  return { passed = 42, failed = 0 }
end

function agent.step(state, tool, args)
  if state.answered then error("files: the question is answered", 0) end
  if tool == "answer" then
    state.answered = true
    state.answer = args.value
    return { answer = args.value }, true
  end
  local fn = TOOLS[tool]
  if not fn then error("files: unknown tool '" .. tostring(tool) .. "'", 0) end
  return fn(state, args or {}), false
end

function agent.final(state)
  if not state.answered then return { answered = false } end
  return { answered = true, answer = state.answer }
end

return agent
