#!/usr/bin/env bash
# bench/cache.sh - issue 19's cache targets, run by bench/run.sh (`make
# bench`) or alone: RPCPOOL_BUILD=build/bench bash bench/cache.sh
#
#   1. bench/cache_poll.js: 100 clients polling eth_blockNumber and
#      eth_getBlockByNumber("latest", false) every 100 ms against an anvil
#      with --block-time 1, through rpcpoold with the cache and coalescing on,
#      on with the endpoint's ws_url (the pushed head) straight to anvil, then
#      off: upstream calls per method per block, calls saved, freshness;
#   2. the CPU of a cache hit: (a) bench/cache_hit, the hit path of the
#      daemon's own code in a loop (classify, key, hash, shm lookup, answer
#      with the client's id); (b) the whole daemon: rpcbench over IPC,
#      eth_chainId (always a hit) with --watch on rpcpoold's process tree,
#      CPU us per request, next to the same load with the cache off (every
#      call forwarded to the anvil).
# Loopback only; every load bounded in count and time; everything started is
# stopped by its pid.
#
# Environment: RPCPOOL_BUILD [build/bench], BENCH_OUT [$RPCPOOL_BUILD/bench-results],
# BENCH_CACHE_SECONDS [15] (target 1 per mode), BENCH_CACHE_REQUESTS [200000]
# (target 2b per mode).

set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${RPCPOOL_BUILD:-build/bench}
OUT=${BENCH_OUT:-$BUILD/bench-results}
SECS=${BENCH_CACHE_SECONDS:-15}
NREQ=${BENCH_CACHE_REQUESTS:-200000}
ANVIL=tests/node_modules/.bin/anvil
say() { echo "bench-cache: $*" >&2; }
mkdir -p "$OUT" || exit 1
for b in "$BUILD/rpcpoold" "$BUILD/rpcbench" "$BUILD/cache_hit" "$ANVIL"; do
    [ -x "$b" ] || {
        say "$b is missing (make bench builds it; anvil comes with make deps)"
        exit 1
    }
done

say "target 1: 100 clients polling every 100 ms, a block a second, ${SECS}s per mode"
node bench/cache_poll.js --rpcpoold "$BUILD/rpcpoold" --anvil "$ANVIL" --seconds "$SECS" \
    --json "$OUT/cache_poll.jsonl" | tee "$OUT/cache_poll.txt"

say "target 2a: the hit path in a loop (bench/cache_hit)"
"$BUILD/cache_hit" -n 2000000 | tee "$OUT/cache_hit.txt"

WORK=$(mktemp -d /tmp/rpcbench-cache.XXXXXX) || exit 1
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

APORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$ANVIL" --host 127.0.0.1 --port "$APORT" --quiet >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    curl -s -m 1 -H 'content-type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' "http://127.0.0.1:$APORT/" | grep -q result && break
    sleep 0.1
done

# rpcpoold over the anvil, cache MAXB (0 = off) and coalescing COAL; prints
# the rpcbench JSON line for eth_chainId.
hit_run() {
    local tag=$1 maxb=$2 coal=$3
    cat >"$WORK/$tag.conf" <<EOF
name = "bench-hit";
endpoints = ( "http://127.0.0.1:$APORT/" );
rate_limit = { max_requests = 1000000000; window_ms = 1000; burst_size = 1000000000; };
max_connections = 64;
min_connections = 0;
health_check_interval_ms = 600000;
cache = { max_bytes = $maxb; finality_depth = 64; };
coalesce = $coal;
server = { socket = "$WORK/$tag.ipc"; control_socket = "$WORK/$tag.ctl";
  shm_name = "/rpcpool.bench-hit-$$-$tag"; workers = 2; log_level = "warn"; };
EOF
    "$BUILD/rpcpoold" -c "$WORK/$tag.conf" 2>>"$WORK/$tag.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        "$BUILD/rpcbench" --ipc "$WORK/$tag.ipc" -m eth_chainId -c 1 -n 1 -d 1 -t 1000 >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$BUILD/rpcbench" --ipc "$WORK/$tag.ipc" -m eth_chainId -c 16 -p 8 -n "$NREQ" -d 20 \
        --watch "$pid" --json --label "cache-$tag" 2>>"$WORK/$tag.log"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

say "target 2b: rpcpoold's CPU per eth_chainId over IPC, cache on (hits) and off"
ON=$(hit_run on 67108864 true)
OFF=$(hit_run off 0 false)
printf '%s\n%s\n' "$ON" "$OFF" >"$OUT/cache_hit_daemon.jsonl"
node -e '
const [on, off] = process.argv.slice(1).map((l) => { try { return JSON.parse(l); } catch { return null; } });
const f = (r) => r && r.watch ? r.watch.cpu_us_per_request : NaN;
const t = (r) => r ? (r.throughput_rps || r.rps || 0) : 0;
console.log(`rpcpoold CPU per request (eth_chainId, IPC, all processes): cache on ${f(on).toFixed(2)} us ` +
  `(every call a hit), cache off ${f(off).toFixed(2)} us (forwarded)`);
console.log(`target: a cache hit in <= 10 us of pool CPU: ${f(on) <= 10 ? "PASS" : "FAIL"} (${f(on).toFixed(2)} us)`);
' "$ON" "$OFF" | tee -a "$OUT/cache_hit.txt"
exit 0
