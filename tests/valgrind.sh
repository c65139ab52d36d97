#!/bin/sh
# tests/valgrind.sh - one integration run of rpcpoold under valgrind memcheck
# (issue 9 item 4).
#
#   sh tests/valgrind.sh
#
# Builds an unsanitized daemon into $RPCPOOL_VALGRIND_BUILD (default
# build/valgrind; valgrind cannot run ASan binaries), starts two anvil nodes
# and rpcpoold (2 workers, a prober, one endpoint that is down) under
#   valgrind --leak-check=full --error-exitcode=99 --trace-children=yes
#            --child-silent-after-fork=no
# with one log file per process, drives a few hundred requests of each kind
# (IPC calls, HTTP POST/GET, batches, notifications, invalid requests, parse
# errors, oversized requests, upstream failures, control commands and a
# reload, which forks a new generation of workers), stops it with SIGTERM,
# and checks every process's log: no memcheck error, nothing definitely or
# indirectly lost, the daemon's exit status 0. Prints one summary line:
#   valgrind: ok: P processes, 0 errors, 0 definitely / 0 indirectly lost; R requests answered
# or "valgrind: FAIL: ..." followed by the offending log lines. Exit 0 / 1
# (77 when valgrind or node is missing). RPCPOOL_KEEP_TMP=1 keeps the logs.
# Takes about 20 s. RPCPOOL_VALGRIND_NO_BUILD=1 uses $VBUILD as it is.

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
VBUILD=${RPCPOOL_VALGRIND_BUILD:-build/valgrind}

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: SKIP: valgrind not installed (apt-get install valgrind)"
    exit 77
fi
if ! command -v node >/dev/null 2>&1 || [ ! -x tests/node_modules/.bin/anvil ]; then
    echo "valgrind: SKIP: node or tests/node_modules/.bin/anvil missing (make deps)"
    exit 77
fi

if [ "${RPCPOOL_VALGRIND_NO_BUILD:-0}" = 1 ] && [ -x "$VBUILD/rpcpoold" ]; then
    : # use the build as it is
elif ! make -s BUILD="$VBUILD" SAN= all >"/tmp/rpcpool-vg-build.$$" 2>&1; then
    cat "/tmp/rpcpool-vg-build.$$"
    rm -f "/tmp/rpcpool-vg-build.$$"
    echo "valgrind: FAIL: cannot build $VBUILD"
    exit 1
fi
rm -f "/tmp/rpcpool-vg-build.$$"

TMP=$(mktemp -d /tmp/rpcpool-vg-XXXXXX) || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill -KILL "$p" 2>/dev/null
    done
    if [ -n "${DPID:-}" ]; then
        kill -KILL "-$DPID" 2>/dev/null
    fi
    rm -f "/dev/shm/rpcpool.vg.$$"
    if [ "${RPCPOOL_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$TMP"
    else
        echo "valgrind: logs kept in $TMP" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A free loopback port (bound and released by node).
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();})'
}

# Start anvil on a free port; sets ANVIL_PORT. (Not in a $(...) subshell:
# its pid must reach PIDS for the cleanup.)
start_anvil() {
    ANVIL_PORT=$(free_port)
    tests/node_modules/.bin/anvil --host 127.0.0.1 --port "$ANVIL_PORT" --quiet \
        >"$TMP/anvil.$ANVIL_PORT.log" 2>&1 &
    PIDS="$PIDS $!"
}

