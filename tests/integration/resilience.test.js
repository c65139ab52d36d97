// resilience.test.js - issue 3 end to end, with fault-injecting upstreams
// (tests/upstream/fault.js) as endpoints: failover with zero client errors
// while one endpoint resets / 500s / hangs, and its shared breaker opening
// and closing again; -32002 within milliseconds when everything is down;
// the host-wide GCRA limit across four workers (admitted <= burst +
// rate * elapsed, the excess -32005), batches taking N tokens; 429
// Retry-After holds; no_retry methods; -32603 data; node error objects
// passing through; round_robin / weighted splits and p2c preferring a fast
// endpoint.
//
// Counts are read at fault.js (what really reached an endpoint) and from
// `rpcpoolstat -j` (breaker state, tokens, per-endpoint counters). Client
// load uses net_version, which neither warm-ups nor probes use, so counting
// only that method leaves them out. Figures are printed as "# ..." lines.
'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const lib = require('./lib.js');
const { figure, shmStat: stat, endpointStat } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
// No health probing during a test unless it is the subject.
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };

const req = (method, params = []) => ({ jsonrpc: '2.0', method, params });

function median(xs) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function pct(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
}

// Start fault upstreams (one per element of SPECS: {name, weight, mode,
// ...mode parameters}) and a pool in front of them; everything is stopped
// when test T ends, whatever happened. The upstreams start healthy and get
// their modes only after the prober's first round (it runs at start) has
// reached them, so that probe cannot judge them by the fault under test. Returns {faults, pool}.
async function setup(t, specs, poolOpts) {
  const faults = [];
  t.after(async () => {
    for (const f of faults) await f.stop().catch(() => {});
  });
  for (const s of specs) {
    const { name, weight, mode, ...params } = s;
    const f = await lib.startFault({});
    Object.assign(f, { name, weight, mode, params });
    faults.push(f);
  }
  const endpoints = faults.map((f) => ({ name: f.name, url: f.url, ...(f.weight ? { weight: f.weight } : {}) }));
  const pool = await lib.startPool({ workers: 2, ...poolOpts, endpoints: [...endpoints, ...(poolOpts.more || [])] });
  t.after(async () => {
    await pool.stop().catch(() => {});
  });
  if (faults.length) {
    // The prober's first round starts eth_chainId together with its health
    // probe; once an upstream has received it, a mode set later cannot
    // change what that round sees. Best effort: without a prober (or with
    // one that skips the chain check) the test goes on after 10 s.
    await lib.waitFor(async () => {
      for (const f of faults) if (((await f.state()).by_method.eth_chainId || 0) < 1) return false;
      return true;
    }, { timeout: 10000, message: "the prober's first round" }).catch(() => {});
  }
  for (const f of faults) if (f.mode) await f.setMode(f.mode, f.params);
  return { faults, pool };
}

// Stop POOL, expecting exit 0 and no unexpected error lines.
async function finish(pool, allow = []) {
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool, allow);
}

// How many METHOD calls fault upstream F has received.
async function count(f, method = 'net_version') {
  return (await f.state()).by_method[method] || 0;
}

// Run CLIENTS connections, each making PER sequential METHOD calls (or
// calling until STOP() when PER is Infinity). Returns {ok, errors, codes,
// lat, okLat, t0, lastOk, clients} where errors lists every non-result
// answer or failure and codes counts them by error code.
async function load(pool, { clients = 8, per = 300, method = 'net_version', stop = () => false,
  timeout = 15000, conns } = {}) {
  const cs = conns || await Promise.all(Array.from({ length: clients }, () => lib.ipcClient(pool.socket)));
  const out = { ok: 0, errors: [], codes: {}, lat: [], okLat: [], errLat: {}, t0: Date.now(), lastOk: 0 };
  await Promise.all(cs.map(async (c) => {
    for (let i = 0; i < per && !stop(); i++) {
      const s = Date.now();
      try {
        const r = await c.call(req(method), { timeout });
        const ms = Date.now() - s;
        out.lat.push(ms);
        if (r.error) {
          out.errors.push(JSON.stringify(r.error));
          out.codes[r.error.code] = (out.codes[r.error.code] || 0) + 1;
          (out.errLat[r.error.code] = out.errLat[r.error.code] || []).push(ms);
        } else {
          out.ok++;
          out.okLat.push(ms);
          out.lastOk = Date.now();
        }
      } catch (e) {
        out.errors.push(e.message);
        out.codes.transport = (out.codes.transport || 0) + 1;
        if (c.isClosed()) return;
      }
    }
  }));
  if (!conns) for (const c of cs) c.destroy();
  return out;
}

