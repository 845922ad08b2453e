-- Data generator for the files agent (plugins/agents/files.lua).
--
--   local data = require("files.data").generate(42, 256, 64)
--   data.training_data[1] --> { query = "What is the port of the service that web depends on?",
--     expected_outcome = { answer = "6379", key = "port", chain = { "web", "cache" }, min_steps = 5 } }
--
-- A question asks for one setting (host, port, timeout, replicas, owner) of a service named
-- directly ("web", "the web service"), or through its dependency ("the dependency of web",
-- "the service that web depends on"): one or two services to walk. The answer comes from
-- agent.project(query), the project the agent itself builds for that question, so the data and
-- the agent always agree.
--
-- Splits, each drawn from its own part of the space so that they test generalisation:
--   training_data, validation_data, evaluation_data (test_iid): direct questions and one-step
--     dependencies, the training phrasings; a one-step dependency never asks for timeout or
--     replicas;
--   tests.templates: the same kinds of question in phrasings never used in training (other word
--     orders and inflections of the same words: "web uses which port?", "web's dependency");
--   tests.compositions: questions training never asks: timeout or replicas through a
--     dependency, and dependencies of dependencies (three services to walk).
-- No query text occurs in two splits. Deterministic for a seed (agentcore.rng, never
-- math.random).

local here = select(2, ...)  -- this file's path when loaded by require

local function load_agent()
  local ok, agent = pcall(require, "agents.files")
  if ok or type(package) ~= "table" then return ok and agent or error(agent, 0) end
  local root = type(here) == "string" and here:match("^(.-)examples[/\\]files[/\\]data%.lua$")
  package.path = (root or "./") .. "plugins/?.lua;" .. package.path
  return require("agents.files")
end
local agent = load_agent()

local M = {}

M.DEFAULT_TRAIN = 256
M.DEFAULT_EVAL = 64

local new_rng = require("agentcore.rng").new

-- keys a one-step dependency never asks for in training
local HELD_KEYS = { timeout = true, replicas = true }
M.HELD_KEYS = HELD_KEYS

-- {target}: the service asked about, as one of TARGET[phrasing][hops]
local FRAME = {
  train = { "What is the {key} of {target}?", "Find the {key} of {target}.", "Which {key} does {target} use?",
    "Look up the {key} for {target}.", "Tell me the {key} of {target}.", "Give me the {key} of {target}.",
    "I need the {key} of {target}.", "Show me the {key} for {target}." },
  held = { "{target} uses which {key}?", "Finding {target}'s {key}, please.", "The {key} used by {target} is what?",
    "Looking up {target}: which {key}?" },
}
local TARGET = {
  train = {
    { "{svc}", "the {svc} service" },
    { "the dependency of {svc}", "the service that {svc} depends on" },
    { "the dependency of the dependency of {svc}", "the dependency of the service that {svc} depends on" },
  },
  held = {
    { "{svc}", "the service {svc}" },
    { "{svc}'s dependency", "the service {svc} is depending on" },
  },
}

local function fill(template, vars) return (string.gsub(template, "{(%a+)}", vars)) end

-- One question: `hops` services to walk, key from keys, in the given phrasing; nil when the
-- project of the drawn text has no such chain (then the caller draws again).
local function draw_query(rng, hops, phrasing, keys)
  local key = rng.pick(keys)
  local svc = rng.pick(agent.SERVICES)
  local target = fill(rng.pick(TARGET[phrasing][hops]), { svc = svc })
  local text = fill(rng.pick(FRAME[phrasing]), { key = key, target = target })
  text = string.gsub(text, "^%l", string.upper)
  local project = agent.project(text)
  local chain, s = { svc }, svc
  for _ = 2, hops do
    s = project.config[s].dependency
    if s == "none" then return nil end
    chain[#chain + 1] = s
  end
  return { query = text, expected_outcome = { answer = tostring(project.config[s][key]), key = key,
    chain = chain, min_steps = 2 * hops + 1 } }
end

-- n distinct queries (not in seen) drawn by draw(rng).
local function split(rng, n, seen, draw)
  local out, attempts = {}, 0
  while #out < n do
    attempts = attempts + 1
    if attempts > 200 * n + 1000 then error("files data: could not draw enough distinct queries") end
    local q = draw(rng)
    local key = q and string.lower(q.query) -- the validator compares lowercased texts
    if key and not seen[key] then
      seen[key] = true
      out[#out + 1] = q
    end
  end
  return out
end

function M.generate(seed, n_train, n_eval)
  n_train = n_train or M.DEFAULT_TRAIN
  n_eval = n_eval or M.DEFAULT_EVAL
  local rng = new_rng(seed)
  local seen = {}
  local all_keys, train_dep_keys, held_dep_keys = {}, {}, {}
  for _, k in ipairs(agent.KEYS) do
    all_keys[#all_keys + 1] = k
    if HELD_KEYS[k] then held_dep_keys[#held_dep_keys + 1] = k else train_dep_keys[#train_dep_keys + 1] = k end
  end
  local function kind(phrasing)
    return function(r)
      if r.int(0, 1) == 0 then return draw_query(r, 1, phrasing, all_keys) end
      return draw_query(r, 2, phrasing, train_dep_keys)
    end
  end
  local function composition(r)
    if r.int(0, 1) == 0 then return draw_query(r, 2, "train", held_dep_keys) end
    return draw_query(r, 3, "train", all_keys)
  end
  return {
    training_data = split(rng, n_train, seen, kind("train")),
    validation_data = split(rng, n_eval, seen, kind("train")),
    evaluation_data = split(rng, n_eval, seen, kind("train")),
    tests = {
      templates = split(rng, n_eval, seen, kind("held")),
      compositions = split(rng, n_eval, seen, composition),
    },
  }
end

M.FRAME, M.TARGET = FRAME, TARGET

return M
