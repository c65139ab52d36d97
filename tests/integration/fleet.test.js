// fleet.test.js - fleet mode (docs/interface.md section 8, issue 18): two
// rpcpoold instances (separate sockets, control sockets and shm names, standing
// for two hosts) in front of the same fault upstream, sharing one redis-server
// of the test's own (loopback, persistence off, stopped by pid).
//
// The upstream counts the calls it receives by method: instance A's clients
// call eth_gasPrice, B's call net_version, so each host's share is known. The
// prober probes once at start (eth_blockNumber / eth_chainId) and those calls
// take tokens too, so bounds are checked on every call the upstream counted.
//
// Quota: RATE per second, burst BURST, for the whole fleet; hosts = 2, so one
// lease is at most BURST / 2 tokens (rp_fleet_lease.h) and the fleet bound over
// t seconds is BURST + RATE * t + 2 * LEASE.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib.js');
const promcheck = require('./promcheck.js');

const RATE = 20;
const BURST = 10;
const HOSTS = 2;
const LEASE = Math.max(1, Math.floor(BURST / HOSTS));

let prefixSeq = 0;

function fleetSettings(redis, { policy = 'fair_share', prefix, extra = {}, redisAddr } = {}) {
  return {
    rate_limit: { max_requests: RATE, window_ms: 1000, burst_size: BURST },
    min_connections: 0,
    health_check_interval_ms: 60000,
    retries: 0,
    circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 10000, half_open_max_attempts: 1 },
    fleet: { redis: redisAddr || redis.addr, prefix, hosts: HOSTS, on_redis_down: policy },
    ...extra,
  };
}

// Two pools on REDIS in front of FAULT, A with policy PA, B with PB. NET:
// {url, redisAddr, wrapA, wrapB} to reach both over other addresses from
// network namespaces.
async function twoHosts(redis, fault, { pa = 'fair_share', pb = 'fair_share', extra = {}, net = {} } = {}) {
  const prefix = `rpcpool:test${process.pid}x${++prefixSeq}:`;
  const server = { queue_timeout_ms: 300 };
  const ep = net.url || fault;
  const redisAddr = net.redisAddr;
  const [a, b] = await Promise.all([
    lib.startPool({ endpoints: [ep], workers: 2, server, wrap: net.wrapA,
      settings: fleetSettings(redis, { policy: pa, prefix, extra, redisAddr }) }),
    lib.startPool({ endpoints: [ep], workers: 2, server, wrap: net.wrapB,
      settings: fleetSettings(redis, { policy: pb, prefix, extra, redisAddr }) }),
  ]);
  return { a, b, prefix };
}

async function fleetOf(pool) {
  const st = await pool.ctl('status');
  assert.ok(st.fleet, `status has no fleet object: ${JSON.stringify(st).slice(0, 400)}`);
  return st.fleet;
}

function waitConnected(pool, connected = true, timeout = 15000) {
  return lib.waitFor(async () => (await fleetOf(pool)).connected === connected,
    { timeout, message: `fleet connected=${connected}` });
}

async function agentPid(pool) {
  const st = await pool.ctl('status');
  const w = (st.workers || []).find((x) => x.kind === 'fleet');
  return w && w.state === 'running' ? w.pid : 0;
}

// Clients of POOL calling METHOD for MS ms, CONC at once, each at most
// MAX_CALLS calls (a refusal pauses 5 ms). Resolves to {ok, limited, other}.
async function load(pool, method, ms, { conc = 4, maxCalls = 400 } = {}) {
  const clients = await Promise.all(Array.from({ length: conc }, () => lib.ipcClient(pool.socket)));
  const end = Date.now() + ms;
  const res = { ok: 0, limited: 0, other: 0 };
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < maxCalls && Date.now() < end; i++) {
      const r = await c.call({ method, params: [] }, { timeout: 15000 });
      if (r.result !== undefined) {
        res.ok++;
      } else {
        if (r.error && r.error.code === -32005) res.limited++;
        else res.other++;
        await lib.delay(5);
      }
    }
  }));
  for (const c of clients) c.destroy();
  return res;
}

// Calls the upstream counted since its last reset: all, A's, B's.
async function counted(fault) {
  const st = await fault.state();
  const m = st.by_method || {};
  return { all: st.requests, a: m.eth_gasPrice || 0, b: m.net_version || 0 };
}

