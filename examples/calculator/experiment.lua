-- agentcore train examples/calculator/experiment.lua --json
--
-- Trains the calculator agent (plugins/agents/calculator.lua) with GRPO on generated arithmetic
-- word problems and compares the trained policy with the untrained one on held-out problems.
return {
  name = "calculator",
  agent = "calculator",          -- plugins/agents/calculator.lua
  reward = "calculator",         -- plugins/rewards/calculator.lua
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
    beta = 0.04,
  },
  -- sweep = { learning_rate = { 0.00003, 0.0001, 0.0003 } },   -- each value a run, side by side
}
