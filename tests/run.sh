#!/bin/sh
# tests/run.sh - run every rpcpool test and print the totals.
#
#   RPCPOOL_BUILD=build/san sh tests/run.sh [FILTER]
#
# Runs each unit test binary $RPCPOOL_BUILD/tests/test_* (CUnit; each prints
# "RESULT suite=S passed=N failed=M"), then each tests/integration/*.test.js
# with `node --test --test-reporter=tap` (counted from "# pass N" / "# fail N"
# / "# cancelled N"). A suite that crashes, times out or exits non-zero
# without counts counts as 1 failed. FILTER, when given, keeps only suites
# whose name contains it. Each suite's full output goes to
# $RPCPOOL_BUILD/test-logs/NAME.log; a failing suite's output is also shown.
# The last line printed is "N passed, M failed"; the exit status is 1 when
# anything failed or nothing ran.
#
# Environment: RPCPOOL_BUILD (default build), RPCPOOL_TEST_TIMEOUT (seconds
# per suite, default 300), RPCPOOL_TEST_VERBOSE=1 (show every suite's output),
# RPCPOOL_FUZZ_SECONDS (run each libFuzzer target that long; 0 = skip).

cd "$(dirname "$0")/.." || exit 1

BUILD=${RPCPOOL_BUILD:-build}
export RPCPOOL_BUILD="$BUILD"
SUITE_TIMEOUT=${RPCPOOL_TEST_TIMEOUT:-300}
FILTER=${1:-}
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR" || exit 1

# Sanitized daemon and unit tests: report leaks, stop at the first UB.
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

TOTAL_PASS=0
TOTAL_FAIL=0
SUITES=0

# timeout(1) when present: TERM after the limit, KILL 15 s later.
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout -k 15 $SUITE_TIMEOUT"
else
    TIMEOUT=""
fi

# report NAME PASS FAIL RC LOG: add to the totals and print one line (and
# the log when the suite failed).
report() {
    name=$1 pass=$2 fail=$3 rc=$4 log=$5
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
    SUITES=$((SUITES + 1))
    if [ "$fail" -eq 0 ]; then
        [ "${RPCPOOL_TEST_VERBOSE:-0}" = 1 ] && cat "$log"
        echo "ok   $name: $pass passed"
    else
        echo "---- $name (exit $rc) ----"
        cat "$log"
        why=""
        [ "$rc" -eq 124 ] && why=" (timed out after ${SUITE_TIMEOUT}s)"
        [ "$rc" -gt 128 ] && [ "$rc" -ne 255 ] && why=" (killed by signal $((rc - 128)))"
        echo "FAIL $name: $pass passed, $fail failed, exit $rc$why; log: $log"
    fi
}

# last_count LOG KEY: the number after the last "# KEY N" line, 0 when none.
last_count() {
    sed -n "s/^# $2 \([0-9][0-9]*\)\$/\1/p" "$1" | tail -n 1 | grep . || echo 0
}

wanted() {
    [ -z "$FILTER" ] && return 0
    case "$1" in *"$FILTER"*) return 0 ;; esac
    return 1
}

# Unit tests.
for bin in "$BUILD"/tests/test_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    name=unit/$(basename "$bin")
    wanted "$name" || continue
    log="$LOGDIR/$(basename "$bin").log"
    $TIMEOUT "$bin" >"$log" 2>&1 </dev/null
    rc=$?
    if grep -q '^RESULT ' "$log"; then
        pass=$(sed -n 's/^RESULT .*passed=\([0-9][0-9]*\).*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
        fail=$(sed -n 's/^RESULT .*failed=\([0-9][0-9]*\).*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
        # A clean RESULT line followed by a crash or a leak report at exit.
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1
        fi
    else
        pass=0
        fail=1
    fi
    report "$name" "$pass" "$fail" "$rc" "$log"
done

# Integration tests.
if ls tests/integration/*.test.js >/dev/null 2>&1; then
    if ! command -v node >/dev/null 2>&1; then
        echo "FAIL integration: node not found (run make deps)"
        TOTAL_FAIL=$((TOTAL_FAIL + 1))
    else
        for t in tests/integration/*.test.js; do
            name=integration/$(basename "$t" .test.js)
            wanted "$name" || continue
            log="$LOGDIR/$(basename "$t" .js).log"
            $TIMEOUT node --test --test-reporter=tap "$t" >"$log" 2>&1 </dev/null
            rc=$?
            pass=$(last_count "$log" pass)
            fail=$(($(last_count "$log" fail) + $(last_count "$log" cancelled)))
            if ! grep -q '^# pass [0-9]' "$log" || { [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; }; then
                fail=$((fail + 1))
            fi
            report "$name" "$pass" "$fail" "$rc" "$log"
        done
    fi
fi

# Fuzzers, for a bounded time each, when RPCPOOL_FUZZ_SECONDS is set (CI:
# 30): every libFuzzer target counts as one test.
if [ "${RPCPOOL_FUZZ_SECONDS:-0}" -gt 0 ] && wanted fuzz; then
    log="$LOGDIR/fuzz.log"
    FUZZ_SECONDS=$RPCPOOL_FUZZ_SECONDS sh tests/fuzz/run.sh "$RPCPOOL_FUZZ_SECONDS" >"$log" 2>&1 </dev/null
    rc=$?
    pass=$(grep -c '^fuzz: [a-z]*: ok ' "$log")
    fail=$(grep -c '^fuzz: [a-z]*: FAILED' "$log")
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1
    fi
    report "fuzz" "$pass" "$fail" "$rc" "$log"
    grep '^fuzz: [a-z]*: ' "$log"
fi

if [ "$SUITES" -eq 0 ]; then
    echo "no test suite found under $BUILD/tests or tests/integration"
fi
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
if [ "$TOTAL_FAIL" -ne 0 ] || [ "$((TOTAL_PASS + TOTAL_FAIL))" -eq 0 ]; then
    exit 1
fi
exit 0