// The breaker state of POOL's one endpoint.
async function epState(pool) {
  return (await pool.ctl('status')).endpoints[0].breaker;
}

// FAULT fails until host A's breaker opens (only A sends: its clients call
// eth_gasPrice), then heals; resolves to A's client, for the caller to close.
async function openBreakerOf(a, fault) {
  await fault.setMode('http500');
  const ca = await lib.ipcClient(a.socket);
  await lib.waitFor(async () => {
    await ca.call({ method: 'eth_gasPrice', params: [] });
    return (await epState(a)) === 'open';
  }, { timeout: 10000, interval: 20, message: "A's breaker open" });
  await fault.setMode('ok');
  return ca;
}

test('two hosts together stay within the fleet quota', async () => {
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const { a, b } = await twoHosts(redis, fault);
  await Promise.all([waitConnected(a), waitConnected(b)]);
  await fault.resetCounters();
  const t0 = Date.now();
  const [ra, rb] = await Promise.all([load(a, 'eth_gasPrice', 4000), load(b, 'net_version', 4000)]);
  const c = await counted(fault);
  const t = (Date.now() - t0) / 1000;
  const bound = BURST + RATE * t + HOSTS * LEASE;
  lib.figure(`fleet quota: ${c.all} calls reached the upstream in ${t.toFixed(2)} s ` +
    `(A ${c.a}, B ${c.b}); bound burst + rate*t + ${HOSTS} leases = ${bound.toFixed(1)}; ` +
    `answered A ok ${ra.ok} limited ${ra.limited}, B ok ${rb.ok} limited ${rb.limited}`);
  assert.ok(c.all <= bound, `${c.all} calls > bound ${bound}`);
  // the quota is used, by both hosts (not starved by leasing)
  assert.ok(c.all >= RATE * t * 0.5, `only ${c.all} calls in ${t} s`);
  assert.ok(c.a > 0 && c.b > 0, `both hosts served: A ${c.a}, B ${c.b}`);
  assert.equal(ra.other + rb.other, 0, 'no answers but results and rate limits');
  const fa = await fleetOf(a);
  assert.equal(fa.mode, 'sharing');
  assert.ok(fa.tokens_leased >= fa.tokens_spent && fa.tokens_spent > 0, JSON.stringify(fa));
  // an endpoint's tokens are what this host holds of the fleet's: at most a lease
  const epTokens = (await a.ctl('status')).endpoints[0].tokens;
  assert.ok(epTokens <= LEASE, `tokens ${epTokens}, ${JSON.stringify(fa)}`);
  // metrics
  const text = (await a.ctl('metrics')).text;
  const samples = promcheck.parse(text); // throws when the exposition is invalid
  const v = (name) => (samples.find((x) => x.name === name) || {}).value;
  assert.equal(v('rpcpool_fleet_connected'), 1);
  assert.ok(v('rpcpool_fleet_tokens_spent_total') > 0);
  assert.match(text, /rpcpool_fleet_connected 1/);
  assert.match(text, /rpcpool_fleet_tokens_leased_total \d+/);
  // rpcpoolstat -j shows the same
  const s = await lib.shmStat(b);
  assert.equal(s.fleet.connected, true);
  assert.equal(s.fleet.on_redis_down, 'fair_share');
  // and the tables of rpcpoolctl status and rpcpoolstat -1
  const ctl = await lib.run(lib.daemonBin('rpcpoolctl'), ['-c', a.conf, 'status']);
  assert.match(ctl.stdout, /fleet: connected, mode sharing \(on_redis_down fair_share, hosts 2\); tokens leased \d+/);
  const tab = await lib.run(lib.daemonBin('rpcpoolstat'), ['-1', '-n', b.shmName]);
  assert.match(tab.stdout, /fleet: connected, mode sharing/);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  lib.assertNoErrors(a);
  lib.assertNoErrors(b);
  await redis.stop();
});

