#!/usr/bin/env bash
# The learning benchmark: every example agent, both policies, several seeds; baselines (random,
# untrained, keyword rule) beside the trained policy on every held-out split; the table in
# bench/learning.md and bench/learning.csv.
#
#   bash bench/learning.sh                 # the whole table (5 seeds; about an hour on 2 cores)
#   bash bench/learning.sh --quick         # one seed of the calculator, bag policy, 150 iterations
#   AGENTS="calculator support" POLICIES=sequence SEEDS=3 bash bench/learning.sh
#   AGENTS=inventory-blind POLICIES=bag SEEDS=3 bash bench/learning.sh   # the blind control alone
#
# Needs a build (cmake -S . -B build && cmake --build build). Each run is
# `agentcore train examples/<agent>/experiment.lua --seeds N --set policy.kind=<policy> --json`;
# its metrics.csv and report.json stay under $OUT (default build/learning). An agent
# <agent>-<variant> runs examples/<agent>/experiment_<variant>.lua: inventory-blind is the
# control, the inventory agent blind to its tool results (examples/inventory/experiment_blind.lua).
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
    AGENTS=$(cd "$root/examples" && for d in */; do
        [ -f "$d/experiment.lua" ] && echo "${d%/}"
        for v in "$d"experiment_*.lua; do [ -f "$v" ] && { v=${v#"$d"experiment_}; echo "${d%/}-${v%.lua}"; }; done
        true # (a folder without a variant is no failure of the pipeline under set -e)
    done | sort | tr '\n' ' ')
fi
# experiment_of AGENT: examples/AGENT/experiment.lua, or for AGENT=name-variant
# examples/name/experiment_variant.lua
experiment_of() {
    local base=${1%%-*} variant=${1#*-}
    if [ -f "$root/examples/$1/experiment.lua" ]; then echo "$root/examples/$1/experiment.lua"
    elif [ "$base" != "$1" ] && [ -f "$root/examples/$base/experiment_$variant.lua" ]; then
        echo "$root/examples/$base/experiment_$variant.lua"
    else echo "learning.sh: no experiment for agent '$1' (examples/$1/experiment.lua or examples/$base/experiment_<variant>.lua)" >&2; return 1
    fi
}
[ -x "$bin" ] || { echo "learning.sh: no $bin (build first)" >&2; exit 2; }
mkdir -p "$out"
runs=()
for agent in $AGENTS; do
    experiment=$(experiment_of "$agent")
    for policy in $policies; do
        dir=$out/$agent-$policy
        echo "== $agent, $policy policy, $seeds seed(s)" >&2
        start=$(date +%s)
        "$bin" train "$experiment" --seeds "$seeds" --set "policy.kind=\"$policy\"" \
            "${extra[@]}" --out "$dir" --json > "$dir.out"
        echo "   $(( $(date +%s) - start )) s" >&2
        runs+=("$agent:$policy:$dir")
    done
done
python3 "$here/learning_table.py" --machine "$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
    --md "$table" --csv "$csv" "${runs[@]}"
echo "wrote $table and $csv" >&2
