// hedge.test.js - issue 19, hedged reads (INTERFACE.md section 8 `hedge`),
// seen from outside: fault-injecting upstreams (tests/upstream/fault.js) as
// endpoints, balance = "round_robin" so the slow one gets its share of calls
// whatever its latency, calls over the IPC socket, upstream calls counted at
// the upstreams themselves.
//
// - One of three endpoints answers every 10th of its calls after 500 ms: with
//   hedging off those calls take 500 ms at the client; with hedging on they
//   are hedged to another endpoint, the hedges win, the slow client calls are
//   gone and the client's p99 drops (metrics, status, rpcpoolstat -j show it).
// - no_retry_methods (eth_sendRawTransaction and a configured custom method)
//   are never hedged even when the endpoint they went to is slow: each is
//   seen exactly once at the upstreams, while reads in the same pool are.
// - An error answer does not beat a good one still coming: one endpoint
//   fails after 100 ms, the other answers after 300 ms; every read is
//   answered, hedges both win (after the first attempt failed) and lose
//   (failing while the first still runs). Cancelled attempts give back their
//   in-flight counts and connections (rpcpoolstat shows 0 afterwards).
// - The budget: with every other call of one endpoint slow and quantile 0.5
//   (half the calls would want a hedge), the upstreams see at most
//   budget_percent of the client calls as extra calls (plus one per worker,
//   the race of two workers deciding at once); budget_percent = 0 sends none.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib.js');
const promcheck = require('./promcheck.js');
const { figure } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT, balance: 'round_robin' };
const WORKERS = 2;
const READ = 'web3_clientVersion'; // a plain read: no head, no affinity, no filter
const TEST_MS = 180000;

function pct(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
}

// Fault upstreams named NAMES, all healthy; stopped when T ends.
async function upstreams(t, names) {
  const faults = [];
  t.after(async () => {
    for (const f of faults) await f.stop().catch(() => {});
  });
  for (const name of names) {
    const f = await lib.startFault({});
    f.name = name;
    faults.push(f);
  }
  return faults;
}

// A pool in front of FAULTS with HEDGE settings; stopped when T ends. It
// waits for the prober's first round (eth_chainId at every upstream) so that
// a fault set afterwards cannot change what that round sees.
async function pool(t, faults, hedge, extra = {}) {
  const p = await lib.startPool({
    workers: WORKERS,
    endpoints: faults.map((f) => ({ name: f.name, url: f.url })),
    settings: { ...QUIET, hedge, ...extra },
  });
  t.after(async () => {
    await p.stop().catch(() => {});
  });
  await lib.waitFor(async () => {
    for (const f of faults) if (((await f.state()).by_method.eth_chainId || 0) < 1) return false;
    return true;
  }, { timeout: 10000, message: "the prober's first round" });
  return p;
}

// COUNT calls of METHOD over CONC connections at once; resolves to their
// client latencies in ms. Every call must be answered with a result.
async function load(p, { count, conc = 8, method = READ, params = [] }) {
  const clients = [];
  for (let i = 0; i < conc; i++) clients.push(await lib.ipcClient(p.socket));
  const lat = [];
  let next = 0;
  try {
    await Promise.all(clients.map(async (c) => {
      while (next < count) {
        next++;
        const t0 = process.hrtime.bigint();
        const r = await c.call({ method, params }, { timeout: 20000 });
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        assert.ok(r.result !== undefined, `${method}: ${JSON.stringify(r)}`);
      }
    }));
  } finally {
    for (const c of clients) c.destroy();
  }
  return lat;
}

// Reads, paced, for at least MS ms (bounded in count): every worker gets
// recent latency samples and has its hedge delay computed from them (once a
// second). Resolves to the number of calls made.
async function warm(p, ms = 1600) {
  const until = Date.now() + ms;
  let n = 0;
  while (Date.now() < until && n < 2000) {
    await load(p, { count: 10, conc: 4 });
    n += 10;
    await new Promise((r) => setTimeout(r, 40)); // pacing, not a wait for a condition
  }
  return n;
}

async function upstreamCalls(faults, method) {
  let n = 0;
  for (const f of faults) n += (await f.state()).by_method[method] || 0;
  return n;
}

async function metric(p, name, labels = {}) {
  const m = await p.ctl('metrics', { timeout: 10000 });
  assert.equal(m.ok, true);
  const s = promcheck.parse(m.text).filter((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => x.labels && x.labels[k] === v));
  return s.reduce((a, x) => a + x.value, 0);
}

