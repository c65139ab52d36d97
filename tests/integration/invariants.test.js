// invariants.test.js - issue 12 end to end: the host-wide invariants of the
// shared segment hold against a real daemon, seen only from outside.
//
// - Kill storm: random SIGKILLs of workers every 50-250 ms for 10 s under
//   load, with one endpoint flapping (its breaker opening and half-opening)
//   and a fresh worker set every 2 s (past the respawn back-off): every call
//   gets one answer or its connection is closed, none an error; the sampled
//   counts never exceed their bounds; afterwards every count is back to 0,
//   every endpoint serves again without `reset`, and exactly max_clients new
//   clients are admitted.
// - 200 reloads rotating one endpoint's URL (a rotated API key) under load:
//   every one applied, no call lost. A pinned old worker holds the retired
//   rows, so reload 63 is refused (the old configuration serving on), and
//   goes through once that worker is gone.
// - A raised rate limit is in force at once after a reload.
// - An endpoint removed and added again starts fresh (up, breaker closed,
//   full bucket), whether its old row is reused or not.
// - Batches over burst_size: -32005 at once, nothing reaches the endpoint;
//   a batch of N <= burst takes N tokens; admitted calls stay under
//   burst + rate * t.
//
// Counts come from `status` on the control socket (and `rpcpoolstat -j`)
// and from what the fault upstreams (tests/upstream/fault.js) received.
// Figures are printed as "# ..." lines.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const lib = require('./lib.js');
const { figure } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
// No periodic health probing unless it is part of the test (the prober's
// first round still runs at start and after every reload).
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

let seq = 0;
const req = (method, params = []) => ({ jsonrpc: '2.0', id: `q${++seq}`, method, params });
const batch = (n, method = 'net_version') => Array.from({ length: n }, () => req(method));

// A whole configuration file for POOL's paths (as lib.writePoolConfig lays
// it out), so that a reload keeps the sockets and the segment.
function configText(pool, endpoints, { settings = {}, server = {}, workers = 2 } = {}) {
  const srv = {
    socket: pool.socket,
    control_socket: pool.controlSocket,
    shm_name: pool.shmName,
    workers,
    log_level: 'debug',
    ...server,
  };
  let text = '# rewritten by invariants.test.js\n';
  text += `name = ${lib.toLibconfig(pool.name)};\n`;
  for (const [k, v] of Object.entries(settings)) text += `${k} = ${lib.toLibconfig(v)};\n`;
  text += `endpoints = (\n${endpoints.map((e) => `  ${lib.toLibconfig(e, '  ')}`).join(',\n')}\n);\n`;
  text += `server = ${lib.toLibconfig(srv)};\n`;
  return text;
}

// Rewrite POOL's configuration and reload; resolves to the answer.
async function reloadWith(pool, endpoints, opts) {
  fs.writeFileSync(pool.conf, configText(pool, endpoints, opts));
  return pool.ctl('reload', { timeout: 20000 });
}

async function status(pool) {
  const st = await pool.ctl('status', { timeout: 10000 });
  assert.equal(st.ok, true, JSON.stringify(st));
  return st;
}

async function endpoint(pool, name) {
  const e = (await status(pool)).endpoints.find((x) => x.name === name);
  assert.ok(e, `endpoint ${name} in status`);
  return e;
}

async function rpcpoolstat(pool) {
  const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-j'], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Calls that fault upstream F received: of METHOD, or all of them.
async function count(f, method) {
  const s = await f.state();
  return method ? s.by_method[method] || 0 : s.requests + s.health_requests;
}

// The prober's first round (it runs at start) has reached every upstream
// of FAULTS, so its token takes are behind us.
async function proberRound(faults) {
  await lib.waitFor(async () => {
    for (const f of faults) if ((await count(f, 'eth_blockNumber')) < 1) return false;
    return true;
  }, { timeout: 15000, message: "the prober's first round" });
}

// Workers and the prober all run generation GEN (the older ones are gone).
function onlyGeneration(st, gen) {
  const live = st.workers.filter((w) => w.pid > 1 && w.state !== 'dead' && w.state !== 'free');
  return live.length > 0 && live.every((w) => w.generation >= gen);
}

async function startPool(t, opts) {
  const pool = await lib.startPool(opts);
  t.after(() => pool.stop().catch(() => {}));
  return pool;
}

async function startFault(t, opts = {}) {
  const f = await lib.startFault(opts);
  t.after(() => f.stop().catch(() => {}));
  return f;
}

// Stop POOL: exit 0 and no unexpected error lines.
async function finish(pool, allow = []) {
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool, allow);
}

