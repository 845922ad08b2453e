-- plugins/webhooks/default.lua: the policy every server starts with delivers every event as is.
package.path = "./plugins/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path

local policy = require("webhooks.default")

describe("webhooks.default", function()
  it("follows the plugin contract", function()
    assert.are.equal("default", policy.name)
    assert.is_string(policy.version)
    assert.is_function(policy.route)
  end)

  it("delivers every event kind unchanged to its subscription", function()
    for _, name in ipairs({ "training.job.started", "training.job.progress", "training.job.completed",
                            "training.job.failed", "training.job.cancelled", "training.budget.warning" }) do
      local event = { event = name, timestamp = "2025-10-17T12:00:00Z", data = { job_id = "j" } }
      local target = { url = "https://example.com/hook", events = { "*" }, source = "config" }
      assert.is_true(policy.route(event, target))
      assert.are.equal(name, event.event) -- not modified
    end
  end)
end)
