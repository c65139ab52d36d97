// stat.test.js - rpcpoolstat end to end (docs/interface.md section 5, issue 6):
// build/rpcpoolstat against real rpcpoold pools in front of anvil and fault
// upstreams. `-j` agrees with `rpcpoolctl -j status` once the load stopped;
// `-1` prints the tables and `-c FILE` finds the segment through the
// configuration; garbage, zeroed, truncated, other-version, corrupt-table and
// missing segments give a clear message and exit 1 (and random rows behind a
// valid header show without a crash); a SIGKILLed supervisor's segment is
// still read (supervisor_alive false), its workers go, and a new rpcpoold on
// the same configuration takes over; the live view reports reloads and
// restarted supervisors; and rpcpoolstat never changes a segment's bytes and
// opens it O_RDONLY / maps it PROT_READ.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const lib = require('./lib.js');

const STAT = lib.daemonBin('rpcpoolstat');
const CTL = lib.daemonBin('rpcpoolctl');
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
// The default limit (100 per minute) would throttle the tests' traffic; no
// periodic probe may move counters between the two views being compared.
const SETTINGS = {
  rate_limit: { max_requests: 100000, window_ms: 1000, burst_size: 10000 },
  health_check_interval_ms: 600000,
  circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600000, half_open_max_attempts: 1 },
};
const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error/;

/* ---------------------------------------------------------------- */
/* Segments this file creates itself (copies, forgeries)             */
/* ---------------------------------------------------------------- */

const ownShm = new Set();
let shmSeq = 0;

// /dev/shm path of the POSIX shm NAME ("/x" -> "/dev/shm/x").
function shmPath(name) {
  return `/dev/shm/${name.replace(/^\//, '')}`;
}

// A fresh shm name of this file (removed when the file ends).
function ownName(what) {
  shmSeq++;
  const name = `/rpcpool.stattest.${process.pid}.${shmSeq}.${what}`;
  ownShm.add(name);
  return name;
}

function removeOwnShm() {
  for (const n of ownShm) fs.rmSync(shmPath(n), { force: true });
  ownShm.clear();
}
after(removeOwnShm);
process.on('exit', removeOwnShm);