test('a breaker opened by one host stops the other within a second; a 429 hold too', async () => {
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const { a, b, prefix } = await twoHosts(redis, fault);
  await Promise.all([waitConnected(a), waitConnected(b)]);

  // the upstream fails; only A sends, until A's breaker opens
  const ca = await openBreakerOf(a, fault);
  const opened = Date.now();
  await lib.waitFor(async () => (await epState(b)) === 'open',
    { timeout: 3000, interval: 10, message: "B's breaker open from A's verdict" });
  const lag = Date.now() - opened;
  lib.figure(`breaker verdict: B's breaker open ${lag} ms after A's opened`);
  assert.ok(lag <= 1000, `B's breaker opened ${lag} ms after A's`);
  // B sends nothing to the endpoint now
  await fault.resetCounters();
  const cb = await lib.ipcClient(b.socket);
  for (let i = 0; i < 5; i++) {
    const r = await cb.call({ method: 'net_version', params: [] });
    assert.ok(r.error, `B answered from an endpoint its fleet judged down: ${JSON.stringify(r)}`);
  }
  assert.equal((await counted(fault)).b, 0, "B's calls reached the upstream");
  const fb = await fleetOf(b);
  const fa = await fleetOf(a);
  assert.ok(fb.verdicts_received >= 1, JSON.stringify(fb));
  assert.ok(fa.verdicts_sent >= 1, JSON.stringify(fa));
  assert.equal(fa.verdicts_received, 0, 'A got its own verdict back');
  assert.equal(fb.verdicts_sent, 0, 'B published the verdict it applied');
  // a host that starts while the verdict holds finds it in Redis
  const c3 = await lib.startPool({ endpoints: [fault], workers: 1, server: { queue_timeout_ms: 300 },
    settings: fleetSettings(redis, { prefix }) });
  await waitConnected(c3);
  await lib.waitFor(async () => (await epState(c3)) === 'open',
    { timeout: 3000, interval: 10, message: "a third host's breaker open from the stored verdict" });
  assert.equal(await c3.stop(), 0);
  ca.destroy();
  cb.destroy();
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);

  // Retry-After: a 429 with Retry-After 3 on A holds B back too
  const { a: a2, b: b2 } = await twoHosts(redis, fault);
  await Promise.all([waitConnected(a2), waitConnected(b2)]);
  await fault.setMode('429', { retry_after: 3, times: 1 });
  const c2 = await lib.ipcClient(a2.socket);
  const r = await c2.call({ method: 'eth_gasPrice', params: [] });
  assert.ok(r.error, `the 429 is an error: ${JSON.stringify(r)}`);
  const held = Date.now();
  await lib.waitFor(async () => (await fleetOf(b2)).verdicts_received >= 1,
    { timeout: 3000, interval: 10, message: 'B applied the hold' });
  lib.figure(`hold verdict: applied by B ${Date.now() - held} ms after A's 429`);
  assert.ok(Date.now() - held <= 1000);
  await fault.resetCounters();
  const d2 = await lib.ipcClient(b2.socket);
  const rb = await d2.call({ method: 'net_version', params: [] });
  assert.ok(rb.error, `B sent during the fleet's hold: ${JSON.stringify(rb)}`);
  assert.equal((await counted(fault)).b, 0, "B's call reached the upstream during the hold");
  c2.destroy();
  d2.destroy();
  assert.equal(await a2.stop(), 0);
  assert.equal(await b2.stop(), 0);
  lib.assertNoErrors(a, [/upstream failed/]);
  lib.assertNoErrors(b);
  await redis.stop();
});

