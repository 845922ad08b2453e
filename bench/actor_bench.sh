#!/usr/bin/env bash
# The sequence policy, C (build/bench_actor) against PyTorch (bench/actor_torch.py) on the same
# model and work, 1 then 2 threads, side by side in one run; prints each program's output and a
# markdown table for bench/actor.md (medians of RUNS runs, the load average before each).
#
#     bash bench/actor_bench.sh            # RUNS=7 by default; ~5 min on a quiet 2-core machine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${RUNS:-7}"
PY=/usr/bin/python3 # Debian's torch lives there
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target bench_actor >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "started $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
for th in 1 2; do
    for impl in C torch; do
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        echo "==> $impl, $th thread(s), load average $load"
        if [ "$impl" = C ]; then
            build/bench_actor --threads "$th" --runs "$RUNS" | tee -a "$out.log"
        else
            OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th $PY bench/actor_torch.py --threads "$th" --runs "$RUNS" |
                tee -a "$out.log"
        fi
        echo "LOAD impl=$impl threads=$th load=\"$load\"" >>"$out.log"
    done
done
mv "$out.log" "$out"
echo
$PY - "$out" <<'EOF'
import re, sys
res, load = {}, {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        res[(kv["impl"], kv["threads"])] = kv
    elif line.startswith("LOAD "):
        m = re.search(r'impl=(\S+) threads=(\S+) load="([^"]*)"', line)
        load[(m.group(1), m.group(2))] = m.group(3)
f = lambda v: f"{float(v):.0f}"
print("| threads | update, wall: C ms (min-max) | torch ms (min-max) | C faster by | update, CPU time: C / torch ms "
      "| C faster by | rollout forward, wall: C / torch ms | C faster by | projections in the update: GFLOP/s, share of "
      "the sgemm peak (wall) | replayed alone: GFLOP per CPU-second, share of the peak's | load average (C; torch) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for th in ("1", "2"):
    c, t = res[("C", th)], res[("torch", th)]
    ratio = lambda k: float(t[k]) / float(c[k])  # noqa: E731
    print(f"| {th} | **{f(c['update_ms'])}** ({f(c['update_min'])}-{f(c['update_max'])}) "
          f"| {f(t['update_ms'])} ({f(t['update_min'])}-{f(t['update_max'])}) | **{ratio('update_ms'):.2f}x** "
          f"| {f(c['update_cpu_ms'])} / {f(t['update_cpu_ms'])} | {ratio('update_cpu_ms'):.2f}x "
          f"| {float(c['rollout_ms']):.1f} / {float(t['rollout_ms']):.1f} | {ratio('rollout_ms'):.2f}x "
          f"| {c['proj_gflops']} of {c['peak_gflops']}: "
          f"**{100 * float(c['proj_gflops']) / float(c['peak_gflops']):.0f} %** "
          f"| {c['replay_cpu_gflops']} of {c['peak_cpu_gflops']}: "
          f"**{100 * float(c['replay_cpu_gflops']) / float(c['peak_cpu_gflops']):.0f} %** "
          f"| {load[('C', th)]}; {load[('torch', th)]} |")
EOF