test('a slow endpoint: hedges are sent and win, the client tail drops', { timeout: TEST_MS }, async (t) => {
  const faults = await upstreams(t, ['a', 'b', 'c']);
  const CALLS = 300;
  const runs = {};
  for (const [label, budget] of [['off', 0], ['on', 50]]) {
    for (const f of faults) await f.setMode('ok');
    // connection headroom (max_connections 32: 16 per worker and endpoint):
    // with the default 10 (5 per worker) the attempts a hedge leaves running
    // on a busy machine could fill a worker's share on every endpoint, and a
    // call then queued behind the slow endpoint's delayed calls, unhedged
    const p = await pool(t, faults, { quantile: 0.95, budget_percent: budget }, { max_connections: 32 });
    const warmCalls = await warm(p);
    await faults[2].setMode('delay', { delay_ms: 500, delay_every: 10 });
    for (const f of faults) await f.resetCounters();
    const lat = await load(p, { count: CALLS });
    const up = await upstreamCalls(faults, READ);
    runs[label] = {
      p50: pct(lat, 50), p99: pct(lat, 99), slow: lat.filter((x) => x >= 400).length, extra: up - CALLS, warmCalls,
      won: await metric(p, 'rpcpool_hedges_total', { outcome: 'won' }),
      sent: await metric(p, 'rpcpool_hedges_sent_total'),
    };
    figure(`hedging ${label}: client p50 ${runs[label].p50.toFixed(1)} ms, p99 ` +
      `${runs[label].p99.toFixed(1)} ms, calls >= 400 ms ${runs[label].slow} of ${CALLS}, ` +
      `extra upstream calls ${runs[label].extra}, hedges sent ${runs[label].sent} won ${runs[label].won}`);
    if (label === 'on') {
      await holdsReturned(p);
      // status (rpcpoolctl) and rpcpoolstat -j show them
      const st = await p.ctl('status', { timeout: 10000 });
      assert.ok(st.hedges && st.hedges.sent > 0 && st.hedges.won > 0, JSON.stringify(st.hedges));
      const sent = st.endpoints.reduce((a, e) => a + e.hedges.sent, 0);
      assert.equal(sent, st.hedges.sent);
      const js = await lib.shmStat(p);
      assert.ok(js.hedges.sent > 0 && js.hedges.won > 0 && js.hedges.calls > 0, JSON.stringify(js.hedges));
      const ctl = await lib.run(lib.daemonBin('rpcpoolctl'), ['-s', p.controlSocket, 'status'], { timeout: 10000 });
      assert.match(ctl.stdout, /HEDGES S\/W/);
      assert.match(ctl.stdout, /hedges: sent [1-9]/);
    }
    assert.equal(await p.stop(), 0);
    lib.assertNoErrors(p);
  }
  // the fault is real: without hedging about 1 call in 30 waits 500 ms
  assert.ok(runs.off.slow >= 3, `hedging off: only ${runs.off.slow} slow calls`);
  assert.equal(runs.off.extra, 0, 'hedging off sends no extra upstream calls');
  assert.equal(runs.off.sent, 0);
  // with hedging, those calls are answered by another endpoint first
  assert.ok(runs.on.won > 0, 'no hedge won');
  assert.ok(runs.on.slow * 3 <= runs.off.slow, `slow calls: off ${runs.off.slow}, on ${runs.on.slow}`);
  assert.ok(runs.on.p99 * 2 < runs.off.p99, `p99: off ${runs.off.p99} ms, on ${runs.on.p99} ms`);
  // within the budget: the warm-up's calls are in its window too
  assert.ok(runs.on.extra * 100 <= 50 * (CALLS + runs.on.warmCalls) + 100 * WORKERS,
    `extra upstream calls ${runs.on.extra} for ${CALLS + runs.on.warmCalls} calls`);
});

test('no_retry_methods are never hedged, even when slow', { timeout: TEST_MS }, async (t) => {
  const faults = await upstreams(t, ['a', 'c']);
  const p = await pool(t, faults, { quantile: 0.95, budget_percent: 100 },
    { no_retry_methods: ['eth_sendRawTransaction', 'debug_customWrite'] });
  await warm(p);
  await faults[1].setMode('delay', { delay_ms: 300 });
  for (const f of faults) await f.resetCounters();
  const SENDS = 8;
  const slow = {};
  for (const method of ['eth_sendRawTransaction', 'debug_customWrite']) {
    // one connection per call: no affinity, round robin over both endpoints
    const lat = [];
    for (let i = 0; i < SENDS; i++) lat.push(...await load(p, { count: 1, conc: 1, method, params: ['0x02'] }));
    slow[method] = lat.filter((x) => x >= 250).length;
    const seen = await upstreamCalls(faults, method);
    figure(`${method}: ${SENDS} client calls, ${seen} upstream calls, ${slow[method]} slow (>= 250 ms)`);
    assert.equal(seen, SENDS, `${method} reached the upstreams ${seen} times for ${SENDS} calls`);
    assert.ok(slow[method] >= 1, `${method}: no call went to the slow endpoint; the test proves nothing`);
  }
  // the same pool does hedge reads that go to the slow endpoint
  const before = await metric(p, 'rpcpool_hedges_total', { outcome: 'won' });
  const lat = await load(p, { count: 20, conc: 2 });
  const won = (await metric(p, 'rpcpool_hedges_total', { outcome: 'won' })) - before;
  figure(`reads in the same pool: ${won} hedges won, p99 ${pct(lat, 99).toFixed(1)} ms`);
  assert.ok(won > 0, 'reads to the slow endpoint were not hedged');
  assert.equal(await p.stop(), 0);
  lib.assertNoErrors(p);
});

