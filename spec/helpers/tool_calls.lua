-- Shared by the specs of agents on the tool-call contract (tools with argument slots): driving an
-- agent the way the host's rollout does, and checking that every argument a scripted policy
-- passes is one the host would offer the policy (core/engine/context.c: a token of the slot's
-- type in the query or an earlier result, never in an earlier call; or, for "candidate", one of
-- agent.candidates' values).
local assert = require("luassert") -- busted gives specs, not modules, its assert
local M = {}

local function is_digit(c) return c ~= nil and c:match("^%d$") ~= nil end
local function is_alpha(c) return c ~= nil and (c:match("^%a$") ~= nil or c:byte() >= 0x80) end
local function is_alnum(c) return is_digit(c) or is_alpha(c) end

-- The kind context.c gives a run of characters: "number", "word" or "id".
local function classify(s)
  local body = s:sub(1, 1) == "-" and s:sub(2) or s
  local digits, letters, other, dots = 0, 0, 0, 0
  for c in body:gmatch(".") do
    if is_digit(c) then digits = digits + 1
    elseif is_alpha(c) then letters = letters + 1
    elseif c == "." then dots = dots + 1
    else other = other + 1 end
  end
  if digits > 0 and letters == 0 and other == 0 and dots <= 1 and is_digit(body:sub(1, 1))
      and is_digit(body:sub(-1)) then
    return "number"
  end
  if letters > 0 and digits == 0 and other == 0 and dots == 0 and body == s then return "word" end
  return "id"
end

-- Tokens of a text as the host's tokenizer cuts them: { {text = ..., kind = ...}, ... }.
function M.tokens(text)
  local out, i, n = {}, 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c:match("%s") then
      i = i + 1
    else
      local start = i
      local sign = c == "-" and is_digit(text:sub(i + 1, i + 1)) and (i == 1 or not is_alnum(text:sub(i - 1, i - 1)))
      if is_alnum(c) or c == "_" or sign then
        if sign then i = i + 1 end
        while i <= n do
          local d = text:sub(i, i)
          if is_alnum(d) or d == "_" then i = i + 1
          elseif (d == "-" or d == ".") and i < n and is_alnum(text:sub(i + 1, i + 1)) then i = i + 1
          else break end
        end
        local s = text:sub(start, i - 1)
        out[#out + 1] = { text = s, kind = classify(s) }
      else
        out[#out + 1] = { text = c, kind = "punct" }
        i = i + 1
      end
    end
  end
  return out
end

-- A JSON-able value flattened the way the host renders a result: strings and numbers (as JSON
-- writes them), booleans; object keys left out (the host marks them as labels, not values).
local function render(v, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = v
  elseif t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = string.format("%d", v)
    else
      local s = string.format("%.15g", v)
      if tonumber(s) ~= v then s = string.format("%.17g", v) end
      out[#out + 1] = s
    end
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do render(v[k], out) end
  end
  return out
end
M.render = render

local KIND_FITS = {
  number = { number = true },
  word = { word = true },
  id = { id = true, number = true },
  any = { number = true, word = true, id = true },
}

-- Is value an argument of this type the host would offer, given the query and the earlier
-- steps' results (and the agent's candidates)?
function M.offered(arg_type, value, query, steps, cands)
  if arg_type == "candidate" then
    for _, c in ipairs(cands or {}) do if c == value then return true end end
    return false
  end
  local texts = { query }
  for _, s in ipairs(steps) do
    for _, x in ipairs(render(s.result, {})) do texts[#texts + 1] = x end
  end
  local fits = KIND_FITS[arg_type or "any"]
  for _, text in ipairs(texts) do
    for _, tok in ipairs(M.tokens(text)) do
      if fits[tok.kind] then
        if arg_type == "number" then
          if tonumber(tok.text) == value then return true end
        elseif tok.text == value then
          return true
        end
      end
    end
  end
  return false
end

-- The agent's tool declaration by name.
function M.tool(agent, name)
  for _, t in ipairs(agent.tools) do if t.name == name then return t end end
  return nil
end

-- Checks the agent's table against the contract: name, version, tools an array of
-- {name, args = { {name, type}, ... }, cost_usd, description}, the required functions.
function M.check_contract(agent)
  assert.are.equal("string", type(agent.name))
  assert.are.equal("string", type(agent.version))
  for _, f in ipairs({ "init", "step", "final" }) do assert.are.equal("function", type(agent[f]), f) end
  assert.is_nil(agent.actions, "the old contract's actions list")
  assert.is_true(#agent.tools >= 2)
  local names = {}
  for i, t in ipairs(agent.tools) do
    assert.are.equal("string", type(t.name), "tools[" .. i .. "].name")
    assert.is_nil(names[t.name], "repeated tool " .. t.name)
    names[t.name] = true
    assert.is_true(t.cost_usd == nil or (type(t.cost_usd) == "number" and t.cost_usd >= 0), t.name)
    assert.are.equal("string", type(t.description), t.name .. ".description")
    for k, a in ipairs(t.args or {}) do
      assert.are.equal("string", type(a.name), t.name .. ".args[" .. k .. "].name")
      assert.is_truthy(({ number = 1, word = 1, id = 1, any = 1, candidate = 1 })[a.type],
        t.name .. "." .. a.name .. " has type " .. tostring(a.type))
      if a.type == "candidate" then assert.are.equal("function", type(agent.candidates)) end
    end
    assert.is_true(#(t.args or {}) <= 4, t.name)
  end
  return names
end

-- Runs one episode as the host does. policy(k, steps, state, cands) returns the k-th call's tool
-- name and args; every argument must be one the host would offer (checked here). A raised error
-- ends the episode with { error = message } as its result. Returns the trajectory the reward
-- sees: { query, steps = { {action = {tool, params}, result}, ... }, final, truncated }.
function M.run(agent, query, policy, ctx, max_steps)
  local state = agent.init(query, ctx)
  local steps, done = {}, false
  max_steps = max_steps or agent.max_steps or 20
  while not done and #steps < max_steps do
    local cands = agent.candidates and agent.candidates(state) or {}
    local tool, args = policy(#steps + 1, steps, state, cands)
    if tool == nil then break end -- the script ends here: a truncated episode
    local decl = M.tool(agent, tool)
    assert.is_not_nil(decl, "unknown tool " .. tostring(tool))
    args = args or {}
    for _, a in ipairs(decl.args or {}) do
      assert.is_true(M.offered(a.type, args[a.name], query, steps, cands),
        ("%s(%s = %s) is not offered to the policy at step %d of: %s"):format(tool, a.name,
          tostring(args[a.name]), #steps + 1, query))
    end
    local ok, result, d = pcall(agent.step, state, tool, args)
    if not ok then result, d = { error = result }, true end
    steps[#steps + 1] = { action = { tool = tool, params = args }, result = result }
    done = d
  end
  return { query = query, steps = steps, final = agent.final(state), truncated = not done }
end

-- A policy that plays a fixed list of {tool, args} calls (args may be a function of the steps).
function M.script(calls)
  return function(k, steps)
    local c = calls[k]
    if c == nil then return nil end
    local args = c[2]
    if type(args) == "function" then args = args(steps) end
    return c[1], args
  end
end

-- The literal text of a template: the parts between its {placeholders}, trimmed, lowercased,
-- each at least min_len characters.
function M.fragments(template, min_len)
  local out = {}
  for part in (template .. "{}"):gmatch("(.-){%a*}") do
    local p = part:lower():gsub("^[%s%p]+", ""):gsub("[%s%p]+$", "")
    if #p >= (min_len or 6) then out[#out + 1] = p end
  end
  return out
end

-- Every query text of a generated data set: { training = {...}, validation = ..., test_iid,
-- templates, compositions }.
function M.splits(d)
  return { training = d.training_data, validation = d.validation_data, test_iid = d.evaluation_data,
    templates = d.tests.templates, compositions = d.tests.compositions }
end

-- Asserts that no query text (case aside) occurs twice in splits, within one split or across two.
function M.assert_unique_queries(splits)
  local seen = {}
  for name, set in pairs(splits) do
    for _, q in ipairs(set) do
      local key = q.query:lower()
      assert.is_nil(seen[key], name .. " repeats " .. tostring(seen[key]) .. ": " .. q.query)
      seen[key] = name
    end
  end
end

return M