/* ------------------------------------------------------------------ */

test('batches over burst_size: -32005 at once and 0 calls at the endpoint; N <= burst takes N tokens', async (t) => {
  const RATE = 10; // per second
  const BURST = 5;
  const QUEUE_MS = 2000;
  const f = await startFault(t);
  const pool = await startPool(t, {
    endpoints: [{ name: 'only', url: f.url, rate_limit: { max_requests: RATE, window_ms: 1000, burst_size: BURST } }],
    workers: 2,
    settings: { ...QUIET, min_connections: 0 },
    server: { queue_timeout_ms: QUEUE_MS, max_batch: 1000 },
  });
  await proberRound([f]);
  const tokens = async () => (await endpoint(pool, 'only')).tokens;
  const full = () => lib.waitFor(async () => (await tokens()) >= BURST - 0.001,
    { timeout: 5000, message: 'a full bucket' });
  const c = await lib.ipcClient(pool.socket);
  t.after(() => c.destroy());
  await full();
  await f.resetCounters();

  // one batch of burst + 1: refused whole, at once, per element
  const b6 = batch(BURST + 1);
  let t0 = Date.now();
  const r6 = await c.call(b6, { timeout: 10000 });
  const ms6 = Date.now() - t0;
  assert.ok(Array.isArray(r6), JSON.stringify(r6));
  assert.deepEqual(r6.map((a) => a.id).sort(), b6.map((x) => x.id).sort());
  for (const a of r6) {
    assert.equal(a.error && a.error.code, -32005, JSON.stringify(a));
    assert.match(a.error.message, /^Limit exceeded/);
  }
  assert.ok(ms6 < QUEUE_MS / 2, `the over-burst batch waited ${ms6} ms (queue_timeout_ms ${QUEUE_MS})`);
  assert.equal(await count(f), 0, 'the over-burst batch reached the endpoint');
  assert.ok((await tokens()) >= BURST - 0.001, 'the refused batch took tokens');

  // ten batches of 50 within a second, on five connections
  const cs = await Promise.all(Array.from({ length: 5 }, () => lib.ipcClient(pool.socket)));
  t.after(() => cs.forEach((x) => x.destroy()));
  t0 = Date.now();
  const big = await Promise.all(Array.from({ length: 10 }, (_, i) => cs[i % 5].call(batch(50), { timeout: 10000 })));
  const ms50 = Date.now() - t0;
  for (const r of big) {
    assert.equal(r.length, 50);
    assert.ok(r.every((a) => a.error && a.error.code === -32005), JSON.stringify(r[0]));
  }
  assert.ok(ms50 < 1000, `10 batches of 50 answered in ${ms50} ms`);
  assert.equal(await count(f), 0, 'calls of the 50-call batches reached the endpoint');
  figure(`over burst ${BURST}: a batch of ${BURST + 1} answered -32005 per element in ${ms6} ms; ` +
    `10 batches of 50 (500 calls) answered -32005 in ${ms50} ms; calls at the endpoint: 0`);

  // a batch of exactly burst takes exactly burst tokens: the bucket, full
  // before, holds at most what refilled between the send and the status
  // read (RATE per second); conclusive when that window is < 1 token
  const seen = [];
  let conclusive = 0;
  for (let i = 0; i < 10 && conclusive < 2; i++) {
    await full();
    const before = await count(f, 'net_version');
    const tA = Date.now();
    const r = await c.call(batch(BURST), { timeout: 10000 });
    const left = (await endpoint(pool, 'only')).tokens;
    const window = (Date.now() - tA) / 1000;
    assert.ok(r.every((a) => a.result === '31337'), JSON.stringify(r));
    assert.equal((await count(f, 'net_version')) - before, BURST);
    const refill = RATE * window;
    seen.push(`${left.toFixed(2)}/${refill.toFixed(2)}`);
    assert.ok(left >= 0 && left <= refill + 0.01, `after a batch of ${BURST}: ${left} tokens left, ` +
      `at most ${refill} could have refilled`);
    if (refill < 0.9) conclusive++;
  }
  assert.ok(conclusive >= 1, `no measurement with a window under one token: ${seen.join(' ')}`);
  figure(`batch of ${BURST} on a full bucket: tokens left / refill possible in the window: ${seen.join(' ')} ` +
    `(${conclusive} conclusive: took exactly ${BURST})`);

  // mixed traffic for 2.5 s: singles, batches up to burst and over it
  await full();
  await f.resetCounters();
  const SIZES = [1, 3, BURST, BURST + 1, 50, 2];
  const DURATION = 2500;
  const out = { admitted: 0, refused: 0, mixed: 0, other: [], lastOk: 0, overAdmitted: 0 };
  const tStart = Date.now();
  await Promise.all(cs.map(async (x, k) => {
    for (let i = k; Date.now() - tStart < DURATION; i++) {
      const n = SIZES[i % SIZES.length];
      const r = await x.call(n === 1 ? req('net_version') : batch(n), { timeout: 10000 });
      const as = Array.isArray(r) ? r : [r];
      const ok = as.filter((a) => a.result === '31337').length;
      const lim = as.filter((a) => a.error && a.error.code === -32005).length;
      if (ok + lim !== n) out.other.push(JSON.stringify(as.find((a) => a.result !== '31337' && !(a.error && a.error.code === -32005))));
      if (ok && lim) out.mixed++;
      if (ok && n > BURST) out.overAdmitted++;
      out.admitted += ok;
      out.refused += lim;
      if (ok) out.lastOk = Date.now();
    }
  }));
  const elapsed = (out.lastOk - tStart) / 1000;
  const atEndpoint = await count(f); // prober calls included: they take tokens too
  const bound = BURST + RATE * elapsed;
  figure(`mixed batches (sizes ${SIZES}) for ${DURATION} ms on 5 connections: ${out.admitted} calls admitted ` +
    `(${atEndpoint} at the endpoint) in ${elapsed.toFixed(3)} s, bound burst + rate*t = ${bound.toFixed(1)}; ` +
    `${out.refused} calls -32005`);
  assert.deepEqual(out.other, []);
  assert.equal(out.mixed, 0, 'a batch was split between answers and -32005');
  assert.equal(out.overAdmitted, 0, 'a batch over burst_size was admitted');
  assert.equal(atEndpoint, out.admitted, 'every admitted call reached the endpoint, nothing else did');
  // (the limiter is exact, so the count meets the bound; 0.05 of a token
  // covers the millisecond rounding of the two clocks)
  assert.ok(atEndpoint <= bound + 0.05, `admitted ${atEndpoint} > bound ${bound}`);
  assert.ok(atEndpoint >= 0.6 * bound, `admitted ${atEndpoint} far below the bound ${bound}`);
  await finish(pool);
});

