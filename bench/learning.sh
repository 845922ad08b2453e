#!/usr/bin/env bash
# The learning benchmark: every example agent, both policies, several seeds; baselines (random,
# untrained, keyword rule) beside the trained policy on every held-out split; the table in
# bench/learning.md and bench/learning.csv.
#
#   bash bench/learning.sh                 # the whole table (5 seeds; about an hour on 2 cores)
#   bash bench/learning.sh --quick         # one seed of the calculator, bag policy, 150 iterations
#   AGENTS="calculator support" POLICIES=sequence SEEDS=3 bash bench/learning.sh
#
# Needs a build (cmake -S . -B build && cmake --build build). Each run is
# `agentcore train examples/<agent>/experiment.lua --seeds N --set policy.kind=<policy> --json`;
# its metrics.csv and report.json stay under $OUT (default build/learning).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${AGENTCORE_BIN:-$root/build/agentcore}
out=${OUT:-$root/build/learning}
seeds=${SEEDS:-5}
policies=${POLICIES:-"bag sequence"}
table=$here/learning.md
csv=$here/learning.csv
extra=()
if [ "${1:-}" = "--quick" ]; then
    AGENTS=${AGENTS:-calculator}
    policies=${POLICIES:-bag}
    seeds=1
    extra=(--set n_iterations=150)
    table=$out/learning.md
    csv=$out/learning.csv
fi
if [ -z "${AGENTS:-}" ]; then
    AGENTS=$(cd "$root/examples" && for d in */; do [ -f "$d/experiment.lua" ] && echo "${d%/}"; done | sort | tr '\n' ' ')
fi
[ -x "$bin" ] || { echo "learning.sh: no $bin (build first)" >&2; exit 2; }
mkdir -p "$out"
runs=()
for agent in $AGENTS; do
    for policy in $policies; do
        dir=$out/$agent-$policy
        echo "== $agent, $policy policy, $seeds seed(s)" >&2
        start=$(date +%s)
        "$bin" train "$root/examples/$agent/experiment.lua" --seeds "$seeds" --set "policy.kind=\"$policy\"" \
            "${extra[@]}" --out "$dir" --json > "$dir.out"
        echo "   $(( $(date +%s) - start )) s" >&2
        runs+=("$agent:$policy:$dir")
    done
done
python3 "$here/learning_table.py" --machine "$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
    --md "$table" --csv "$csv" "${runs[@]}"
echo "wrote $table and $csv" >&2
