#!/usr/bin/env bash
# Builds a fuzz target (clang, libFuzzer, ASan + UBSan) and fuzzes it for N seconds (default 60)
# over a copy of its committed corpus, which is never written to. Exits non-zero when the fuzzer
# finds a crash, a leak, a sanitizer report, an invariant violation or a timeout.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET] [libFuzzer flags...]     e.g. tests/fuzz/run.sh 300 fuzz_lua
#
# TARGET: fuzz_rpc (default: one JSON-RPC request through the service) or fuzz_lua (Lua source
# run as a plugin in the sandbox).
#
# Environment: AC_FUZZ_BUILD (build directory, default <repo>/build-fuzz).
# The run's directory (printed at the end) holds fuzz.log, the grown corpus (corpus/) and any
# crash-*/leak-*/timeout-* artifact. Reproduce one with: <build>/tests/fuzz/<target> <artifact>
set -euo pipefail

secs=${1:-60}
[[ $# -gt 0 ]] && shift
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number, got '$secs'" >&2; exit 2 ;; esac
target=fuzz_rpc
if [[ $# -gt 0 && $1 == fuzz_* ]]; then target=$1; shift; fi
case $target in
fuzz_rpc) corpus=corpus dict=rpc.dict max_len=65536 ;;
fuzz_lua) corpus=lua_corpus dict=lua.dict max_len=8192 ;;
*) echo "run.sh: unknown target '$target' (fuzz_rpc, fuzz_lua)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${AC_FUZZ_BUILD:-$root/build-fuzz}

CC=clang cmake -S "$root" -B "$build" -DAC_FUZZ=ON -DAC_SANITIZE=ON >/dev/null
cmake --build "$build" --target "$target" -j"$(nproc)"

run=$(mktemp -d "$build/fuzz-run.XXXXXX")
mkdir "$run/corpus"
cp "$here/$corpus"/* "$run/corpus/"
# The harness's LMDB store: on tmpfs when there is one (its durable commits then cost no fsync).
if [[ -d /dev/shm && -w /dev/shm ]]; then store_tmp=$(mktemp -d /dev/shm/$target.XXXXXX); else store_tmp=$run/tmp; mkdir "$store_tmp"; fi
trap 'rm -rf "$store_tmp"' EXIT

unset AGENTCORE_FAULT # fault injection would turn every store write into -32603
export TMPDIR=$store_tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

set +e
"$build/tests/fuzz/$target" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -dict="$here/$dict" \
    -artifact_prefix="$run/" -print_final_stats=1 "$@" "$run/corpus" 2>&1 | tee "$run/fuzz.log"
rc=${PIPESTATUS[0]}
set -e

echo "run.sh: exit status $rc; log, corpus and artifacts in $run"
if [[ $rc -ne 0 ]]; then
    ls "$run" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|run.sh: artifact $run/|" || true
fi
exit "$rc"
