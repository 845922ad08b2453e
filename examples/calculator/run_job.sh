#!/usr/bin/env bash
# A first training job, end to end, with nothing but curl (and python3 to pretty-print JSON).
#
#   cmake -S . -B build && make -C build agentcore     # once
#   bash examples/calculator/run_job.sh                 # from the repository root
#
# It starts a private server (free loopback port, temporary data directory), makes a token,
# generates calculator word problems, starts a GRPO job, polls its status every second, then
# evaluates the trained policy against the untrained one and exports three trajectories.
# Every step must succeed: the script stops with a non-zero status at the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=build/agentcore
[ -x "$BIN" ] || { echo "run_job: $BIN is missing: build it first (see the top of this file)" >&2; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. The server signs and checks tokens with this secret (any 16+ bytes; random here).
export AGENTCORE_JWT_SECRET="${AGENTCORE_JWT_SECRET:-$(head -c 32 /dev/urandom | base64)}"
: >"$WORK/server.out"   # exists before the background server opens it (no race with sed below)
"$BIN" serve --listen 127.0.0.1:0 --data "$WORK/data" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 50); do   # port 0: the kernel picks a free port; the first line names it
  PORT=$(sed -n '1s/.*port=\([0-9]*\).*/\1/p' "$WORK/server.out")
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "run_job: the server did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
URL="http://127.0.0.1:$PORT/api/v1/jsonrpc"
echo "== server on $URL (data in $WORK/data)"

# 2. A token for user "newcomer" with every permission this walkthrough needs.
TOKEN=$("$BIN" token --sub newcomer \
  --perms training:start,training:view,training:cancel,training:evaluate,data:export)

# rpc FILE: POST a JSON-RPC request body, print the "result" object as JSON; fail on an error.
rpc() {
  curl -sS --fail-with-body --max-time 120 "$URL" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" --data-binary @"$1" >"$WORK/response.json" ||
    { echo "run_job: HTTP request failed:" >&2; cat "$WORK/response.json" >&2; echo >&2; return 1; }
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("run_job: JSON-RPC error: " + json.dumps(r["error"]))
print(json.dumps(r["result"]))' "$WORK/response.json"
}
# call METHOD PARAMS_JSON: rpc with a small request written to a file first
call() {
  printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":1}' "$1" "$2" >"$WORK/request.json"
  rpc "$WORK/request.json"
}
# get FIELD.PATH < JSON: print one field
get() { python3 -c 'import json,sys; t=sys.stdin.read(); t or sys.exit(1); v=json.loads(t)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }

# 3. Data: 256 training and 64 held-out calculator word problems (seed 7).
lua5.4 examples/gen_data.lua calculator 7 >"$WORK/data.json"

# 4. The start request: agent, GRPO config, data. --data-binary sends the file as it is.
python3 - "$WORK/data.json" >"$WORK/start.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(json.dumps({"jsonrpc": "2.0", "method": "training.start_grpo", "id": "start-1", "params": {
    "agent_id": "calculator",
    # the policy picks each tool and its operands among the numbers it has seen: 150 iterations
    # (about 30 s on 2 cores) take held-out success from a few % to about 20 %
    "config": {"n_iterations": 150, "batch_size": 16, "n_trajectories_per_query": 8,
               "learning_rate": 0.0003, "beta": 0.04, "max_steps_per_trajectory": 8,
               "checkpoint_interval": 25},
    "training_data": data["training_data"],        # 256 queries (at least 100 are required)
    "evaluation_data": data["evaluation_data"]}}))  # 64 held-out queries
PY
JOB=$(rpc "$WORK/start.json" | get job_id)
echo "== started job $JOB"

# 5. Poll the status every second until the job is over (at most 300 s).
for _ in $(seq 300); do
  ST=$(call training.get_status "{\"job_id\":\"$JOB\"}")
  echo "$ST" | python3 -c 'import json,sys; s=json.load(sys.stdin); m=s.get("metrics") or {}
print("   %-9s iteration %3s/%s (%5.1f%%)  avg_reward %s  validation_accuracy %s" % (s["status"],
      s["current_iteration"], s["total_iterations"], s["progress_percent"],
      *("-" if m.get(k) is None else "%.3f" % m[k] for k in ("avg_reward", "validation_accuracy"))))'
  STATUS=$(echo "$ST" | get status)
  case "$STATUS" in completed) break ;; failed|cancelled) echo "run_job: job $STATUS" >&2; exit 1 ;; esac
  sleep 1
done
[ "$STATUS" = completed ] || { echo "run_job: the job did not finish in 300 s" >&2; exit 1; }

# 6. Evaluate the best checkpoint against the untrained policy on the held-out queries.
echo "== evaluate"
call training.evaluate "{\"job_id\":\"$JOB\"}" | python3 -c 'import json,sys; r=json.load(sys.stdin)
m, b = r["metrics"], r["baseline_comparison"]
print("   trained  : success_rate %.3f  CI95 [%.3f, %.3f]  avg_reward %.3f" % (m["success_rate"],
      *m["success_rate_ci95"], m["avg_reward"]))
print("   untrained: success_rate %.3f  avg_reward %.3f" % (b["baseline"]["success_rate"], b["baseline"]["avg_reward"]))
print("   improvement: success %+.3f (p = %.2g, significant: %s), reward %+.3f (p = %.2g); %d queries" % (
      b["success_rate_improvement"], b["p_value"], b["statistically_significant"], b["avg_reward_improvement"],
      b["p_value_reward"], r["queries_evaluated"]))'

# 7. Export three successful trajectories (query, tool calls with the arguments the policy chose,
#    answer, reward).
echo "== export_trajectories (success_only, limit 3)"
call training.export_trajectories "{\"job_id\":\"$JOB\",\"success_only\":true,\"limit\":3}" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print("   %d of %d successful stored trajectories" % (r["returned_count"], r["total_count"]))
for t in r["trajectories"]:
    calls = " -> ".join("%s(%s)" % (s["action"]["tool"], ", ".join("%s=%s" % kv for kv in sorted(s["action"]["params"].items())))
                        for s in t["steps"])
    print("   [%s] %s\n      %s\n      final %s  reward %s  success %s" % (t["trajectory_id"], t["query"],
          calls, json.dumps(t.get("final")), t["reward"], t["success"]))'
echo "== done"
