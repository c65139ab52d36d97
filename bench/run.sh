#!/usr/bin/env bash
# bench/run.sh - `make bench`: rpcpoold against nginx and the direct path, on
# this machine, loopback only, every load bounded in count and time.
#
#   1. a fast local upstream: Debian's nginx with njs (bench/nginx-upstream.conf,
#      bench/echo.js) answering {"result":"0x1"} with the request's id, on two
#      loopback ports (rpcpoold and the nginx proxy see two endpoints);
#   2. the same load (bench/rpcbench) (a) straight to the upstream, (b) through
#      an nginx reverse proxy with upstream keep-alive and rpcpoold's worker
#      count (bench/nginx-proxy.conf), on TCP and on a UNIX socket, (c) through
#      rpcpoold's UNIX socket (IPC framing), (d) through rpcpoold's http_listen
#      (and HTTP on its UNIX socket); a throughput profile (many connections,
#      pipelined) and a latency profile (one connection, one request at a time);
#   3. the shm hot path alone (bench/shm_hotpath) with 1, 2, 4, 8 processes;
#   4. 10,000 idle client connections held against rpcpoold, and their RSS;
#   5. the response cache and coalescing, on and off (bench/cache.sh);
#   6. one comparison table and PASS/FAIL per target (bench/report.js); the
#      exit status does not depend on the targets.
# The https rows: the same upstream over TLS (two more ports, a certificate for
# localhost from a CA made here with the openssl CLI); nginx proxy_pass https://
# with upstream keep-alive and verification on (nginx-tls) against a second
# rpcpoold whose endpoints are https://localhost:PORT with tls_ca_file
# (rpcpoold-tls-ipc, rpcpoold-tls-http).
#
# nginx never runs as a system service here: each instance is private
# (nginx -p DIR -c CONF -g 'daemon off;'), on free loopback ports, and is
# stopped by its pid at the end, as is everything else this script starts.
#
# Environment (defaults in brackets):
#   RPCPOOL_BUILD [build/bench]  where rpcpoold, rpcbench and shm_hotpath are
#   BENCH_DURATION [5]    seconds per throughput load (also bounded by BENCH_REQUESTS)
#   BENCH_REQUESTS [2000000]  requests per throughput load
#   BENCH_CONNS [32] BENCH_PIPELINE [4]   throughput profile
#   BENCH_LAT_DURATION [2]  seconds per latency load (1 connection, 1 in flight)
#   BENCH_LAT_ROUNDS [3]  latency rounds (interleaved; the best round counts)
#   BENCH_ROUNDS [3]      throughput rounds (interleaved; the best round counts)
#   BENCH_WORKERS [2]     rpcpoold workers = nginx proxy workers
#   BENCH_UPSTREAM_WORKERS [1]  upstream nginx workers
#   BENCH_IDLE [10000]    idle client connections
#   BENCH_OUT [$RPCPOOL_BUILD/bench-results]  results (results.jsonl, summary.txt, RESULTS.md)
#   BENCH_UPDATE_RESULTS [0]  1 = also put the results into bench/RESULTS.md
#   BENCH_CASES [all]     the loads to run, e.g. "nginx-tls rpcpoold-tls-ipc rpcpoold-tls-http"

set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

