-- Specs for the files agent, its reward and its data generator.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.files")
local reward = require("rewards.files")
local data = require("files.data")
local tc = require("helpers.tool_calls")

local QUERY = "What is the port of the service that web depends on?"

-- Finds and reads each config.yml of the chain, taking the next service from the dependency
-- line of what it READ, and answers with the value on the line of the key. It is told the key
-- and the number of services to walk (what the policy must learn to read from the question),
-- never a value.
local function reader(q)
  local exp = q.expected_outcome
  local svc = exp.chain[1]
  for w in q.query:gmatch("%a+") do -- as the question writes it ("Storage uses which host?")
    if w:lower() == svc then svc = w break end
  end
  local hops, phase = 1, "find"
  local function value(lines, key)
    for _, l in ipairs(lines) do
      local k, v = l:match("^(%a+): (.+)$")
      if k == key then return v end
    end
  end
  return function(_, steps)
    if phase == "find" then
      phase = "read"
      return "find_files", { name = svc }
    end
    if phase == "read" then
      phase = "next"
      return "read_file", { path = svc:lower() .. "/config.yml" }
    end
    local lines = steps[#steps].result.lines
    if hops < #exp.chain then
      svc, hops, phase = value(lines, "dependency"), hops + 1, "read"
      return "find_files", { name = svc }
    end
    return "answer", { value = value(lines, exp.key) }
  end
end

local d = data.generate(42)
local splits = tc.splits(d)

describe("files agent", function()
  it("declares its tools with argument types, and neither observe nor legal", function()
    local names = tc.check_contract(agent)
    for _, n in ipairs({ "find_files", "grep", "read_file", "file_info", "run_tests", "answer" }) do
      assert.is_true(names[n], n)
    end
    assert.is_nil(agent.observe)
    assert.is_nil(agent.legal)
    assert.are.equal("candidate", tc.tool(agent, "read_file").args[1].type)
    assert.are.equal("any", tc.tool(agent, "answer").args[1].type)
  end)

  it("builds the same project for the same question: twelve services in one dependency chain", function()
    local p = agent.project(QUERY)
    assert.are.same(p, agent.project(QUERY))
    assert.are.equal(36, #p.files)
    local depended, ends = {}, 0
    for _, s in ipairs(agent.SERVICES) do
      local dep = p.config[s].dependency
      if dep == "none" then ends = ends + 1
      else
        assert.is_nil(depended[dep], dep .. " twice")
        depended[dep] = true
        assert.are_not.equal(s, dep)
      end
      assert.are.same({ "host: " .. p.config[s].host, "port: " .. p.config[s].port, "timeout: " .. p.config[s].timeout,
        "replicas: " .. p.config[s].replicas, "owner: " .. p.config[s].owner, "dependency: " .. dep },
        p.by_path[s .. "/config.yml"].lines)
    end
    assert.are.equal(1, ends)
    assert.are_not.same(p.config, agent.project(QUERY .. " ").config)
  end)

  it("offers only the paths results have shown, in the order first shown", function()
    local s = agent.init(QUERY)
    assert.are.same({}, agent.candidates(s)) -- read_file cannot be called yet
    local r = agent.step(s, "find_files", { name = "web" })
    assert.are.same({ "web/config.yml", "web/main.py", "web/README.md" }, r.files)
    assert.are.same(r.files, agent.candidates(s))
    agent.step(s, "grep", { text = "port" })
    local c = agent.candidates(s)
    assert.are.same({ "web/config.yml", "web/main.py", "web/README.md" }, { c[1], c[2], c[3] })
    assert.is_true(#c > 3)
  end)

  it("finds by directory or file name, greps whole words, reads, and answers unknown paths with an error", function()
    local s = agent.init(QUERY)
    assert.are.equal(8, #agent.step(s, "find_files", { name = "CONFIG" }).files) -- at most 8
    assert.are.same({}, agent.step(s, "find_files", { name = "port" }).files)
    local g = agent.step(s, "grep", { text = "dependency" }).matches
    assert.are.equal(agent.MAX_GREP, #g)
    for _, m in ipairs(g) do assert.matches("^%a+/config%.yml: dependency: %a+$", m) end
    assert.are.same({}, agent.step(s, "grep", { text = "por" }).matches)
    local lines = agent.step(s, "read_file", { path = "web/config.yml" }).lines
    assert.are.equal(6, #lines)
    assert.matches("no file", agent.step(s, "read_file", { path = "web" }).error)
    assert.are.equal("number", type(agent.step(s, "file_info", { path = "web/main.py" }).bytes))
    local r, done = agent.step(s, "answer", { value = "8080" })
    assert.is_true(done)
    assert.are.same({ answer = "8080" }, r)
    assert.are.same({ answered = true, answer = "8080" }, agent.final(s))
    assert.has_error(function() agent.step(s, "run_tests", {}) end)
    assert.are.same({ answered = false }, agent.final(agent.init(QUERY)))
  end)

  it("solves every generated question with values read from the files", function()
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        local traj = tc.run(agent, q.query, reader(q))
        local r, info = reward.score(traj, q.expected_outcome)
        assert.is_true(info.success, name .. ": " .. q.query)
        assert.are.equal(1, r)
        assert.are.equal(q.expected_outcome.min_steps, #traj.steps)
      end
    end
  end)
end)

describe("files reward", function()
  local p = agent.project(QUERY)
  local dep = p.config.web.dependency
  local exp = { answer = tostring(p.config[dep].port), key = "port", chain = { "web", dep }, min_steps = 5 }
  local function play(calls) return tc.run(agent, QUERY, tc.script(calls)) end
  local find_web = { "find_files", { name = "web" } }
  local read_web = { "read_file", { path = "web/config.yml" } }
  local find_dep = { "find_files", { name = dep } }
  local read_dep = { "read_file", { path = dep .. "/config.yml" } }

  it("is 1 for the value, less 0.05 a call beyond the fewest, at least 0.8", function()
    local r, info = reward.score(play({ find_web, read_web, find_dep, read_dep, { "answer", { value = exp.answer } } }), exp)
    assert.are.equal(1, r)
    assert.is_true(info.success)
    r, info = reward.score(play({ find_web, read_web, { "run_tests", {} }, find_dep, read_dep,
      { "answer", { value = exp.answer } } }), exp)
    assert.are.equal(0.95, r)
    assert.is_true(info.success)
    assert.is_true(info.tool_accuracy < 1)
  end)

  it("gives partial credit for the files read and for an answer from the right file", function()
    local port_web = tostring(p.config.web.port)
    local wrong_file = reward.score(play({ find_web, read_web, { "answer", { value = port_web } } }), exp)
    assert.are.equal(0.5 * 1 / 2.5, wrong_file)
    local right_file = reward.score(play({ find_web, read_web, find_dep, read_dep,
      { "answer", { value = tostring(p.config[dep].timeout) } } }), exp)
    assert.are.equal(0.5, right_file)
    local unanswered = reward.score(play({ find_web, read_web, find_dep, read_dep }), exp)
    assert.are.equal(0.5 * 2 / 2.5, unanswered)
    assert.are.equal(0, (reward.score(play({ { "answer", { value = "web" } } }), exp)))
  end)

  it("refuses an expected_outcome without answer and chain", function()
    assert.has_error(function() reward.score({ steps = {} }, { answer = 5, chain = { "web" } }) end)
    assert.has_error(function() reward.score({ steps = {} }, { answer = "5", chain = {} }) end)
  end)
end)

describe("files data generator", function()
  it("is deterministic for a seed and makes the sizes asked for", function()
    assert.are.same(data.generate(42), d)
    local small = data.generate(7, 120, 10)
    assert.are.equal(120, #small.training_data)
    assert.are.equal(10, #small.tests.templates)
  end)

  it("never repeats a query text across or within splits, nor puts the answer in it", function()
    local seen = {}
    for name, set in pairs(splits) do
      for _, q in ipairs(set) do
        local key = q.query:lower()
        assert.is_nil(seen[key], name .. ": " .. q.query)
        seen[key] = name
        assert.is_nil(q.query:find(q.expected_outcome.answer, 1, true), q.query)
      end
    end
  end)

  it("keeps the held-out phrasings out of training, validation and test_iid", function()
    local text = {}
    for _, name in ipairs({ "training", "validation", "test_iid", "compositions" }) do
      for _, q in ipairs(splits[name]) do text[#text + 1] = q.query:lower() end
    end
    local all = table.concat(text, "\n")
    local frags = {}
    for _, template in ipairs(data.FRAME.held) do
      for _, f in ipairs(tc.fragments(template, 6)) do frags[#frags + 1] = f end
    end
    -- the held-out ways to name a service, filled in with each service ("the service web")
    for _, template in ipairs({ data.TARGET.held[1][2], data.TARGET.held[2][1], data.TARGET.held[2][2] }) do
      for _, svc in ipairs(agent.SERVICES) do
        frags[#frags + 1] = (template:gsub("{svc}", svc)):lower()
      end
    end
    assert.is_true(#frags >= 6 + 3 * #agent.SERVICES)
    for _, f in ipairs(frags) do assert.is_nil(all:find(f, 1, true), f) end
    for _, w in ipairs({ "uses", "finding", "used", "looking", "depending" }) do
      assert.is_nil(all:find("%f[%a]" .. w .. "%f[%A]"), w)
    end
    for _, q in ipairs(d.tests.templates) do
      local s, used = q.query:lower(), false
      for _, f in ipairs(frags) do used = used or s:find(f, 1, true) ~= nil end
      assert.is_true(used, q.query)
    end
  end)

  it("asks tests.compositions what training never asks: longer chains, held keys through a dependency", function()
    for _, name in ipairs({ "training", "validation", "test_iid", "templates" }) do
      for _, q in ipairs(splits[name]) do
        local e = q.expected_outcome
        assert.is_true(#e.chain <= 2, q.query)
        if #e.chain == 2 then assert.is_nil(data.HELD_KEYS[e.key], q.query) end
      end
    end
    local long, held = 0, 0
    for _, q in ipairs(d.tests.compositions) do
      local e = q.expected_outcome
      if #e.chain == 3 then long = long + 1
      else
        assert.are.equal(2, #e.chain)
        assert.is_true(data.HELD_KEYS[e.key], q.query)
        held = held + 1
      end
    end
    assert.is_true(long > 10 and held > 10)
  end)
end)
