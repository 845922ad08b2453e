#!/usr/bin/env bash
# Training API benchmarks (bench/README.md, "Training API: get_status under training, export
# pages"), everything on 127.0.0.1 against one private server:
#
#  (a) training.get_status throughput and p50/p99 latency with wrk (HTTP/1.1 keep-alive,
#      -t1 -c16, DURATION s, RUNS runs, medians) while one long job trains, then idle;
#  (b) training.export_trajectories page time at offsets 0 and 90,000 of a job that stored
#      102,400 trajectories (limit 100 and 1000; limit 1: the index scan alone), 20 requests
#      each over one kept-alive connection (bench/export_pages.py): median and p99;
#  (c) get_status as in (a), one run, while another client pulls export pages of 10,000
#      trajectories (export runs on the event loops: head-of-line blocking). HOL=0 skips it.
#
#   cmake -S . -B build && make -C build agentcore
#   bash bench/training_bench.sh            # RUNS=3 DURATION=10 by default; about 2 minutes
#   STORE=postgresql bash bench/training_bench.sh   # the same on the PostgreSQL store: a
#                                           # PostgreSQL 15 started in a temporary directory
#                                           # (bench/pg_serve.py, fsync on), on loopback TCP
#
# The 1-minute load average is printed with every wrk run: on a shared 2-core machine other
# work moves these numbers by 2x (compare runs made back to back, on a quiet machine).
#
# Needs wrk, curl, python3, lua5.4. The server binary is copied first (others may rebuild
# build/agentcore meanwhile). Every wait is bounded; the server is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
HOL=${HOL:-1}
STORE=${STORE:-lmdb}
for tool in wrk curl python3 lua5.4; do
  command -v "$tool" >/dev/null || { echo "training_bench: $tool is missing" >&2; exit 1; }
done
[ -x build/agentcore ] || { echo "training_bench: build build/agentcore first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/training_bench.XXXXXX)
SERVER_PID=
EXPORT_PID=
PG_PID=
cleanup() {
  if [ -n "$EXPORT_PID" ]; then kill "$EXPORT_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true   # SIGTERM: graceful stop (at most 10 s), then KILL
    for _ in $(seq 120); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_PID" ]; then kill "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp build/agentcore "$WORK/agentcore"
BIN=$WORK/agentcore

# Rate limits stay on (their cost is part of a request) but high enough never to refuse.
# Retention keeps all 102,400 trajectories of the export job; budgets never stop a job.
cat >"$WORK/bench.lua" <<'LUA'
local many = { limit = 1000000000, window_s = 60 }
return {
  rate_limits = { start_grpo = many, get_status = many, cancel = many, evaluate = many,
                  export_trajectories = many, other = many },
  workers = 1,
  budgets = { default_usd = 1e9 },
  training = { max_trajectories_per_job = 200000 },
}
LUA

export AGENTCORE_JWT_SECRET=training-bench-secret-0123456789
if [ "$STORE" = postgresql ]; then
  python3 bench/pg_serve.py >"$WORK/pg.out" 2>"$WORK/pg.err" &
  PG_PID=$!
  for _ in $(seq 600); do
    grep -q '^DSN ' "$WORK/pg.out" && break
    kill -0 "$PG_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^DSN ' "$WORK/pg.out" || { echo "training_bench: PostgreSQL did not start" >&2; cat "$WORK/pg.err" >&2; exit 1; }
  export AGENTCORE_STORE_DSN=$(sed -n 's/^DSN //p' "$WORK/pg.out")
fi
: >"$WORK/server.out"
"$BIN" serve --config "$WORK/bench.lua" --listen 127.0.0.1:0 --data "$WORK/data" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n '1s/.*port=\([0-9]*\).*/\1/p' "$WORK/server.out")
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "training_bench: the server did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
URL="http://127.0.0.1:$PORT/api/v1/jsonrpc"
TOKEN=$("$BIN" token --sub bench --ttl 86400 \
  --perms training:start,training:view,training:cancel,training:evaluate,data:export)
echo "server: $(head -1 "$WORK/server.out")"

# call METHOD PARAMS_JSON -> the result as JSON on stdout; fails on any error
call() {
  printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":1}' "$1" "$2" >"$WORK/req.json"
  rpc "$WORK/req.json"
}
rpc() {
  curl -sS --fail-with-body --max-time 120 "$URL" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" --data-binary @"$1" >"$WORK/resp.json" ||
    { echo "training_bench: HTTP error: $(head -c 500 "$WORK/resp.json")" >&2; return 1; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
"error" in r and sys.exit("training_bench: " + json.dumps(r["error"]))
print(json.dumps(r["result"]))' "$WORK/resp.json"
}
# status JOB -> "status current_iteration trajectories_stored"
status() {
  call training.get_status "{\"job_id\":\"$1\"}" | python3 -c 'import json,sys; s=json.load(sys.stdin)
print(s["status"], s["current_iteration"], s.get("trajectories_stored", 0))'
}
# wait_for JOB STATE TIMEOUT_S -> waits until the job's status is STATE (or a final state)
wait_for() {
  local deadline=$((SECONDS + $3)) st
  while :; do
    st=$(status "$1")
    case "${st%% *}" in
      "$2") return 0 ;;
      completed|failed|cancelled) echo "training_bench: job $1 is ${st%% *}, expected $2" >&2; return 1 ;;
    esac
    [ $SECONDS -lt "$deadline" ] || { echo "training_bench: job $1 not $2 after $3 s ($st)" >&2; return 1; }
    sleep 1
  done
}
# start_job FILE N_ITERATIONS BATCH_SIZE N_TRAJ -> job id
start_job() {
  python3 - "$WORK/data.json" "$2" "$3" "$4" >"$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({"jsonrpc": "2.0", "method": "training.start_grpo", "id": 1, "params": {
    "agent_id": "calculator",
    "config": {"n_iterations": int(sys.argv[2]), "batch_size": int(sys.argv[3]),
               "n_trajectories_per_query": int(sys.argv[4]), "beta": 0.0,
               "max_steps_per_trajectory": 8, "checkpoint_interval": 50, "max_budget_usd": 1e6},
    "training_data": d["training_data"], "evaluation_data": d["evaluation_data"]}}))
