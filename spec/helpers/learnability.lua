-- Shared by the agent specs: can a simple model learn the agent's decisions from its
-- observations? A multiclass averaged perceptron on word unigrams + bigrams stands in for the
-- policy network; it imitates the correct tool sequences of the training queries and is scored
-- on the held-out ones.
local M = {}

M.TOKENIZERS = {
  whitespace = function(s) local t = {}; for w in s:gmatch("%S+") do t[#t + 1] = w end; return t end,
  alnum = function(s) local t = {}; for w in s:gmatch("%w+") do t[#t + 1] = w end; return t end,
}
function M.features(tokenize, text)
  local toks, f = tokenize(text), {}
  for i, w in ipairs(toks) do
    f[#f + 1] = "u:" .. w
    if toks[i + 1] then f[#f + 1] = "b:" .. w .. " " .. toks[i + 1] end
  end
  return f
end

function M.imitation_success(agent, reward, d, tokenize, epochs, run, script_of)
  local w = {}
  for _, a in ipairs(agent.actions) do w[a] = {} end
  local function predict(f, legal)
    local best, best_score
    for _, a in ipairs(legal) do
      local s = 0
      for _, x in ipairs(f) do s = s + (w[a][x] or 0) end
      if not best_score or s > best_score then best, best_score = a, s end
    end
    return best
  end
  local examples = {}
  for _, q in ipairs(d.training_data) do
    local policy = script_of(q.expected_outcome)
    local _, observations, legals = run(q.query, policy)
    for k, obs in ipairs(observations) do
      examples[#examples + 1] = { f = M.features(tokenize, obs), legal = legals[k], want = policy(nil, nil, k) }
    end
  end
  -- averaged perceptron: u accumulates every update times its time c; the average is w - u / c
  local u, c = {}, 1
  for _, a in ipairs(agent.actions) do u[a] = {} end
  for _ = 1, epochs do
    for _, e in ipairs(examples) do
      local got = predict(e.f, e.legal)
      if got ~= e.want then
        for _, x in ipairs(e.f) do
          w[e.want][x] = (w[e.want][x] or 0) + 1
          w[got][x] = (w[got][x] or 0) - 1
          u[e.want][x] = (u[e.want][x] or 0) + c
          u[got][x] = (u[got][x] or 0) - c
        end
      end
      c = c + 1
    end
  end
  for a, wa in pairs(w) do
    for x, v in pairs(wa) do wa[x] = v - (u[a][x] or 0) / c end
  end
  local wins = 0
  for _, q in ipairs(d.evaluation_data) do
    local traj = run(q.query, function(state, legal)
      return predict(M.features(tokenize, agent.observe(state)), legal)
    end)
    if reward.score(traj, q.expected_outcome) == 1 then wins = wins + 1 end
  end
  return wins / #d.evaluation_data
end

return M
