-- agentcore train examples/files/experiment.lua --json
--
-- Trains the files agent (plugins/agents/files.lua) with GRPO on generated questions about a
-- project's services (examples/files/data.lua) and compares the trained policy with the
-- untrained one on held-out questions. The policy has to learn to find the right file
-- (find_files or grep with a word of the question, or of a file it read), to open it among the
-- paths results showed, to follow a dependency to the next service, and to answer with the
-- value on the line of the setting asked for.
return {
  name = "files",
  agent = "files",               -- plugins/agents/files.lua
  reward = "files",              -- plugins/rewards/files.lua
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
    max_steps_per_trajectory = 10,
    policy = { kind = "bag", max_tokens = 256 },    -- or { kind = "sequence", d_model = 32, n_heads = 2, n_layers = 2, d_ff = 64, max_tokens = 256 }
  },
}
