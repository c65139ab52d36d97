// health.test.js - the prober (src/prober/prober.c, src/prober/health.c) against the fault
// upstream: wrong-chain endpoints are quarantined and get no client request;
// a lagging endpoint is marked, gets nothing, and comes back once it catches
// up; probes keep their cadence; rise/fall hysteresis on the way down and up.
//
// Probe traffic and client traffic are told apart by method: the prober sends
// eth_blockNumber / eth_chainId, the client load here uses eth_gasPrice.
// min_connections = 0 keeps the workers' warm-up calls (which use the health
// method) out of the counts. States are read from shm, through the control
// socket's `status` (fast enough to sample between probes) and rpcpoolstat -j.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const lib = require('./lib.js');

const INTERVAL_MS = 300;
const RISE = 2; // RP_HEALTH_RISE in include/rp_health.h
const FALL = 3; // RP_HEALTH_FALL

// Settings shared by every pool here: fast probes, a rate limit that never
// gets in the way, no warm-up traffic.
function settings(extra = {}) {
  return {
    health_check_interval_ms: INTERVAL_MS,
    attempt_timeout_ms: 1000,
    max_block_lag: 5,
    min_connections: 0,
    idle_timeout_ms: 60000,
    rate_limit: { max_requests: 100000, window_ms: 1000, burst_size: 1000 },
    ...extra,
  };
}

// `rpcpoolstat -j -n SHM`, parsed.
async function stat(pool) {
  const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-j', '-n', pool.shmName], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// The endpoint object of upstream F (matched by URL) from the control
// socket's `status` (rendered from the same shm rows; a few ms, where
// spawning the sanitized rpcpoolstat takes a few hundred, too slow to sample
// between probes), or from rpcpoolstat -j with VIA_STAT.
async function epOf(pool, f, viaStat = false) {
  const s = viaStat ? await stat(pool) : await pool.ctl('status');
  assert.ok(s.endpoints, `no endpoints in ${JSON.stringify(s)}`);
  const e = s.endpoints.find((x) => x.url === f.url);
  assert.ok(e, `endpoint ${f.url} not listed: ${JSON.stringify(s.endpoints.map((x) => x.url))}`);
  return e;
}

function waitState(pool, f, state, timeout = 10000) {
  return lib.waitFor(async () => (await epOf(pool, f)).state === state,
    { timeout, interval: 25, message: `endpoint ${f.url} ${state}` });
}

async function methodCount(f, method) {
  const s = await f.state();
  return s.by_method[method] || 0;
}

// Send N client calls of METHOD through the pool's socket, CONC at a time;
// every one must come back with the fault upstream's ok answer.
async function load(pool, n, method = 'eth_gasPrice', conc = 20) {
  const c = await lib.ipcClient(pool.socket);
  try {
    let sent = 0;
    const worker = async () => {
      while (sent < n) {
        sent++;
        const r = await c.call({ method, params: [] });
        assert.equal(r.result, method, `client call failed: ${JSON.stringify(r)}`);
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
  } finally {
    c.destroy();
  }
}

// Wait until a new eth_blockNumber probe reaches F (so the next one is about
// an interval away); returns the count just after it.
async function justProbed(f) {
  const c0 = await methodCount(f, 'eth_blockNumber');
  let c = c0;
  await lib.waitFor(async () => {
    c = await methodCount(f, 'eth_blockNumber');
    return c > c0;
  }, { timeout: 5000, interval: 5, message: 'a probe' });
  return c;
}

test('a wrong-chain endpoint is quarantined and gets no client request (chain_id set)', async () => {
  const a = await lib.startFault({ block: 100 });
  const b = await lib.startFault({ block: 100 });
  const wrong = await lib.startFault({ block: 100, chainId: 5 });
  const pool = await lib.startPool({ endpoints: [a, wrong, b], workers: 2,
    settings: settings({ chain_id: 31337 }) });
  await waitState(pool, wrong, 'quarantined');
  // the same in shm as rpcpoolstat reads it
  assert.equal((await epOf(pool, wrong, true)).state, 'quarantined');
  assert.equal((await epOf(pool, a, true)).state, 'up');
  assert.equal((await epOf(pool, b, true)).state, 'up');
  await load(pool, 200);
  assert.equal(await methodCount(wrong, 'eth_gasPrice'), 0, 'the quarantined endpoint got client requests');
  assert.equal(await methodCount(a, 'eth_gasPrice') + await methodCount(b, 'eth_gasPrice'), 200);
  // probes go on (it is still checked), but the quarantine holds
  await justProbed(wrong);
  assert.equal((await epOf(pool, wrong)).state, 'quarantined');
  const q = pool.log.filter((l) => /msg="endpoint quarantined: wrong chain"/.test(l));
  assert.equal(q.length, 1, `logged once:\n${q.join('\n')}`);
  assert.match(q[0], /level=warn .*expected_chain_id=31337 chain_id=5(\s|$)/);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b, wrong]) assert.equal(await f.stop(), 0);
});

test('without chain_id the first chain seen is expected; another one is quarantined', async () => {
  const a = await lib.startFault({ block: 100 });
  const b = await lib.startFault({ block: 100 });
  // answers its probes 150 ms late, so the others answer eth_chainId first
  const wrong = await lib.startFault({ block: 100, chainId: 5, mode: 'delay', delay_ms: 150 });
  const pool = await lib.startPool({ endpoints: [wrong, a, b], workers: 1, settings: settings() });
  await waitState(pool, wrong, 'quarantined');
  await load(pool, 50);
  assert.equal(await methodCount(wrong, 'eth_gasPrice'), 0);
  await pool.waitLog(/msg="endpoint quarantined: wrong chain" .*expected_chain_id=31337 chain_id=5/);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b, wrong]) assert.equal(await f.stop(), 0);
});

