-- agentcore train examples/calculator/experiment.lua --json
--
-- Trains the calculator agent (plugins/agents/calculator.lua) with GRPO on generated arithmetic
-- word problems: the policy picks each operation and its operands from what it has seen. The
-- report compares the policy selected on the validation split with the random policy, the
-- untrained one and the keyword rule on the held-out splits: new queries (evaluation_data),
-- phrasings never seen in training (tests.templates) and longer chains of unseen operation pairs
-- (tests.compositions). bash bench/learning.sh runs it with both policies and five seeds.
return {
  name = "calculator",
  agent = "calculator",          -- plugins/agents/calculator.lua
  reward = "calculator",         -- plugins/rewards/calculator.lua (partial credit per step)
  validator = "default",         -- plugins/validators/default.lua
  seed = 1,
  data = {
    generator = "data.lua",      -- relative to this file; generate(seed, n_train, n_eval)
    n_train = 512,
    n_eval = 64,
  },
  config = {
    n_iterations = 1000,          -- the service's default; validation picks the checkpoint
    eval_interval = 25,
    -- policy = { kind = "sequence" },   -- the Transformer reader (docs/grpo.md, "The policy")
  },
  -- sweep = { learning_rate = { 0.00003, 0.0001, 0.0003 } },   -- each value a run, side by side
}