// Copy the live segment SRC (a shm name) to a new name of ours; returns it.
function copySegment(src, what) {
  const name = ownName(what);
  fs.copyFileSync(shmPath(src), shmPath(name));
  fs.chmodSync(shmPath(name), 0o600);
  return name;
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/* ---------------------------------------------------------------- */
/* Running the tools                                                  */
/* ---------------------------------------------------------------- */

// rpcpoolstat ARGS; asserts it did not crash nor report a sanitizer error.
async function stat(args, opts = {}) {
  const r = await lib.run(STAT, args, { timeout: 20000, ...opts });
  assert.equal(r.signal, null, `rpcpoolstat ${args.join(' ')} died of ${r.signal}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, SANITIZER, `rpcpoolstat ${args.join(' ')}: ${r.stderr}`);
  return r;
}

// rpcpoolstat -j -n NAME, parsed; asserts exit 0.
async function statJson(name) {
  const r = await stat(['-j', '-n', name]);
  assert.equal(r.code, 0, `rpcpoolstat -j -n ${name}: exit ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, '');
  return JSON.parse(r.stdout);
}

// rpcpoolctl -j -s SOCKET ARGS, parsed; asserts exit 0 and ok:true.
async function ctlJson(socket, ...args) {
  const r = await lib.run(CTL, ['-j', '-s', socket, ...args], { timeout: 20000 });
  assert.equal(r.code, 0, `rpcpoolctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  const v = JSON.parse(r.stdout);
  assert.equal(v.ok, true, r.stdout);
  return v;
}

// Whether process PID is gone (no such process, or only a zombie left: the
// workers of a SIGKILLed supervisor are reparented to whoever reaps them).
function pidGone(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'ESRCH';
  }
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

function groupGone(pgid) {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch {
    return true;
  }
}

// Start rpcpoold -c CONF (a second supervisor on an existing configuration)
// and wait until its client socket accepts connections.
async function startDaemonOn(conf, socket) {
  const d = lib.spawnDaemon(['-c', conf]);
  await lib.waitFor(async () => {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) {
      throw Object.assign(new Error(`rpcpoold exited early:\n${d.log.slice(-40).join('\n')}`));
    }
    return lib.canConnect(socket);
  }, { timeout: 30000, interval: 50, message: 'restarted rpcpoold accepting' }).catch((e) => {
    throw new Error(`${e.message}\n${d.log.slice(-40).join('\n')}`);
  });
  return d;
}

// SIGTERM a daemon from startDaemonOn; resolves to its exit code once its
// whole process group is gone.
async function stopDaemon(d) {
  d.proc.kill('SIGTERM');
  const r = await lib.withTimeout(d.exited, 30000, 'rpcpoold stop');
  await lib.waitFor(() => groupGone(d.proc.pid), { timeout: 10000, message: 'daemon group gone' });
  return r.code !== null ? r.code : r.signal;
}

// One eth_chainId through the pool's client socket.
async function chainId(socket) {
  const c = await lib.ipcClient(socket);
  try {
    const r = await c.call({ method: 'eth_chainId', params: [] });
    return r.result;
  } finally {
    c.destroy();
  }
}

// CLIENTS connections each sending N calls one after another; resolves to
// the errors met (none expected: retries cover the failing endpoint).
async function load(socket, { clients = 4, n = 40 } = {}) {
  const errors = [];
  await Promise.all(Array.from({ length: clients }, async (_, k) => {
    const c = await lib.ipcClient(socket);
    try {
      for (let i = 0; i < n; i++) {
        const method = i % 2 ? 'eth_chainId' : 'eth_blockNumber';
        const r = await c.call({ method, params: [] }, { timeout: 20000 });
        if (r.error || typeof r.result !== 'string') errors.push(`client ${k}: ${JSON.stringify(r)}`);
      }
    } finally {
      c.destroy();
    }
  }));
  return errors;
}

/* ---------------------------------------------------------------- */
/* Comparing the two views                                           */
/* ---------------------------------------------------------------- */

function epView(e) {
  return {
    id: e.id,
    name: e.name,
    url: e.url,
    weight: e.weight,
    state: e.state,
    breaker: e.breaker,
    head_block: e.head_block,
    lag: e.lag,
    requests: e.requests,
    latency_ms: e.latency_ms,
  };
}

function wkView(w) {
  return { pid: w.pid, state: w.state, requests: w.requests, restarts: w.restarts, slot: w.slot, kind: w.kind };
}

// What must agree between rpcpoolstat -j and rpcpoolctl status.
function common(v, pidKey) {
  return {
    name: v.name,
    pid: v[pidKey],
    generation: v.generation,
    endpoints: v.endpoints.map(epView),
    workers: v.workers.map(wkView),
  };
}

// Counters of a rpcpoolstat -j object, in one comparable string.
function counters(s) {
  return JSON.stringify({
    e: s.endpoints.map((e) => [e.requests, e.latency_ms, e.state, e.breaker, e.head_block]),
    w: s.workers.map((w) => [w.pid, w.state, w.requests, w.restarts]),
    c: s.client_requests,
    g: s.generation,
  });
}

/* ---------------------------------------------------------------- */
/* One pool for the read-only tests                                  */
/* ---------------------------------------------------------------- */

describe('rpcpoolstat on a running pool', () => {
  let node;
  let good;
  let bad;
  let pool;
  before(async () => {
    node = await lib.startAnvil();
    good = await lib.startFault({ block: 7 });
    bad = await lib.startFault({ mode: 'http500' });
    pool = await lib.startPool({
      endpoints: [
        node,
        { name: 'good', url: `${good.url}/v3/SECRETKEY`, weight: 3 },
        { name: 'bad', url: bad.url },
      ],
      workers: 2,
      settings: { ...SETTINGS, balance: 'round_robin', retries: 2 },
    });
  });
  after(async () => {
    if (pool && pool.proc.exitCode === null) await pool.stop();
    if (bad) await bad.stop();
    if (good) await good.stop();
    if (node) await node.stop();
  });

  test('-j agrees with rpcpoolctl -j status once the load has stopped', async () => {
    // snapshots taken during the load parse and only grow
    const loadP = load(pool.socket, { clients: 4, n: 60 });
    let last = null;
    for (let i = 0; i < 5; i++) {
      const s = await statJson(pool.shmName);
      assert.equal(s.supervisor_alive, true);
      const total = s.workers.reduce((a, w) => a + w.requests, 0);
      if (last !== null) assert.ok(total >= last, `worker requests went back: ${last} -> ${total}`);
      last = total;
      await delay(20);
    }
    assert.deepEqual(await loadP, []);

    // a quiet moment: rpcpoolstat, rpcpoolctl, rpcpoolstat; when the two
    // rpcpoolstat snapshots agree nothing moved in between
    let pair = null;
    for (let i = 0; i < 40 && !pair; i++) {
      await delay(100);
      const a = await statJson(pool.shmName);
      const c = await ctlJson(pool.controlSocket, 'status');
      const b = await statJson(pool.shmName);
      if (counters(a) === counters(b)) pair = { s: b, c };
    }
    assert.ok(pair, 'the counters never stood still after the load');
    const { s, c } = pair;

    assert.equal(s.name, pool.name);
    assert.equal(s.version, '3.1');
    assert.equal(s.supervisor_pid, pool.pid);
    assert.equal(s.supervisor_alive, true);
    assert.deepEqual(common(s, 'supervisor_pid'), common(c, 'pid'));

    // what the load did is there: 240 client requests answered by the
    // workers; the failing endpoint failed, was retried elsewhere and opened
    assert.deepEqual(s.endpoints.map((e) => e.name), ['127.0.0.1', 'good', 'bad']);
    assert.equal(s.workers.filter((w) => w.kind === 'worker').reduce((a, w) => a + w.requests, 0), 240);
    assert.equal(s.client_requests.ok, 240);
    assert.equal(s.client_requests.error, 0);
    const [, g, b] = s.endpoints;
    assert.equal(g.url, `${good.url}/***`);
    assert.equal(g.weight, 3);
    assert.equal(g.head_block, 7);
    assert.ok(g.requests.ok > 0, JSON.stringify(g));
    assert.ok(b.requests.failed >= 3 && b.requests.retried >= 1, JSON.stringify(b));
    assert.equal(b.breaker, 'open');
    for (const w of s.workers) assert.equal(w.state, 'running');
    assert.deepEqual(s.workers.map((w) => w.kind).sort(), ['follower', 'prober', 'worker', 'worker']);
  });

  test('-1 prints the tables; -c FILE attaches through the configuration', async () => {
    const s = await statJson(pool.shmName);
    const r = await stat(['-1', '-n', pool.shmName]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const out = r.stdout;
    assert.match(out, new RegExp(`^rpcpool ${pool.name} +shm ${pool.shmName.replace(/\./g, '\\.')} `));
    assert.match(out, new RegExp(`supervisor ${pool.pid} alive`));
    assert.match(out, /^ID +NAME +URL +STATE +BREAKER +TOKENS/m);
    assert.match(out, /^SLOT +PID +KIND +STATE +HB AGE +REQUESTS +RESTARTS/m);
    for (const e of s.endpoints) {
      assert.match(out, new RegExp(`^${e.id} +${e.name.replace(/\./g, '\\.')} +\\S+ +${e.state} +${e.breaker} `, 'm'),
        `endpoint ${e.name} row`);
    }
    assert.match(out, /^2 +bad +\S+ +\S+ +open /m);
    for (const w of s.workers) assert.match(out, new RegExp(`^${w.slot} +${w.pid} +${w.kind} +${w.state} `, 'm'));
    assert.doesNotMatch(out, /SECRETKEY/);
    assert.doesNotMatch(out, /\x1b/); // not a terminal: no escape sequences

    // -c FILE: the same segment
    const rc = await stat(['-j', '-c', pool.conf]);
    assert.equal(rc.code, 0, rc.stderr);
    const sc = JSON.parse(rc.stdout);
    assert.equal(sc.supervisor_pid, pool.pid);
    assert.equal(sc.name, pool.name);
    assert.deepEqual(sc.endpoints.map((e) => [e.id, e.name, e.url]), s.endpoints.map((e) => [e.id, e.name, e.url]));
    assert.deepEqual(sc.workers.map((w) => w.pid), s.workers.map((w) => w.pid));
    const r1 = await stat(['-1', '-c', pool.conf]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, new RegExp(`supervisor ${pool.pid} alive`));

    // usage errors
    const both = await stat(['-j', '-c', pool.conf, '-n', pool.shmName]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /not both/);
    const badI = await stat(['-i', '0', '-n', pool.shmName]);
    assert.equal(badI.code, 1);
    assert.match(badI.stderr, /-i 0/);
  });

  test('bad segments: a clear message on stderr and exit 1, never a crash', async () => {
    const live = shmPath(pool.shmName);
    const size = fs.statSync(live).size;
    const cases = [];

    // random bytes of the full size
    let n = ownName('garbage');
    fs.writeFileSync(shmPath(n), crypto.randomBytes(size), { mode: 0o600 });
    cases.push([n, /not an rpcpool segment \(magic 0x[0-9a-f]{16}/]);

    // zeros: created, never initialised
    n = ownName('zero');
    fs.writeFileSync(shmPath(n), Buffer.alloc(size), { mode: 0o600 });
    cases.push([n, /not initialised/]);

    // a valid segment cut in half, and one cut inside its header, and empty
    for (const [what, len, re] of [
      ['half', Math.floor(size / 2), /truncated segment: header says \d+ bytes, only \d+ mapped/],
      ['short', 100, /truncated segment: 100 bytes, the header alone needs \d+/],
      ['empty', 0, /truncated segment: 0 bytes/],
    ]) {
      n = copySegment(pool.shmName, what);
      fs.truncateSync(shmPath(n), len);
      cases.push([n, re]);
    }

    // another layout version: version_major (u16 at 8) = 99
    n = copySegment(pool.shmName, 'v99');
    let fd = fs.openSync(shmPath(n), 'r+');
    const v = Buffer.alloc(2);
    v.writeUInt16LE(99);
    fs.writeSync(fd, v, 0, 2, 8);
    fs.closeSync(fd);
    cases.push([n, /layout version 99\.1, this program reads layout version 3\.x/]);

    // a table outside the segment: endpoints.offset (u64 at 24) far away
    n = copySegment(pool.shmName, 'table');
    fd = fs.openSync(shmPath(n), 'r+');
    const off = Buffer.alloc(8);
    off.writeBigUInt64LE(1n << 40n);
    fs.writeSync(fd, off, 0, 8, 24);
    fs.closeSync(fd);
    cases.push([n, /corrupt segment: endpoint table \[\d+, \+\d+\) lies outside the segment/]);

    // the name of nothing
    cases.push([ownName('missing'), /no such segment/]);

    for (const [name, re] of cases) {
      const modes = [['-j'], ['-1'], ['-i', '50']];
      const runs = await Promise.all(modes.map((mode) => stat([...mode, '-n', name])));
      for (const [k, mode] of modes.entries()) {
        const r = runs[k];
        const what = `rpcpoolstat ${mode.join(' ')} on ${name}`;
        assert.equal(r.code, 1, `${what}: exit ${r.code}\n${r.stderr}`);
        assert.equal(r.stdout, '', `${what}: printed ${r.stdout}`);
        assert.match(r.stderr, /^rpcpoolstat: shm \/rpcpool\.stattest\./, what);
        assert.match(r.stderr, re, what);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
      }
    }
  });

  test('random rows behind a valid header are shown without a crash', async () => {
    const n = copySegment(pool.shmName, 'rows');
    const p = shmPath(n);
    const buf = fs.readFileSync(p);
    const tables = Number(buf.readBigUInt64LE(24)); // endpoints.offset: the rows start there
    assert.ok(tables > 0 && tables < 4096, `endpoint table at ${tables}`);
    crypto.randomFillSync(buf, tables);
    fs.writeFileSync(p, buf);
    const j = await stat(['-j', '-n', n]);
    assert.equal(j.code, 0, j.stderr);
    const s = JSON.parse(j.stdout); // valid JSON whatever the bytes
    assert.equal(s.name, pool.name);
    assert.ok(s.endpoints.length <= 64 && s.workers.length <= 128);
    for (const e of s.endpoints) {
      assert.ok(Number.isFinite(e.tokens) && e.tokens >= 0, JSON.stringify(e));
      assert.doesNotMatch(e.url, /\/[^*/][^/]*$/, `only a redacted URL: ${e.url}`);
    }
    const t = await stat(['-1', '-n', n]);
    assert.equal(t.code, 0, t.stderr);
    // nothing from the segment reaches the terminal as a control byte
    assert.doesNotMatch(t.stdout, /[\x00-\x08\x0b-\x1f\x7f-\xff]/);
  });

  test('rpcpoolstat never changes the segment; it opens it O_RDONLY and maps it PROT_READ', async (t) => {
    const n = copySegment(pool.shmName, 'ro');
    const p = shmPath(n);
    const h0 = sha256(p);
    const m0 = fs.statSync(p).mtimeMs;
    for (let i = 0; i < 10; i++) { // 20 runs, two at a time
      const [j, t] = await Promise.all([stat(['-j', '-n', n]), stat(['-1', '-n', n])]);
      assert.equal(j.code, 0, j.stderr);
      assert.equal(JSON.parse(j.stdout).name, pool.name);
      assert.equal(t.code, 0, t.stderr);
    }
    assert.equal(sha256(p), h0, 'the segment bytes changed');
    assert.equal(fs.statSync(p).mtimeMs, m0, 'the segment was written');

    const strace = ['/usr/bin/strace', '/bin/strace'].find((x) => fs.existsSync(x));
    if (!strace) {
      t.skip('strace not installed: the O_RDONLY / PROT_READ check was not run');
      return;
    }
    const out = `${lib.tmpDir('stat-strace-')}/trace`;
    // LeakSanitizer cannot run under ptrace
    const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' };
    for (const mode of ['-j', '-1']) {
      const r = await lib.run(strace, ['-f', '-o', out, '-e', 'trace=openat,open,close,mmap,ftruncate',
        STAT, mode, '-n', n], { env, timeout: 30000 });
      assert.equal(r.code, 0, `strace rpcpoolstat ${mode}: ${r.stderr}`);
      const lines = fs.readFileSync(out, 'utf8').split('\n');
      const opens = lines.filter((l) => l.includes(p.slice('/dev/shm/'.length)) && /open(at)?\(/.test(l));
      assert.ok(opens.length > 0, `no open of ${p} in the trace:\n${lines.join('\n')}`);
      for (const l of opens) {
        assert.match(l, /O_RDONLY/, l);
        assert.doesNotMatch(l, /O_RDWR|O_WRONLY|O_CREAT|O_TRUNC/, l);
      }
      // every mmap of a descriptor while it is the segment's (open .. close)
      const segFds = new Set();
      const maps = [];
      for (const l of lines) {
        const m = l.match(/^\d+ +(\w+)\((.*)\) += (-?\d+)/);
        if (!m) continue;
        const [, call, args, ret] = m;
        if (opens.includes(l) && Number(ret) >= 0) segFds.add(ret);
        else if (call === 'close') segFds.delete(args.trim());
        else if (call === 'mmap' && segFds.has(args.split(', ')[4])) maps.push(l);
      }
      assert.ok(maps.length > 0, `no mmap of the segment:\n${lines.join('\n')}`);
      for (const l of maps) {
        assert.match(l, /PROT_READ, MAP_SHARED/, l);
        assert.doesNotMatch(l, /PROT_WRITE/, l);
      }
      assert.ok(!lines.some((l) => /ftruncate\(/.test(l)), 'rpcpoolstat resized something');
    }
    assert.equal(sha256(p), h0, 'the segment bytes changed under strace');
  });

  test('the pool stops cleanly and removes its segment', async () => {
    assert.equal(await pool.stop(), 0);
    assert.ok(!fs.existsSync(shmPath(pool.shmName)), 'segment left behind');
    lib.assertNoErrors(pool, [/upstream|attempt|endpoint|HTTP 500|breaker|probe|health/i]);
    const r = await stat(['-j', '-n', pool.shmName]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such segment/);
  });
});

