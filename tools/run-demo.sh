#!/bin/sh
# tools/run-demo.sh - the `make run` demo: three local anvil nodes (separate
# chains with the same chain id 31337, fine for reads) on free loopback ports,
# and rpcpoold in front of them, in the foreground, with its log on stderr.
#
#   sh tools/run-demo.sh            (after `make`; RPCPOOL_BUILD picks the build dir)
#
# Ctrl-C (or SIGTERM) stops rpcpoold gracefully and then the anvils; when
# rpcpoold exits by itself the anvils are stopped and its status is ours.
# Files: build/demo/rpcpool.conf, build/demo/anvil-N.log (kept for a look).

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${RPCPOOL_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DAEMON="$BUILD/rpcpoold"
BIN="$ROOT/tests/node_modules/.bin"
ANVIL="$BIN/anvil"
CAST="$BIN/cast"
DEMO="$ROOT/build/demo"
CHAIN_ID=31337
NODES=3

die() {
    echo "run-demo: $*" >&2
    exit 1
}

[ -x "$DAEMON" ] || die "$DAEMON not found: run make first"
[ -x "$ANVIL" ] || die "$ANVIL not found: run make deps"
command -v node >/dev/null 2>&1 || die "node not found: run make deps"
mkdir -p "$DEMO" || die "cannot create $DEMO"

SOCK="$DEMO/rpcpool.ipc"
CTL="$DEMO/rpcpool.ctl"
# UNIX socket paths hold at most 107 bytes: fall back to /tmp for deep trees.
if [ ${#SOCK} -gt 100 ]; then
    RUNDIR=$(mktemp -d /tmp/rpcpool-demo.XXXXXX) || die "mktemp failed"
    SOCK="$RUNDIR/rpcpool.ipc"
    CTL="$RUNDIR/rpcpool.ctl"
fi
SHM="/rpcpool.demo.$$"
CONF="$DEMO/rpcpool.conf"

# can_connect PATH: 0 when something accepts connections on the UNIX socket.
can_connect() {
    node -e '
        const s = require("net").connect(process.argv[1]);
        s.on("connect", () => process.exit(0));
        s.on("error", () => process.exit(1));
        setTimeout(() => process.exit(1), 1000);' "$1" 2>/dev/null
}

if [ -S "$SOCK" ]; then
    can_connect "$SOCK" && die "a demo is already running on $SOCK"
    rm -f "$SOCK" "$CTL"
fi

# NODES + 1 free loopback ports (the last one for the HTTP listener), held
# open together so they differ.
PORTS=$(node -e '
    const net = require("net");
    const n = Number(process.argv[1]);
    const servers = [];
    let ready = 0;
    for (let i = 0; i < n; i++) {
        const s = net.createServer();
        servers.push(s);
        s.listen(0, "127.0.0.1", () => {
            if (++ready === n) {
                console.log(servers.map((x) => x.address().port).join(" "));
                servers.forEach((x) => x.close());
            }
        });
    }' $((NODES + 1))) || die "cannot find free ports"

ANVIL_PIDS=""
POOL_PID=""

# Stop what we started, by pid: rpcpoold first (SIGTERM, up to 20 s, then
# SIGKILL), then the anvils.
cleanup() {
    if [ -n "$POOL_PID" ] && kill -0 "$POOL_PID" 2>/dev/null; then
        kill -TERM "$POOL_PID" 2>/dev/null
        i=0
        while kill -0 "$POOL_PID" 2>/dev/null && [ $i -lt 200 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if kill -0 "$POOL_PID" 2>/dev/null; then
            echo "run-demo: rpcpoold did not stop within 20 s; killing it" >&2
            kill -KILL "$POOL_PID" 2>/dev/null
        fi
        wait "$POOL_PID" 2>/dev/null
    fi
    for p in $ANVIL_PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $ANVIL_PIDS; do
        wait "$p" 2>/dev/null
    done
    ANVIL_PIDS=""
    rm -f "/dev/shm${SHM}"
    if [ -n "${RUNDIR:-}" ]; then
        rm -rf "$RUNDIR"
    fi
}

# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    trap - INT TERM HUP
    trap '' PIPE # our output may be what went away
    echo "run-demo: stopping" >&2
    cleanup
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
trap 'on_signal 141' PIPE

# Start the anvils.
n=0
URLS=""
for port in $PORTS; do
    n=$((n + 1))
    [ $n -le $NODES ] || {
        HTTP_PORT=$port
        break
    }
    "$ANVIL" --host 127.0.0.1 --port "$port" --chain-id "$CHAIN_ID" --quiet >"$DEMO/anvil-$n.log" 2>&1 &
    ANVIL_PIDS="$ANVIL_PIDS $!"
    URLS="$URLS $port"
done

# Wait (15 s at most) until every anvil answers.
n=0
for port in $URLS; do
    n=$((n + 1))
    i=0
    until "$CAST" block-number --rpc-url "http://127.0.0.1:$port" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 150 ]; then
            echo "run-demo: anvil $n on port $port did not answer; its log:" >&2
            cat "$DEMO/anvil-$n.log" >&2
            cleanup
            exit 1
        fi
        sleep 0.1
    done
done

# The demo configuration.
{
    echo "# rpcpool demo configuration, written by tools/run-demo.sh."
    echo "name = \"demo\";"
    echo "chain_id = $CHAIN_ID;"
    echo "endpoints = ("
    n=0
    for port in $URLS; do
        n=$((n + 1))
        sep=","
        [ $n -eq $NODES ] && sep=""
        echo "  { name = \"anvil-$n\"; url = \"http://127.0.0.1:$port\"; ws_url = \"ws://127.0.0.1:$port\"; }$sep"
    done
    echo ");"
    echo "balance = \"p2c\";"
    echo "health_check_interval_ms = 5000;"
    echo "# generous limits: local nodes, interactive use"
    echo "rate_limit = { max_requests = 1000; window_ms = 1000; burst_size = 200; };"
    echo "circuit_breaker = { failure_threshold = 3; recovery_timeout_ms = 5000; half_open_max_attempts = 1; };"
    echo "server = {"
    echo "  socket = \"$SOCK\";"
    echo "  control_socket = \"$CTL\";"
    echo "  http_listen = \"127.0.0.1:$HTTP_PORT\";"
    echo "  shm_name = \"$SHM\";"
    echo "  workers = 2;"
    echo "  log_level = \"info\";"
    echo "};"
} >"$CONF"

# rpcpoold in the background of this script (so the traps can run), its log
# on our stderr.
"$DAEMON" -c "$CONF" &
POOL_PID=$!

i=0
until can_connect "$SOCK"; do
    if ! kill -0 "$POOL_PID" 2>/dev/null; then
        wait "$POOL_PID"
        st=$?
        POOL_PID=""
        echo "run-demo: rpcpoold exited with status $st before it was ready (config: $CONF)" >&2
        cleanup
        exit "$st"
    fi
    i=$((i + 1))
    if [ $i -ge 150 ]; then
        echo "run-demo: rpcpoold's socket $SOCK is not accepting after 15 s" >&2
        cleanup
        exit 1
    fi
    sleep 0.1
done

cat <<EOF

rpcpool demo is running (pid $POOL_PID) in front of $NODES anvil nodes:$(for p in $URLS; do printf ' http://127.0.0.1:%s' "$p"; done)
  socket:       $SOCK
  http:         http://127.0.0.1:$HTTP_PORT
  config:       $CONF
  cast:         $CAST

Try, in another terminal:
  $CAST block-number --rpc-url $SOCK
  $CAST chain-id --rpc-url $SOCK
  $BUILD/rpcpoolctl -s $CTL status
  $BUILD/rpcpoolstat -n $SHM

cast block-number --rpc-url $SOCK

Ctrl-C stops everything.

EOF

# Wait for rpcpoold; a trapped signal interrupts the wait and runs on_signal.
wait "$POOL_PID"
st=$?
POOL_PID=""
echo "run-demo: rpcpoold exited with status $st" >&2
trap - INT TERM HUP PIPE
cleanup
exit "$st"