BUILD=${RPCPOOL_BUILD:-build/bench}
DUR=${BENCH_DURATION:-5}
TOTAL=${BENCH_REQUESTS:-2000000}
CONNS=${BENCH_CONNS:-32}
PIPE=${BENCH_PIPELINE:-4}
LAT_DUR=${BENCH_LAT_DURATION:-2}
LAT_ROUNDS=${BENCH_LAT_ROUNDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
WORKERS=${BENCH_WORKERS:-2}
UP_WORKERS=${BENCH_UPSTREAM_WORKERS:-1}
IDLE=${BENCH_IDLE:-10000}
OUT=${BENCH_OUT:-$BUILD/bench-results}
NJS_MODULE=/usr/lib/nginx/modules/ngx_http_js_module.so

say() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

RPCPOOLD=$BUILD/rpcpoold
RPCBENCH=$BUILD/rpcbench
HOTPATH=$BUILD/shm_hotpath
for b in "$RPCPOOLD" "$RPCBENCH" "$HOTPATH"; do
    [ -x "$b" ] || die "$b is missing: run make bench (or make BUILD=$BUILD all $BUILD/rpcbench $BUILD/shm_hotpath)"
done
if grep -qa __asan_init "$RPCPOOLD"; then
    say "warning: $RPCPOOLD is built with sanitizers: the numbers will not mean much"
fi

# ---------------------------------------------------------------------
# nginx with njs, from Debian, never started as a service
# ---------------------------------------------------------------------
install_nginx() {
    command -v nginx >/dev/null 2>&1 && [ -f "$NJS_MODULE" ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "nginx and its njs module are missing and this is not Debian: install nginx and libnginx-mod-http-js"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "nginx is missing; as root: apt-get install nginx libnginx-mod-http-js"
        sudo=sudo
    fi
    say "installing Debian's nginx and libnginx-mod-http-js (njs)"
    # The package's scripts would start nginx as a system service on port 80:
    # a policy-rc.d that says no keeps them from it, if none is there yet.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# made by rpcpool bench/run.sh for one apt-get run\nexit 101\n' |
            $sudo tee "$policy" >/dev/null && $sudo chmod 0755 "$policy" && made_policy=1
    fi
    local ok=1
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            nginx libnginx-mod-http-js >&2 || ok=0
    [ "$made_policy" = 1 ] && $sudo rm -f "$policy"
    [ "$ok" = 1 ] || die "apt-get install nginx libnginx-mod-http-js failed"
    if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$NJS_MODULE" ]; then
        die "nginx or $NJS_MODULE still missing"
    fi
}
install_nginx

# ---------------------------------------------------------------------
# a private work dir, the processes we start, and their end
# ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/rpcbench.XXXXXX) || die "mktemp failed"
mkdir -p "$WORK/tmp" "$OUT" || die "cannot create $OUT"
rm -f "$OUT/results.jsonl" "$OUT/hotpath.jsonl" "$OUT/idle.json"
PIDS=()

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    for f in "$WORK"/*.log; do
        [ -s "$f" ] && cp "$f" "$OUT/" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything started from here may hold many descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576

# A loopback TCP port nobody listens on (and that we have not handed out).
USED_PORTS=" "
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 30000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS="$USED_PORTS$p "
            echo "$p"
            return 0
        fi
    done
    die "no free loopback port found"
}

# Wait until rpcbench gets one good answer from the target ARGS... (10 s).
wait_ready() {
    local i
    for i in $(seq 1 100); do
        "$RPCBENCH" "$@" -c 1 -n 1 -d 1 -t 1000 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# Fill a template's placeholders.
render() {
    sed -e "s|@DIR@|$WORK|g" -e "s|@BENCH@|$ROOT/bench|g" -e "s|@PORT1@|$UP1|g" \
        -e "s|@PORT2@|$UP2|g" -e "s|@PROXY_PORT@|$PXPORT|g" -e "s|@NOFILE@|$NOFILE|g" \
        -e "s|@TLS_PORT1@|$TUP1|g" -e "s|@TLS_PORT2@|$TUP2|g" -e "s|@PROXY_TLS_PORT@|$PXTPORT|g" \
        -e "s|@WORKERS@|$2|g" "$1"
}

# A CA of the run's own and, signed by it, a certificate for localhost (EC P-256).
make_tls() {
    local d=$WORK/tls
    mkdir -p "$d" || return 1
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
        -subj "/CN=rpcpool bench CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$WORK/openssl.log" &&
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            >"$d/cert.ext" &&
        openssl req "${ec[@]}" -keyout "$d/cert.key" -out "$d/cert.csr" -subj "/CN=localhost" \
            2>>"$WORK/openssl.log" &&
        openssl x509 -req -in "$d/cert.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -out "$d/cert.pem" -days 2 -extfile "$d/cert.ext" 2>>"$WORK/openssl.log"
}

# Other work on the machine skews every number but CPU per request: say so.
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD0" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    say "warning: load average $LOAD0 on $(nproc) CPUs: throughput and latency will be noisy"
fi

UP1=$(free_port)
UP2=$(free_port)
PXPORT=$(free_port)
HTPORT=$(free_port)
TUP1=$(free_port)
TUP2=$(free_port)
PXTPORT=$(free_port)
HTTPORT=$(free_port)
make_tls || die "cannot make the bench's TLS certificates with openssl (see $OUT/openssl.log)"

render bench/nginx-upstream.conf "$UP_WORKERS" >"$WORK/upstream.conf"
render bench/nginx-proxy.conf "$WORKERS" >"$WORK/proxy.conf"

say "upstream: nginx + njs on 127.0.0.1:$UP1 and :$UP2 ($UP_WORKERS worker(s))"
nginx -p "$WORK" -c "$WORK/upstream.conf" -e "$WORK/upstream-error.log" -g 'daemon off;' \
    2>>"$WORK/upstream-stderr.log" &
UP_PID=$!
PIDS+=("$UP_PID")
wait_ready --http "http://127.0.0.1:$UP1/" || die "the upstream nginx does not answer (see $OUT/upstream-error.log)"
say "upstream over TLS: 127.0.0.1:$TUP1 and :$TUP2 (certificate for localhost)"

say "nginx proxy: 127.0.0.1:$PXPORT and $WORK/proxy.sock ($WORKERS workers, upstream keepalive)"
nginx -p "$WORK" -c "$WORK/proxy.conf" -e "$WORK/proxy-error.log" -g 'daemon off;' \
    2>>"$WORK/proxy-stderr.log" &
PX_PID=$!
PIDS+=("$PX_PID")
wait_ready --http "http://127.0.0.1:$PXPORT/" || die "the nginx proxy does not answer (see $OUT/proxy-error.log)"
wait_ready --http "http://127.0.0.1:$PXTPORT/" ||
    say "warning: the nginx proxy to the TLS upstream does not answer (see $OUT/proxy-error.log)"

# rpcpoold: the same two endpoints, limits that never bind, the same workers.
cat >"$WORK/rpcpool.conf" <<EOF
name = "bench";
endpoints = ( "http://127.0.0.1:$UP1/", "http://127.0.0.1:$UP2/" );
max_connections = 256;
min_connections = 8;
request_timeout_ms = 10000;
attempt_timeout_ms = 5000;
balance = "p2c";
rate_limit = { max_requests = 1000000000; window_ms = 1000; burst_size = 1000000000; };
server = {
  socket = "$WORK/rpcpool.ipc";
  control_socket = "$WORK/rpcpool.ctl";
  http_listen = "127.0.0.1:$HTPORT";
  shm_name = "/rpcpool.bench-$$";
  workers = $WORKERS;
  max_clients = $((IDLE + 2000));
  client_idle_timeout_ms = 600000;
  log_level = "warn";
};
EOF
"$RPCPOOLD" -t -c "$WORK/rpcpool.conf" >&2 || die "rpcpoold rejects the bench configuration"
say "rpcpoold: $WORK/rpcpool.ipc and 127.0.0.1:$HTPORT ($WORKERS workers)"
"$RPCPOOLD" -c "$WORK/rpcpool.conf" 2>>"$WORK/rpcpoold.log" &
RP_PID=$!
PIDS+=("$RP_PID")
wait_ready --ipc "$WORK/rpcpool.ipc" || die "rpcpoold does not answer on its socket (see $OUT/rpcpoold.log)"
RP_HTTP=1
if ! wait_ready --http "http://127.0.0.1:$HTPORT/"; then
    say "warning: rpcpoold does not answer HTTP on http_listen: the HTTP cases will show as failed"
    RP_HTTP=0
fi

# a second rpcpoold for the https rows: the TLS upstream by host name
sed -e "s|http://127.0.0.1:$UP1/|https://localhost:$TUP1/|" -e "s|http://127.0.0.1:$UP2/|https://localhost:$TUP2/|" \
    -e "s|rpcpool\.ipc|rpcpool-tls.ipc|" -e "s|rpcpool\.ctl|rpcpool-tls.ctl|" \
    -e "s|127.0.0.1:$HTPORT|127.0.0.1:$HTTPORT|" -e "s|/rpcpool.bench-|/rpcpool.bench-tls-|" \
    -e "s|^name = \"bench\";|name = \"bench-tls\";\ntls_ca_file = \"$WORK/tls/ca.pem\";|" \
    "$WORK/rpcpool.conf" >"$WORK/rpcpool-tls.conf"
"$RPCPOOLD" -t -c "$WORK/rpcpool-tls.conf" >&2 || die "rpcpoold rejects the bench's TLS configuration"
say "rpcpoold (https endpoints): $WORK/rpcpool-tls.ipc and 127.0.0.1:$HTTPORT ($WORKERS workers)"
"$RPCPOOLD" -c "$WORK/rpcpool-tls.conf" 2>>"$WORK/rpcpoold-tls.log" &
RPT_PID=$!
PIDS+=("$RPT_PID")
wait_ready --ipc "$WORK/rpcpool-tls.ipc" ||
    say "warning: rpcpoold with https endpoints does not answer (see $OUT/rpcpoold-tls.log)"

# ---------------------------------------------------------------------
# the loads
# ---------------------------------------------------------------------
# run LABEL PROFILE WATCH_PID TARGET-ARGS... : one rpcbench run, one JSON line
run() {
    local label=$1 profile=$2 watch=$3
    shift 3
    local load
    if [ "$profile" = latency ]; then
        load=(-c 1 -p 1 -d "$LAT_DUR" -n "$TOTAL" -w 0.5)
    else
        load=(-c "$CONNS" -p "$PIPE" -d "$DUR" -n "$TOTAL" -w 1)
    fi
    local line
    line=$("$RPCBENCH" "$@" "${load[@]}" -t 5000 --watch "$watch" --label "$label" --json \
        2>>"$WORK/rpcbench.log")
    if [ -z "$line" ]; then
        line="{\"label\":\"$label\",\"failed\":true}"
    fi
    echo "{\"profile\":\"$profile\",\"run\":$line}" >>"$OUT/results.jsonl"
    say "$(printf '%-8s %-16s %s' "$profile" "$label" \
        "$(echo "$line" | sed -n 's/.*"ok_rps":\([0-9.]*\).*"p50":\([0-9.]*\).*/\1 req\/s, p50 \2 us/p')")"
}

read -r -a CASES <<<"${BENCH_CASES:-direct nginx-tcp nginx-unix rpcpoold-ipc rpcpoold-http \
rpcpoold-http-unix nginx-tls rpcpoold-tls-ipc rpcpoold-tls-http}"
run_case() {
    case "$1" in
    direct) run direct "$2" "$UP_PID" --http "http://127.0.0.1:$UP1/" ;;
    nginx-tcp) run nginx-tcp "$2" "$PX_PID" --http "http://127.0.0.1:$PXPORT/" ;;
    nginx-unix) run nginx-unix "$2" "$PX_PID" --http-unix "$WORK/proxy.sock" ;;
    rpcpoold-ipc) run rpcpoold-ipc "$2" "$RP_PID" --ipc "$WORK/rpcpool.ipc" ;;
    rpcpoold-http) run rpcpoold-http "$2" "$RP_PID" --http "http://127.0.0.1:$HTPORT/" ;;
    rpcpoold-http-unix) run rpcpoold-http-unix "$2" "$RP_PID" --http-unix "$WORK/rpcpool.ipc" ;;
    nginx-tls) run nginx-tls "$2" "$PX_PID" --http "http://127.0.0.1:$PXTPORT/" ;;
    rpcpoold-tls-ipc) run rpcpoold-tls-ipc "$2" "$RPT_PID" --ipc "$WORK/rpcpool-tls.ipc" ;;
    rpcpoold-tls-http) run rpcpoold-tls-http "$2" "$RPT_PID" --http "http://127.0.0.1:$HTTPORT/" ;;
    esac
}

