#!/usr/bin/env bash
# README command 2: install what is missing, build, then run every test: ctest (C unit and
# end-to-end), busted (spec/), and the C and end-to-end tests again under ASan+UBSan.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$AC_ROOT"

ac_install_deps $AC_TEST_PACKAGES
passed=0
failed=0

# count_ctest LOGFILE: adds ctest's "N tests failed out of M" to the totals
count_ctest() {
    local line total bad
    line=$(grep -E "tests? failed out of" "$1" | tail -1 || true)
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    bad=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
    [ -n "$total" ] || { total=0; bad=1; }
    passed=$((passed + total - bad))
    failed=$((failed + bad))
}

echo "==> build (RelWithDebInfo)"
ac_build build
echo "==> ctest"
ctest --test-dir build --output-on-failure -j 2 2>&1 | tee build/ctest.log || true
count_ctest build/ctest.log

echo "==> busted"
# TAP output: one "ok"/"not ok" line per spec, which we count
busted --lua=lua5.4 -o TAP spec/ 2>&1 | tee build/busted.log || true
bs=$(grep -cE '^ok ' build/busted.log || true)
bf=$(grep -cE '^not ok ' build/busted.log || true)
[ "$bs" -gt 0 ] || bf=$((bf + 1)) # no spec ran: count it as a failure
echo "busted: $bs passed, $bf failed"
passed=$((passed + bs))
failed=$((failed + bf))

echo "==> build with ASan+UBSan"
ac_build build-asan -DAC_SANITIZE=ON
echo "==> ctest under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$AC_ROOT/tests/lsan.supp:print_suppressions=0" \
    ctest --test-dir build-asan --output-on-failure -j 2 2>&1 | tee build-asan/ctest.log || true
count_ctest build-asan/ctest.log

echo "==> the fuzz corpora, replayed under ASan+UBSan (libFuzzer, clang; long runs: tests/fuzz/run.sh)"
CC=clang cmake -S "$AC_ROOT" -B "$AC_ROOT/build-fuzz" -DAC_FUZZ=ON -DAC_SANITIZE=ON >/dev/null
cmake --build "$AC_ROOT/build-fuzz" -j "$(nproc)" --target fuzz_rpc fuzz_lua
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$AC_ROOT/tests/lsan.supp:print_suppressions=0" \
    ctest --test-dir build-fuzz -R "fuzz_(rpc|lua)_corpus" --output-on-failure 2>&1 | tee build-fuzz/ctest.log || true
count_ctest build-fuzz/ctest.log

echo
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