test('a raised rate limit is in force at once after a reload', async (t) => {
  const f = await startFault(t);
  const slow = { max_requests: 1, window_ms: 60000, burst_size: 1 };
  const fast = { max_requests: 1000, window_ms: 1000, burst_size: 1000 };
  const QUEUE_MS = 300;
  const opts = { settings: { ...QUIET, min_connections: 0 }, server: { queue_timeout_ms: QUEUE_MS } };
  const pool = await startPool(t, {
    endpoints: [{ name: 'lim', url: f.url, rate_limit: slow }],
    workers: 2,
    ...opts,
  });
  await proberRound([f]);
  // the prober's first round took the only token: refill it, use it
  assert.equal((await pool.ctl('reset lim')).ok, true);
  assert.ok((await endpoint(pool, 'lim')).tokens >= 0.999);
  const c = await lib.ipcClient(pool.socket);
  t.after(() => c.destroy());
  assert.equal((await c.call(req('net_version'))).result, '31337');
  const r = await c.call(req('net_version'));
  assert.equal(r.error && r.error.code, -32005, `the bucket is empty: ${JSON.stringify(r)}`);
  assert.ok((await endpoint(pool, 'lim')).tokens < 0.01);

  const gen = (await status(pool)).generation;
  const ans = await reloadWith(pool, [{ name: 'lim', url: f.url, rate_limit: fast }], opts);
  assert.equal(ans.ok, true, JSON.stringify(ans));
  assert.equal(ans.generation, gen + 1);
  const tokensAfter = (await endpoint(pool, 'lim')).tokens;
  const before = await count(f, 'net_version');
  const lat = [];
  const t0 = Date.now();
  for (let i = 0; i < 50; i++) {
    const s = Date.now();
    const a = await c.call(req('net_version'), { timeout: 10000 });
    lat.push(Date.now() - s);
    assert.equal(a.result, '31337', `call ${i} after the reload: ${JSON.stringify(a)}`);
  }
  const total = Date.now() - t0;
  assert.equal((await count(f, 'net_version')) - before, 50);
  figure(`raised limit 1/min burst 1 -> 1000/s burst 1000: ${tokensAfter.toFixed(1)} tokens right after the ` +
    `reload; 50 calls answered in ${total} ms (max ${Math.max(...lat)} ms), 0 x -32005`);
  assert.ok(tokensAfter >= 990, `the rescaled bucket holds ${tokensAfter} tokens`);
  assert.ok(Math.max(...lat) < 3000, `a call took ${Math.max(...lat)} ms`);
  assert.ok(total < 15000, `50 calls took ${total} ms`);
  await finish(pool);
});