PY
  rpc "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])'
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# CPU time (clock ticks) of the server's threads except TRAINER_TID: the request-serving cost,
# which other work on the machine does not inflate the way it inflates wall-clock latency.
TRAINER_TID=
server_ticks() {
  local t sum=0
  for t in /proc/"$SERVER_PID"/task/*; do
    [ "${t##*/}" = "$TRAINER_TID" ] && continue
    sum=$((sum + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
# the busiest thread over 2 s (the training worker while a job runs)
busiest_tid() {
  python3 - "$SERVER_PID" <<'PY'
import os, sys, time
pid = sys.argv[1]
def ticks():
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            out[tid] = int(f[11]) + int(f[12])
        except OSError:
            pass
    return out
a = ticks(); time.sleep(2); b = ticks()
print(max(b, key=lambda t: b[t] - a.get(t, 0)))
PY
}
# wrk_run LABEL JOB [ERRORS_OK] -> appends one WRK_RESULT line (+ load=) to $WORK/LABEL.txt
wrk_run() {
  local load0 ticks0 ticks1
  load0=$(loadavg)
  ticks0=$(server_ticks)
  AC_TOKEN=$TOKEN AC_JOB_ID=$2 wrk -t1 -c16 -d"${DURATION}s" --timeout 5s -s bench/wrk_status.lua "$URL" \
    >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out" >&2; return 1; }
  local line
  ticks1=$(server_ticks)
  line=$(grep '^WRK_RESULT' "$WORK/wrk.out") || { cat "$WORK/wrk.out" >&2; return 1; }
  line="$line load=$load0 ticks=$((ticks1 - ticks0)) hz=$(getconf CLK_TCK)"
  echo "$line" >>"$WORK/$1.txt"
  # no errors, and full get_status answers (a JSON-RPC error is ~5x shorter than a status)
  python3 - "$line" "$STATUS_BYTES" "${3:-}" <<'PY'
import sys
kv = dict(f.split("=") for f in sys.argv[1].split()[1:])
errs = sum(int(kv[k]) for k in kv if k.startswith("err_"))
per = int(kv["bytes"]) / max(1, int(kv["requests"]))
if (errs and not sys.argv[3]) or per < int(sys.argv[2]):
    sys.exit("training_bench: wrk saw %d errors, %.0f bytes per response (a status body is %s)" % (errs, per, sys.argv[2]))
cpu_us = int(kv["ticks"]) * 1e6 / int(kv["hz"]) / max(1, int(kv["requests"]))
print("    %6.0f req/s  p50 %5.0f us  p99 %7.0f us  max %7.0f us  timeouts %s  server CPU %.0f us/request  (%.0f bytes/response, load avg %s)" % (
    float(kv["rps"]), int(kv["p50_us"]), int(kv["p99_us"]), int(kv["max_us"]), kv["err_timeout"], cpu_us, per, kv["load"]))
PY
}

lua5.4 examples/gen_data.lua calculator 7 >"$WORK/data.json"

# ---- (a) get_status under training, then idle -------------------------------------------
echo "== (a) training.get_status, wrk -t1 -c16 -d${DURATION}s, $RUNS runs each"
# A long job: 10,000 iterations of 64 queries x 8 rollouts (minutes); cancelled after the runs.
JOB_A=$(start_job "$WORK/start_a.json" 10000 64 8)
wait_for "$JOB_A" running 60
call training.get_status "{\"job_id\":\"$JOB_A\"}" >/dev/null
STATUS_BYTES=$(wc -c <"$WORK/resp.json")   # body only: wrk's bytes also count the headers
read -r _ it0 _ < <(status "$JOB_A"); TRAINER_TID=$(busiest_tid); sleep 3; read -r _ it1 _ < <(status "$JOB_A")
echo "  job $JOB_A running (training thread $TRAINER_TID, left out of the server CPU figures);" \
  "trainer alone: $(awk "BEGIN{printf \"%.1f\", ($it1 - $it0) / 5}") iterations/s"
echo "$(( (it1 - it0) * 100 / 5 ))" >"$WORK/iters_alone.txt"
AC_TOKEN=$TOKEN AC_JOB_ID=$JOB_A wrk -t1 -c16 -d2s -s bench/wrk_status.lua "$URL" >/dev/null  # warm-up
for r in $(seq "$RUNS"); do
  read -r s0 i0 _ < <(status "$JOB_A")
  wrk_run busy "$JOB_A"
  read -r s1 i1 _ < <(status "$JOB_A")
  [ "$s0" = running ] && [ "$s1" = running ] && [ "$i1" -gt "$i0" ] ||
    { echo "training_bench: the job was not training throughout run $r ($s0 $i0 -> $s1 $i1)" >&2; exit 1; }
  echo "      job running throughout: iteration $i0 -> $i1"
  echo "$(( (i1 - i0) * 100 / DURATION ))" >>"$WORK/iters_busy.txt"
done
call training.cancel "{\"job_id\":\"$JOB_A\",\"reason\":\"benchmark done\"}" >/dev/null
wait_for "$JOB_A" cancelled 60
RUNNING=$(call training.list_jobs '{"status":"running"}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
[ "$RUNNING" = 0 ] || { echo "training_bench: $RUNNING jobs still running" >&2; exit 1; }
echo "  job cancelled, no job running: idle server"
AC_TOKEN=$TOKEN AC_JOB_ID=$JOB_A wrk -t1 -c16 -d2s -s bench/wrk_status.lua "$URL" >/dev/null  # warm-up
for r in $(seq "$RUNS"); do wrk_run idle "$JOB_A"; done

# ---- (b) export pages of 102,400 stored trajectories -------------------------------------
echo "== (b) training.export_trajectories of 102,400 stored trajectories"
# 100 iterations x 128 queries x 8 rollouts = 102,400 trajectories, all kept (retention 200,000).
T0=$SECONDS
JOB_B=$(start_job "$WORK/start_b.json" 100 128 8)
deadline=$((SECONDS + 900))
while :; do
  read -r st it stored < <(status "$JOB_B")
  [ "$st" = completed ] && break
  case "$st" in failed|cancelled) echo "training_bench: export job $st" >&2; exit 1 ;; esac
  [ $SECONDS -lt $deadline ] || { echo "training_bench: export job not done after 900 s" >&2; exit 1; }
  sleep 2
done
echo "  job $JOB_B completed in $((SECONDS - T0)) s: $stored trajectories stored"
[ "$stored" -ge 100000 ] || { echo "training_bench: only $stored trajectories stored" >&2; exit 1; }
if [ "$STORE" = postgresql ]; then
  echo "  database: $(psql -X -At -d "$AGENTCORE_STORE_DSN" -c 'SELECT pg_size_pretty(pg_database_size(current_database()))')"
else
  echo "  data directory: $(du -sh "$WORK/data" | cut -f1)"
fi
python3 bench/export_pages.py --port "$PORT" --token "$TOKEN" --job "$JOB_B" --n 20 --per-iteration 1024 \
  --pages 0:100,90000:100,0:1000,90000:1000,90000:1 | tee "$WORK/export.txt"

# ---- (c) get_status while another client exports 10,000-trajectory pages ------------------
if [ "$HOL" = 1 ]; then
  echo "== (c) training.get_status (job $JOB_B) while another client exports limit 10000 pages"
  call training.get_status "{\"job_id\":\"$JOB_B\"}" >/dev/null
  STATUS_BYTES=$(wc -c <"$WORK/resp.json")
  AC_TOKEN=$TOKEN AC_JOB_ID=$JOB_B wrk -t1 -c16 -d2s -s bench/wrk_status.lua "$URL" >/dev/null  # warm-up
  wrk_run hol_alone "$JOB_B"
  python3 bench/export_pages.py --port "$PORT" --token "$TOKEN" --job "$JOB_B" --n 1000 \
    --pages 90000:10000 >/dev/null 2>&1 &
  EXPORT_PID=$!
  sleep 1
  wrk_run hol_export "$JOB_B" errors-ok
  kill "$EXPORT_PID" 2>/dev/null || true; wait "$EXPORT_PID" 2>/dev/null || true; EXPORT_PID=
fi

# ---- table --------------------------------------------------------------------------------
python3 - "$WORK" "$RUNS" "$DURATION" <<'PY'
import json, statistics as st, sys
work, runs, dur = sys.argv[1], sys.argv[2], sys.argv[3]
def wrk(label):
    rows = [dict(f.split("=") for f in l.split()[1:]) for l in open(f"{work}/{label}.txt")]
    med = lambda k: st.median(float(r[k]) for r in rows)
    return (med("rps"), med("p50_us") / 1000, med("p99_us") / 1000, [round(float(r["rps"])) for r in rows],
            [r["load"] for r in rows], rows,
            st.median(int(r["ticks"]) * 1e6 / int(r["hz"]) / int(r["requests"]) for r in rows))
busy, idle = wrk("busy"), wrk("idle")
alone = int(open(f"{work}/iters_alone.txt").read()) / 100
under = st.median(int(l) for l in open(f"{work}/iters_busy.txt")) / 100
print(f"\n(a) training.get_status, wrk -t1 -c16 HTTP/1.1 keep-alive, {dur} s x {runs} runs, medians")
print("| server | req/s | p50 ms | p99 ms | server CPU us/request | req/s of each run | load avg at each start |")
print("|---|---|---|---|---|---|---|")
for name, r in (("one job training", busy), ("idle", idle)):
    print("| %s | %.0f | %.2f | %.2f | %.0f | %s | %s |" % (name, r[0], r[1], r[2], r[6], r[3], " ".join(r[4])))
print(f"training job: {alone:.1f} iterations/s alone, {under:.1f} iterations/s under the get_status load")
print("\n(b) training.export_trajectories, 102,400 stored, 20 requests each on one kept-alive connection")
print("| offset | limit | median ms | p99 ms (max of 20) | min ms | response bytes | first id |")
print("|---|---|---|---|---|---|---|")
for l in open(f"{work}/export.txt"):
    r = json.loads(l.split(" ", 1)[1])
    print("| {offset} | {limit} | {median_ms:.1f} | {p99_ms:.1f} | {min_ms:.1f} | {bytes} | {first_id} |".format(**r))
import os
if os.path.exists(f"{work}/hol_export.txt"):
    print(f"\n(c) training.get_status, wrk -t1 -c16, {dur} s, one run each, server idle otherwise")
    print("| meanwhile | req/s | p50 ms | p99 ms | max ms | wrk timeouts (5 s) |")
    print("|---|---|---|---|---|---|")
    for label, name in (("nothing", "hol_alone"), ("one client exporting limit 10000 pages", "hol_export")):
        r = wrk(name)[5][0]
        print("| %s | %.0f | %.2f | %.2f | %.0f | %s |" % (label, float(r["rps"]), int(r["p50_us"]) / 1000,
              int(r["p99_us"]) / 1000, int(r["max_us"]) / 1000, r["err_timeout"]))
target = [json.loads(l.split(" ", 1)[1]) for l in open(f"{work}/export.txt")]
t = next(r for r in target if r["offset"] == 90000 and r["limit"] == 100)
print("\ntarget: offset 90,000 limit 100 under 50 ms: %s (median %.1f ms, p99 %.1f ms)" %
      ("MET" if t["p99_ms"] < 50 else ("median met, p99 MISSED" if t["median_ms"] < 50 else "MISSED"),
       t["median_ms"], t["p99_ms"]))
PY
