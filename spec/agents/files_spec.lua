-- Specs for plugins/agents/files.lua. Its reward: spec/rewards/files_spec.lua; its data
-- generator: spec/examples/files_data_spec.lua.
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
local splits = tc.splits(data.generate(42))

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
