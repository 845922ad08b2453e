#!/usr/bin/env bash
# HTTP benchmark of agentcore's `training.get_status`, side by side with two references:
#
#   agentcore     the real server (build/agentcore), POST /api/v1/jsonrpc, a real job
#   h2o-static    Debian's standalone h2o answering a small static file (GET): the ceiling
#                 of an h2o-based server on this machine
#   fastapi       the same method on FastAPI + uvicorn on uvloop + httptools (bench/fastapi_peer.py,
#                 checked at start-up in every worker): JWT HS256 check with a verified-token
#                 cache, rate-limit headers, job revision from an sqlite file with the rendered
#                 answer cached per revision, same JSON-RPC response
#
# with wrk (HTTP/1.1 keep-alive, POST through bench/wrk_post.lua) and h2load (h2c prior
# knowledge; uvicorn has no HTTP/2, so fastapi gets no h2c row). Every measurement runs REPS
# times; the table shows medians. It also reads agentcore's RSS (VmRSS) after start and after
# the load. See bench/http_bench.md.
#
# usage: bench/http_bench.sh            (about 3.5 minutes with the defaults)
# It installs the Debian packages it needs when they are missing (apt-get; see BENCH_PACKAGES).
# environment (defaults in brackets):
#   DURATION [10]        seconds per wrk / h2load throughput run
#   LAT_DURATION [5]     seconds per h2load latency run (h2load --log-file, see http_bench.md)
#   REPS [3]             runs per measurement (medians are reported)
#   WRK_THREADS [1] WRK_CONNS [32]                   wrk -t -c
#   H2_THREADS [1] H2_CONNS [16] H2_STREAMS [10]     h2load -t -c -m
#   SERVER_THREADS [2]   agentcore `threads` and h2o `num-threads`
#   FASTAPI_WORKERS [SERVER_THREADS]  uvicorn worker processes (as many as agentcore's threads)
#   FASTAPI_CACHES [1]   0: the peer verifies the token and renders the status on every call
#                        (agentcore caches both; 1 gives the peer the same caches)
#   BENCH_INSTALL [1]    0: do not apt-get install missing Debian packages, just list them
#   AGENTCORE_BIN [build/agentcore of this checkout]
#   JOB_ITERATIONS [5]   n_iterations of the benchmarked job (its record, which get_status
#                        reads, grows with its checkpoints)
#   BENCH_KEEP [0]       1: keep the temporary directory (logs, configs) and print its path
#   WAIT_IDLE [0]        seconds to wait at most for a machine busy with other work to go idle
#                        (< 10% busy) before starting; the run starts anyway, with a warning
#
# All traffic stays on 127.0.0.1; every server it starts is stopped on exit (trap EXIT).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-5}
REPS=${REPS:-3}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-32}
H2_THREADS=${H2_THREADS:-1}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-10}
SERVER_THREADS=${SERVER_THREADS:-2}
FASTAPI_WORKERS=${FASTAPI_WORKERS:-$SERVER_THREADS} # as many processes as agentcore has loop threads
FASTAPI_CACHES=${FASTAPI_CACHES:-1}
BENCH_INSTALL=${BENCH_INSTALL:-1}
AGENTCORE_BIN=${AGENTCORE_BIN:-$ROOT/build/agentcore}
BENCH_KEEP=${BENCH_KEEP:-0}
WAIT_IDLE=${WAIT_IDLE:-0}
JOB_ITERATIONS=${JOB_ITERATIONS:-5}
PY=/usr/bin/python3 # Debian's python3: the one python3-fastapi and python3-uvicorn install into

for v in DURATION LAT_DURATION REPS WRK_THREADS WRK_CONNS H2_THREADS H2_CONNS H2_STREAMS SERVER_THREADS \
    FASTAPI_WORKERS JOB_ITERATIONS; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "http_bench: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done

if ! [[ $WAIT_IDLE =~ ^[0-9]+$ && $BENCH_KEEP =~ ^[01]$ && $FASTAPI_CACHES =~ ^[01]$ && $BENCH_INSTALL =~ ^[01]$ ]]; then
    echo "http_bench: WAIT_IDLE must be a number of seconds; BENCH_KEEP, FASTAPI_CACHES, BENCH_INSTALL 0 or 1" >&2
    exit 2
fi

log() { printf '[http_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf 'http_bench: %s\n' "$*" >&2
    exit 1
}

# ---- tools: Debian packages, installed here when missing ---------------------------------------

# The load tools, the reference servers and the FastAPI peer at its best: uvicorn on uvloop (its
# event loop) and httptools (its HTTP/1.1 parser); without those two it would fall back to asyncio
# and h11, the pure-Python path, ~10x slower. lmdb-utils' mdb_dump reads agentcore's job record
# so that the peer serves the same one. Only this benchmark needs them, so only it installs them
# (never the product's build); BENCH_INSTALL=0 lists what is missing instead.
BENCH_PACKAGES="wrk nghttp2-client h2o curl coreutils procps lmdb-utils python3 python3-fastapi python3-uvicorn
  python3-uvloop python3-httptools"