test('an endpoint removed by a reload and added again starts fresh', async (t) => {
  const A = await startFault(t);
  const B = await startFault(t);
  const BURST = 20;
  const settings = {
    ...QUIET,
    min_connections: 0,
    balance: 'round_robin',
    retries: 1,
    // 20 tokens refilling at one an hour: the bucket is all but static
    rate_limit: { max_requests: 1, window_ms: 3600000, burst_size: BURST },
    circuit_breaker: { failure_threshold: 2, recovery_timeout_ms: 600000, half_open_max_attempts: 1 },
  };
  const both = [{ name: 'A', url: A.url }, { name: 'B', url: B.url }];
  const pool = await startPool(t, { endpoints: both, workers: 2, settings });
  await proberRound([A, B]);
  const c = await lib.ipcClient(pool.socket);
  t.after(() => c.destroy());
  const rows = [];

  for (const variant of ['at once', 'after the old workers left']) {
    // B: breaker open, bucket used, drained
    await B.setMode('http500');
    await lib.waitFor(async () => {
      const a = await c.call(req('net_version'));
      assert.equal(a.result, '31337', JSON.stringify(a));
      return (await endpoint(pool, 'B')).breaker === 'open';
    }, { timeout: 10000, message: "B's breaker open" });
    assert.equal((await pool.ctl('drain B')).ok, true);
    const dirty = await endpoint(pool, 'B');
    assert.equal(dirty.state, 'drained');
    assert.equal(dirty.breaker, 'open');
    assert.ok(dirty.tokens <= BURST - 2, JSON.stringify(dirty));

    // removed
    let ans = await reloadWith(pool, [{ name: 'A', url: A.url }], { settings });
    assert.equal(ans.ok, true, JSON.stringify(ans));
    const genWithout = ans.generation;
    assert.deepEqual((await status(pool)).endpoints.map((e) => e.name), ['A']);
    if (variant !== 'at once') {
      await lib.waitFor(async () => onlyGeneration(await status(pool), genWithout),
        { timeout: 20000, message: 'the workers of the older generations gone' });
    }

    // added again, healthy
    await B.setMode('ok');
    await B.resetCounters();
    ans = await reloadWith(pool, both, { settings });
    assert.equal(ans.ok, true, JSON.stringify(ans));
    // every call that reached B since took a token (the prober's, now)
    const fresh = await lib.waitFor(async () => {
      const e = await endpoint(pool, 'B');
      return Math.abs(BURST - e.tokens - (await count(B))) < 0.01 ? e : null;
    }, { timeout: 10000, message: "B's tokens == burst - calls that reached B since it came back" });
    assert.equal(fresh.state, 'up', JSON.stringify(fresh));
    assert.equal(fresh.breaker, 'closed', JSON.stringify(fresh));
    assert.equal(fresh.requests.failed, 0, JSON.stringify(fresh));
    rows.push(`${variant}: row ${dirty.id} -> ${fresh.id}, tokens ${dirty.tokens.toFixed(2)} -> ` +
      `${fresh.tokens.toFixed(2)} (prober calls ${await count(B)})`);
    // and it serves (once the client is on a worker of the new generation)
    const b0 = await count(B, 'net_version');
    await lib.waitFor(async () => {
      assert.equal((await c.call(req('net_version'))).result, '31337');
      return (await count(B, 'net_version')) - b0 >= 2;
    }, { timeout: 10000, message: 'the re-added endpoint serving' });
  }
  figure(`re-added endpoint (state up, breaker closed, bucket burst - probes): ${rows.join('; ')}`);
  await finish(pool);
});