say "throughput profile: $CONNS connections x $PIPE in flight, ${DUR}s or $TOTAL requests, $ROUNDS round(s)"
for _ in $(seq 1 "$ROUNDS"); do
    for c in "${CASES[@]}"; do
        run_case "$c" throughput
    done
done
say "latency profile: 1 connection x 1 in flight, ${LAT_DUR}s, $LAT_ROUNDS round(s)"
for _ in $(seq 1 "$LAT_ROUNDS"); do
    for c in "${CASES[@]}"; do
        run_case "$c" latency
    done
done

say "shm hot path: 1, 2, 4, 8 processes on one endpoint row"
"$HOTPATH" -d 1000 -P 1,2,4,8 --json >"$OUT/hotpath.jsonl" 2>>"$WORK/hotpath.log" ||
    say "warning: shm_hotpath reported a failure (see $OUT/hotpath.log)"

# ---------------------------------------------------------------------
# idle client connections
# ---------------------------------------------------------------------
# Sum of VmRSS (KiB) and of open descriptors over rpcpoold's processes.
# PID and its descendants, from /proc (no procps needed, no fork per process).
tree_pids() {
    local -a pids=() ppids=()
    local f st pid rest n=0 set=" $1 " changed=1 i
    for f in /proc/[0-9]*/stat; do
        { read -r st <"$f"; } 2>/dev/null || continue
        pid=${f#/proc/}
        rest=${st##*) }
        rest=${rest#* }
        pids[n]=${pid%/stat}
        ppids[n]=${rest%% *}
        n=$((n + 1))
    done
    while [ "$changed" = 1 ]; do
        changed=0
        for ((i = 0; i < n; i++)); do
            case "$set" in *" ${pids[i]} "*) continue ;; esac
            case "$set" in *" ${ppids[i]} "*)
                set="$set${pids[i]} "
                changed=1
                ;;
            esac
        done
    done
    echo "$set"
}
tree_rss_kib() {
    local t=0 p v
    for p in $(tree_pids "$RP_PID"); do
        v=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
tree_fds() {
    local t=0 p
    local -a n
    for p in $(tree_pids "$RP_PID"); do
        n=(/proc/"$p"/fd/*)
        [ -e "${n[0]}" ] && t=$((t + ${#n[@]}))
    done
    echo "$t"
}
# Wait (bounded) for a line matching PATTERN in FILE.
wait_line() {
    local i
    for i in $(seq 1 "$3"); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

say "idle clients: $IDLE connections to $WORK/rpcpool.ipc"
sleep 1
RSS0=$(tree_rss_kib)
FD0=$(tree_fds)
"$RPCBENCH" --ipc "$WORK/rpcpool.ipc" --idle "$IDLE" --hold 90 --json --label idle \
    >"$WORK/idle.out" 2>>"$WORK/rpcbench.log" &
IDLE_PID=$!
PIDS+=("$IDLE_PID")
IDLE_OK=0
RSS1=0 RSS2=0 FD1=0 ANSWERED=0
if wait_line "$WORK/idle.out" "idle: connected" 300; then
    # connect() succeeds from the listen backlog: wait until the workers hold them
    for i in $(seq 1 100); do
        FD1=$(tree_fds)
        [ $((FD1 - FD0)) -ge "$IDLE" ] && break
        sleep 0.1
    done
    sleep 1
    RSS1=$(tree_rss_kib)
    FD1=$(tree_fds)
    kill -USR1 "$IDLE_PID"
    if wait_line "$WORK/idle.out" "idle: answered" 300; then
        ANSWERED=$(sed -n 's/^idle: answered \([0-9]*\).*/\1/p' "$WORK/idle.out")
        sleep 1
        RSS2=$(tree_rss_kib)
        IDLE_OK=1
    fi
fi
stop_pid "$IDLE_PID"
cat >"$OUT/idle.json" <<EOF
{"idle":$IDLE,"ok":$IDLE_OK,"rss_kib_before":$RSS0,"rss_kib_connected":$RSS1,"rss_kib_after_one_call":$RSS2,"fds_before":$FD0,"fds_connected":$FD1,"answered":${ANSWERED:-0}}
EOF
say "idle: rss ${RSS0} -> ${RSS1} KiB connected, ${RSS2} KiB after one call each; fds ${FD0} -> ${FD1}; answered ${ANSWERED:-0}"

# ---------------------------------------------------------------------
# the response cache and coalescing (issue 19): bench/cache.sh
# ---------------------------------------------------------------------
RPCPOOL_BUILD=$BUILD BENCH_OUT=$OUT bash bench/cache.sh || say "warning: bench/cache.sh failed"

# ---------------------------------------------------------------------
# the machine, the table, the targets
# ---------------------------------------------------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
cat >"$OUT/machine.json" <<EOF
{"nproc":$(nproc),"cpu":"${CPU_MODEL//\"/}","kernel":"$(uname -sr)","nginx":"$(nginx -v 2>&1 | sed 's/.*nginx\///')","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","conns":$CONNS,"pipeline":$PIPE,"duration_s":$DUR,"lat_duration_s":$LAT_DUR,"rounds":$ROUNDS,"lat_rounds":$LAT_ROUNDS,"loadavg_start":$LOAD0,"loadavg_end":$(cut -d' ' -f1 /proc/loadavg),"workers":$WORKERS,"upstream_workers":$UP_WORKERS,"rpcpoold_http":$RP_HTTP}
EOF

if command -v node >/dev/null 2>&1; then
    node bench/report.js "$OUT" | tee "$OUT/summary.txt"
else
    say "node is missing (make deps): raw results are in $OUT/*.jsonl"
fi
say "results in $OUT"
exit 0