start_anvil
P1=$ANVIL_PORT
start_anvil
P2=$ANVIL_PORT
DEAD=$(free_port)
for p in $P1 $P2; do
    i=0
    until node -e '
        const http = require("http");
        const r = http.request({host: "127.0.0.1", port: process.argv[1], method: "POST",
            headers: {"content-type": "application/json"}}, (res) => process.exit(res.statusCode === 200 ? 0 : 1));
        r.on("error", () => process.exit(1));
        r.end(JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId", params: []}));' "$p"; do
        i=$((i + 1))
        if [ "$i" -ge 150 ]; then
            echo "valgrind: FAIL: anvil on port $p did not start"
            exit 1
        fi
        sleep 0.2
    done
done

HTTP_PORT=$(free_port)
cat >"$TMP/rpcpool.conf" <<EOF
name = "vg";
endpoints = ( "http://127.0.0.1:$P1", "http://127.0.0.1:$P2/",
              { name = "down"; url = "http://127.0.0.1:$DEAD/secret?key=x"; headers = [ "Authorization: Bearer t" ]; } );
min_connections = 1;
max_connections = 8;
connection_timeout_ms = 5000;
request_timeout_ms = 20000;
attempt_timeout_ms = 10000;
retries = 2;
health_check_interval_ms = 2000;
circuit_breaker = { failure_threshold = 1000; recovery_timeout_ms = 1000; half_open_max_attempts = 2; };
rate_limit = { max_requests = 1000000; window_ms = 1000; burst_size = 100000; };
server = {
  socket = "$TMP/vg.ipc";
  control_socket = "$TMP/vg.ctl";
  http_listen = "127.0.0.1:$HTTP_PORT";
  shm_name = "/rpcpool.vg.$$";
  workers = 2;
  max_batch = 20;
  max_request_bytes = 8192;
  shutdown_timeout_ms = 20000;
  log_level = "info";
};
EOF

# setsid: the daemon leads its own process group, so the cleanup can kill
# every process of it at once if something goes wrong.
setsid valgrind --leak-check=full --error-exitcode=99 --trace-children=yes \
    --child-silent-after-fork=no --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --num-callers=30 \
    --log-file="$TMP/vg.%p.log" \
    "$VBUILD/rpcpoold" -c "$TMP/rpcpool.conf" >"$TMP/daemon.log" 2>&1 &
DPID=$!

cat >"$TMP/drive.js" <<'EOF'
'use strict';
// Drive the pool under valgrind: every kind of request, then report the
// number of answers as JSON on stdout.
const lib = require(process.argv[2]);
const sock = process.argv[3];
const httpPort = Number(process.argv[4]);
const ctl = process.argv[5];
const conf = process.argv[6];
const fs = require('fs');
const req = (method, params = []) => ({ jsonrpc: '2.0', method, params });
(async () => {
  await lib.waitFor(() => lib.canConnect(sock), { timeout: 60000, interval: 200, message: 'rpcpoold socket' });
  let answered = 0;
  const fail = (what) => {
    throw new Error(what);
  };
  // IPC: 3 connections, 100 calls each, 10 in flight at a time
  const cs = await Promise.all([0, 1, 2].map(() => lib.ipcClient(sock)));
  await Promise.all(cs.map(async (c) => {
    for (let i = 0; i < 100; i += 10) {
      const rs = await Promise.all(Array.from({ length: 10 }, (_, k) =>
        c.call(req(['eth_chainId', 'eth_blockNumber', 'eth_getBalance'][(i + k) % 3],
          (i + k) % 3 === 2 ? ['0x0000000000000000000000000000000000000000', 'latest'] : []), { timeout: 60000 })));
      for (const r of rs) if (r.result === undefined) fail(`IPC call: ${JSON.stringify(r)}`);
      answered += rs.length;
    }
  }));
  // batches: 100 of 5 calls, one of them invalid
  for (let i = 0; i < 100; i++) {
    const b = [req('eth_chainId'), req('eth_blockNumber'), req('net_version'), req('eth_gasPrice'),
      { jsonrpc: '2.0', id: `bad${i}` }];
    const r = await cs[i % 3].call(b, { timeout: 60000 });
    if (!Array.isArray(r) || r.length !== 5) fail(`batch: ${JSON.stringify(r)}`);
    answered += 5;
  }
  // notifications (no answer), then a call to see they went through
  for (let i = 0; i < 50; i++) await cs[0].send(JSON.stringify(req('eth_chainId')) + '\n');
  await cs[0].send(JSON.stringify([req('eth_chainId'), req('net_version')]) + '\n');
  if ((await cs[0].call(req('eth_chainId'), { timeout: 60000 })).result !== '0x7a69') fail('after notifications');
  // errors: invalid requests, unknown methods (the node's error passes through)
  for (let i = 0; i < 100; i++) {
    const c = cs[i % 3];
    const r = await c.call(i % 2 ? { jsonrpc: '1.0', id: 7000 + i, method: 'x' } : req('no_such_method'), { timeout: 60000 });
    if (!r.error) fail(`error case: ${JSON.stringify(r)}`);
    answered++;
  }
  for (const bad of ['[]', '42', '{"jsonrpc":"2.0","id":1,"method":"a","id":2}']) {
    await cs[1].send(bad + '\n');
    const v = JSON.parse(await cs[1].readLine(60000));
    if (!v.error || v.error.code !== -32600) fail(`invalid: ${JSON.stringify(v)}`);
    answered++;
  }
  // parse errors, too large, deep nesting, a partial request: each closes its connection
  const closers = [Buffer.from('garbage\n'),
    Buffer.from(`{"jsonrpc":"2.0","id":1,"method":"x","params":["${'a'.repeat(9000)}"]}\n`),
    Buffer.from('['.repeat(2000)),
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"x","params":["'), Buffer.from([0xff]),
      Buffer.from('"]}\n')])];
  for (let i = 0; i < 20; i++) {
    const c = await lib.ipcClient(sock);
    c.send(closers[i % closers.length]).catch(() => {});
    const v = JSON.parse(await c.readLine(60000));
    if (!v.error) fail(`closer: ${JSON.stringify(v)}`);
    await lib.withTimeout(c.ended, 60000, 'closed after a framing error');
    answered++;
  }
  // HTTP: POST over http_listen and over the IPC socket, GET /health and /metrics, a 404
  for (let i = 0; i < 200; i++) {
    const target = i % 2 ? { port: httpPort } : { socketPath: sock };
    let r;
    if (i % 10 === 3) r = await lib.httpRequest(target, { path: '/health', timeout: 60000 });
    else if (i % 10 === 7) r = await lib.httpRequest(target, { path: '/metrics', timeout: 60000 });
    else if (i % 10 === 9) r = await lib.httpRequest(target, { path: '/nope', timeout: 60000 });
    else r = await lib.httpRequest(target, { method: 'POST', body: i % 4 ? req('eth_chainId') : [req('eth_chainId'), req('net_version')], timeout: 60000 });
    if (![200, 404].includes(r.status)) fail(`HTTP ${r.status} ${r.body}`);
    answered++;
  }
  const smug = await lib.httpRequest({ port: httpPort }, { method: 'POST', body: 'x'.repeat(9000), timeout: 60000 });
  if (smug.status !== 413) fail(`413 expected, got ${smug.status}`);
  // control commands and a reload (a new generation of workers)
  for (const cmd of ['ping', 'status', 'stats', 'metrics', 'drain down', 'enable down', 'reset down']) {
    const r = await lib.controlCommand(ctl, cmd, { timeout: 60000 });
    if (!r.ok) fail(`control ${cmd}: ${JSON.stringify(r)}`);
  }
  fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace('retries = 2;', 'retries = 1;'));
  const rl = await lib.controlCommand(ctl, 'reload', { timeout: 60000 });
  if (!rl.ok) fail(`reload: ${JSON.stringify(rl)}`);
  const bad = await lib.controlCommand(ctl, 'reload', { timeout: 60000 });
  if (!bad.ok || bad.generation < 2) { /* a second reload of the same file is fine too */ }
  // calls keep being answered across the reload
  for (let i = 0; i < 60; i++) {
    const r = await cs[i % 3].call(req('eth_blockNumber'), { timeout: 60000 });
    if (r.result === undefined) fail(`after reload: ${JSON.stringify(r)}`);
    answered++;
  }
  for (const c of cs) c.destroy();
  process.stdout.write(JSON.stringify({ answered }) + '\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(`drive: ${e.stack || e}\n`);
  process.exit(1);
});
EOF

