-- agentcore train examples/support/experiment.lua --json
--
-- Trains the support agent (plugins/agents/support.lua) with GRPO on generated
-- tasks and compares the trained policy with the untrained one on held-out problems.
return {
  name = "support",
  agent = "support",          -- plugins/agents/support.lua
  reward = "support",         -- plugins/rewards/support.lua
  validator = "default",         -- plugins/validators/default.lua
  seed = 1,
  data = {
    generator = "data.lua",      -- relative to this file; generate(seed, n_train, n_eval)
    n_train = 256,
    n_eval = 64,
  },
  config = {
    n_iterations = 200,
    batch_size = 16,
    n_trajectories_per_query = 8,
    max_steps_per_trajectory = 8,
  },
  -- sweep = { learning_rate = { 0.00003, 0.0001, 0.0003 } },   -- each value a run, side by side
}
