-- agentcore train examples/inventory/experiment.lua --json
--
-- Trains the inventory agent (plugins/agents/inventory.lua) with GRPO on generated purchase
-- requests (examples/inventory/data.lua) and compares the trained policy with the untrained
-- one on held-out requests. Whether an item must be ordered or back-ordered is drawn per
-- episode and shows only in check_stock's result: a policy that ignores tool results is right
-- about half the time per item.
return {
  name = "inventory",
  agent = "inventory",           -- plugins/agents/inventory.lua
  reward = "inventory",          -- plugins/rewards/inventory.lua
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