# lib.js registers node:test hooks; it is loaded from the repo so that its
# relative paths resolve (tests/node_modules).
DRIVE_OUT=$(RPCPOOL_BUILD="$VBUILD" timeout 150 node "$TMP/drive.js" "$ROOT/tests/integration/lib.js" \
    "$TMP/vg.ipc" "$HTTP_PORT" "$TMP/vg.ctl" "$TMP/rpcpool.conf" 2>"$TMP/drive.err")
DRIVE_RC=$?

kill -TERM "$DPID" 2>/dev/null
i=0
while kill -0 "$DPID" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge 600 ]; then
        echo "valgrind: FAIL: rpcpoold did not stop within 60 s of SIGTERM"
        tail -n 30 "$TMP/daemon.log"
        exit 1
    fi
    sleep 0.1
done
wait "$DPID"
DAEMON_RC=$?
# the workers are gone too (their leak reports are written at their exit)
i=0
while kill -0 "-$DPID" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then
        echo "valgrind: FAIL: processes of rpcpoold's group still running after it exited"
        exit 1
    fi
    sleep 0.1
done
DPID=""

FAIL=""
[ "$DRIVE_RC" -eq 0 ] || FAIL="$FAIL driver exit $DRIVE_RC;"
[ "$DAEMON_RC" -eq 0 ] || FAIL="$FAIL rpcpoold exit $DAEMON_RC;"
NPROC=0
ERRS=0
DEF=0
IND=0
for f in "$TMP"/vg.*.log; do
    [ -f "$f" ] || continue
    NPROC=$((NPROC + 1))
    e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -n 1)
    if [ -z "$e" ]; then
        FAIL="$FAIL $(basename "$f") has no ERROR SUMMARY (process killed?);"
        continue
    fi
    d=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -n 1)
    n=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -n 1)
    ERRS=$((ERRS + e))
    DEF=$((DEF + ${d:-0}))
    IND=$((IND + ${n:-0}))
    if [ "$e" -ne 0 ] || [ "${d:-0}" -ne 0 ] || [ "${n:-0}" -ne 0 ]; then
        FAIL="$FAIL $(basename "$f"): $e errors, ${d:-0} definitely / ${n:-0} indirectly lost;"
    fi
done
[ "$NPROC" -ge 4 ] || FAIL="$FAIL only $NPROC valgrind logs (supervisor, 2 workers, prober expected);"
if grep -q 'level=error' "$TMP/daemon.log"; then
    FAIL="$FAIL level=error lines in the daemon log;"
fi
ANSWERED=$(printf '%s' "$DRIVE_OUT" | sed -n 's/.*"answered":\([0-9]*\).*/\1/p')

if [ -z "$FAIL" ]; then
    echo "valgrind: ok: $NPROC processes, 0 errors, 0 definitely / 0 indirectly lost; ${ANSWERED:-0} requests answered"
    exit 0
fi
echo "valgrind: FAIL:$FAIL $NPROC processes, $ERRS errors, $DEF definitely / $IND indirectly lost"
cat "$TMP/drive.err"
grep -h 'level=error' "$TMP/daemon.log" | head -n 20
for f in "$TMP"/vg.*.log; do
    if ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
        echo "---- $f"
        sed -n '/^==[0-9]*== [A-Z].*\(Invalid\|uninitialised\|Mismatched\|definitely\|indirectly\|Syscall\|overlap\)/,/^==[0-9]*== $/p' "$f" | head -n 120
    fi
done
exit 1