test('a lagging endpoint gets no client request until it catches up', async () => {
  const a = await lib.startFault({ block: 100 });
  const b = await lib.startFault({ block: 100 });
  const slow = await lib.startFault({ block: 90 });
  const pool = await lib.startPool({ endpoints: [a, slow, b], workers: 2, settings: settings() });
  await waitState(pool, slow, 'lagging');
  const s = await stat(pool);
  assert.equal(s.best_head_block, 100);
  const e = s.endpoints.find((x) => x.url === slow.url);
  assert.equal(e.head_block, 90);
  assert.equal(e.lag, 10);
  await load(pool, 200);
  assert.equal(await methodCount(slow, 'eth_gasPrice'), 0, 'the lagging endpoint got client requests');
  await pool.waitLog(/level=warn .*msg="endpoint lagging" .*head_block=90 best_head_block=100 lag=10/);

  // 5 behind is within max_block_lag = 5
  await slow.setBlock(95);
  await waitState(pool, slow, 'up', 3000);
  await pool.waitLog(/msg="endpoint caught up"/);
  await load(pool, 200);
  assert.ok(await methodCount(slow, 'eth_gasPrice') > 0, 'the endpoint that caught up gets requests again');

  // the others move ahead: lagging again
  await a.setBlock(120);
  await b.setBlock(120);
  await waitState(pool, slow, 'lagging', 3000);
  assert.equal((await stat(pool)).best_head_block, 120);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b, slow]) assert.equal(await f.stop(), 0);
});