test('Redis stopped: fair_share and leased_only hold; sharing resumes when it is back', async () => {
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const { a, b } = await twoHosts(redis, fault, { pa: 'fair_share', pb: 'leased_only' });
  await Promise.all([waitConnected(a), waitConnected(b)]);
  const pids = [await agentPid(a), await agentPid(b)];
  await Promise.all([load(a, 'eth_gasPrice', 1000), load(b, 'net_version', 1000)]);

  await redis.kill('SIGKILL');
  await Promise.all([waitConnected(a, false, 5000), waitConnected(b, false, 5000)]);
  assert.equal((await fleetOf(a)).mode, 'fair_share');
  assert.equal((await fleetOf(b)).mode, 'leased_only');
  const ctl = await lib.run(lib.daemonBin('rpcpoolctl'), ['-c', b.conf, 'status']);
  assert.match(ctl.stdout, /fleet: NOT connected, mode leased_only \(on_redis_down leased_only/);
  const m = (await a.ctl('metrics')).text;
  assert.match(m, /rpcpool_fleet_connected 0/);
  assert.match(m, /rpcpool_fleet_mode\{mode="fair_share"\} 1/);
  await fault.resetCounters();
  let t0 = Date.now();
  await Promise.all([load(a, 'eth_gasPrice', 3000), load(b, 'net_version', 3000)]);
  let c = await counted(fault);
  let t = (Date.now() - t0) / 1000;
  const fairBound = Math.max(1, Math.floor(BURST / HOSTS)) + (RATE / HOSTS) * t + LEASE;
  lib.figure(`Redis down ${t.toFixed(2)} s: A (fair_share) ${c.a} calls, bound ` +
    `burst/hosts + rate/hosts*t + 1 lease = ${fairBound.toFixed(1)}; B (leased_only) ${c.b} calls, ` +
    `bound 1 lease = ${LEASE}`);
  assert.ok(c.a <= fairBound, `A ${c.a} > ${fairBound}`);
  assert.ok(c.a >= (RATE / HOSTS) * t * 0.5, `A served only ${c.a} on its fair share`);
  assert.ok(c.b <= LEASE, `B spent ${c.b} > one lease`);

  const back = await lib.startRedis({ port: redis.port });
  await Promise.all([waitConnected(a, true, 10000), waitConnected(b, true, 10000)]);
  assert.deepEqual([await agentPid(a), await agentPid(b)], pids, 'no agent was restarted');
  assert.equal((await fleetOf(b)).mode, 'sharing');
  await fault.resetCounters();
  t0 = Date.now();
  await Promise.all([load(a, 'eth_gasPrice', 3000), load(b, 'net_version', 3000)]);
  c = await counted(fault);
  t = (Date.now() - t0) / 1000;
  const bound = BURST + RATE * t + HOSTS * LEASE;
  lib.figure(`Redis back ${t.toFixed(2)} s: ${c.all} calls (A ${c.a}, B ${c.b}); bound ${bound.toFixed(1)}`);
  assert.ok(c.all <= bound, `${c.all} > ${bound}`);
  assert.ok(c.b > LEASE, `B resumed: ${c.b}`);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  await back.stop();
});

test('a breaker that opened while Redis was away is published when it is back', async () => {
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const { a, b } = await twoHosts(redis, fault);
  await Promise.all([waitConnected(a), waitConnected(b)]);
  await redis.kill('SIGKILL');
  await Promise.all([waitConnected(a, false, 5000), waitConnected(b, false, 5000)]);
  // A's breaker opens while nobody can hear of it (recovery_timeout_ms 10 s)
  const ca = await openBreakerOf(a, fault);
  assert.equal(await epState(b), 'closed', "B's breaker opened without the fleet");
  const back = await lib.startRedis({ port: redis.port });
  await Promise.all([waitConnected(a, true, 10000), waitConnected(b, true, 10000)]);
  const up = Date.now();
  await lib.waitFor(async () => (await epState(b)) === 'open',
    { timeout: 5000, interval: 10, message: "B's breaker open from the verdict published on Redis's return" });
  lib.figure(`verdict kept while Redis was down: B's breaker open ${Date.now() - up} ms after both reconnected`);
  assert.ok((await fleetOf(a)).verdicts_sent >= 1);
  assert.equal((await fleetOf(b)).verdicts_sent, 0, 'B published the verdict it applied');
  ca.destroy();
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  lib.assertNoErrors(a, [/upstream failed/]);
  await back.stop();
});

test('SIGKILL of the fleet agent loses at most a lease, and it comes back', async () => {
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const { a, b, prefix } = await twoHosts(redis, fault);
  await Promise.all([waitConnected(a), waitConnected(b)]);
  await fault.resetCounters();
  const t0 = Date.now();
  const loads = Promise.all([load(a, 'eth_gasPrice', 5000), load(b, 'net_version', 5000)]);
  await lib.delay(1500);
  const before = await fleetOf(a);
  const pid = await agentPid(a);
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  await lib.waitFor(async () => {
    const p = await agentPid(a);
    return p > 0 && p !== pid && (await fleetOf(a)).connected;
  }, { timeout: 10000, message: 'a new fleet agent, connected' });
  const after = await fleetOf(a);
  const mid = await counted(fault);
  await loads;
  const c = await counted(fault);
  const t = (Date.now() - t0) / 1000;
  const bound = BURST + RATE * t + HOSTS * LEASE;
  lib.figure(`agent SIGKILL: ${c.all} calls in ${t.toFixed(2)} s (A ${c.a}, B ${c.b}); bound ${bound.toFixed(1)}; ` +
    `A leased ${before.tokens_leased} before, ${after.tokens_leased} after the restart`);
  assert.ok(c.all <= bound, `${c.all} > ${bound}`);
  assert.ok(after.tokens_leased >= before.tokens_leased, 'leased tokens survive the agent');
  assert.ok(c.a > mid.a, 'A serves again after its agent came back');
  // what Redis granted against what the two hosts credited: the difference is
  // what the dead agent lost (read the hosts first: a grant is credited after
  // it is made, so a lease still in flight only shows for a moment)
  const cli = (...args) => lib.run('redis-cli', ['-p', String(redis.port), ...args]);
  const key = (await cli('--scan', '--pattern', `${prefix}granted:*`)).stdout.trim();
  assert.match(key, /granted:[0-9a-f]{16}$/);
  let lost = null;
  await lib.waitFor(async () => {
    const held = (await fleetOf(a)).tokens_leased + (await fleetOf(b)).tokens_leased;
    const granted = Number((await cli('GET', key)).stdout.trim());
    lost = granted - held;
    return lost >= 0 && lost <= LEASE;
  }, { timeout: 5000, message: `tokens lost by the SIGKILL (${lost}) within one lease (${LEASE})` });
  lib.figure(`agent SIGKILL: tokens granted by Redis but never credited: ${lost} (one lease at most: ${LEASE})`);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  await redis.stop();
});

test('a reload adds and removes the fleet: the agent starts and stops, nothing else restarts', async () => {
  const fs = require('node:fs');
  const redis = await lib.startRedis();
  const fault = await lib.startFault();
  const prefix = `rpcpool:test${process.pid}x${++prefixSeq}:`;
  const pool = await lib.startPool({ endpoints: [fault], workers: 1, server: { queue_timeout_ms: 300 },
    settings: fleetSettings(redis, { prefix }) });
  await waitConnected(pool);
  const withFleet = fs.readFileSync(pool.conf, 'utf8');
  const without = withFleet.replace(/^fleet = \{[\s\S]*?\n\};\n/m, '');
  assert.notEqual(without, withFleet);
  const c = await lib.ipcClient(pool.socket);

  fs.writeFileSync(pool.conf, without);
  assert.equal((await pool.ctl('reload')).ok, true);
  await lib.waitFor(async () => {
    const st = await pool.ctl('status');
    return !st.fleet && !(st.workers || []).some((w) => w.kind === 'fleet');
  }, { timeout: 10000, message: 'no fleet after the reload' });
  assert.match((await pool.ctl('metrics')).text, /rpcpool_fleet_connected 0/);
  // served on the host's own bucket now
  const r1 = await c.call({ method: 'eth_gasPrice', params: [] });
  assert.ok(r1.result !== undefined, JSON.stringify(r1));

  fs.writeFileSync(pool.conf, withFleet);
  assert.equal((await pool.ctl('reload')).ok, true);
  await waitConnected(pool);
  const r2 = await c.call({ method: 'eth_gasPrice', params: [] });
  assert.ok(r2.result !== undefined, JSON.stringify(r2));
  c.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
  await redis.stop();
});

// Two network namespaces, each joined to this one by a veth pair
// (10.213.K.1/30 here, .2 there; .5/.6 for B): {wrapA, wrapB, hostAddr,
// linkA, cleanup()}, or {skip: why} when this machine does not allow it.
async function netnsPair() {
  if (process.getuid && process.getuid() !== 0) return { skip: 'not root: no network namespaces' };
  const k = 16 + (process.pid % 200);
  const names = [`rpfl${process.pid}a`, `rpfl${process.pid}b`];
  const made = [];
  const ip = async (...args) => {
    const r = await lib.run('ip', args, { timeout: 10000 });
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  const cleanup = async () => {
    for (const n of made) await lib.run('ip', ['netns', 'del', n], { timeout: 10000 });
  };
  try {
    for (const [i, n] of names.entries()) {
      await ip('netns', 'add', n);
      made.push(n);
      const here = `rpfl${process.pid % 100000}${'ab'[i]}h`;
      const host = `10.213.${k}.${1 + 4 * i}`;
      const peer = `10.213.${k}.${2 + 4 * i}`;
      await ip('link', 'add', here, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', n);
      await ip('addr', 'add', `${host}/30`, 'dev', here);
      await ip('link', 'set', here, 'up');
      await ip('-n', n, 'addr', 'add', `${peer}/30`, 'dev', 'veth0');
      await ip('-n', n, 'link', 'set', 'veth0', 'up');
      await ip('-n', n, 'link', 'set', 'lo', 'up');
      await ip('-n', n, 'route', 'add', 'default', 'via', host);
    }
  } catch (e) {
    await cleanup();
    return { skip: `network namespaces or veth pairs not allowed here: ${e.message.trim()}` };
  }
  return {
    wrapA: ['ip', 'netns', 'exec', names[0]],
    wrapB: ['ip', 'netns', 'exec', names[1]],
    // the services listen on B's side: cutting A's link leaves B's path whole
    hostAddr: `10.213.${k}.5`,
    linkA: `rpfl${process.pid % 100000}ah`,
    ip,
    cleanup,
  };
}

test('each host in its own network namespace, Redis over veth; a silent partition', async (t) => {
  const ns = await netnsPair();
  if (ns.skip) {
    t.skip(ns.skip);
    return;
  }
  try {
    const redis = await lib.startRedis({ bind: [ns.hostAddr], args: ['--protected-mode', 'no'] });
    const fault = await lib.startFault({ alsoListen: ns.hostAddr });
    const net = { url: `http://${ns.hostAddr}:${fault.port}`, redisAddr: `${ns.hostAddr}:${redis.port}`,
      wrapA: ns.wrapA, wrapB: ns.wrapB };
    const { a, b } = await twoHosts(redis, fault, { net });
    await Promise.all([waitConnected(a), waitConnected(b)]);
    await fault.resetCounters();
    let t0 = Date.now();
    await Promise.all([load(a, 'eth_gasPrice', 3000), load(b, 'net_version', 3000)]);
    let c = await counted(fault);
    let t = (Date.now() - t0) / 1000;
    let bound = BURST + RATE * t + HOSTS * LEASE;
    lib.figure(`netns: ${c.all} calls in ${t.toFixed(2)} s (A ${c.a}, B ${c.b}); bound ${bound.toFixed(1)}`);
    assert.ok(c.all <= bound, `${c.all} > ${bound}`);
    assert.ok(c.a > 0 && c.b > 0);

    // A's link goes down: nothing is closed, answers just stop coming
    await ns.ip('link', 'set', ns.linkA, 'down');
    const cut = Date.now();
    await waitConnected(a, false, 5000);
    lib.figure(`netns: A saw Redis unreachable ${Date.now() - cut} ms after its link went down`);
    assert.equal((await fleetOf(a)).mode, 'fair_share');
    assert.equal((await fleetOf(b)).connected, true,
      `B: ${b.log.filter((l) => /role=fleet/.test(l)).join('\n')}\nA: ${a.log.filter((l) => /role=fleet/.test(l)).join('\n')}`);
    // A's own clients cannot reach the upstream either now: its workers
    // spend (and fail) only on A's side; the bound is checked on B, which
    // holds the whole fleet quota alone meanwhile
    await fault.resetCounters();
    t0 = Date.now();
    await load(b, 'net_version', 2000);
    c = await counted(fault);
    t = (Date.now() - t0) / 1000;
    bound = BURST + RATE * t + LEASE;
    lib.figure(`netns: A cut off, B alone ${c.b} calls in ${t.toFixed(2)} s; bound ${bound.toFixed(1)}`);
    assert.ok(c.b <= bound, `${c.b} > ${bound}`);

    await ns.ip('link', 'set', ns.linkA, 'up');
    await waitConnected(a, true, 15000);
    assert.equal((await fleetOf(a)).mode, 'sharing');
    await fault.resetCounters();
    t0 = Date.now();
    await Promise.all([load(a, 'eth_gasPrice', 2000), load(b, 'net_version', 2000)]);
    c = await counted(fault);
    t = (Date.now() - t0) / 1000;
    bound = BURST + RATE * t + HOSTS * LEASE;
    lib.figure(`netns: link back, ${c.all} calls in ${t.toFixed(2)} s (A ${c.a}, B ${c.b}); bound ${bound.toFixed(1)}`);
    assert.ok(c.all <= bound, `${c.all} > ${bound}`);
    assert.ok(c.a > 0, 'A shares again');
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
    await redis.stop();
  } finally {
    await ns.cleanup();
  }
});
