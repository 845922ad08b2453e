-- agentcore train examples/support/experiment.lua --json
--
-- Trains the support agent (plugins/agents/support.lua) with GRPO on generated customer
-- messages (examples/support/data.lua) and compares the trained policy with the untrained one
-- on held-out messages. The policy has to learn which orders a message is about (searching by
-- name or item and reading the results), which tool each request needs with which arguments
-- (order numbers and amounts come from tool results), and the shop's rule that a refund over
-- $100 needs verify_identity first, which only the reward teaches.
return {
  name = "support",
  agent = "support",             -- plugins/agents/support.lua
  reward = "support",            -- plugins/rewards/support.lua
  validator = "default",         -- plugins/validators/default.lua
  seed = 1,
  data = {
    generator = "data.lua",      -- relative to this file; generate(seed, n_train, n_eval)
    n_train = 1024,
    n_eval = 64,
  },
  config = {
    n_iterations = 1000,          -- the service's default; validation picks the checkpoint
    batch_size = 16,
    n_trajectories_per_query = 8,
    max_steps_per_trajectory = 14,
    policy = { kind = "bag", max_tokens = 256 },    -- or { kind = "sequence", d_model = 32, n_heads = 2, n_layers = 2, d_ff = 64, max_tokens = 256 }
  },
}
