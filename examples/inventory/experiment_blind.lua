-- agentcore train examples/inventory/experiment_blind.lua --json
--
-- The control of examples/inventory/experiment.lua: the same data, splits, seed and settings,
-- with the inventory agent blind to its tool results (plugins/agents/inventory_blind.lua: the
-- real agent, whose every call shows the policy an empty result) and the inventory reward on the
-- true results (plugins/rewards/inventory_blind.lua). The stock that decides between order and
-- back-order shows only in check_stock's result, so whatever this policy learns is what can be
-- learnt without reading a tool result: about half the items right. bench/learning.sh runs it as
-- the agent "inventory-blind".
return {
  name = "inventory_blind",
  agent = "inventory_blind",     -- plugins/agents/inventory_blind.lua
  reward = "inventory_blind",    -- plugins/rewards/inventory_blind.lua
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