// The N workers of POOL once every one is running (a pid of 0 must never
// reach kill(2): it would signal this test's own process group).
async function runningWorkers(pool, n) {
  return lib.waitFor(async () => {
    const ws = (await stat(pool)).workers.filter((w) => w.kind === 'worker');
    return ws.length === n && ws.every((w) => w.state === 'running' && w.pid > 1) ? ws : null;
  }, { timeout: 15000, message: `${n} workers running` });
}

// Send SIG to the worker PID (never to a group).
function signal(pid, sig) {
  assert.ok(Number.isInteger(pid) && pid > 1, `bad worker pid ${pid}`);
  process.kill(pid, sig);
}

// Open N connections served by each worker of POOL (the other workers are
// SIGSTOPped meanwhile: with EPOLLEXCLUSIVE an idle host would hand every
// connection to one worker). Returns the clients.
async function spreadClients(pool, n, nworkers) {
  const workers = await runningWorkers(pool, nworkers);
  const state = (pid) => {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s[s.lastIndexOf(')') + 2];
  };
  const all = [];
  for (const target of workers) {
    const others = workers.filter((w) => w !== target);
    for (const w of others) signal(w.pid, 'SIGSTOP');
    try {
      for (const w of others) {
        await lib.waitFor(() => state(w.pid) === 'T', { timeout: 5000, interval: 5, message: `worker ${w.pid} stopped` });
      }
      const cs = await Promise.all(Array.from({ length: n }, () => lib.ipcClient(pool.socket)));
      all.push(...cs);
      await lib.waitFor(async () => {
        const w = (await stat(pool)).workers.find((x) => x.slot === target.slot);
        return w.clients >= n;
      }, { timeout: 10000, message: `worker ${target.pid} holding its ${n} clients` });
    } finally {
      for (const w of others) signal(w.pid, 'SIGCONT');
    }
  }
  return all;
}

/* ------------------------------------------------------------------ */