test('200 reloads rotating one endpoint\'s URL: all applied, rows reused, the pool serving', async (t) => {
  const S = await startFault(t);
  const R = await startFault(t);
  const settings = { ...QUIET, balance: 'round_robin', min_connections: 0, request_timeout_ms: 60000 };
  const server = { shutdown_timeout_ms: 60000 };
  const eps = (n) => [{ name: 'stable', url: S.url }, { name: 'rot', url: `${R.url}/v3/key-${n}?apikey=${n}` }];
  const pool = await startPool(t, { endpoints: eps(0), workers: 2, settings, server });
  const st0 = await status(pool);
  // A pin: an HTTP request begun and not finished keeps the first
  // generation's worker that holds it draining (it cannot hand that client
  // over), so no row retired after it can be reused until it is released:
  // with 2 of 64 rows live, reload 63 must be refused, and go through once
  // the pin is released and that worker is gone.
  const pinBody = JSON.stringify(req('net_version'));
  const pinHead = `POST / HTTP/1.1\r\nHost: pool\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(pinBody)}\r\n\r\n`;
  const pin = require('node:net').connect(pool.socket);
  t.after(() => pin.destroy());
  let pinIn = '';
  pin.setEncoding('utf8');
  pin.on('data', (d) => { pinIn += d; });
  pin.on('error', () => {});
  await new Promise((resolve, reject) => {
    pin.once('connect', resolve);
    pin.once('error', reject);
  });
  pin.write(pinHead + pinBody.slice(0, 10));
  await lib.waitFor(async () => sum((await status(pool)).workers.map((w) => w.clients)) === 1,
    { timeout: 10000, message: 'the pin accepted' });
  const refusedAt = [];
  const gen0 = st0.generation;
  const stableId = st0.endpoints.find((e) => e.name === 'stable').id;
  const c = await lib.ipcClient(pool.socket);
  t.after(() => c.destroy());
  const N = 200;
  const BATCH = 20;
  let applied = 0;
  let retries = 0;
  const rotIds = new Set();
  // light load on two more connections all along: none may lose a call
  let stop = false;
  const load = { ok: 0, errors: [] };
  const loaders = await Promise.all([0, 1].map(() => lib.ipcClient(pool.socket)));
  t.after(() => loaders.forEach((x) => x.destroy()));
  const running = Promise.all(loaders.map(async (x) => {
    while (!stop) {
      try {
        const a = await x.call(req('net_version'), { timeout: 15000 });
        if (a.result === '31337') load.ok++;
        else load.errors.push(JSON.stringify(a));
      } catch (e) {
        load.errors.push(e.message);
        if (x.isClosed()) return;
      }
    }
  }));
  const tStart = Date.now();
  for (let i = 1; i <= N; i++) {
    let ans;
    for (let k = 0; ; k++) {
      ans = await reloadWith(pool, eps(i), { settings, server });
      if (ans.ok) break;
      assert.match(ans.error, /no free endpoint row/, `reload ${i} refused: ${JSON.stringify(ans)}`);
      assert.ok(k < 3, `reload ${i} refused ${k + 1} times: ${ans.error}`);
      retries++;
      refusedAt.push(i);
      // the configuration in force is kept, and serves
      const st = await status(pool);
      assert.equal(st.generation, gen0 + applied);
      assert.deepEqual(st.endpoints.map((e) => e.name).sort(), ['rot', 'stable']);
      assert.equal((await c.call(req('net_version'), { timeout: 15000 })).result, '31337');
      if (!pin.destroyed) { // finish the pinned request: answered, then the client leaves
        pin.write(pinBody.slice(10));
        await lib.waitFor(() => /^HTTP\/1\.1 200[\s\S]*"result":"31337"/.test(pinIn),
          { timeout: 15000, message: 'the pinned request answered' });
        pin.destroy();
      }
      // rows are reused once no process of an older generation is alive
      await lib.waitFor(async () => onlyGeneration(await status(pool), st.generation),
        { timeout: 30000, message: `the workers older than generation ${st.generation} gone` });
    }
    applied++;
    assert.equal(ans.generation, gen0 + applied, `reload ${i}: generation ${ans.generation}`);
    if (i % BATCH === 0) {
      const st = await status(pool);
      assert.deepEqual(st.endpoints.map((e) => e.name).sort(), ['rot', 'stable']);
      assert.equal(st.endpoints.find((e) => e.name === 'stable').id, stableId, 'the stable endpoint kept its row');
      rotIds.add(st.endpoints.find((e) => e.name === 'rot').id);
      const r0 = await count(R, 'net_version');
      const s0 = await count(S, 'net_version');
      for (let k = 0; k < 10; k++) {
        const a = await c.call(req('net_version'), { timeout: 15000 });
        assert.equal(a.result, '31337', `after reload ${i}: ${JSON.stringify(a)}`);
      }
      assert.ok((await count(R, 'net_version')) > r0 && (await count(S, 'net_version')) > s0,
        `after reload ${i} both endpoints serve`);
    }
  }
  const ms = Date.now() - tStart;
  assert.deepEqual(refusedAt, [63], 'refused exactly when the rows ran out, never after the pin went');
  stop = true;
  await lib.withTimeout(running, 20000, 'the load ending');
  assert.deepEqual(load.errors.slice(0, 5), [], `${load.errors.length} calls of the load lost or failed`);
  assert.ok(load.ok > 0);
  const st = await status(pool);
  assert.equal(st.generation, gen0 + N);
  assert.deepEqual(st.endpoints.map((e) => e.name).sort(), ['rot', 'stable']);
  const s = await rpcpoolstat(pool);
  assert.notEqual(s.consistent, false);
  assert.equal(s.generation, gen0 + N);
  assert.deepEqual(s.endpoints.map((e) => [e.id, e.name]).sort(), st.endpoints.map((e) => [e.id, e.name]).sort());
  await lib.waitFor(async () => (await status(pool)).endpoints.every((e) => e.inflight === 0 && e.connections.active === 0),
    { timeout: 10000, message: 'in-flight and active connection counts back to 0' });
  figure(`reloads rotating one URL: ${applied} of ${N} applied in ${ms} ms (${(ms / N).toFixed(1)} ms each), ` +
    `${retries} refused (at reload ${refusedAt}) while a pinned old worker held the retired rows, ` +
    `then retried and applied; rows of 'rot' seen ` +
    `${[...rotIds].sort((a, b) => a - b).join(',')}; 'stable' kept row ${stableId}; ` +
    `load on 3 connections: ${load.ok} calls answered, 0 lost`);
  await finish(pool);
});

