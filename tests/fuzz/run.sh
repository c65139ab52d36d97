#!/bin/sh
# tests/fuzz/run.sh - run every libFuzzer target for a set time and report.
#
#   sh tests/fuzz/run.sh [SECONDS] [TARGET...]     run (default 60 s each, all targets)
#   sh tests/fuzz/run.sh --deps                    install clang/libFuzzer if missing
#
# Targets: frame jsonrpc config http response upstream restore client
# (tests/fuzz/fuzz_NAME.c, built into $FUZZ_BUILD/fuzz_NAME by mk/fuzz.mk;
# brought up to date here first).
# Each target runs on a temporary copy of its committed seed corpus
# (tests/fuzz/corpus/NAME/), so the committed corpus never grows, with its
# dictionary, for -max_total_time=SECONDS. One line per target reports the
# executions, execs/s, coverage (cov: and ft: of libFuzzer's final stats),
# the corpus size and the result; the full log is $FUZZ_BUILD/NAME.log.
# A crash, leak, timeout or out-of-memory keeps its input as
# $FUZZ_BUILD/artifacts/NAME-{crash,leak,timeout,oom}-SHA1 and prints how to
# reproduce it. The last line is "fuzz: N passed, M failed"; the exit
# status is 1 when any target failed.
#
# Environment: FUZZ_BUILD (default build/fuzz), FUZZ_SECONDS (default 60,
# overridden by the argument), FUZZ_FLAGS (more libFuzzer flags, e.g.
# "-seed=1"), FUZZ_NO_BUILD=1 (use the binaries as they are).

cd "$(dirname "$0")/../.." || exit 1

FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
ALL_TARGETS="frame jsonrpc config http response upstream restore client cachekey subjson wsframe"

say() { echo "fuzz: $*"; }

# clang with libFuzzer: Debian 12's clang-14 plus libclang-rt-14-dev.
toolchain_ok() {
    command -v clang >/dev/null 2>&1 || return 1
    tmp=$(mktemp -d) || return 1
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
    clang -fsanitize=fuzzer,address,undefined -o "$tmp/t" "$tmp/t.c" >/dev/null 2>&1
    rc=$?
    rm -rf "$tmp"
    return $rc
}

deps() {
    toolchain_ok && return 0
    pkgs="clang"
    if command -v clang >/dev/null 2>&1; then
        v=$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -1)
        pkgs="clang libclang-rt-${v:-14}-dev"
    else
        pkgs="clang libclang-rt-14-dev"
    fi
    command -v apt-get >/dev/null 2>&1 || {
        echo "fuzz: error: clang with -fsanitize=fuzzer is missing; install $pkgs" >&2
        return 1
    }
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    say "installing $pkgs"
    $SUDO apt-get install -y --no-install-recommends $pkgs >/dev/null ||
        { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends $pkgs >/dev/null; } ||
        { echo "fuzz: error: apt-get install $pkgs failed" >&2; return 1; }
    toolchain_ok || { echo "fuzz: error: clang -fsanitize=fuzzer still does not link" >&2; return 1; }
}

if [ "${1:-}" = "--deps" ]; then
    deps
    exit $?
fi

SECONDS_EACH=${FUZZ_SECONDS:-60}
case "${1:-}" in
[0-9]*) SECONDS_EACH=$1; shift ;;
esac
TARGETS=${*:-$ALL_TARGETS}

# Build (or bring up to date) through make: mk/fuzz.mk holds the rules.
# FUZZ_NO_BUILD=1 skips this (make fuzz / fuzz-ci have just built).
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    deps || exit 1
    bins=""
    for t in $TARGETS; do
        bins="$bins $FUZZ_BUILD/fuzz_$t"
    done
    if grep -qs '^-\{0,1\}include .*mk/fuzz\.mk' Makefile; then
        make --no-print-directory FUZZ_BUILD="$FUZZ_BUILD" $bins || exit 1
    else
        make --no-print-directory -f Makefile -f mk/fuzz.mk FUZZ_BUILD="$FUZZ_BUILD" $bins || exit 1
    fi
fi

mkdir -p "$FUZZ_BUILD/artifacts" || exit 1
# Leaks are errors; UBSan stops at the first report (the targets are built
# with -fno-sanitize-recover=undefined).
: "${ASAN_OPTIONS:=detect_leaks=1}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

PASS=0
FAIL=0
for t in $TARGETS; do
    bin="$FUZZ_BUILD/fuzz_$t"
    log="$FUZZ_BUILD/$t.log"
    if [ ! -x "$bin" ]; then
        say "$t: no binary $bin"
        FAIL=$((FAIL + 1))
        continue
    fi
    case $t in
    frame | jsonrpc | response | restore | client) dict=tests/fuzz/json.dict ;;
    http | upstream) dict=tests/fuzz/http.dict ;;
    config) dict=tests/fuzz/config.dict ;;
    *) dict="" ;;
    esac
    work=$(mktemp -d "${TMPDIR:-/tmp}/rpcpool-fuzz-$t.XXXXXX") || exit 1
    # scratch files of the target (fuzz_config writes its input there)
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/rpcpool-fuzz-$t-tmp.XXXXXX") || exit 1
    if [ -d "tests/fuzz/corpus/$t" ]; then
        cp -R "tests/fuzz/corpus/$t/." "$work/"
    fi
    # stale artifacts of this target from an earlier run would be mistaken
    # for new ones
    before=$(ls "$FUZZ_BUILD/artifacts" 2>/dev/null | grep "^$t-" | sort)
    # shellcheck disable=SC2086
    RP_FUZZ_TMPDIR="$scratch" "$bin" "$work" ${dict:+-dict=$dict} -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD/artifacts/$t-" \
        ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    rm -rf "$scratch"
    corpus=$(ls "$work" | wc -l | tr -d ' ')
    rm -rf "$work"
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    if [ $rc -eq 0 ]; then
        PASS=$((PASS + 1))
        say "$t: ok execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=$corpus (${SECONDS_EACH}s)"
    else
        FAIL=$((FAIL + 1))
        after=$(ls "$FUZZ_BUILD/artifacts" 2>/dev/null | grep "^$t-" | sort)
        new=$(printf '%s\n' "$after" | grep -vxF -e "$before" -e '' | head -1)
        [ -n "$before" ] || new=$(printf '%s\n' "$after" | head -1)
        say "$t: FAILED (exit $rc) execs=${execs:-?} cov=${cov:-?} ft=${ft:-?}; log $log"
        grep -E 'ERROR|SUMMARY|^    #[0-9]+ .* in ' "$log" | head -20 | sed 's/^/    /'
        if [ -n "$new" ]; then
            say "$t: input kept as $FUZZ_BUILD/artifacts/$new; reproduce: $bin $FUZZ_BUILD/artifacts/$new"
        fi
    fi
done
echo "fuzz: $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