// A minimal JSON-RPC upstream inside the test process that notes when each
// call arrives (performance.now()), for timing probes without polling:
// {url, arrivals: [{method, t}], connectionsOpen(), close()}.
async function startRecorder({ chainId = 31337, block = 7 } = {}) {
  const arrivals = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const t = performance.now();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let msg = null;
      try {
        msg = JSON.parse(body);
      } catch {
        /* answered as invalid below */
      }
      const method = msg && typeof msg.method === 'string' ? msg.method : '(invalid)';
      arrivals.push({ method, t });
      const result = method === 'eth_chainId' ? `0x${chainId.toString(16)}`
        : method === 'eth_blockNumber' ? `0x${block.toString(16)}` : method;
      const out = JSON.stringify({ jsonrpc: '2.0', id: msg ? msg.id : null, result });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    arrivals,
    connectionsOpen: () => sockets.size,
    close: () => new Promise((r) => {
      for (const sock of sockets) sock.destroy();
      server.close(r);
    }),
  };
}

test('probe cadence stays within 20% of health_check_interval_ms', async (t) => {
  const rec = await startRecorder();
  const b = await lib.startFault({ block: 7 });
  const pool = await lib.startPool({ endpoints: [rec.url, b], workers: 1, settings: settings() });
  // skip the start-up round, then watch ~3.3 s of probes
  await lib.waitFor(() => rec.arrivals.some((x) => x.method === 'eth_blockNumber'), { message: 'a first probe' });
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 3300));
  const t1 = performance.now();
  const arrivals = rec.arrivals.filter((x) => x.method === 'eth_blockNumber' && x.t >= t0 && x.t <= t1)
    .map((x) => x.t);
  const wall = t1 - t0;
  const gaps = arrivals.slice(1).map((x, i) => x - arrivals[i]);
  // the interval as the least-squares slope of arrival time over probe
  // number, and the median gap: both robust to one arrival noted late
  // because the test process itself was busy
  const n = arrivals.length;
  const mi = (n - 1) / 2;
  const mt = arrivals.reduce((a, x) => a + x, 0) / n;
  let num = 0;
  let den = 0;
  arrivals.forEach((x, i) => {
    num += (i - mi) * (x - mt);
    den += (i - mi) * (i - mi);
  });
  const slope = num / den;
  const median = [...gaps].sort((x, y) => x - y)[Math.floor(gaps.length / 2)];
  const within = gaps.filter((g) => Math.abs(g - INTERVAL_MS) <= 0.2 * INTERVAL_MS).length;
  const report = `probes=${n} over ${wall.toFixed(0)} ms (expected ~${(wall / INTERVAL_MS).toFixed(1)}), ` +
    `interval: fitted ${slope.toFixed(1)} ms, median ${median.toFixed(1)} ms, min ${Math.min(...gaps).toFixed(1)} ms, ` +
    `max ${Math.max(...gaps).toFixed(1)} ms; ${within}/${gaps.length} gaps within ±20%`;
  t.diagnostic(report);
  assert.ok(n >= 9, report);
  assert.ok(Math.abs(slope - INTERVAL_MS) <= 0.2 * INTERVAL_MS, report);
  assert.ok(Math.abs(median - INTERVAL_MS) <= 0.2 * INTERVAL_MS, report);
  assert.ok(Math.abs(n - wall / INTERVAL_MS) <= 0.2 * (wall / INTERVAL_MS) + 1, report);

  // The prober's own connection counts like the pool's others (issue 14):
  // with no client traffic and no warm-up, shm shows just the one the
  // prober keeps open (its calls run one after the other on it).
  assert.equal(rec.connectionsOpen(), 1);
  assert.equal((await b.state()).connections_open, 1);
  const s = await stat(pool);
  for (const e of s.endpoints) {
    assert.equal(e.connections.active + e.connections.idle, 1, `prober socket counted for ${e.url}`);
  }
  const w = s.workers.find((x) => x.kind === 'prober');
  assert.equal(w.state, 'running');
  assert.ok(w.heartbeat_age_ms < 1500, `prober heartbeat ${w.heartbeat_age_ms} ms old`);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  await rec.close();
  assert.equal(await b.stop(), 0);
});