// Attempts are bounded generously (a loaded machine running the sanitized
// build answers slowly), except for `hang`, where the bound is what moves a
// request off the hung endpoint.
const FAILOVER = {
  ...QUIET,
  attempt_timeout_ms: 2000,
  request_timeout_ms: 6000,
  retries: 2,
  circuit_breaker: { failure_threshold: 5, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
};

// One endpoint of three fails in MODE under load: zero client errors, its
// breaker opens; healed, it goes half_open after recovery_timeout_ms and
// closes on a trial success (unless ONLY_OPEN). BALANCE: round_robin by
// default, so that light traffic after the healing surely reaches the
// endpoint for its trial (p2c may never pick an endpoint whose latency
// average is the highest: see the p2c run).
async function failover(t, mode, { balance = 'round_robin', onlyOpen = false } = {}) {
  const timeouts = mode === 'hang' ? { attempt_timeout_ms: 500, request_timeout_ms: 5000 } : {};
  const { faults, pool } = await setup(t, [{ name: 'good1' }, { name: 'bad' }, { name: 'good2' }],
    { settings: { ...FAILOVER, ...timeouts, balance } });
  const bad = faults[1];
  const warm = await load(pool, { clients: 2, per: 20 });
  assert.equal(warm.errors.length, 0, warm.errors.slice(0, 3).join('\n'));

  await bad.setMode(mode);
  const tMode = Date.now();
  let done = false;
  let tOpen = null;
  const states = new Set();
  const sampler = (async () => {
    while (!done) {
      const e = await endpointStat(pool, 'bad');
      states.add(e.breaker);
      // half_open is only reached through open (a slow sample may miss the
      // open period itself when recovery_timeout_ms is short)
      if ((e.breaker === 'open' || e.breaker === 'half_open') && tOpen === null) tOpen = Date.now();
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const res = await load(pool, { clients: 8, per: 300 });
  const sent = 8 * 300;
  if (tOpen === null && balance === 'p2c') {
    // p2c picks the cheaper of two: an endpoint whose latency average from
    // the warm-up is the highest gets nothing until that average decays
    // (half-life 1 s), so keep the load on until its breaker opens (bounded)
    const until = Date.now() + 15000;
    const more = await load(pool, { clients: 8, per: Infinity, stop: () => tOpen !== null || Date.now() > until });
    res.ok += more.ok;
    res.errors.push(...more.errors);
    res.lat.push(...more.lat);
  }
  // with hedged reads the load can end before the hung attempts it left on
  // the bad endpoint reach attempt_timeout_ms and count as failures: the
  // breaker opens then, after the load, and the sampler keeps looking
  await lib.waitFor(() => tOpen !== null, { timeout: 10000, interval: 25 }).catch(() => {});
  done = true;
  await sampler;
  const eBad = await endpointStat(pool, 'bad');
  const atBad = await count(bad);
  figure(`failover ${mode} (${balance}): ${res.ok + res.errors.length} requests, ${res.errors.length} client errors, ` +
    `p50 ${median(res.lat)} ms p99 ${pct(res.lat, 99)} ms; bad endpoint got ${atBad} net_version, ` +
    `failed ${eBad.requests.failed}, retried ${eBad.requests.retried}; breaker open (or past it) ` +
    `${tOpen === null ? 'never seen' : `${tOpen - tMode} ms after the fault began`}; states seen ${[...states]}`);
  assert.equal(res.errors.length, 0, `client errors:\n${res.errors.slice(0, 5).join('\n')}`);
  assert.ok(res.ok >= sent, `${res.ok} of at least ${sent} answered`);
  assert.ok(tOpen !== null, `breaker of the bad endpoint never seen open or half_open (states: ${[...states]})`);
  assert.ok(eBad.requests.failed >= FAILOVER.circuit_breaker.failure_threshold);
  // the open breaker kept most traffic off it
  assert.ok(atBad < res.ok / 3, `bad endpoint got ${atBad} of ${res.ok}`);

  if (onlyOpen) {
    await finish(pool);
    return;
  }
  // heal it; without traffic the breaker turns half_open after the
  // recovery timeout, then a trial success closes it
  await bad.setMode('ok');
  const tHeal = Date.now();
  const openWas = (await endpointStat(pool, 'bad')).breaker;
  await lib.waitFor(async () => (await endpointStat(pool, 'bad')).breaker === 'half_open',
    { timeout: 10000, message: 'breaker half_open after recovery_timeout_ms' });
  const tHalf = Date.now();
  const before = await count(bad);
  let stopLight = false;
  const light = load(pool, { clients: 2, per: Infinity, stop: () => stopLight });
  let tClosed;
  try {
    await lib.waitFor(async () => (await endpointStat(pool, 'bad')).breaker === 'closed',
      { timeout: 10000, message: 'breaker closed after a trial success' });
    tClosed = Date.now();
    await lib.waitFor(async () => (await count(bad)) >= before + 10,
      { timeout: 10000, message: 'the healed endpoint serving again' });
  } finally {
    stopLight = true;
  }
  const lr = await light;
  assert.equal(lr.errors.length, 0, lr.errors.slice(0, 3).join('\n'));
  figure(`failover ${mode}: healed while ${openWas}; half_open ${tHalf - tHeal} ms after healing ` +
    `(recovery_timeout_ms ${FAILOVER.circuit_breaker.recovery_timeout_ms}), closed ${tClosed - tHalf} ms ` +
    'after traffic resumed');
  await finish(pool);
}

describe('failover and shared breakers', () => {
  for (const mode of ['reset', 'http500', 'hang']) {
    test(`one endpoint of three in ${mode}: no client errors, breaker opens, closes when healed`,
      (t) => failover(t, mode));
  }

  test('p2c (the default): no client errors while one endpoint of three resets, its breaker opens',
    (t) => failover(t, 'reset', { balance: 'p2c', onlyOpen: true }));

  test('every endpoint down: -32002 within milliseconds once the breakers are open', async (t) => {
    const ports = await Promise.all([lib.freePort(), lib.freePort(), lib.freePort()]);
    const names = ['down1', 'down2', 'down3'];
    const { pool } = await setup(t, [], {
      settings: {
        ...QUIET,
        connection_timeout_ms: 1000,
        circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600000, half_open_max_attempts: 1 },
      },
      more: ports.map((p, i) => ({ name: names[i], url: `http://127.0.0.1:${p}` })),
    });
    const c = await lib.ipcClient(pool.socket);
    // until the breakers are open, answers are -32603 (connects refused) or
    // already -32002; never a hang
    const early = {};
    let opened = false;
    for (let i = 0; i < 200 && !opened; i++) {
      const r = await c.call(req('net_version'), { timeout: 5000 });
      assert.ok(r.error, JSON.stringify(r));
      assert.ok([-32603, -32002].includes(r.error.code), JSON.stringify(r));
      early[r.error.code] = (early[r.error.code] || 0) + 1;
      if (r.error.code === -32603) {
        assert.match(r.error.message, /^Upstream error/);
        assert.ok(Array.isArray(r.error.data) && r.error.data.length >= 1, JSON.stringify(r));
        for (const a of r.error.data) {
          assert.ok(names.includes(a.endpoint), JSON.stringify(a));
          assert.match(a.error, /connect/i);
        }
      }
      const s = await stat(pool);
      opened = s.endpoints.every((e) => e.breaker === 'open');
    }
    assert.ok(opened, 'all breakers open');
    const lat = [];
    for (let i = 0; i < 200; i++) {
      const s = process.hrtime.bigint();
      const r = await c.call(req('net_version'), { timeout: 5000 });
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      assert.equal(r.error && r.error.code, -32002, JSON.stringify(r));
      assert.match(r.error.message, /^No upstream available/);
    }
    // a batch: one -32002 per call
    const arr = await c.call([{ jsonrpc: '2.0', id: 'x1', method: 'net_version', params: [] },
      { jsonrpc: '2.0', id: 'x2', method: 'eth_chainId', params: [] }]);
    assert.equal(arr.length, 2);
    assert.ok(arr.every((a) => a.error.code === -32002), JSON.stringify(arr));
    c.destroy();
    figure(`all down: before the breakers opened ${JSON.stringify(early)}; then 200 x -32002, ` +
      `median ${median(lat).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms`);
    assert.ok(median(lat) < 50, `median ${median(lat)} ms`);
    assert.ok(pct(lat, 99) < 500, `p99 ${pct(lat, 99)} ms`);
    await finish(pool);
  });
});

/* ------------------------------------------------------------------ */

describe('rate limits', () => {
  test('four workers share one limit: admitted <= burst + rate * elapsed, excess -32005', async (t) => {
    const RATE = 50; // per second
    const BURST = 10;
    const QUEUE_MS = 300;
    const { faults, pool } = await setup(t, [{ name: 'limited' }], {
      workers: 4,
      settings: {
        ...QUIET,
        min_connections: 0,
        max_connections: 16,
        rate_limit: { max_requests: RATE, window_ms: 1000, burst_size: BURST },
      },
      server: { queue_timeout_ms: QUEUE_MS },
    });
    const f = faults[0];
    const conns = await spreadClients(pool, 4, 4); // 16 clients, 4 on each worker
    await lib.waitFor(async () => (await endpointStat(pool, 'limited')).tokens >= BURST - 0.01,
      { timeout: 5000, message: 'a full bucket' });
    await f.resetCounters();
    const DURATION = 3000;
    const tEnd = Date.now() + DURATION;
    const res = await load(pool, { conns, per: Infinity, stop: () => Date.now() >= tEnd });
    const elapsed = (res.lastOk - res.t0) / 1000;
    const st = await f.state();
    const admitted = st.requests + st.health_requests; // everything that took a token
    const bound = BURST + RATE * elapsed;
    const workersUsed = (await stat(pool)).workers.filter((w) => w.kind === 'worker' && w.requests > 0).length;
    const limLat = res.errLat[-32005] || [];
    figure(`rate limit (4 workers, 16 clients, ${RATE}/s burst ${BURST}): admitted ${admitted} in ` +
      `${elapsed.toFixed(3)} s, bound ${bound.toFixed(1)} (${((100 * admitted) / bound).toFixed(1)}%); ` +
      `${res.codes[-32005] || 0} x -32005 (latency median ${median(limLat)} ms, max ${Math.max(...limLat)} ms); ` +
      `admitted latency max ${Math.max(...res.okLat)} ms; workers serving ${workersUsed}`);
    for (const c of conns) c.destroy();
    assert.equal(await count(f), res.ok, 'every admitted call answered with its result');
    assert.ok(admitted <= bound, `admitted ${admitted} > bound ${bound}`);
    assert.ok(admitted >= 0.8 * bound, `admitted ${admitted} far below bound ${bound}`);
    assert.ok((res.codes[-32005] || 0) > 0, 'excess requests get -32005');
    const other = Object.keys(res.codes).filter((k) => k !== '-32005');
    assert.deepEqual(other, [], `other errors: ${res.errors.filter((e) => !e.includes('-32005')).slice(0, 3)}`);
    assert.ok(res.errors.every((e) => /Limit exceeded/.test(e)));
    assert.ok(Math.max(...limLat) <= QUEUE_MS + 1000, '-32005 comes within queue_timeout_ms');
    assert.ok(Math.max(...res.okLat) <= QUEUE_MS + 1000, 'admitted calls waited at most queue_timeout_ms');
    assert.equal(workersUsed, 4, 'all four workers served');
    await finish(pool);
  });

  test('a batch of N calls takes N tokens', async (t) => {
    // 20 tokens refilling at one an hour: the bucket is all but static
    const { faults, pool } = await setup(t, [{ name: 'slow-bucket' }], {
      workers: 2,
      settings: { ...QUIET, min_connections: 0, rate_limit: { max_requests: 1, window_ms: 3600000, burst_size: 20 } },
      server: { queue_timeout_ms: 200 },
    });
    const f = faults[0];
    const c = await lib.ipcClient(pool.socket);
    let seq = 0;
    const batch = (n) => Array.from({ length: n }, () => ({ jsonrpc: '2.0', id: `b${++seq}`, method: 'net_version', params: [] }));
    const tokens = async () => (await endpointStat(pool, 'slow-bucket')).tokens;
    // Every call that reached the endpoint took a token, probes by the
    // prober (which take tokens too) included.
    const used = async () => {
      const st = await f.state();
      return st.requests + st.health_requests;
    };
    const settled = () => lib.waitFor(async () => {
      const tk = await tokens();
      return Math.abs(20 - tk - (await used())) < 0.2 ? tk : null;
    }, { timeout: 5000, message: 'tokens left == 20 - calls that reached the endpoint' });
    const steps = [];
    const step = async (n, ok) => {
      const b = batch(n);
      const before = await count(f);
      const tk0 = await settled();
      const r = await c.call(n === 1 ? b[0] : b, { timeout: 5000 });
      const answers = Array.isArray(r) ? r : [r];
      assert.equal(answers.length, n);
      if (ok) assert.ok(answers.every((a) => a.result === '31337'), JSON.stringify(answers));
      else {
        assert.ok(answers.every((a) => a.error && a.error.code === -32005), JSON.stringify(answers));
        assert.deepEqual(answers.map((a) => a.id).sort(), b.map((x) => x.id).sort());
      }
      assert.equal((await count(f)) - before, ok ? n : 0);
      const tk = await settled();
      steps.push(`${n}:${ok ? 'ok' : '-32005'}:${tk.toFixed(2)}`);
      assert.ok(Math.abs(tk0 - tk - (ok ? n : 0)) < 0.2, `a batch of ${n} took ${tk0 - tk} tokens (${steps})`);
      return tk;
    };
    await step(7, true);
    let left = await step(5, true);
    const k = Math.floor(left + 0.05); // whole tokens left (8 unless the prober took some)
    assert.ok(k >= 2, `${left} tokens left`);
    await step(k + 1, false); // one call more than there are tokens: none of it goes
    await step(1, true);
    left = await step(k - 1, true); // exactly what is left
    assert.ok(left < 0.2);
    await step(1, false);
    assert.equal(await count(f), 7 + 5 + 1 + (k - 1));
    figure(`batch tokens: batch size:outcome:tokens left ${steps.join(' ')}; calls at the endpoint ${await count(f)}`);
    c.destroy();
    await finish(pool);
  });

  test('429 with Retry-After holds that endpoint back while the others serve', async (t) => {
    const RETRY_AFTER = 2;
    const { faults, pool } = await setup(t, [{ name: 'r1' }, { name: 'limited429', mode: '429', retry_after: RETRY_AFTER }, { name: 'r3' }], {
      settings: {
        ...QUIET,
        balance: 'round_robin',
        min_connections: 0,
        circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
      },
    });
    const [r1, held, r3] = faults;
    let stop = false;
    const running = load(pool, { clients: 4, per: Infinity, stop: () => stop });
    try {
      await lib.waitFor(async () => (await count(held)) >= 1, { timeout: 10000, interval: 10, message: 'a first 429' });
      const t1 = Date.now();
      await new Promise((r) => setTimeout(r, 150)); // calls already in flight to it land
      const c1 = await count(held);
      const others1 = (await count(r1)) + (await count(r3));
      // held back: no new request for the Retry-After period
      while (Date.now() < t1 + RETRY_AFTER * 1000 - 250) {
        assert.equal(await count(held), c1, `request to the held endpoint ${Date.now() - t1} ms after its 429`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const others2 = (await count(r1)) + (await count(r3));
      assert.ok(others2 - others1 >= 50, `the others served meanwhile: ${others2 - others1}`);
      // after the hold it is tried again
      await lib.waitFor(async () => (await count(held)) > c1, { timeout: 5000, interval: 10, message: 'tried again after the hold' });
      const t2 = Date.now();
      figure(`429 hold: Retry-After ${RETRY_AFTER} s; first burst ${c1} call(s); next call ${t2 - t1} ms later; ` +
        `others served ${others2 - others1} calls meanwhile`);
      assert.ok(t2 - t1 >= RETRY_AFTER * 1000 - 150, `held only ${t2 - t1} ms`);
    } finally {
      stop = true;
    }
    const res = await running;
    assert.equal(res.errors.length, 0, res.errors.slice(0, 3).join('\n'));
    await finish(pool);
  });
});

/* ------------------------------------------------------------------ */

describe('retries and error answers', () => {
  const TX = ['0x02f86c8201a4808459682f0084773594008252089400000000000000000000000000000000000000008080c0'];

  test('no_retry: a sent eth_sendRawTransaction that fails is not retried; -32603 lists the attempt', async (t) => {
    const { faults, pool } = await setup(t, [{ name: 'broken', mode: 'http500' }, { name: 'fine' }], {
      workers: 1,
      settings: {
        ...QUIET,
        min_connections: 0,
        balance: 'random',
        affinity_ms: 0, // every send routed afresh (affinity would keep them on one endpoint)
        retries: 2,
        circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
      },
    });
    const [broken, fine] = faults;
    const c = await lib.ipcClient(pool.socket);
    let refused = 0;
    let served = 0;
    for (let i = 0; i < 60 && (refused < 3 || served < 3); i++) {
      const b0 = await count(broken, 'eth_sendRawTransaction');
      const f0 = await count(fine, 'eth_sendRawTransaction');
      const r = await c.call(req('eth_sendRawTransaction', TX), { timeout: 10000 });
      const db = (await count(broken, 'eth_sendRawTransaction')) - b0;
      const df = (await count(fine, 'eth_sendRawTransaction')) - f0;
      if (r.error) {
        refused++;
        assert.equal(r.error.code, -32603, JSON.stringify(r));
        assert.match(r.error.message, /^Upstream error/);
        assert.deepEqual(r.error.data, [{ endpoint: 'broken', error: 'HTTP 500' }]);
        assert.deepEqual([db, df], [1, 0], 'sent once to the failing endpoint, never again');
      } else {
        served++;
        assert.equal(r.result, 'eth_sendRawTransaction');
        assert.deepEqual([db, df], [0, 1]);
      }
    }
    assert.ok(refused >= 3 && served >= 3, `refused ${refused}, served ${served}`);
    // a read that meets the same failure is retried on the other endpoint
    let retried = 0;
    for (let i = 0; i < 60 && retried < 3; i++) {
      const b0 = await count(broken);
      const r = await c.call(req('net_version'), { timeout: 10000 });
      assert.equal(r.result, '31337', JSON.stringify(r));
      if ((await count(broken)) > b0) retried++;
    }
    assert.ok(retried >= 3);
    figure(`no_retry: eth_sendRawTransaction -> ${refused} answered -32603 after exactly 1 send to the 500ing ` +
      `endpoint, ${served} served by the other; net_version retried ${retried}/${retried}`);
    c.destroy();
    await finish(pool);
  });

  test('no_retry: retried when the first endpoint refuses the connection', async (t) => {
    const port = await lib.freePort();
    const { faults, pool } = await setup(t, [{ name: 'fine' }], {
      workers: 1,
      settings: {
        ...QUIET,
        min_connections: 0,
        balance: 'round_robin',
        affinity_ms: 0, // every send routed afresh (affinity would keep them on one endpoint)
        retries: 2,
        circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
      },
      more: [{ name: 'refusing', url: `http://127.0.0.1:${port}` }],
    });
    const fine = faults[0];
    const c = await lib.ipcClient(pool.socket);
    const N = 20;
    for (let i = 0; i < N; i++) {
      const r = await c.call(req('eth_sendRawTransaction', TX), { timeout: 10000 });
      assert.equal(r.result, 'eth_sendRawTransaction', JSON.stringify(r));
    }
    const refusing = await endpointStat(pool, 'refusing');
    const got = await count(fine, 'eth_sendRawTransaction');
    figure(`no_retry: ${N} eth_sendRawTransaction with a refusing endpoint: all answered, ${got} reached ` +
      `the live endpoint, ${refusing.requests.retried} retried after a refused connect`);
    assert.equal(got, N, 'each transaction sent exactly once');
    assert.ok(refusing.requests.retried >= N / 2 - 1, JSON.stringify(refusing.requests));
    c.destroy();
    await finish(pool);
  });

  test('-32603 data lists every attempt when the retries are spent', async (t) => {
    const names = ['e500a', 'e500b', 'e500c'];
    const { faults, pool } = await setup(t, names.map((name) => ({ name, mode: 'http500' })), {
      settings: {
        ...QUIET,
        min_connections: 0,
        retries: 2,
        circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
      },
    });
    const c = await lib.ipcClient(pool.socket);
    for (let i = 0; i < 5; i++) {
      const r = await c.call(req('net_version'), { timeout: 10000 });
      assert.equal(r.error.code, -32603, JSON.stringify(r));
      assert.match(r.error.message, /^Upstream error/);
      assert.ok(Array.isArray(r.error.data), JSON.stringify(r));
      assert.deepEqual(r.error.data.map((a) => a.endpoint).sort(), names, 'one attempt on each endpoint');
      assert.ok(r.error.data.every((a) => a.error === 'HTTP 500'), JSON.stringify(r.error.data));
    }
    let total = 0;
    for (const f of faults) total += await count(f);
    assert.equal(total, 15, 'three attempts per call, no more');
    c.destroy();
    await finish(pool);
  });

  test('JSON-RPC error objects from the node pass through and are not failures', async (t) => {
    const { faults, pool } = await setup(t, [{ name: 'reverting', mode: 'rpc_error' }], {
      settings: { ...QUIET, circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 60000, half_open_max_attempts: 1 } },
    });
    const c = await lib.ipcClient(pool.socket);
    for (let i = 0; i < 20; i++) {
      const r = await c.call({ jsonrpc: '2.0', id: `rv${i}`, method: 'eth_call', params: [{}, 'latest'] });
      assert.deepEqual(r, { jsonrpc: '2.0', id: `rv${i}`, error: { code: 3, message: 'execution reverted', data: '0x' } });
    }
    const e = await endpointStat(pool, 'reverting');
    assert.equal(e.breaker, 'closed');
    assert.equal(e.requests.failed, 0);
    assert.equal(e.requests.retried, 0);
    assert.ok(e.requests.ok >= 20, JSON.stringify(e.requests));
    assert.equal(await count(faults[0], 'eth_call'), 20);
    c.destroy();
    await finish(pool);
  });
});

/* ------------------------------------------------------------------ */

describe('balancing', () => {
  // Send TOTAL net_version calls through 4 clients; returns the per-endpoint
  // counts at fault.js.
  async function split(pool, faults, total) {
    const res = await load(pool, { clients: 4, per: total / 4 });
    assert.equal(res.errors.length, 0, res.errors.slice(0, 3).join('\n'));
    return Promise.all(faults.map((f) => count(f)));
  }

  function within(counts, ideal) {
    return counts.every((n, i) => Math.abs(n - ideal[i]) <= 0.1 * ideal[i]);
  }

  test('round_robin splits evenly', async (t) => {
    const { faults, pool } = await setup(t, [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
      { settings: { ...QUIET, balance: 'round_robin' } });
    const counts = await split(pool, faults, 600);
    figure(`round_robin over 600: ${counts.join(' / ')} (${counts.map((n) => ((100 * n) / 600).toFixed(1) + '%').join(' ')})`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 600);
    assert.ok(within(counts, [200, 200, 200]), `split ${counts}`);
    await finish(pool);
  });

  test('weighted 1,2,3 splits by weight', async (t) => {
    const { faults, pool } = await setup(t, [{ name: 'w1', weight: 1 }, { name: 'w2', weight: 2 }, { name: 'w3', weight: 3 }],
      { settings: { ...QUIET, balance: 'weighted' } });
    const counts = await split(pool, faults, 600);
    figure(`weighted 1:2:3 over 600: ${counts.join(' / ')} (${counts.map((n) => ((100 * n) / 600).toFixed(1) + '%').join(' ')})`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 600);
    assert.ok(within(counts, [100, 200, 300]), `split ${counts}`);
    await finish(pool);
  });

  test('p2c prefers a fast endpoint over a slow one', async (t) => {
    const { faults, pool } = await setup(t, [{ name: 'fast' }, { name: 'slow', mode: 'delay', delay_ms: 80 }],
      { settings: { ...QUIET, balance: 'p2c' } });
    const counts = await split(pool, faults, 400);
    const share = counts[0] / (counts[0] + counts[1]);
    const e = await stat(pool);
    const ewma = e.endpoints.map((x) => `${x.name} avg ${x.latency_ms.avg} ms`).join(', ');
    figure(`p2c fast vs slow (80 ms) over 400: ${counts.join(' / ')} (fast ${(100 * share).toFixed(1)}%); ${ewma}`);
    assert.ok(share >= 0.8, `fast endpoint share ${share}`);
    await finish(pool);
  });
});