/* ------------------------------------------------------------------ */

// [state letter, parent pid] of PID from /proc, or null when it is gone.
function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [f[0], Number(f[1])];
  } catch {
    return null;
  }
}

test('kill storm: SIGKILLs every 50-250 ms for 10 s under load, a flapping endpoint; everything comes back', async (t) => {
  const MAX_CLIENTS = 8;
  const WORKERS = 3;
  const MAX_CONNS = 10;
  const STORM_MS = 10000;
  const LOADERS = 6;
  const node = await lib.startAnvil();
  t.after(() => node.stop());
  const flap = await startFault(t);
  const pool = await startPool(t, {
    endpoints: [{ name: 'anvil', url: node.url }, { name: 'flap', url: flap.url }],
    workers: WORKERS,
    settings: {
      rate_limit: NO_LIMIT,
      health_check_interval_ms: 500,
      balance: 'round_robin',
      retries: 2,
      max_connections: MAX_CONNS,
      request_timeout_ms: 8000,
      attempt_timeout_ms: 2000,
      circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 300, half_open_max_attempts: 1 },
    },
    server: { max_clients: MAX_CLIENTS },
  });
  const CALL_BOUND = 15000; // request_timeout_ms + margin: a call not answered by then hangs

  // load: LOADERS connections, each reconnecting when its worker dies
  let stop = false;
  const load = { errSamples: [], calls: 0, ok: 0, codes: {}, closed: 0, hung: [], dup: 0, connects: 0, refused: 0, other: [] };
  const conns = [];
  const loader = async () => {
    while (!stop) {
      let c;
      try {
        c = await lib.ipcClient(pool.socket, { timeout: 5000 });
      } catch (e) {
        load.other.push(`connect: ${e.message}`);
        return;
      }
      load.connects++;
      conns.push(c);
      while (!stop && !c.isClosed()) {
        load.calls++;
        try {
          const a = await c.call(req('eth_chainId'), { timeout: CALL_BOUND });
          if (a.result === '0x7a69') load.ok++;
          else if (a.error) {
            load.codes[a.error.code] = (load.codes[a.error.code] || 0) + 1;
            if (load.errSamples.length < 5) load.errSamples.push(`${Date.now()} ${JSON.stringify(a.error)}`);
          }
          else load.other.push(JSON.stringify(a));
        } catch (e) {
          if (/no answer within/.test(e.message)) load.hung.push(e.message);
          else load.closed++; // its connection closed (its worker was killed)
        }
      }
    }
  };
  const loaders = Array.from({ length: LOADERS }, loader);

  // the flapping endpoint: failing and healthy in turns
  const MODES = ['http500', 'ok', 'reset', 'ok'];
  let flips = 0;
  const flapper = (async () => {
    while (!stop) {
      await flap.setMode(MODES[flips++ % MODES.length]);
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 400)));
    }
    await flap.setMode('ok');
  })();

  // invariants sampled all along
  const seen = { states: {}, samples: 0, maxClients: 0, maxInflight: 0, maxActive: 0, flapStates: new Set(), violations: [] };
  const sampler = (async () => {
    while (!stop) {
      const st = await status(pool).catch(() => null);
      if (st) {
        seen.samples++;
        const clients = sum(st.workers.map((w) => w.clients));
        seen.maxClients = Math.max(seen.maxClients, clients);
        if (clients > MAX_CLIENTS) seen.violations.push(`clients ${clients} > max_clients ${MAX_CLIENTS}`);
        for (const e of st.endpoints) {
          seen.maxInflight = Math.max(seen.maxInflight, e.inflight);
          seen.maxActive = Math.max(seen.maxActive, e.connections.active);
          if (e.inflight > 1000 || e.connections.active + e.connections.idle > MAX_CONNS) {
            seen.violations.push(`${e.name}: inflight ${e.inflight}, connections ${JSON.stringify(e.connections)}`);
          }
          if (e.name === 'flap') seen.flapStates.add(e.breaker);
          (seen.states[e.name] = seen.states[e.name] || new Set()).add(`${e.state}/${e.breaker}`);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  await lib.waitFor(() => load.ok >= 50, { timeout: 20000, message: 'the load running' });

  // the storm: a random running worker of this pool every 50-250 ms. The
  // supervisor backs off respawning a slot that keeps dying (100 ms doubling
  // to 30 s), so every 2 s a `workers N` starts a fresh set (their clients
  // handed over from the retiring ones, which get killed too) to keep the
  // kills coming.
  const kills = [];
  let skipped = 0;
  let resizes = 0;
  const tStorm = Date.now();
  while (Date.now() - tStorm < STORM_MS) {
    await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 200)));
    if (Date.now() - tStorm > 2000 * (resizes + 1)) {
      const a = await pool.ctl(`workers ${WORKERS}`);
      assert.equal(a.ok, true, JSON.stringify(a));
      resizes++;
    }
    const st = await status(pool);
    const live = st.workers.filter((w) => w.kind === 'worker' && w.state === 'running' && w.pid > 1 &&
      (procStat(w.pid) || [])[1] === pool.pid);
    if (live.length === 0) {
      skipped++;
      continue;
    }
    const v = live[Math.floor(Math.random() * live.length)];
    process.kill(v.pid, 'SIGKILL');
    kills.push(v.pid);
  }
  const stormMs = Date.now() - tStorm;
  stop = true;
  await lib.withTimeout(Promise.all([...loaders, flapper, sampler]), CALL_BOUND + 10000, 'the load ending');

  // every call had one answer or lost its connection; none hung, none twice
  for (const c of conns) {
    const ids = new Map();
    for (const l of c.lines) {
      let v;
      try {
        v = JSON.parse(l);
      } catch {
        load.other.push(`not JSON: ${l.slice(0, 100)}`);
        continue;
      }
      if (v.id === null && v.error && v.error.code === -32005 && /too many clients/.test(v.error.message)) {
        load.refused++;
        continue;
      }
      ids.set(v.id, (ids.get(v.id) || 0) + 1);
    }
    for (const n of ids.values()) if (n > 1) load.dup++;
  }
  figure(`kill storm: ${kills.length} workers SIGKILLed in ${stormMs} ms (${skipped} ticks with no running ` +
    `worker; ${resizes} x workers ${WORKERS}); ` +
    `${load.calls} calls on ${load.connects} connections: ${load.ok} answered ok, errors ${JSON.stringify(load.codes)}, ` +
    `${load.closed} lost with their connection, ${load.hung.length} hung, ${load.dup} answered twice; ` +
    `${load.refused} connections refused (max_clients); flap breaker states seen ${[...seen.flapStates]} ` +
    `over ${flips} mode flips; ${seen.samples} samples: max clients ${seen.maxClients}, max inflight ` +
    `${seen.maxInflight}, max active connections ${seen.maxActive}, ${seen.violations.length} violations; ` +
    `states seen ${Object.entries(seen.states).map(([k, v]) => `${k}: ${[...v]}`).join('; ')}`);
  assert.deepEqual(load.hung, []);
  // the anvil endpoint never fails: every call that kept its connection
  // has its result (a call first sent to the flapping endpoint is retried)
  assert.deepEqual(load.codes, {}, `error answers: ${load.errSamples.join(' | ')}`);
  assert.equal(load.dup, 0);
  assert.deepEqual(load.other, []);
  assert.deepEqual(seen.violations, []);
  assert.ok(kills.length >= 10, `only ${kills.length} kills`);
  assert.ok(seen.flapStates.has('open') || seen.flapStates.has('half_open'), 'the flapping breaker never opened');

  // every count back to 0: first with the loaders' connections still open
  const open = conns.filter((c) => !c.isClosed());
  let last;
  const settled = async (nclients) => {
    last = await status(pool);
    return sum(last.workers.map((w) => w.clients)) === nclients &&
      last.endpoints.every((e) => e.inflight === 0 && e.connections.active === 0);
  };
  const tRec = Date.now();
  await lib.waitFor(() => settled(open.length), { timeout: 20000, message: `clients == ${open.length}, inflight 0` })
    .catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify({ workers: last.workers, endpoints: last.endpoints })}`);
    });
  for (const c of conns) c.destroy();
  await lib.waitFor(() => settled(0), { timeout: 20000, message: 'clients 0 once all closed' })
    .catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(last.workers)}`);
    });

  // every endpoint serves again, the flapping one's breaker closed: no reset
  const probe = await lib.ipcClient(pool.socket);
  const before = Object.fromEntries(last.endpoints.map((e) => [e.name, e.requests.ok]));
  const flap0 = await count(flap, 'eth_chainId');
  await lib.waitFor(async () => {
    const a = await probe.call(req('eth_chainId'), { timeout: CALL_BOUND });
    assert.equal(a.result, '0x7a69', JSON.stringify(a));
    const st = await status(pool);
    const f = st.endpoints.find((e) => e.name === 'flap');
    return f.breaker === 'closed' && f.state === 'up' && (await count(flap, 'eth_chainId')) > flap0 + 5 &&
      st.endpoints.every((e) => e.requests.ok > before[e.name]);
  }, { timeout: 20000, message: 'both endpoints serving, the flapping breaker closed' });
  probe.destroy();
  const tServe = Date.now();
  await lib.waitFor(() => settled(0), { timeout: 10000, message: 'clients 0 again' });

  // max_clients new clients admitted, the next one refused
  const admitted = [];
  for (let i = 0; i < MAX_CLIENTS; i++) {
    const c = await lib.ipcClient(pool.socket);
    admitted.push(c);
    const a = await c.call(req('eth_chainId'), { timeout: CALL_BOUND });
    assert.equal(a.result, '0x7a69', `client ${i + 1} of ${MAX_CLIENTS}: ${JSON.stringify(a)}`);
  }
  const extra = await lib.ipcClient(pool.socket);
  const line = JSON.parse(await extra.readLine(10000));
  assert.equal(line.error && line.error.code, -32005, JSON.stringify(line));
  assert.match(line.error.message, /too many clients/);
  await lib.withTimeout(extra.ended, 5000, 'the refused client closed');
  assert.equal(sum((await status(pool)).workers.map((w) => w.clients)), MAX_CLIENTS);
  // one leaves, one more comes in
  admitted.shift().destroy();
  await lib.waitFor(() => settled(MAX_CLIENTS - 1), { timeout: 10000, message: 'one client gone' });
  const again = await lib.ipcClient(pool.socket);
  assert.equal((await again.call(req('eth_chainId'), { timeout: CALL_BOUND })).result, '0x7a69');
  again.destroy();
  for (const c of admitted) c.destroy();
  await lib.waitFor(() => settled(0), { timeout: 10000, message: 'clients 0 at the end' });
  figure(`kill storm recovery: counts back to 0 ${tServe - tRec} ms after the storm incl. the breaker closing; ` +
    `${MAX_CLIENTS} new clients admitted, the ${MAX_CLIENTS + 1}th refused -32005, a slot freed and reused`);
  await finish(pool, [/worker died/]);
});