// Switch F to MODE just after a probe reached it, so that the next probe is
// about an interval away and certainly meets MODE. When a probe raced the
// switch anyway (a stalled test process), go back to UNDO, let enough probes
// pass that the hysteresis counts are as before, and try again. Returns the
// probe count at the switch.
async function switchBetweenProbes(f, mode, undo) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const c0 = await justProbed(f);
    await f.setMode(mode);
    if ((await methodCount(f, 'eth_blockNumber')) === c0) return c0;
    await f.setMode(undo);
    for (let k = 0; k < Math.max(RISE, FALL); k++) await justProbed(f);
  }
  throw new Error(`could not switch to ${mode} between two probes`);
}

// Sample (probe count since BASE, state, count again) of F until DONE(state)
// holds or TIMEOUT ms pass; returns the samples.
async function sampleUntil(pool, f, base, done, timeout = 10000) {
  const samples = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    const before = (await methodCount(f, 'eth_blockNumber')) - base;
    const state = (await epOf(pool, f)).state;
    const after = (await methodCount(f, 'eth_blockNumber')) - base;
    samples.push({ before, state, after });
    if (done(state)) return samples;
    if (Date.now() > deadline) {
      throw new Error(`timed out; samples: ${JSON.stringify(samples.slice(-20))}`);
    }
  }
}

test('down after fall failed probes, up after rise good ones (hysteresis)', async () => {
  const a = await lib.startFault({ block: 50 });
  const b = await lib.startFault({ block: 50 });
  // a longer interval leaves the sampling below room between two probes
  const pool = await lib.startPool({ endpoints: [a, b], workers: 2,
    settings: settings({ health_check_interval_ms: 2 * INTERVAL_MS }) });
  await waitState(pool, a, 'up');

  // down: switch right after a probe, so no probe races the switch
  let c0 = await switchBetweenProbes(a, 'http500', 'ok');
  let samples = await sampleUntil(pool, a, c0, (s) => s === 'down');
  for (const s of samples) {
    if (s.after < FALL) assert.equal(s.state, 'up', `down before ${FALL} failed probes: ${JSON.stringify(samples)}`);
    if (s.state === 'down') assert.ok(s.after >= FALL, JSON.stringify(samples));
  }
  assert.ok(samples.some((s) => s.after === FALL - 1 && s.state === 'up'), `not seen up after ${FALL - 1} failures: ${JSON.stringify(samples)}`);
  await pool.waitLog(new RegExp(`level=warn .*msg="endpoint down" endpoint=127\\.0\\.0\\.1:${a.port} failures=${FALL} error="HTTP 500"`));

  // while down it gets no client request (the answers all come from b)
  await load(pool, 50);
  assert.equal(await methodCount(a, 'eth_gasPrice'), 0, 'the down endpoint got client requests');

  // up again: switch right after a (failed) probe
  const chain0 = await methodCount(a, 'eth_chainId');
  c0 = await switchBetweenProbes(a, 'ok', 'http500');
  samples = await sampleUntil(pool, a, c0, (s) => s === 'up');
  for (const s of samples) {
    if (s.after < RISE) assert.equal(s.state, 'down', `up before ${RISE} good probes: ${JSON.stringify(samples)}`);
    if (s.state === 'up') assert.ok(s.after >= RISE, JSON.stringify(samples));
  }
  assert.ok(samples.some((s) => s.after === RISE - 1 && s.state === 'down'), `not seen down after ${RISE - 1} success: ${JSON.stringify(samples)}`);
  await pool.waitLog(new RegExp(`level=info .*msg="endpoint up" endpoint=127\\.0\\.0\\.1:${a.port} successes=${RISE}`));
  // coming back re-checked its chain
  assert.equal(await methodCount(a, 'eth_chainId'), chain0 + 1);
  await load(pool, 100);
  assert.ok(await methodCount(a, 'eth_gasPrice') > 0, 'the endpoint that came back gets requests again');
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b]) assert.equal(await f.stop(), 0);
});