test('the budget holds, and budget_percent = 0 sends no hedges', { timeout: TEST_MS }, async (t) => {
  const faults = await upstreams(t, ['a', 'b', 'c']);
  const CALLS = 400;
  for (const budget of [5, 0]) {
    for (const f of faults) await f.setMode('ok');
    const p = await pool(t, faults, { quantile: 0.5, budget_percent: budget });
    const warmCalls = await warm(p);
    await faults[2].setMode('delay', { delay_ms: 400, delay_every: 2 });
    for (const f of faults) await f.resetCounters();
    await load(p, { count: CALLS });
    const extra = (await upstreamCalls(faults, READ)) - CALLS;
    const sent = await metric(p, 'rpcpool_hedges_sent_total');
    const calls = await metric(p, 'rpcpool_hedge_eligible_calls_total');
    figure(`budget ${budget} %: ${CALLS} client calls (+${warmCalls} before), ${extra} extra upstream ` +
      `calls, hedges sent ${sent} of ${calls} eligible calls`);
    if (budget === 0) {
      assert.equal(extra, 0);
      assert.equal(sent, 0);
      assert.equal(calls, 0, 'with hedging off no call is counted for it');
    } else {
      assert.ok(sent > 0, 'no hedge was sent: the budget test proves nothing');
      assert.ok(extra <= sent, `extra upstream calls ${extra} > hedges sent ${sent}`);
      // host-wide: hedges <= budget share of the calls counted, plus the race
      assert.ok(sent * 100 <= budget * calls + 100 * WORKERS, `hedges ${sent} of ${calls} calls`);
      assert.ok(extra * 100 <= budget * (CALLS + warmCalls) + 100 * WORKERS,
        `extra upstream calls ${extra} for ${CALLS + warmCalls} client calls`);
    }
    assert.equal(await p.stop(), 0);
    lib.assertNoErrors(p);
  }
});

// Every endpoint's in-flight attempts and active connections, as rpcpoolstat
// shows them, are back at 0 (cancelled attempts gave theirs back).
async function holdsReturned(p) {
  await lib.waitFor(async () => {
    const s = await lib.shmStat(p);
    return s.endpoints.every((e) => e.inflight === 0 && e.connections.active === 0);
  }, { timeout: 10000, message: 'in-flight and active connection counts back at 0' });
}

test('an error from one attempt does not beat the other one still running', { timeout: TEST_MS }, async (t) => {
  const faults = await upstreams(t, ['a', 'b']);
  const p = await pool(t, faults, { quantile: 0.95, budget_percent: 100 },
    { circuit_breaker: { failure_threshold: 65535 } });
  await warm(p);
  // a fails after 100 ms, b answers after 300 ms: a read whose first attempt
  // went to a has its hedge at b when a fails (it must wait for b: there is
  // no third endpoint to retry on), and a read that went to b sees its
  // hedge fail at a (b's answer must still come through)
  await faults[0].setMode('http500', { fail_delay_ms: 100 });
  await faults[1].setMode('delay', { delay_ms: 300 });
  for (const f of faults) await f.resetCounters();
  const won0 = await metric(p, 'rpcpool_hedges_total', { outcome: 'won' });
  const lost0 = await metric(p, 'rpcpool_hedges_total', { outcome: 'lost' });
  const CALLS = 16;
  const lat = await load(p, { count: CALLS, conc: 4 }); // every call must get a result
  const won = (await metric(p, 'rpcpool_hedges_total', { outcome: 'won' })) - won0;
  const lost = (await metric(p, 'rpcpool_hedges_total', { outcome: 'lost' })) - lost0;
  const atA = (await faults[0].state()).by_method[READ] || 0;
  const atB = (await faults[1].state()).by_method[READ] || 0;
  figure(`${CALLS} reads, all answered (p50 ${pct(lat, 50).toFixed(1)} ms): ${atA} calls at the failing ` +
    `endpoint, ${atB} at the slow one; hedges won ${won}, lost ${lost}`);
  assert.ok(won > 0, 'no hedge answered after its first attempt failed');
  assert.ok(lost > 0, 'no hedge failed while its first attempt was still running');
  assert.equal(atB, CALLS, 'each read reached the slow endpoint once');
  // the same over HTTP on the socket (an HTTP request's stand-in client)
  const hw0 = await metric(p, 'rpcpool_hedges_total', { outcome: 'won' });
  for (let i = 0; i < 6; i++) {
    const r = await lib.httpRequest({ socketPath: p.socket }, {
      method: 'POST', body: { jsonrpc: '2.0', id: `h${i}`, method: READ, params: [] }, timeout: 15000,
    });
    assert.equal(r.status, 200, r.body);
    const v = JSON.parse(r.body);
    assert.deepEqual([v.id, v.result], [`h${i}`, READ], r.body);
  }
  assert.ok((await metric(p, 'rpcpool_hedges_total', { outcome: 'won' })) > hw0, 'no HTTP call was hedged');
  await holdsReturned(p);
  assert.equal(await p.stop(), 0);
  lib.assertNoErrors(p, [/attempt failed|HTTP 500|breaker/i]);
});
