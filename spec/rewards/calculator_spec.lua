-- Specs for plugins/rewards/calculator.lua: credit for the intermediate values, success for the answer.
package.path = "./spec/?.lua;./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;./examples/?.lua;" .. package.path

local reward = require("rewards.calculator")

describe("calculator reward", function()
  local expected = { answer = 36, ops = { "add", "multiply" }, values = { 12, 36 } }
  local function traj(calls, answer)
    local steps = {}
    -- distinct arguments per call: a repeated call costs 0.05, tested on its own below
    for i, c in ipairs(calls) do steps[i] = { action = { tool = c[1], params = { a = i } }, result = c[2] } end
    return { query = "q", steps = steps, final = { answer = answer } }
  end

  it("compares numbers exactly, integer and float alike, within range", function()
    local t = function(a) return { query = "q", steps = {}, final = { answer = a } } end
    assert.are.equal(1, (reward.score(t(35.0), { answer = 35 })))
    assert.are.equal(1, (reward.score(t(0.1 + 0.2), { answer = 0.3 })))
    assert.are.equal(0, (reward.score(t(36), { answer = 35 })))
    assert.are.equal(0, (reward.score(t("35"), { answer = 35 })))
    assert.are.equal(0, (reward.score({ query = "q", steps = {}, final = "x" }, { answer = 35 })))
    assert.is_nil(select(2, reward.score(t(35), { answer = 35 })).tool_accuracy)
    assert.has_error(function() reward.score(t(35), {}) end)
  end)

  it("gives partial credit for the intermediate values reached in order, success for the answer only", function()
    local r, info = reward.score(traj({ { "add", { value = 12 } }, { "multiply", { value = 36 } },
                                        { "answer", { answer = 36 } } }, 36), expected)
    assert.are.equal(1, r)
    assert.is_true(info.success)
    assert.are.equal(1, info.tool_accuracy)
    -- the right chain, a wrong answer: half of the way
    r, info = reward.score(traj({ { "add", { value = 12 } }, { "multiply", { value = 36 } },
                                  { "answer", { answer = 35 } } }, 35), expected)
    assert.are.equal(0.5, r)
    assert.is_false(info.success)
    -- one value of two, with an extra call in between: a quarter
    r = reward.score(traj({ { "subtract", { value = 2 } }, { "add", { value = 12 } }, { "power", { value = 1 } } }, nil),
                     expected)
    assert.are.equal(0.25, r)
    -- values out of order count only in order
    r = reward.score(traj({ { "multiply", { value = 36 } }, { "add", { value = 12 } } }, nil), expected)
    assert.are.equal(0.25, r)
    -- no values, nothing reached, or no steps: 0
    assert.are.equal(0, (reward.score(traj({ { "add", { value = 13 } } }, nil), expected)))
    assert.are.equal(0, (reward.score(traj({}, nil), expected)))
    assert.are.equal(0, (reward.score(traj({ { "add", { value = 12 } } }, nil), { answer = 36 })))
    -- a failed call reaches nothing and is a wrong step
    r, info = reward.score(traj({ { "add", { value = 12 } }, { "divide", { error = "divide: division by zero" } } }, nil),
                           expected)
    assert.are.equal(0.25, r)
    assert.are.equal(0.5, info.tool_accuracy)
    -- tool accuracy: the expected operation at each position
    r, info = reward.score(traj({ { "multiply", { value = 35 } }, { "multiply", { value = 36 } },
                                  { "answer", { answer = 36 } } }, 36), expected)
    assert.are.equal(1, r)
    assert.is_true(math.abs(info.tool_accuracy - 2 / 3) < 1e-12)
  end)

  it("charges 0.05 for each call made once the answer's value is in hand, so answering at once earns most", function()
    local done = { { "add", { value = 12 } }, { "multiply", { value = 36 } } }
    local at_once = traj({ done[1], done[2], { "answer", { answer = 36 } } }, 36)
    local late = traj({ done[1], done[2], { "add", { value = 40 } }, { "subtract", { value = 36 } },
                        { "answer", { answer = 36 } } }, 36)
    local r1, i1 = reward.score(at_once, expected)
    local r2, i2 = reward.score(late, expected)
    assert.are.equal(1, r1)
    assert.is_true(i1.success and i2.success)
    assert.is_true(math.abs(r2 - 0.9) < 1e-12, r2)
    assert.are.same({ 0.25, 0.25, -0.05, -0.05, 0.5 }, i2.step_rewards)
    -- calls before the last value is reached cost nothing (the way there may wander)
    local wander = traj({ { "subtract", { value = 2 } }, done[1], done[2], { "answer", { answer = 36 } } }, 36)
    assert.are.equal(1, (reward.score(wander, expected)))
  end)

  it("charges 0.05 for a call that repeats an earlier one, per step, so the call that progressed earns more", function()
    local steps = {
      { action = { tool = "add", params = { a = 5, b = 7 } }, result = { value = 12 } },
      { action = { tool = "add", params = { b = 7, a = 5 } }, result = { value = 12 } },
      { action = { tool = "add", params = { a = 5, b = 8 } }, result = { value = 13 } },
    }
    local r, info = reward.score({ query = "q", steps = steps, final = {} }, expected)
    assert.is_true(math.abs(r - 0.20) < 1e-12, r)
    assert.are.equal(0.25, info.step_rewards[1])
    assert.is_true(math.abs(info.step_rewards[2] + 0.05) < 1e-12)
    assert.are.equal(0, info.step_rewards[3])
  end)
end)