test('the prober restarts on reload and checks the chains again', async () => {
  const a = await lib.startFault({ block: 10 });
  const b = await lib.startFault({ block: 10, chainId: 5 });
  const pool = await lib.startPool({ endpoints: [a, b], workers: 1, settings: settings({ chain_id: 31337 }) });
  await waitState(pool, b, 'quarantined');
  const chainA = await methodCount(a, 'eth_chainId');
  // the same file with the other chain expected: b is right, a is wrong now
  fs.writeFileSync(pool.conf, fs.readFileSync(pool.conf, 'utf8').replace('chain_id = 31337;', 'chain_id = 5;'));
  pool.proc.kill('SIGHUP');
  await waitState(pool, a, 'quarantined');
  await waitState(pool, b, 'up');
  assert.ok(await methodCount(a, 'eth_chainId') > chainA);
  await pool.waitLog(/msg="endpoint chain ok: quarantine lifted" .*chain_id=5/);
  // the old workers have handed over and gone: only the new generation serves
  await lib.waitFor(async () => {
    const st = await pool.ctl('status');
    const ws = st.workers.filter((w) => w.kind === 'worker');
    return ws.length === 1 && ws.every((w) => w.state === 'running' && w.generation === st.generation);
  }, { timeout: 10000, message: 'workers of the new generation' });
  await load(pool, 40);
  assert.equal(await methodCount(a, 'eth_gasPrice'), 0);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b]) assert.equal(await f.stop(), 0);
});

test('health_check.path: HTTP GET probes; head blocks still read with eth_blockNumber', async () => {
  const a = await lib.startFault({ block: 100 });
  const b = await lib.startFault({ block: 100 });
  const slow = await lib.startFault({ block: 90 });
  const pool = await lib.startPool({ endpoints: [a, b, slow], workers: 1,
    settings: settings({ health_check: { path: '/health' } }) });
  await waitState(pool, slow, 'lagging');
  // GET probes arrive on the cadence
  const h0 = (await a.state()).health_requests;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  const got = (await a.state()).health_requests - h0;
  const want = (Date.now() - t0) / INTERVAL_MS;
  assert.ok(Math.abs(got - want) <= 0.2 * want + 1, `GET probes ${got} in ${Date.now() - t0} ms`);
  // a GET answering 500 takes the endpoint down after FALL probes
  await a.setMode('http500');
  await waitState(pool, a, 'down', 5000);
  await pool.waitLog(new RegExp(`msg="endpoint down" endpoint=127\\.0\\.0\\.1:${a.port} failures=${FALL} error="HTTP 500"`));
  await a.setMode('ok');
  await waitState(pool, a, 'up', 5000);
  await load(pool, 60);
  assert.equal(await methodCount(slow, 'eth_gasPrice'), 0);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b, slow]) assert.equal(await f.stop(), 0);
});

test('a replaced prober continues from the states in shm', async () => {
  const a = await lib.startFault({ block: 10, mode: 'http500' });
  const b = await lib.startFault({ block: 10 });
  const pool = await lib.startPool({ endpoints: [a, b], workers: 1, settings: settings() });
  await waitState(pool, a, 'down');
  const old = (await stat(pool)).workers.find((w) => w.kind === 'prober');
  process.kill(old.pid, 'SIGKILL');
  const from = pool.log.length;
  await lib.waitFor(async () => {
    const w = (await stat(pool)).workers.find((x) => x.kind === 'prober');
    return w && w.pid !== old.pid && w.state === 'running';
  }, { timeout: 10000, message: 'a new prober' });
  // a few rounds of the new prober: a stays down, never shown up
  const t0 = Date.now();
  while (Date.now() - t0 < 4 * INTERVAL_MS) {
    assert.equal((await epOf(pool, a)).state, 'down');
    assert.equal((await epOf(pool, b)).state, 'up');
  }
  assert.ok(!pool.log.slice(from).some((l) => /msg="endpoint up"/.test(l)));
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  for (const f of [a, b]) assert.equal(await f.stop(), 0);
});
