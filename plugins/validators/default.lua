-- The standard training-data checks (used unless a job names another validator).
--
-- Reports every problem, each with where it is (index: 0-based position in its array; field:
-- "training_data[7].query"):
--   * training_data has at least limits.min_training queries (default 100);
--   * each set has at most limits.max_queries queries (default 10000);
--   * each item is an object with a non-empty `query` string of at most limits.max_query_bytes
--     bytes (default 4096) and an object `expected_outcome`;
--   * no evaluation query copies a training query (same text after trimming and lowercasing).

local ac = require("agentcore")
local util = require("agentcore.util")

local validator = {
  name = "default",
  version = "1.0.0",
  description = "minimum size, query and expected_outcome shapes, no evaluation query copied "
    .. "from training",
}

local function is_list(v)
  return ac.is_array(v) or (type(v) == "table" and next(v) == nil)
end

-- Checks one set; `seen` maps a normalized training query to its 0-based index (filled while
-- checking training, read while checking evaluation).
local function check_set(problems, set, list, seen, is_training, limits)
  if list == nil or list == ac.null then
    if is_training then util.problem(problems, set, nil, nil, "is required (an array of queries)") end
    return
  end
  if not is_list(list) then
    util.problem(problems, set, nil, nil, "must be an array of queries")
    return
  end
  local n = #list
  if is_training and n < limits.min_training then
    util.problem(problems, set, nil, nil,
      string.format("needs at least %d queries, got %d", limits.min_training, n))
  end
  if n > limits.max_queries then
    util.problem(problems, set, nil, nil,
      string.format("must have at most %d queries, got %d", limits.max_queries, n))
  end
  for i = 1, n do
    local item = list[i]
    if not ac.is_object(item) then
      util.problem(problems, set, i, nil, "must be an object with query and expected_outcome")
    else
      local q = item.query
      if not util.is_nonempty_string(q) then
        util.problem(problems, set, i, "query", "must be a non-empty string")
      elseif #q > limits.max_query_bytes then
        util.problem(problems, set, i, "query",
          string.format("must be at most %d bytes, got %d", limits.max_query_bytes, #q))
      else
        local key = util.normalize(q)
        if is_training then
          if seen[key] == nil then seen[key] = i - 1 end
        elseif seen[key] then
          util.problem(problems, set, i, "query", string.format(
            "copies training_data[%d].query (same text after trimming and lowercasing)", seen[key]))
        end
      end
      local e = item.expected_outcome
      if e == nil or e == ac.null then
        util.problem(problems, set, i, "expected_outcome", "is required (an object)")
      elseif not ac.is_object(e) then
        util.problem(problems, set, i, "expected_outcome", "must be an object")
      end
    end
  end
end

function validator.validate(training, evaluation, limits)
  limits = limits or {}
  local l = {
    min_training = limits.min_training or 100,
    max_queries = limits.max_queries or 10000,
    max_query_bytes = limits.max_query_bytes or 4096,
  }
  local problems, seen = ac.array(), {}
  check_set(problems, "training_data", training, seen, true, l)
  check_set(problems, "evaluation_data", evaluation, seen, false, l)
  return problems
end

return validator