/* ---------------------------------------------------------------- */
/* Lifecycle                                                         */
/* ---------------------------------------------------------------- */

test('a SIGKILLed supervisor: its segment is still read, its workers go, a new rpcpoold takes over', async () => {
  const node = await lib.startAnvil();
  const pool = await lib.startPool({ endpoints: [node], workers: 2, settings: SETTINGS });
  let d = null;
  try {
    const s0 = await statJson(pool.shmName);
    assert.equal(s0.supervisor_alive, true);
    const pids = s0.workers.map((w) => w.pid);
    assert.equal(pids.length, 4); // two workers, the prober and the head follower
    for (const pid of pids) assert.ok(!pidGone(pid), `worker ${pid} not running`);
    const seg = shmPath(pool.shmName);

    pool.kill('SIGKILL');
    const ex = await lib.withTimeout(pool.exited, 10000, 'supervisor SIGKILL');
    assert.equal(ex.signal, 'SIGKILL');

    // nobody unlinked the segment; rpcpoolstat reads it and says the supervisor is dead
    assert.ok(fs.existsSync(seg), 'segment gone after SIGKILL');
    const s1 = await statJson(pool.shmName);
    assert.equal(s1.supervisor_pid, pool.pid);
    assert.equal(s1.supervisor_alive, false);
    assert.deepEqual(s1.endpoints.map((e) => e.name), s0.endpoints.map((e) => e.name));
    const t = await stat(['-1', '-n', pool.shmName]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`supervisor ${pool.pid} DEAD`));

    // the workers follow their supervisor (PR_SET_PDEATHSIG)
    await lib.waitFor(() => pids.every(pidGone), {
      timeout: 15000, interval: 50, message: `workers ${pids.join(',')} gone`,
    });
    // nothing writes the orphaned segment now: rpcpoolstat leaves it as it is
    const h0 = sha256(seg);
    for (let i = 0; i < 5; i++) {
      const s = await statJson(pool.shmName);
      assert.equal(s.supervisor_alive, false);
    }
    assert.equal(sha256(seg), h0);
    const ino0 = fs.statSync(seg).ino;
    assert.ok(fs.existsSync(pool.socket), 'the client socket file was removed (expected stale)');

    // a new supervisor on the same configuration replaces the stale socket and segment
    d = await startDaemonOn(pool.conf, pool.socket);
    assert.equal(await chainId(pool.socket), '0x7a69');
    assert.equal((await ctlJson(pool.controlSocket, 'ping')).ok, true);
    const s2 = await statJson(pool.shmName);
    assert.equal(s2.supervisor_pid, d.proc.pid);
    assert.equal(s2.supervisor_alive, true);
    assert.notEqual(fs.statSync(seg).ino, ino0, 'the stale segment was reused, not re-created');
    for (const w of s2.workers) assert.ok(!pids.includes(w.pid), `old pid ${w.pid} among the new workers`);

    assert.equal(await stopDaemon(d), 0);
    assert.ok(!fs.existsSync(seg), 'segment left behind by the new supervisor');
    lib.assertNoErrors(d.log);
  } finally {
    if (d && d.proc.exitCode === null) d.proc.kill('SIGKILL');
    await node.stop();
  }
});