missing=()
for pkg in $BENCH_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$BENCH_INSTALL" != 1 ]; then
        die "missing Debian packages (BENCH_INSTALL=0): apt-get install ${missing[*]}"
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    log "installing the Debian packages the benchmark needs: ${missing[*]}"
    $sudo apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
fi
for tool in wrk h2load h2o curl timeout pgrep mdb_dump "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is still missing after installing $BENCH_PACKAGES"
done
"$PY" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null ||
    die "$PY cannot import fastapi, uvicorn, uvloop and httptools: $("$PY" -c 'import fastapi, uvicorn, uvloop, httptools' 2>&1 | tail -1)"
if [ ! -x "$AGENTCORE_BIN" ]; then
    die "no agentcore binary at $AGENTCORE_BIN; build it first:
  cmake -S $ROOT -B $ROOT/build && make -C $ROOT/build agentcore
(or point AGENTCORE_BIN at one)"
fi

# ---- temporary directory and clean-up ---------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agentcore-http-bench.XXXXXX")
SERVER_PIDS=() # servers this script started (direct children)
LOAD_PID=""    # the wrk / h2load run in progress

descendants() { # all descendants of a pid, deepest last
    local kids k
    kids=$(pgrep -P "$1" 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

start_time() { # the start time of a process (field 22 of /proc/PID/stat), empty when gone
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}' || true
}

same_process() { # same_process PID START_TIME: still the process we saw (not a reused pid)?
    [ -n "$2" ] && [ "$(start_time "$1")" = "$2" ]
}

stop_pid() { # stop_pid PID [GRACE_SECONDS]: TERM, wait, KILL; then its descendants the same way
    local pid=$1 grace=${2:-12} tree="" i p st
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    for p in $(descendants "$pid"); do
        tree+=" $p:$(start_time "$p")"
    done
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for entry in $tree; do # e.g. h2o's crash-handler helper, uvicorn worker processes
        p=${entry%%:*} st=${entry#*:}
        for ((i = 0; i < 30; i++)); do
            same_process "$p" "$st" || break
            [ "$i" = 5 ] && kill -TERM "$p" 2>/dev/null || true
            sleep 0.1
        done
        same_process "$p" "$st" && kill -KILL "$p" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    for pid in "${SERVER_PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "$BENCH_KEEP" = 1 ]; then
        rm -f "$WORK"/*.h2log
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers ----------------------------------------------------------------------------------

load1() { cut -d' ' -f1 /proc/loadavg; } # the 1-minute load average (this benchmark adds ~2 to it)
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

cpu_ticks() { # utime+stime (clock ticks) of a pid and its descendants, all threads included
    local total=0 p t
    for p in "$1" $(descendants "$1"); do
        # fields 14 and 15 after the ")" that ends the command name
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# snap SERVER_PID: sets SNAP=(machine_busy machine_total server client) in clock ticks. "client"
# is the CPU time of this shell's finished children (the load tools, reaped by `wait`), read
# with the `times` builtin in this very shell. Comparing two snaps gives the CPU time that
# neither the server nor the load tool used: other processes on the machine (noise).
snap() {
    local _c u n sy id io irq sirq st rest
    read -r _c u n sy id io irq sirq st rest </proc/stat
    times >"$WORK/times.txt"
    SNAP=($((u + n + sy + irq + sirq + st)) $((u + n + sy + id + io + irq + sirq + st))
        "$(cpu_ticks "$1")"
        "$(awk -v hz="$CLK_TCK" 'NR == 2 {
            t = 0
            for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
            printf "%d", t * hz }' "$WORK/times.txt")")
}
# other_pct BEFORE_ARRAY_NAME: % of the machine (all cores) used by other processes since then
other_pct() {
    local -n b=$1
    local busy=$((SNAP[0] - b[0])) total=$((SNAP[1] - b[1])) ours=$((SNAP[2] - b[2] + SNAP[3] - b[3]))
    awk -v o=$((busy - ours)) -v t="$total" 'BEGIN {v = (t > 0 ? 100 * o / t : 0); printf "%.1f", (v < 0 ? 0 : v)}'
}

# wait_for_line FILE REGEX SECONDS PID: until FILE has a line matching REGEX, or fail
wait_for_line() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

free_port() { # a port that was free a moment ago (only for h2o, which cannot listen on port 0)
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

rpc() { # rpc PORT BODY_FILE OUT_FILE: POSTs a JSON-RPC body, writes the response body
    curl -sS --max-time 10 -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $TOKEN" --data-binary "@$2" "http://127.0.0.1:$1/api/v1/jsonrpc"
}

# response_sizes URL METHOD [BODY_FILE]: "HEADER_BYTES BODY_BYTES" of one HTTP/1.1 response
response_sizes() {
    local args=(-sS --max-time 10 --http1.1 -o /dev/null -w '%{size_header} %{size_download}'
        -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN")
    if [ "$2" = POST ]; then args+=(--data-binary "@$3"); fi
    curl "${args[@]}" "$1"
}

# ---- set-up -----------------------------------------------------------------------------------

log "work dir $WORK; machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"

# Background load: other processes busy on this machine distort every figure below.
busy_pct() { # CPU busy % of the whole machine over 1 s
    local a b
    read -ra a < <(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    sleep 1
    read -ra b < <(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    awk -v bu=$((b[0] - a[0])) -v id=$((b[1] - a[1])) 'BEGIN {t = bu + id; printf "%.0f", (t > 0 ? 100 * bu / t : 0)}'
}
BASE_BUSY=$(busy_pct)
if [ "$BASE_BUSY" -gt 10 ] && [ "$WAIT_IDLE" -gt 0 ]; then
    log "the machine is ${BASE_BUSY}% busy: waiting up to ${WAIT_IDLE}s for it to calm down (WAIT_IDLE)"
    waited=0
    while [ "$BASE_BUSY" -gt 10 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
        sleep 4
        waited=$((waited + 5))
        BASE_BUSY=$(busy_pct)
    done
fi
if [ "$BASE_BUSY" -gt 10 ]; then
    log "WARNING: the machine is already ${BASE_BUSY}% busy before the benchmark starts: figures will be low and noisy"
fi

BASE_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average (1, 5, 15 min): $BASE_LOAD; machine busy: ${BASE_BUSY}%"

SECRET="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export AGENTCORE_JWT_SECRET=$SECRET
TOKEN=$("$AGENTCORE_BIN" token --sub bench --perms training:start,training:view --ttl 7200)

# start_grpo request: 100 calculator queries, JOB_ITERATIONS iterations
"$PY" - "$JOB_ITERATIONS" >"$WORK/start.json" <<'EOF'
import json, sys
data = [{"query": "What is %d + %d?" % (i, 2 * i + 7), "expected_outcome": {"answer": 3 * i + 7}}
        for i in range(100)]
print(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "training.start_grpo",
                  "params": {"agent_id": "calculator", "config": {"n_iterations": int(sys.argv[1])},
                             "training_data": data}}))
EOF

cat >"$WORK/agentcore.lua" <<EOF
-- http_bench: get_status must not be rate limited at benchmark rates
return {
  threads = $SERVER_THREADS,
  rate_limits = { get_status = { limit = 1000000000, window_s = 60 } },
}
EOF

# create_job NAME PORT: starts a job; sets JOB_ID and writes $WORK/NAME.body.json (the
# get_status request)
create_job() {
    local name=$1 port=$2 code
    code=$(rpc "$port" "$WORK/start.json" "$WORK/$name.start.out") || die "$name: start_grpo failed (curl)"
    JOB_ID=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"]["job_id"])' \
        "$WORK/$name.start.out" 2>/dev/null) || die "$name: start_grpo answered HTTP $code: $(head -c 400 "$WORK/$name.start.out")"
    status_request "$name"
}

status_request() { # status_request NAME: writes $WORK/NAME.body.json for job $JOB_ID
    printf '{"jsonrpc":"2.0","id":1,"method":"training.get_status","params":{"job_id":"%s"}}' "$JOB_ID" \
        >"$WORK/$1.body.json"
}

# wait_final NAME PORT SECONDS: polls get_status until the job is completed, failed or
# cancelled, so that every response of the load is the same; 0 when it got there
wait_final() {
    local i st
    for ((i = 0; i < $3 * 5; i++)); do
        rpc "$2" "$WORK/$1.body.json" "$WORK/$1.poll.json" >/dev/null || return 1
        st=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"]["status"])' \
            "$WORK/$1.poll.json" 2>/dev/null) || st=""
        case "$st" in completed | failed | cancelled) return 0 ;; esac
        sleep 0.2
    done
    return 1
}

# check_status NAME PORT WHEN: one get_status must be a real result for the job, not an error
check_status() {
    local name=$1 port=$2 code
    code=$(rpc "$port" "$WORK/$name.body.json" "$WORK/$name.status.json") || die "$name: get_status failed (curl)"
    "$PY" - "$WORK/$name.status.json" "$JOB_ID" <<'EOF' || die "$name: get_status $3 the load answered HTTP $code: $(head -c 400 "$WORK/$name.status.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert "error" not in doc and doc.get("jsonrpc") == "2.0" and doc.get("id") == 1, doc
r = doc["result"]
assert r["job_id"] == sys.argv[2] and r["agent_id"] == "calculator" and "status" in r and "metrics" in r, r
EOF
    [ "$code" = 200 ] || die "$name: get_status answered HTTP $code"
    log "$name: get_status $3 the load: HTTP 200, result for job $JOB_ID ($(wc -c <"$WORK/$name.status.json") bytes)"
}

# -- agentcore
mkdir -p "$WORK/agentcore-data"
"$AGENTCORE_BIN" serve --config "$WORK/agentcore.lua" --listen 127.0.0.1:0 --data "$WORK/agentcore-data" \
    >"$WORK/agentcore.out" 2>"$WORK/agentcore.err" &
AC_PID=$!
SERVER_PIDS+=("$AC_PID")
wait_for_line "$WORK/agentcore.out" 'listening on .* port=[0-9]+' 15 "$AC_PID" ||
    die "agentcore did not start: $(tail -5 "$WORK/agentcore.err")"
AC_PORT=$(grep -oE 'port=[0-9]+' "$WORK/agentcore.out" | head -1 | cut -d= -f2)
sleep 1
RSS_START=$(rss_kib "$AC_PID")
log "agentcore pid $AC_PID port $AC_PORT threads $SERVER_THREADS; idle RSS after start: $RSS_START KiB"
create_job agentcore "$AC_PORT"
AC_JOB=$JOB_ID
# the job trains for a moment (5 iterations); benchmark the status of the finished job
if wait_final agentcore "$AC_PORT" $((120 + 2 * JOB_ITERATIONS)); then
    log "agentcore: job $AC_JOB is $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"]["status"])' "$WORK/agentcore.poll.json")"
else
    log "WARNING: agentcore's job $AC_JOB did not finish in time: its status may change during the load"
fi
check_status agentcore "$AC_PORT" before
sleep 1
RSS_JOB=$(rss_kib "$AC_PID")
log "agentcore: RSS with the job done, before the load: $RSS_JOB KiB"

# The FastAPI peer serves the very same job record, read from agentcore's store (mdb_dump,
# package lmdb-utils), so that both compute the same answer from the same data.
SEED=""
RECORD_BYTES="?"
if command -v mdb_dump >/dev/null 2>&1 &&
    mdb_dump -p -s jobs -f "$WORK/jobs.dump" "$WORK/agentcore-data" 2>"$WORK/mdb_dump.err" &&
    "$PY" "$BENCH_DIR/fastapi_peer.py" --extract-seed "$WORK/jobs.dump" "$AC_JOB" "$WORK/peer-seed.json"; then
    SEED="$WORK/peer-seed.json"
    RECORD_BYTES=$(wc -c <"$SEED")
    log "fastapi peer: seeded with agentcore's job record ($(wc -c <"$SEED") bytes of JSON)"
else
    log "WARNING: cannot read agentcore's job record (mdb_dump from lmdb-utils, or the record format):" \
        "the FastAPI peer gets a job of its own, so the two answers differ"
fi

# -- h2o static: a copy of agentcore's real get_status answer, as a file of the same size
mkdir -p "$WORK/h2o/htdocs"
cp "$WORK/agentcore.status.json" "$WORK/h2o/htdocs/status.json"
H2O_USER_LINE=""
[ "$(id -u)" = 0 ] && H2O_USER_LINE="user: $(id -un)" # else h2o switches to 'nobody' and cannot read $WORK
H2O_PID=""
for attempt in 1 2 3 4 5; do
    H2O_PORT=$(free_port)
    cat >"$WORK/h2o/h2o.conf" <<EOF
# http_bench: minimal h2o; everything it writes stays in $WORK/h2o (no access log)
$H2O_USER_LINE
num-threads: $SERVER_THREADS
pid-file: $WORK/h2o/h2o.pid
error-log: $WORK/h2o/error.log
temp-buffer-path: $WORK/h2o
listen:
  host: 127.0.0.1
  port: $H2O_PORT
hosts:
  default:
    paths:
      /:
        file.dir: $WORK/h2o/htdocs
EOF
    (cd "$WORK/h2o" && exec h2o -c "$WORK/h2o/h2o.conf") >"$WORK/h2o/stdout.log" 2>&1 &
    H2O_PID=$!
    SERVER_PIDS+=("$H2O_PID")
    for ((i = 0; i < 50; i++)); do
        kill -0 "$H2O_PID" 2>/dev/null || break
        curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$H2O_PORT/status.json" && break
        sleep 0.1
    done
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$H2O_PORT/status.json"; then
        break
    fi
    log "h2o did not start on port $H2O_PORT (attempt $attempt): $(tail -2 "$WORK/h2o/error.log" 2>/dev/null)"
    stop_pid "$H2O_PID" 3
    H2O_PID=""
done
[ -n "$H2O_PID" ] || die "h2o did not start"
cmp -s <(curl -s --max-time 5 "http://127.0.0.1:$H2O_PORT/status.json") "$WORK/h2o/htdocs/status.json" ||
    die "h2o does not serve the static file"
log "h2o-static pid $H2O_PID port $H2O_PORT num-threads $SERVER_THREADS: serves a $(wc -c <"$WORK/h2o/htdocs/status.json")-byte file"

# -- FastAPI peer: uvicorn on uvloop + httptools, FASTAPI_WORKERS processes
mkdir -p "$WORK/fastapi-data"
FA_ARGS=(--data "$WORK/fastapi-data" --workers "$FASTAPI_WORKERS" --loop uvloop --http httptools)
[ "$FASTAPI_CACHES" = 1 ] || FA_ARGS+=(--no-caches)
PYTHONDONTWRITEBYTECODE=1 FASTAPI_PEER_STATUS_LIMIT=1000000000 FASTAPI_PEER_STATUS_WINDOW_S=60 \
    "$PY" "$BENCH_DIR/fastapi_peer.py" "${FA_ARGS[@]}" ${SEED:+--seed "$SEED"} >"$WORK/fastapi.out" 2>"$WORK/fastapi.err" &
FA_PID=$!
SERVER_PIDS+=("$FA_PID")
wait_for_line "$WORK/fastapi.out" 'listening on .* port=[0-9]+' 30 "$FA_PID" ||
    die "fastapi_peer did not start: $(tail -5 "$WORK/fastapi.err")"
FA_PORT=$(grep -oE 'port=[0-9]+' "$WORK/fastapi.out" | head -1 | cut -d= -f2)
# Every worker process prints, from inside its running event loop, the loop class and the HTTP
# protocol class uvicorn really uses (and exits when they are not uvloop and httptools): wait
# for all of them and refuse anything else, so that a silent fallback cannot make a weak peer.
for ((i = 0; i < 300; i++)); do
    [ "$(grep -c '^fastapi_peer: worker pid=' "$WORK/fastapi.out")" -ge "$FASTAPI_WORKERS" ] && break
    kill -0 "$FA_PID" 2>/dev/null || break
    sleep 0.1
done
FA_WORKER_LINES=$(grep '^fastapi_peer: worker pid=' "$WORK/fastapi.out" || true)
n_ok=$(grep -cE 'runs loop=uvloop\.Loop http=uvicorn\.protocols\.http\.httptools_impl\.HttpToolsProtocol ' <<<"$FA_WORKER_LINES" || true)
if [ "$n_ok" != "$FASTAPI_WORKERS" ] || [ "$(wc -l <<<"$FA_WORKER_LINES")" != "$FASTAPI_WORKERS" ]; then
    die "the FastAPI peer does not run on uvloop + httptools in all its $FASTAPI_WORKERS workers:
${FA_WORKER_LINES:-(no worker reported)}
$(tail -5 "$WORK/fastapi.err")"
fi
while read -r line; do log "${line#fastapi_peer: }"; done <<<"$FA_WORKER_LINES"
# and the request path agrees: /healthz reports the loop running the handler and the module of
# the protocol object that called it
FA_HEALTH=""
for ((i = 0; i < 100; i++)); do
    FA_HEALTH=$(curl -s --max-time 1 "http://127.0.0.1:$FA_PORT/healthz") && break
    sleep 0.1
done
"$PY" -c '
import json, sys
h = json.loads(sys.argv[1])
sys.exit(0 if h.get("loop") == "uvloop.Loop" and h.get("http") == "uvicorn.protocols.http.httptools_impl" else 1)
' "$FA_HEALTH" 2>/dev/null || die "the FastAPI peer answers /healthz with '$FA_HEALTH', not from uvloop + httptools"
FA_VERSIONS=$(grep -oE '\(uvloop [^)]*\)' <<<"$FA_WORKER_LINES" | head -1)
FA_IMPL="$FASTAPI_WORKERS worker(s), loop=uvloop http=httptools $FA_VERSIONS, caches $([ "$FASTAPI_CACHES" = 1 ] && echo on || echo off) ($(grep -oE 'uvicorn [0-9.]+, python [0-9.]+' "$WORK/fastapi.out" | head -1))"
log "fastapi pid $FA_PID port $FA_PORT: $FA_IMPL; /healthz: $FA_HEALTH"
if [ -n "$SEED" ]; then
    JOB_ID=$AC_JOB
    status_request fastapi
else
    create_job fastapi "$FA_PORT"
fi
FA_JOB=$JOB_ID
check_status fastapi "$FA_PORT" before

# The same answer? Compared as JSON values, with doubles rounded to 15 significant digits:
# agentcore prints them so (JSON_REAL_PRECISION(15): 0.0278794453538165), Python with the
# fewest digits that round-trip (0.02787944535381649).
if "$PY" -c '
import json, sys
def norm(v):
    if isinstance(v, float):
        return float("%.15g" % v)
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if norm(a) == norm(b) and list(a["result"]) == list(b["result"]) else 1)' "$WORK/agentcore.status.json" "$WORK/fastapi.status.json"; then
    log "agentcore and fastapi give the same get_status answer (as JSON values, member order included)"
else
    log "WARNING: agentcore's and fastapi's get_status answers differ (the peer is out of date with status.c's render_status):"
    log "  agentcore: $(cat "$WORK/agentcore.status.json")"
    log "  fastapi:   $(cat "$WORK/fastapi.status.json")"
fi

# per server: URL, method, body file, pid
declare -A URL METHOD BODY PID EXPECT_H1 EXPECT_BODY
URL[agentcore]="http://127.0.0.1:$AC_PORT/api/v1/jsonrpc"
URL[h2o-static]="http://127.0.0.1:$H2O_PORT/status.json"
URL[fastapi]="http://127.0.0.1:$FA_PORT/api/v1/jsonrpc"
METHOD[agentcore]=POST METHOD[h2o-static]=GET METHOD[fastapi]=POST
BODY[agentcore]="$WORK/agentcore.body.json" BODY[h2o-static]="" BODY[fastapi]="$WORK/fastapi.body.json"
PID[agentcore]=$AC_PID PID[h2o-static]=$H2O_PID PID[fastapi]=$FA_PID
for s in agentcore h2o-static fastapi; do
    sizes=$(response_sizes "${URL[$s]}" "${METHOD[$s]}" "${BODY[$s]}") || sizes=""
    read -r hb bb <<<"$sizes" || true
    [ "${hb:-0}" -gt 0 ] && [ "${bb:-0}" -gt 0 ] || die "$s: no answer to a sizing request"
    EXPECT_H1[$s]=$((hb + bb))
    EXPECT_BODY[$s]=$bb
done
SERVERS=(agentcore h2o-static fastapi)
H2_SERVERS=(agentcore h2o-static) # uvicorn speaks HTTP/1.1 only

# ---- measurements -----------------------------------------------------------------------------

RESULTS="$WORK/results.tsv" # server proto rep rps p50_us p99_us cpu_us_per_req other_pct load1_at_end
: >"$RESULTS"
BAD=0

run_load() { # run_load OUTFILE CMD...: runs a load tool in the background (so traps act at once)
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    local rc=0
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    return "$rc"
}

measure_wrk() { # measure_wrk SERVER REP
    local s=$1 rep=$2 out="$WORK/wrk.$1.$2.out" line other
    snap "${PID[$s]}"
    local before=("${SNAP[@]}")
    WRK_METHOD=${METHOD[$s]} WRK_BODY_FILE=${BODY[$s]} WRK_AUTH="Bearer $TOKEN" \
        run_load "$out" timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" \
        --timeout 5s -s "$BENCH_DIR/wrk_post.lua" "${URL[$s]}" || {
        log "wrk against $s failed: $(tail -3 "$out")"
        BAD=1
        return 0
    }
    snap "${PID[$s]}"
    other=$(other_pct before)
    line=$(grep '^WRK_RESULT' "$out") || {
        log "wrk against $s printed no result"
        BAD=1
        return 0
    }
    "$PY" - "$line" "$s" "$rep" "$((SNAP[2] - before[2]))" "$CLK_TCK" "${EXPECT_H1[$s]}" "$other" "$(load1)" \
        >>"$RESULTS" <<'EOF' || BAD=1
import sys
kv = dict(x.split("=", 1) for x in sys.argv[1].split()[1:])
s, rep, ticks, hz, expect = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
other, load = sys.argv[7], sys.argv[8]
n = int(kv["requests"])
errs = {k: int(v) for k, v in kv.items() if k.startswith("err_") and int(v)}
per = int(kv["bytes"]) / n if n else 0
cpu_us = ticks / hz * 1e6 / n if n else 0
print("%s\thttp/1.1 (wrk)\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s" % (s, rep, kv["rps"], kv["p50_us"], kv["p99_us"], cpu_us, other, load))
if errs or n == 0 or abs(per - expect) > 0.01 * expect:
    sys.stderr.write("http_bench: wrk against %s: errors %s, %.1f bytes per response (expected %d)\n" % (s, errs, per, expect))
    sys.exit(1)
EOF
}

h2load_args() { # h2load_args SERVER: the request options
    local s=$1
    H2ARGS=(-t "$H2_THREADS" -c "$H2_CONNS" -m "$H2_STREAMS"
        -H 'content-type: application/json' -H "authorization: Bearer $TOKEN")
    if [ "${METHOD[$s]}" = POST ]; then H2ARGS+=(-d "${BODY[$s]}"); fi
}

# measure_h2load SERVER REP: a throughput run (DURATION), then a latency run
# (LAT_DURATION with --log-file, which costs h2load a write() per response: see http_bench.md)
measure_h2load() {
    local s=$1 rep=$2 out="$WORK/h2load.$1.$2.out" lat="$WORK/h2load-lat.$1.$2.out" log="$WORK/$1.$2.h2log" other
    h2load_args "$s"
    snap "${PID[$s]}"
    local before=("${SNAP[@]}")
    run_load "$out" timeout $((DURATION + 30)) h2load "${H2ARGS[@]}" -D "$DURATION" "${URL[$s]}" || {
        log "h2load against $s failed: $(tail -3 "$out")"
        BAD=1
        return 0
    }
    snap "${PID[$s]}"
    other=$(other_pct before)
    local load
    load=$(load1)
    run_load "$lat" timeout $((LAT_DURATION + 30)) h2load "${H2ARGS[@]}" -D "$LAT_DURATION" \
        --log-file="$log" "${URL[$s]}" || {
        log "h2load (latency) against $s failed: $(tail -3 "$lat")"
        BAD=1
        return 0
    }
    "$PY" - "$out" "$lat" "$log" "$s" "$rep" "$((SNAP[2] - before[2]))" "$CLK_TCK" "${EXPECT_BODY[$s]}" "$other" \
        "$load" >>"$RESULTS" <<'EOF' || BAD=1
import re, sys
out, lat, logf, s, rep = sys.argv[1:6]
ticks, hz, expect, other, load = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), sys.argv[9], sys.argv[10]

def parse(path):
    t = open(path).read()
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", t)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", t)
    c = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", t)
    d = re.search(r"traffic: .*\((\d+)\) data", t)
    if not (m and r and c and d):
        sys.stderr.write("http_bench: cannot read h2load output %s:\n%s\n" % (path, t[-600:]))
        sys.exit(1)
    ok = int(r.group(4))
    bad = int(r.group(5)) + int(r.group(6)) + int(r.group(7)) + sum(int(c.group(i)) for i in (2, 3, 4))
    per = int(d.group(1)) / ok if ok else 0
    # (no --warm-up-time: with it, the traffic figures include the warm-up's responses and the
    # request counts do not; and the server's CPU time would cover more requests than counted)
    if ok == 0 or bad or abs(per - expect) > 0.01 * expect:
        sys.stderr.write("http_bench: h2load against %s (%s): %d ok, %d bad, %.1f body bytes per response (expected %d)\n"
                         % (s, path, ok, bad, per, expect))
        sys.exit(1)
    return float(m.group(2)), ok

rps, n = parse(out)
parse(lat)
lats = []
with open(logf) as f:
    for line in f:
        p = line.split("\t")
        if len(p) >= 3 and p[1] == "200":
            lats.append(int(p[2]))
if not lats:
    sys.stderr.write("http_bench: empty h2load log for %s\n" % s)
    sys.exit(1)
lats.sort()
pct = lambda q: lats[min(len(lats) - 1, int(q / 100.0 * len(lats)))]
print("%s\th2c (h2load)\t%s\t%.1f\t%d\t%d\t%.1f\t%s\t%s" % (s, rep, rps, pct(50), pct(99), ticks / hz * 1e6 / n, other, load))
EOF
    rm -f "$log"
}

TOTAL_S=$((REPS * (${#SERVERS[@]} * DURATION + ${#H2_SERVERS[@]} * (DURATION + LAT_DURATION + 2))))
log "load: wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s; h2load -t $H2_THREADS -c $H2_CONNS -m $H2_STREAMS -D $DURATION (latency: -D $LAT_DURATION --log-file); $REPS reps; about ${TOTAL_S}s"
for ((rep = 1; rep <= REPS; rep++)); do
    # servers interleaved inside each rep, so that a burst of background load hits all of them
    for s in "${SERVERS[@]}"; do
        log "rep $rep/$REPS: wrk against $s"
        measure_wrk "$s" "$rep"
    done
    for s in "${H2_SERVERS[@]}"; do
        log "rep $rep/$REPS: h2load against $s"
        measure_h2load "$s" "$rep"
    done
done

# ---- after the load ---------------------------------------------------------------------------

JOB_ID=$AC_JOB
check_status agentcore "$AC_PORT" after
JOB_ID=$FA_JOB
check_status fastapi "$FA_PORT" after
sleep 2 # let agentcore go idle
RSS_AFTER=$(rss_kib "$AC_PID")
HWM=$(hwm_kib "$AC_PID")
AFTER_BUSY=$(busy_pct)
AFTER_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -----------------------------------------------------------------------------------

"$PY" - "$RESULTS" "$RSS_START" "$RSS_AFTER" "$HWM" "$RSS_JOB" <<EOF
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rss0, rss1, hwm, rssj = (int(x) for x in sys.argv[2:6])
med = {}
for server, proto in dict.fromkeys((r[0], r[1]) for r in rows):
    sel = [r for r in rows if r[0] == server and r[1] == proto]
    med[(server, proto)] = dict(
        n=len(sel),
        rps=statistics.median(float(r[3]) for r in sel),
        p50=statistics.median(float(r[4]) for r in sel),
        p99=statistics.median(float(r[5]) for r in sel),
        cpu=statistics.median(float(r[6]) for r in sel),
        other=statistics.median(float(r[7]) for r in sel),
        load=statistics.median(float(r[8]) for r in sel),
        all=" ".join("%.0f" % float(r[3]) for r in sel))

def ms(us):
    return "%.2f ms" % (us / 1000.0)

print()
print("agentcore HTTP benchmark: training.get_status ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r))")
print("load: wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s (keep-alive) | h2load -t $H2_THREADS -c $H2_CONNS -m $H2_STREAMS -D $DURATION, h2c")
print("servers: agentcore threads=$SERVER_THREADS | h2o-static num-threads=$SERVER_THREADS (GET of a $(wc -c <"$WORK/h2o/htdocs/status.json")-byte file) | fastapi: $FA_IMPL")
print("job: %s iterations, %s; its stored record %s bytes of JSON; get_status answer %s bytes"
      % ("$JOB_ITERATIONS", "$(cd "$WORK" && "$PY" -c 'import json; print(json.load(open("agentcore.status.json"))["result"]["status"])')",
         "$RECORD_BYTES", "$(wc -c <"$WORK/agentcore.status.json")"))
print("medians of $REPS runs; server CPU/req = the server's CPU time (user+sys, all threads) per request;")
print("other load = CPU used during the run by processes other than the server and the load tool, in % of")
print("the whole machine: above a few % the figures of that row are depressed by someone else's work;")
print("load avg = 1-minute load average at the end of each run (the benchmark itself adds ~2: server + load tool)")
print()
hdr = ("server", "protocol", "req/s", "p50", "p99", "server CPU/req", "other load", "load avg", "runs (req/s)")
fmt = "%-11s %-15s %9s %9s %9s %14s %10s %8s   %s"
print(fmt % hdr)
print(fmt % tuple("-" * len(h) for h in hdr))
for proto in ("http/1.1 (wrk)", "h2c (h2load)"):
    for server in ("agentcore", "h2o-static", "fastapi"):
        m = med.get((server, proto))
        if m is None:
            if server == "fastapi" and proto.startswith("h2c"):
                print(fmt % (server, proto, "n/a", "", "", "", "", "", "uvicorn has no HTTP/2"))
            continue
        print(fmt % (server, proto, "%.0f" % m["rps"], ms(m["p50"]), ms(m["p99"]), "%.1f us" % m["cpu"],
                     "%.0f%%" % m["other"], "%.2f" % m["load"], m["all"]))
print()

def ratio(a, b, proto):
    x, y = med.get((a, proto)), med.get((b, proto))
    return x["rps"] / y["rps"] if x and y and y["rps"] > 0 else None

lines = []
for proto in ("http/1.1 (wrk)", "h2c (h2load)"):
    r = ratio("agentcore", "h2o-static", proto)
    if r is not None:
        lines.append("agentcore/h2o-static  %-15s %6.2f   (target >= 0.5: %s)" % (proto, r, "met" if r >= 0.5 else "MISSED"))
for proto in ("http/1.1 (wrk)",):
    r = ratio("agentcore", "fastapi", proto)
    if r is not None:
        lines.append("agentcore/fastapi     %-15s %6.2f   (target >= 10: %s)" % (proto, r, "met" if r >= 10 else "MISSED"))
a2, f1 = med.get(("agentcore", "h2c (h2load)")), med.get(("fastapi", "http/1.1 (wrk)"))
if a2 and f1:
    lines.append("agentcore h2c / fastapi http/1.1 (each at its best protocol) %.2f" % (a2["rps"] / f1["rps"]))
print("ratios (req/s, medians):")
for l in lines:
    print("  " + l)
# CPU per request depends far less on other work running on the machine than req/s does
cpu = []
for proto in ("http/1.1 (wrk)", "h2c (h2load)"):
    a, h, f = (med.get((x, proto)) for x in ("agentcore", "h2o-static", "fastapi"))
    if a and h:
        cpu.append("%s: agentcore uses %.1fx the CPU per request of h2o-static" % (proto, a["cpu"] / h["cpu"]))
    if a and f:
        cpu.append("%s: fastapi uses %.1fx the CPU per request of agentcore" % (proto, f["cpu"] / a["cpu"]))
print("server CPU per request (medians):")
for l in cpu:
    print("  " + l)
print()
mib = lambda k: k / 1024.0
print("agentcore RSS (VmRSS), idle: after start %.1f MiB; after training the job %.1f MiB; after the load %.1f MiB;"
      " peak (VmHWM) %.1f MiB  (target idle <= 30 MiB: %s)"
      % (mib(rss0), mib(rssj), mib(rss1), mib(hwm), "met" if max(rss0, rssj, rss1) <= 30 * 1024 else "MISSED"))
print("machine busy before the run (other processes): ${BASE_BUSY}%; after: ${AFTER_BUSY}%;"
      " load average (1, 5, 15 min) before: ${BASE_LOAD}; after: ${AFTER_LOAD}")
EOF

if [ "$BAD" != 0 ]; then
    die "some runs failed their checks (see the messages above): the table may be incomplete"
fi
