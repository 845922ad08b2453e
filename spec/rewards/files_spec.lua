-- Specs for plugins/rewards/files.lua, on episodes of the files agent.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local agent = require("agents.files")
local reward = require("rewards.files")
local tc = require("helpers.tool_calls")

local QUERY = "What is the port of the service that web depends on?"

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

  it("gives partial credit for the files found and read and for an answer from the right file", function()
    local port_web = tostring(p.config.web.port)
    local wrong_file = reward.score(play({ find_web, read_web, { "answer", { value = port_web } } }), exp)
    assert.are.equal(0.5 * 1.5 / 3.5, wrong_file)
    local right_file = reward.score(play({ find_web, read_web, find_dep, read_dep,
      { "answer", { value = tostring(p.config[dep].timeout) } } }), exp)
    assert.are.equal(0.5, right_file)
    local unanswered = reward.score(play({ find_web, read_web, find_dep, read_dep }), exp)
    assert.are.equal(0.5 * 3 / 3.5, unanswered)
    assert.are.equal(0, (reward.score(play({ { "answer", { value = "web" } } }), exp)))
  end)

  it("credits a search that lists the next service's config.yml before it is read", function()
    local port_web = tostring(p.config.web.port)
    local answer_web = { "answer", { value = port_web } }
    local found = reward.score(play({ find_web, read_web, find_dep, answer_web }), exp)
    assert.are.equal(0.5 * 2 / 3.5, found)
    local grepped = reward.score(play({ find_web, read_web, { "grep", { text = dep } }, answer_web }), exp)
    assert.is_true(grepped >= found, "a grep listing the dependency's config.yml counts as finding it")
    local elsewhere = reward.score(play({ find_web, read_web, find_web, answer_web }), exp)
    assert.are.equal(0.5 * 1.5 / 3.5, elsewhere) -- only the first service again
  end)

  it("refuses an expected_outcome without answer and chain", function()
    assert.has_error(function() reward.score({ steps = {} }, { answer = 5, chain = { "web" } }) end)
    assert.has_error(function() reward.score({ steps = {} }, { answer = "5", chain = {} }) end)
  end)
end)