test('the live view reports reloads and restarted supervisors', async () => {
  const node = await lib.startAnvil();
  const pool = await lib.startPool({ endpoints: [node], workers: 1, settings: SETTINGS });
  const live = lib.spawnTracked(STAT, ['-i', '100', '-n', pool.shmName], {
    name: 'rpcpoolstat', stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  live.stdout.setEncoding('utf8');
  live.stderr.setEncoding('utf8');
  live.stdout.on('data', (c) => { out += c; });
  live.stderr.on('data', (c) => { err += c; });
  const daemons = [];
  const seen = async (re, what) => {
    try {
      await lib.waitFor(() => {
        if (live.exitCode !== null || live.signalCode !== null) throw new Error(`rpcpoolstat exited: ${err}`);
        return re.test(out);
      }, { timeout: 20000, interval: 50, message: what });
    } catch (e) {
      throw new Error(`${e.message}\n--- rpcpoolstat output (tail) ---\n${out.slice(-3000)}\n${err}`);
    }
  };
  try {
    await seen(new RegExp(`generation 1 +supervisor ${pool.pid} alive`), 'first frame');

    // reload by the control socket, then by SIGHUP: the generation moves
    const r = await ctlJson(pool.controlSocket, 'reload');
    assert.equal(r.generation, 2);
    await seen(/reloaded: generation 1 -> 2/, 'reload note');
    await seen(new RegExp(`generation 2 +supervisor ${pool.pid} alive`), 'frame of generation 2');
    process.kill(pool.pid, 'SIGHUP');
    await seen(/reloaded: generation 2 -> 3/, 'SIGHUP reload note');

    // graceful stop: the segment is removed, its last state stays up
    const pid1 = pool.pid;
    assert.equal(await pool.stop(), 0);
    await seen(/segment \S+ was removed/, 'removal shown');
    await seen(new RegExp(`supervisor ${pid1} died`), 'death note');

    // a new supervisor (new pid, new segment under the same name)
    const d2 = await startDaemonOn(pool.conf, pool.socket);
    daemons.push(d2);
    const pid2 = d2.proc.pid;
    await seen(new RegExp(`supervisor restarted \\(pid ${pid1} -> ${pid2}\\).*reattached`), 'restart note');
    await seen(new RegExp(`generation 1 +supervisor ${pid2} alive`), 'frame of the new supervisor');

    // SIGKILL this one and start another: the old segment is still there
    // when the new supervisor re-creates it under the name
    const mark = out.length;
    d2.proc.kill('SIGKILL');
    await lib.withTimeout(d2.exited, 10000, 'SIGKILL');
    await seen(new RegExp(`supervisor ${pid2} died`), 'death note after SIGKILL');
    assert.ok(!/was removed/.test(out.slice(mark)), 'a SIGKILLed supervisor removed its segment');
    await lib.waitFor(() => groupGone(pid2), { timeout: 15000, message: 'SIGKILLed group gone' });
    const d3 = await startDaemonOn(pool.conf, pool.socket);
    daemons.push(d3);
    const pid3 = d3.proc.pid;
    await seen(new RegExp(`supervisor restarted \\(pid ${pid2} -> ${pid3}\\): segment \\S+ was re-created, reattached`),
      'restart note after SIGKILL');
    await seen(new RegExp(`supervisor ${pid3} alive`), 'frame of the third supervisor');

    // the view stops on SIGTERM, cleanly
    live.kill('SIGTERM');
    const ex = await lib.withTimeout(live.exited, 10000, 'rpcpoolstat SIGTERM');
    assert.equal(ex.code, 0, err);
    assert.doesNotMatch(err, SANITIZER);
    assert.equal(await stopDaemon(d3), 0);
    lib.assertNoErrors(d3.log);
  } finally {
    if (live.exitCode === null && live.signalCode === null) live.kill('SIGKILL');
    for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
    if (pool.proc.exitCode === null) await pool.stop().catch(() => {});
    await node.stop();
  }
});
