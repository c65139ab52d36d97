// control.test.js - the control plane end to end (docs/interface.md sections 1, 4, 6):
// build/rpcpoolctl against a real rpcpoold in front of fault upstreams (ok mode)
// for every command; the socket's mode, SO_PEERCRED and client bounds; drain,
// enable and reset seen in where traffic goes; the metrics text checked by
// promcheck.js; reload (add, remove, change an endpoint) and `workers N` under a
// running load with zero client errors; a bad reload; SIGHUP; shutdown.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const lib = require('./lib.js');
const promcheck = require('./promcheck.js');

const CTL = path.join(lib.BUILD, 'rpcpoolctl');
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
// The default limit (100 per minute) would throttle the tests' traffic.
const FAST = { rate_limit: { max_requests: 100000, window_ms: 1000, burst_size: 10000 } };

// Run rpcpoolctl -s SOCKET ARGS; resolves to {code, stdout, stderr}.
function ctl(pool, args, opts = {}) {
  return lib.run(CTL, ['-s', pool.controlSocket, ...args], { timeout: 20000, ...opts });
}

// rpcpoolctl -j ARGS, parsed; asserts exit 0 and ok:true.
async function ctlJson(pool, ...args) {
  const r = await ctl(pool, ['-j', ...args]);
  assert.equal(r.code, 0, `rpcpoolctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  const v = JSON.parse(r.stdout);
  assert.equal(v.ok, true);
  return v;
}

// A whole configuration file's text for POOL's paths and the given endpoints
// (same layout as lib.writePoolConfig), so that a reload keeps the sockets.
function configText(pool, endpoints, { settings = {}, server = {}, extra = '' } = {}) {
  const srv = {
    socket: pool.socket,
    control_socket: pool.controlSocket,
    shm_name: pool.shmName,
    workers: 2,
    log_level: 'debug',
    ...server,
  };
  let text = '# rewritten by control.test.js\n';
  text += `name = ${lib.toLibconfig(pool.name)};\n`;
  for (const [k, v] of Object.entries(settings)) text += `${k} = ${lib.toLibconfig(v)};\n`;
  text += `endpoints = (\n${endpoints.map((e) => `  ${lib.toLibconfig(e, '  ')}`).join(',\n')}\n);\n`;
  text += `server = ${lib.toLibconfig(srv)};\n`;
  return text + extra;
}

// Requests of METHOD that the fault upstream F has seen.
async function seen(f, method) {
  const s = await f.state();
  return (s.by_method && s.by_method[method]) || 0;
}

// N sequential calls of METHOD on one IPC connection; every one must succeed.
async function calls(pool, method, n) {
  const c = await lib.ipcClient(pool.socket);
  try {
    for (let i = 0; i < n; i++) {
      const r = await c.call({ method, params: [] });
      assert.equal(r.error, undefined, `${method}: ${JSON.stringify(r.error)}`);
      assert.equal(r.result, method);
    }
  } finally {
    await c.close();
  }
}

// A load: CLIENTS connections each sending METHOD calls one after another until
// stop() (or MAX_MS / MAX_CALLS, so it always ends). stop() resolves to
// {sent, ok, errors: [...]}.
function startLoad(pool, { clients = 4, method = 'test_load', maxMs = 120000, maxCalls = 200000 } = {}) {
  const stats = { sent: 0, ok: 0, errors: [] };
  let stopping = false;
  const t0 = Date.now();
  const runner = async (k) => {
    let c;
    try {
      c = await lib.ipcClient(pool.socket);
    } catch (e) {
      stats.errors.push(`client ${k}: connect: ${e.message}`);
      return;
    }
    while (!stopping && Date.now() - t0 < maxMs && stats.sent < maxCalls) {
      stats.sent++;
      try {
        const r = await c.call({ method, params: [k] }, { timeout: 20000 });
        if (r.error) stats.errors.push(`client ${k}: ${JSON.stringify(r.error)}`);
        else if (r.result !== method) stats.errors.push(`client ${k}: result ${JSON.stringify(r.result)}`);
        else stats.ok++;
      } catch (e) {
        stats.errors.push(`client ${k}: ${e.message}`);
        if (c.isClosed()) break;
      }
    }
    await c.close();
  };
  const done = Promise.all(Array.from({ length: clients }, (_, k) => runner(k)));
  return {
    stats,
    async waitOk(n, timeout = 20000) {
      const target = stats.ok + n;
      await lib.waitFor(() => stats.ok >= target || stats.errors.length > 0,
        { timeout, message: `${n} more load answers` });
    },
    async stop() {
      stopping = true;
      await done;
      return stats;
    },
  };
}

// Connect to the UNIX socket P, write nothing, and collect what arrives until
// the server closes (at most TIMEOUT ms).
function readAll(p, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(p);
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(buf);
    }, timeout);
    s.setEncoding('utf8');
    s.on('data', (d) => { buf += d; });
    s.on('error', (e) => {
      clearTimeout(t);
      if (buf) resolve(buf);
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(buf);
    });
  });
}

function workersRunning(st) {
  return st.workers.filter((w) => w.kind === 'worker' && w.state === 'running');
}

describe('rpcpoolctl: every command', () => {
  let a;
  let b;
  let pool;
  before(async () => {
    a = await lib.startFault({});
    b = await lib.startFault({});
    pool = await lib.startPool({
      endpoints: [{ name: 'alpha', url: `${a.url}/v3/SECRETKEY` }, { name: 'beta', url: b.url }],
      settings: {
        ...FAST,
        balance: 'round_robin',
        health_check_interval_ms: 600000,
        circuit_breaker: { failure_threshold: 2, recovery_timeout_ms: 600000, half_open_max_attempts: 1 },
      },
    });
  });
  after(async () => {
    if (pool) {
      lib.assertNoErrors(pool);
      await pool.stop();
    }
    if (a) await a.stop();
    if (b) await b.stop();
  });

  test('the control socket is 0600', () => {
    const st = fs.lstatSync(pool.controlSocket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('ping, readable and -j', async () => {
    let r = await ctl(pool, ['ping']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    r = await ctl(pool, ['-j', 'ping']);
    assert.equal(r.stdout, '{"ok":true}\n');
    // -c FILE finds server.control_socket in the configuration
    r = await lib.run(CTL, ['-c', pool.conf, 'ping']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
  });

  test('status: JSON shape and table', async () => {
    await calls(pool, 'test_status', 4);
    const st = await ctlJson(pool, 'status');
    assert.equal(st.name, pool.name);
    assert.equal(st.pid, pool.pid);
    assert.ok(Number.isInteger(st.uptime_s) && st.uptime_s >= 0);
    assert.ok(st.generation >= 1);
    assert.deepEqual(st.endpoints.map((e) => e.name), ['alpha', 'beta']);
    for (const e of st.endpoints) {
      for (const k of ['id', 'url', 'weight', 'state', 'breaker', 'tokens', 'inflight', 'connections',
        'requests', 'latency_ms', 'head_block', 'lag']) assert.ok(k in e, `endpoint lacks ${k}`);
      assert.equal(e.state, 'up');
      assert.equal(e.breaker, 'closed');
    }
    // secrets never leave the process
    assert.equal(st.endpoints[0].url, `${a.url}/***`);
    assert.ok(!JSON.stringify(st).includes('SECRETKEY'));
    assert.ok(workersRunning(st).length === 2, JSON.stringify(st.workers));
    for (const w of st.workers) for (const k of ['pid', 'state', 'requests', 'restarts']) assert.ok(k in w);

    const r = await ctl(pool, ['status']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^pool ${pool.name} +pid ${pool.pid} `));
    assert.match(r.stdout, /^ID +NAME +URL +STATE +BREAKER/m);
    assert.match(r.stdout, /^0 +alpha +http:\/\/127\.0\.0\.1:\d+\/\*\*\* +up +closed/m);
    assert.match(r.stdout, /^1 +beta +http:\/\/127\.0\.0\.1:\d+ +up +closed/m);
    assert.match(r.stdout, /^SLOT +PID +KIND +STATE +REQUESTS +RESTARTS/m);
    assert.match(r.stdout, /^\d+ +\d+ +worker +running /m);
    assert.ok(!r.stdout.includes('SECRETKEY'));
  });

  test('stats: PoolStats with real values', async () => {
    await calls(pool, 'test_stats', 20);
    const s = await ctlJson(pool, 'stats');
    for (const k of ['totalPools', 'healthyPools', 'totalConnections', 'activeConnections',
      'idleConnections', 'failedRequests', 'successfulRequests', 'averageLatency']) {
      assert.equal(typeof s[k], 'number', `${k} missing`);
    }
    assert.equal(s.totalPools, 2);
    assert.equal(s.healthyPools, 2);
    assert.ok(s.successfulRequests >= 20, JSON.stringify(s));
    assert.equal(s.failedRequests, 0);
    assert.ok(s.averageLatency > 0 && s.averageLatency < 5000, JSON.stringify(s));
    assert.equal(s.totalConnections, s.activeConnections + s.idleConnections);
    assert.ok(s.totalConnections >= 1);
    // the average is over every sample: it equals the metrics' sum / count
    const r = await ctl(pool, ['stats']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^totalPools: 2$/m);
    assert.match(r.stdout, /^averageLatency: [0-9.]+$/m);
  });

  test('metrics: valid exposition, required families, consistent with stats', async () => {
    await calls(pool, 'test_metrics', 10);
    let s1;
    let m;
    let s2;
    // idle pool: take stats, metrics, stats until nothing moved in between
    for (let i = 0; i < 5; i++) {
      s1 = await ctlJson(pool, 'stats');
      m = await ctlJson(pool, 'metrics');
      s2 = await ctlJson(pool, 'stats');
      if (s1.successfulRequests === s2.successfulRequests) break;
    }
    const r = promcheck.check(m.text);
    assert.ok(r.ok, r.errors.join('\n'));
    for (const f of ['rpcpool_requests_total', 'rpcpool_client_requests_total',
      'rpcpool_request_duration_seconds', 'rpcpool_endpoint_up', 'rpcpool_breaker_state',
      'rpcpool_ratelimit_tokens', 'rpcpool_upstream_connections', 'rpcpool_endpoint_head_block',
      'rpcpool_worker_restarts_total', 'rpcpool_endpoint_inflight', 'rpcpool_workers', 'rpcpool_generation',
      'rpcpool_head_feed_connected']) {
      assert.ok(r.families.has(f), `family ${f} missing`);
      assert.ok(r.families.get(f).samples.length > 0, `family ${f} has no samples`);
    }
    const samples = promcheck.parse(m.text);
    const val = (name, labels = {}) => {
      const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      assert.ok(s, `${name} ${JSON.stringify(labels)} missing`);
      return s.value;
    };
    const okSum = val('rpcpool_requests_total', { endpoint: 'alpha', outcome: 'ok' }) +
      val('rpcpool_requests_total', { endpoint: 'beta', outcome: 'ok' });
    if (s1.successfulRequests === s2.successfulRequests) assert.equal(okSum, s1.successfulRequests);
    assert.ok(val('rpcpool_client_requests_total', { result: 'ok' }) >= 10);
    assert.equal(val('rpcpool_endpoint_up', { endpoint: 'alpha' }), 1);
    assert.equal(val('rpcpool_head_feed_connected', { endpoint: 'alpha' }), 0, 'no ws_url: no head feed');
    assert.equal(val('rpcpool_breaker_state', { endpoint: 'beta' }), 0);
    assert.equal(val('rpcpool_workers', { state: 'running' }), 2);
    const st = await ctlJson(pool, 'status');
    assert.equal(val('rpcpool_generation'), st.generation);
    assert.ok(!m.text.includes('SECRETKEY'));
    // the readable form prints the text itself
    const t = await ctl(pool, ['metrics']);
    assert.equal(t.code, 0);
    const r2 = promcheck.check(t.stdout);
    assert.ok(r2.ok, r2.errors.join('\n'));
  });

  test('help lists every command', async () => {
    const h = await ctlJson(pool, 'help');
    assert.deepEqual(h.commands.map((c) => c.name).sort(),
      ['drain', 'enable', 'help', 'metrics', 'ping', 'reload', 'reset', 'shutdown', 'stats', 'status', 'workers']);
    const r = await ctl(pool, ['help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^ {2}drain EP +\S/m);
    assert.match(r.stdout, /^ {2}workers N +\S/m);
  });

  test('errors: unknown command, bad arguments, no daemon', async () => {
    let r = await ctl(pool, ['frob']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown command: frob \(try help\)/);
    r = await ctl(pool, ['-j', 'frob']);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout), { ok: false, error: 'unknown command: frob (try help)' });
    r = await ctl(pool, ['drain', 'nope']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such endpoint: nope/);
    r = await ctl(pool, ['drain']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /usage: drain EP/);
    for (const n of ['0', '65', 'many']) {
      r = await ctl(pool, ['workers', n]);
      assert.equal(r.code, 1, `workers ${n}`);
    }
    const missing = path.join(pool.dir, 'nothing.ctl');
    r = await lib.run(CTL, ['-s', missing, 'ping']);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(missing), r.stderr);
    r = await lib.run(CTL, ['-s', missing, 'help']);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /drain EP/); // the local table
  });

  test('line bound and client bound on the control socket', async () => {
    // a line past RP_CONTROL_MAX_LINE: an error, then the server closes
    const long = await new Promise((resolve, reject) => {
      const s = net.connect(pool.controlSocket);
      let buf = '';
      s.setEncoding('utf8');
      s.on('connect', () => s.write('x'.repeat(5000)));
      s.on('data', (d) => { buf += d; });
      s.on('error', () => {});
      s.on('close', () => resolve(buf));
      setTimeout(() => reject(new Error('no close')), 10000);
    });
    assert.equal(long, '{"ok":false,"error":"command line too long (max 4096 bytes)"}\n');
    // 32 clients are served; the 33rd is told so and closed (it is answered
    // without writing anything: the refusal comes at accept time)
    const held = [];
    try {
      for (let i = 0; i < 32; i++) {
        const s = net.connect(pool.controlSocket);
        s.on('error', () => {});
        await new Promise((r, j) => { s.once('connect', r); s.once('error', j); });
        held.push(s);
      }
      const ans = await lib.waitFor(async () => {
        const line = await readAll(pool.controlSocket);
        return line.includes('too many') ? line : null;
      }, { timeout: 5000, message: 'the 33rd control client refused' });
      assert.equal(ans, '{"ok":false,"error":"too many control clients"}\n');
      // the admitted ones are still served
      held[7].write('ping\n');
      const [line] = await Promise.all([new Promise((r) => held[7].once('data', (d) => r(String(d))))]);
      assert.equal(line, '{"ok":true}\n');
    } finally {
      for (const s of held) s.destroy();
    }
    await lib.waitFor(async () => (await lib.controlCommand(pool.controlSocket, 'ping')).ok === true,
      { timeout: 5000, message: 'control socket serving again' });
  });

  test('a client under another uid is refused', { skip: process.getuid() !== 0 && 'needs root' }, async (t) => {
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
    if (!setpriv) {
      t.skip('setpriv not installed');
      return;
    }
    const asNobody = (args) => lib.run(setpriv,
      ['--reuid=65534', '--regid=65534', '--clear-groups', CTL, '-s', pool.controlSocket, ...args]);
    const v = await lib.run(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', CTL, '-V']);
    if (v.code !== 0) {
      t.skip(`uid 65534 cannot run ${CTL} here: ${v.stderr.trim()}`);
      return;
    }
    fs.chmodSync(pool.dir, 0o755);
    // 0600: connect itself is refused by the kernel
    let r = await asNobody(['ping']);
    assert.notEqual(r.code, 0);
    assert.ok((r.code === 2 && /permission denied/i.test(r.stderr)) ||
      (r.code === 1 && /permission denied/.test(r.stderr)), `${r.code}: ${r.stderr}`);
    // opened up: SO_PEERCRED decides
    fs.chmodSync(pool.controlSocket, 0o666);
    try {
      r = await asNobody(['-j', 'status']);
      assert.equal(r.code, 1, `${r.code}: ${r.stdout} ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), { ok: false, error: 'permission denied' });
      assert.match(r.stderr, /permission denied/);
      r = await asNobody(['shutdown']);
      assert.equal(r.code, 1);
      await pool.waitLog(/control client refused: permission denied.*peer_uid=65534/);
    } finally {
      fs.chmodSync(pool.controlSocket, 0o600);
      fs.chmodSync(pool.dir, 0o700);
    }
    // root still is
    r = await ctl(pool, ['ping']);
    assert.equal(r.code, 0);
  });

  test('drain and enable move the traffic', async () => {
    await calls(pool, 'test_rr', 20);
    assert.ok(await seen(a, 'test_rr') > 0 && await seen(b, 'test_rr') > 0);

    let r = await ctl(pool, ['drain', 'alpha']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok /);
    const st = await ctlJson(pool, 'status');
    assert.equal(st.endpoints.find((e) => e.name === 'alpha').state, 'drained');
    const a0 = await seen(a, 'test_drained');
    await calls(pool, 'test_drained', 30);
    assert.equal(await seen(a, 'test_drained') - a0, 0, 'a drained endpoint got traffic');
    assert.equal(await seen(b, 'test_drained'), 30);
    const m = promcheck.parse((await ctlJson(pool, 'metrics')).text);
    assert.equal(m.find((s) => s.name === 'rpcpool_endpoint_up' && s.labels.endpoint === 'alpha').value, 0);

    r = await ctl(pool, ['enable', '0']); // by id this time
    assert.equal(r.code, 0, r.stderr);
    await calls(pool, 'test_enabled', 20);
    assert.ok(await seen(a, 'test_enabled') > 0, 'an enabled endpoint got no traffic');
    assert.equal((await ctlJson(pool, 'status')).endpoints[0].state, 'up');
  });

  test('reset closes an open breaker and traffic returns', async () => {
    await a.setMode('http500');
    // retries take the failed calls to beta: clients see no error
    await lib.waitFor(async () => {
      await calls(pool, 'test_trip', 4);
      return (await ctlJson(pool, 'status')).endpoints[0].breaker === 'open';
    }, { timeout: 15000, message: 'alpha breaker open' });
    await a.setMode('ok');
    await calls(pool, 'test_open', 20);
    assert.equal(await seen(a, 'test_open'), 0, 'an open breaker let traffic through');
    const s = await ctlJson(pool, 'stats');
    assert.equal(s.healthyPools, 1);
    assert.ok(s.failedRequests >= 2);
    let m = promcheck.parse((await ctlJson(pool, 'metrics')).text);
    assert.equal(m.find((x) => x.name === 'rpcpool_breaker_state' && x.labels.endpoint === 'alpha').value, 1);

    const r = await ctl(pool, ['reset', 'alpha']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ctlJson(pool, 'status')).endpoints[0].breaker, 'closed');
    await calls(pool, 'test_reset', 20);
    assert.ok(await seen(a, 'test_reset') > 0, 'no traffic after reset');
    m = promcheck.parse((await ctlJson(pool, 'metrics')).text);
    assert.equal(m.find((x) => x.name === 'rpcpool_breaker_state' && x.labels.endpoint === 'alpha').value, 0);
    assert.ok(m.find((x) => x.name === 'rpcpool_requests_total' && x.labels.endpoint === 'alpha' &&
      x.labels.outcome === 'failed').value >= 2);
  });
});

describe('rpcpoolctl reset refills the rate-limit bucket', () => {
  let g;
  let d;
  let pool;
  before(async () => {
    g = await lib.startFault({});
    d = await lib.startFault({});
    pool = await lib.startPool({
      endpoints: [
        { name: 'gamma', url: g.url, rate_limit: { max_requests: 1, window_ms: 600000, burst_size: 3 } },
        { name: 'delta', url: d.url },
      ],
      settings: { ...FAST, balance: 'round_robin', health_check_interval_ms: 600000 },
    });
  });
  after(async () => {
    if (pool) {
      lib.assertNoErrors(pool);
      await pool.stop();
    }
    if (g) await g.stop();
    if (d) await d.stop();
  });

  test('an empty bucket is full again after reset', async () => {
    await calls(pool, 'test_fill', 20);
    const before = await seen(g, 'test_fill');
    assert.ok(before <= 3, `gamma took ${before} calls with a burst of 3`);
    let st = await ctlJson(pool, 'status');
    assert.ok(st.endpoints[0].tokens < 1, JSON.stringify(st.endpoints[0]));
    const r = await ctl(pool, ['reset', 'gamma']);
    assert.equal(r.code, 0, r.stderr);
    st = await ctlJson(pool, 'status');
    assert.ok(st.endpoints[0].tokens > 2.9, JSON.stringify(st.endpoints[0]));
    await calls(pool, 'test_refilled', 20);
    const got = await seen(g, 'test_refilled');
    assert.ok(got >= 1 && got <= 3, `gamma took ${got} calls after reset`);
  });
});

describe('reload and workers under load', () => {
  const f = [];
  let pool;
  before(async () => {
    for (let i = 0; i < 3; i++) f.push(await lib.startFault({}));
    pool = await lib.startPool({
      endpoints: [{ name: 'A', url: f[0].url }, { name: 'B', url: f[1].url }],
      settings: { ...FAST, balance: 'round_robin', health_check_interval_ms: 1000 },
      workers: 2,
    });
  });
  after(async () => {
    if (pool) {
      lib.assertNoErrors(pool);
      await pool.stop();
    }
    for (const x of f) await x.stop();
  });

  const settings = { ...FAST, balance: 'round_robin', health_check_interval_ms: 1000 };

  test('reload adds, removes and changes endpoints with zero client errors', async (t) => {
    const load = startLoad(pool, { clients: 4 });
    try {
      await load.waitOk(200);
      const gen0 = (await ctlJson(pool, 'status')).generation;

      // add C
      fs.writeFileSync(pool.conf, configText(pool, [{ name: 'A', url: f[0].url }, { name: 'B', url: f[1].url },
        { name: 'C', url: f[2].url }], { settings }));
      let r = await ctlJson(pool, 'reload');
      assert.equal(r.generation, gen0 + 1);
      let st = await ctlJson(pool, 'status');
      assert.deepEqual(st.endpoints.map((e) => e.name).sort(), ['A', 'B', 'C']);
      await lib.waitFor(async () => (await seen(f[2], 'test_load')) > 0,
        { timeout: 15000, message: 'traffic on the added endpoint' });
      await load.waitOk(200);

      // remove A
      fs.writeFileSync(pool.conf, configText(pool, [{ name: 'B', url: f[1].url }, { name: 'C', url: f[2].url }],
        { settings }));
      r = await ctlJson(pool, 'reload');
      assert.equal(r.generation, gen0 + 2);
      st = await ctlJson(pool, 'status');
      assert.deepEqual(st.endpoints.map((e) => e.name).sort(), ['B', 'C']);
      await load.waitOk(100); // requests already routed to A may still finish there
      await lib.waitFor(async () => workersRunning(await ctlJson(pool, 'status'))
        .every((w) => w.generation === gen0 + 2), { timeout: 20000, message: 'workers on the new generation' });
      const aBefore = await seen(f[0], 'test_load');
      await load.waitOk(300);
      assert.equal(await seen(f[0], 'test_load'), aBefore, 'a removed endpoint still gets traffic');

      // change B (weight) and keep its counters (state survives by URL)
      const bOk = st.endpoints.find((e) => e.name === 'B').requests.ok;
      fs.writeFileSync(pool.conf, configText(pool, [{ name: 'B', url: f[1].url, weight: 5 },
        { name: 'C', url: f[2].url }], { settings }));
      r = await ctlJson(pool, 'reload');
      assert.equal(r.generation, gen0 + 3);
      st = await ctlJson(pool, 'status');
      const bNew = st.endpoints.find((e) => e.name === 'B');
      assert.equal(bNew.weight, 5);
      assert.ok(bNew.requests.ok >= bOk, 'counters lost across reload');
      await load.waitOk(200);
    } finally {
      const s = await load.stop();
      t.diagnostic(`reload load: 4 IPC clients, ${s.sent} calls, ${s.ok} ok, ${s.errors.length} errors`);
      assert.deepEqual(s.errors.slice(0, 10), [], `${s.errors.length} client errors during reload`);
      assert.equal(s.ok, s.sent);
    }
  });

  test('a bad reload keeps the configuration and names FILE:LINE', async () => {
    const before = await ctlJson(pool, 'status');
    const good = configText(pool, [{ name: 'B', url: f[1].url, weight: 5 }, { name: 'C', url: f[2].url }], { settings });
    const lines = good.split('\n').length; // the bad key lands on this line
    fs.writeFileSync(pool.conf, `${good}no_such_key = 1;\n`);
    const r = await ctl(pool, ['reload']);
    assert.equal(r.code, 1, r.stdout);
    assert.ok(r.stderr.includes(`${pool.conf}:${lines}:`), r.stderr);
    const j = await ctl(pool, ['-j', 'reload']);
    assert.equal(JSON.parse(j.stdout).ok, false);
    const after = await ctlJson(pool, 'status');
    assert.equal(after.generation, before.generation);
    assert.deepEqual(after.endpoints.map((e) => [e.name, e.weight]), before.endpoints.map((e) => [e.name, e.weight]));
    await calls(pool, 'test_after_bad_reload', 10);
    fs.writeFileSync(pool.conf, good);
  });

  test('SIGHUP reloads like the reload command', async () => {
    const gen = (await ctlJson(pool, 'status')).generation;
    fs.writeFileSync(pool.conf, configText(pool, [{ name: 'B', url: f[1].url, weight: 2 },
      { name: 'C', url: f[2].url }], { settings }));
    process.kill(pool.pid, 'SIGHUP');
    await lib.waitFor(async () => (await ctlJson(pool, 'status')).generation === gen + 1,
      { timeout: 10000, message: 'generation bumped by SIGHUP' });
    assert.equal((await ctlJson(pool, 'status')).endpoints.find((e) => e.name === 'B').weight, 2);
  });

  test('workers N grows and shrinks the pool with zero client errors', async (t) => {
    const load = startLoad(pool, { clients: 4, method: 'test_workers' });
    try {
      await load.waitOk(100);
      let r = await ctl(pool, ['workers', '4']);
      assert.equal(r.code, 0, r.stderr);
      await lib.waitFor(async () => workersRunning(await ctlJson(pool, 'status')).length === 4,
        { timeout: 20000, message: '4 running workers' });
      await load.waitOk(200);
      r = await ctl(pool, ['-j', 'workers', '1']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).ok, true);
      await lib.waitFor(async () => {
        const st = await ctlJson(pool, 'status');
        return workersRunning(st).length === 1 &&
          st.workers.filter((w) => w.kind === 'worker' && w.state !== 'running' && w.state !== 'dead').length === 0;
      }, { timeout: 30000, message: '1 running worker, the others gone' });
      await load.waitOk(200);
      r = await ctl(pool, ['workers', '2']);
      assert.equal(r.code, 0, r.stderr);
      await lib.waitFor(async () => workersRunning(await ctlJson(pool, 'status')).length === 2,
        { timeout: 20000, message: '2 running workers' });
      await load.waitOk(100);
    } finally {
      const s = await load.stop();
      t.diagnostic(`workers load: 4 IPC clients, ${s.sent} calls, ${s.ok} ok, ${s.errors.length} errors`);
      assert.deepEqual(s.errors.slice(0, 10), [], `${s.errors.length} client errors while resizing`);
      assert.equal(s.ok, s.sent);
    }
  });

  test('shutdown answers, then stops the daemon cleanly', async () => {
    const r = await ctl(pool, ['shutdown']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    const res = await lib.withTimeout(pool.exited, 30000, 'rpcpoold exit after shutdown');
    assert.equal(res.code, 0);
    assert.ok(!fs.existsSync(pool.controlSocket), 'control socket left behind');
    assert.ok(!fs.existsSync(pool.socket), 'client socket left behind');
    lib.assertNoErrors(pool);
    const p = pool;
    pool = null;
    await p.stop(); // reaps the group
  });
});
