-- Reward for the files agent (plugins/agents/files.lua).
--
-- expected_outcome = { answer = "6379", key = "port", chain = { "web", "cache" }, min_steps = 5 }
--   chain: the services the question walks through, the asked one first and the one whose key
--   is the answer last (one service for a direct question).
--
-- Success: the answer is the expected value (compared as text: the policy passes the token it
-- saw, "6379"). Reward:
--   success: 1 - 0.05 per call beyond min_steps, at least 0.8 (min_steps: find and read each
--            config.yml of the chain, then answer; a grep can make it shorter);
--   otherwise partial credit, at most 0.5: 0.5 x the share of the milestones reached (each
--     config.yml of the chain found, listed by a find_files or grep: 0.5 each, and read: 1 each;
--     an answer that is a value of the last one's file, the right file but the wrong line: 0.5),
--     less 0.01 per call beyond min_steps. (With the wrong line worth as much as a read, runs
--     settled on answering the first value of the file, the host, whatever the question asked.
--     Without the credit for finding, two runs in five never learned to follow a dependency:
--     once the policy answers from the first file, a search for the service its "dependency:"
--     line names is rare, and only the read after it paid.)
-- tool_accuracy: the share of calls that did not fail and are not file_info or run_tests.

local DISTRACTORS = { file_info = true, run_tests = true }

local function failed(step)
  return type(step.result) ~= "table" or step.result.error ~= nil
end

local function check(expected)
  if type(expected) ~= "table" or type(expected.answer) ~= "string" or type(expected.chain) ~= "table"
      or #expected.chain == 0 then
    error("files reward: expected_outcome needs answer (string) and chain (non-empty array)", 0)
  end
end

local M = {
  name = "files",
  version = "1.0.0",
  description = "1 for the expected value (less 0.05 a call beyond the fewest), else 0.5 x the share of the "
    .. "chain's config files found and read and of an answer from the right file",
  range = { 0, 1 },
  success_threshold = 0.8,
}

function M.score(trajectory, expected)
  check(expected)
  local steps = type(trajectory.steps) == "table" and trajectory.steps or {}
  local final = type(trajectory.final) == "table" and trajectory.final or {}
  local chain = expected.chain
  local read, found, right = {}, {}, 0
  local last_lines = nil
  for _, step in ipairs(steps) do
    local action = type(step.action) == "table" and step.action or {}
    local bad = failed(step)
    if not bad and not DISTRACTORS[action.tool] then right = right + 1 end
    if (action.tool == "find_files" or action.tool == "grep") and not bad then
      local listed = step.result.files or step.result.matches
      for _, entry in ipairs(type(listed) == "table" and listed or {}) do
        for k, s in ipairs(chain) do
          if type(entry) == "string" and string.sub(entry, 1, #s + 11) == s .. "/config.yml" then found[k] = true end
        end
      end
    end
    if action.tool == "read_file" and not bad and type(action.params) == "table" then
      for k, s in ipairs(chain) do
        if action.params.path == s .. "/config.yml" then
          read[k] = true
          if k == #chain then last_lines = step.result.lines end
        end
      end
    end
  end
  local answer = final.answer ~= nil and tostring(final.answer) or nil
  local info = { tool_accuracy = #steps > 0 and right / #steps or nil }
  info.success = answer == expected.answer
  local extra = math.max(0, #steps - (tonumber(expected.min_steps) or #steps))
  if info.success then return math.max(0.8, 1 - 0.05 * extra), info end
  local hits = 0
  for k = 1, #chain do hits = hits + (read[k] and 1 or 0) + (found[k] and 0.5 or 0) end
  if answer and type(last_lines) == "table" then
    for _, line in ipairs(last_lines) do
      if type(line) == "string" and string.match(line, ":%s*(.-)$") == answer then hits = hits + 0.5 break end
    end
  end
  local partial = 0.5 * hits / (1.5 * #chain + 0.5) - 0.01 * extra
  return math.min(0.5, math.max(0.0, partial)), info
end

return M
