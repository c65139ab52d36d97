// recovery.test.js - issue 9 item 6: crash recovery.
//
// - SIGKILL of the supervisor: its workers and prober exit by themselves
//   (PR_SET_PDEATHSIG) within a deadline; the stale socket and shm segment
//   are left behind, and the next start with the same configuration replaces
//   them and serves.
// - SIGKILL of a worker under load: connections on the other worker lose
//   nothing (every request answered, zero errors); what the dead worker held
//   in shm (in-flight counts, open connection counts) is repaired, so the
//   endpoints' inflight is back to 0 when the pool is idle.
// - SIGKILL of the worker holding a half-open trial slot: the slot is given
//   back, the breaker admits a new trial and closes after its success.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };

const req = (method, params = []) => ({ jsonrpc: '2.0', method, params });

function figure(text) {
  process.stderr.write(`# ${text}\n`);
}

// Wait until POOL is fully up: the client socket listens before the shm
// segment, the control socket and the workers exist.
async function ready(pool) {
  await lib.waitFor(async () => (await pool.ctl('ping')).ok === true, { timeout: 15000, message: 'control socket up' });
  return pool;
}

async function stat(pool) {
  const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-j'], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// /proc/PID/stat state letter, or null when the pid is gone.
function procState(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

// Gone, or a zombie waiting for init to reap it: it has exited.
function exited(pid) {
  const s = procState(pid);
  return s === null || s === 'Z' || s === 'X';
}

// The live workers and prober of POOL once N workers and the prober run.
async function children(pool, n) {
  return lib.waitFor(async () => {
    const ws = (await pool.ctl('status')).workers.filter((w) => w.state === 'running' && w.pid > 1);
    return ws.filter((w) => w.kind === 'worker').length === n && ws.some((w) => w.kind === 'prober') &&
      ws.some((w) => w.kind === 'follower') ? ws : null;
  }, { timeout: 15000, message: `${n} workers, the prober and the head follower running` });
}

function signal(pid, sig) {
  assert.ok(Number.isInteger(pid) && pid > 1, `bad pid ${pid}`);
  process.kill(pid, sig);
}

test('SIGKILL of the supervisor: workers and prober exit by themselves; the next start cleans up and serves',
  async (t) => {
    const node = await lib.startFault({});
    t.after(() => node.stop());
    const pool = await ready(await lib.startPool({ endpoints: [node], workers: 2, settings: QUIET }));
    t.after(() => pool.stop().catch(() => {}));
    const c = await lib.ipcClient(pool.socket);
    assert.equal((await c.call(req('net_version'))).result, '31337');
    const kids = await children(pool, 2);
    assert.equal(kids.length, 4); // two workers, the prober, the head follower
    signal(pool.pid, 'SIGKILL');
    const t0 = Date.now();
    await lib.waitFor(() => kids.every((k) => exited(k.pid)), { timeout: 5000, interval: 10,
      message: `workers and prober ${kids.map((k) => k.pid)} exiting after the supervisor died` });
    const ms = Date.now() - t0;
    figure(`supervisor SIGKILLed: ${kids.length} children gone after ${ms} ms`);
    await lib.withTimeout(c.ended, 5000, 'the client connection closed');
    // left behind: the socket file and the segment; rpcpoolstat sees a dead supervisor
    assert.ok(fs.existsSync(pool.socket), 'stale socket file left');
    const shm = path.join('/dev/shm', pool.shmName.slice(1));
    assert.ok(fs.existsSync(shm), 'stale shm segment left');
    const s = await stat(pool);
    assert.equal(s.supervisor_alive, false);
    assert.equal(await lib.canConnect(pool.socket), false, 'nobody listens on the stale socket');

    // the same configuration starts again over the leftovers
    const d = lib.spawnDaemon(['-c', pool.conf]);
    t.after(async () => {
      if (d.proc.exitCode === null) await lib.stopProc(d.proc);
    });
    await lib.waitFor(async () => {
      if (d.proc.exitCode !== null) throw new Error(`restart exited ${d.proc.exitCode}: ${d.log.join('\n')}`);
      return lib.canConnect(pool.socket);
    }, { timeout: 15000, message: 'the restarted daemon accepting' });
    const c2 = await lib.ipcClient(pool.socket);
    for (let i = 0; i < 10; i++) assert.equal((await c2.call(req('net_version'))).result, '31337');
    c2.destroy();
    const s2 = await stat(pool);
    assert.equal(s2.supervisor_pid, d.proc.pid, 'a fresh segment of the new supervisor');
    assert.equal(s2.supervisor_alive, true);
    assert.ok(s2.endpoints.every((e) => e.inflight === 0));
    assert.equal(await lib.stopProc(d.proc, { timeout: 20000 }), 0);
    assert.equal(fs.existsSync(pool.socket), false, 'socket removed at the clean stop');
    assert.equal(fs.existsSync(shm), false, 'shm removed at the clean stop');
    lib.assertNoErrors(d.log);
  });

test('SIGKILL of a worker under load: the other worker\'s clients lose nothing, in-flight counts repaired',
  async (t) => {
    const a = await lib.startFault({ mode: 'delay', delay_ms: 50 });
    const b = await lib.startFault({ mode: 'delay', delay_ms: 50 });
    t.after(async () => {
      await a.stop();
      await b.stop();
    });
    const pool = await ready(await lib.startPool({
      endpoints: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }],
      workers: 2,
      settings: { ...QUIET, retries: 2, request_timeout_ms: 10000 },
    }));
    t.after(() => pool.stop().catch(() => {}));
    const ws = (await children(pool, 2)).filter((w) => w.kind === 'worker');
    // Map connections to workers: with one worker stopped (out of
    // epoll_wait), the other accepts every new connection.
    const conns = []; // {c, slot, ok, errors}
    for (const [pause, serve] of [[ws[1], ws[0]], [ws[0], ws[1]]]) {
      signal(pause.pid, 'SIGSTOP');
      try {
        await lib.waitFor(() => procState(pause.pid) === 'T', { timeout: 5000, interval: 5, message: 'stopped' });
        for (let i = 0; i < 3; i++) {
          const c = await lib.ipcClient(pool.socket);
          // answered while the other worker is stopped: accepted by SERVE
          assert.equal((await c.call(req('net_version'))).result, '31337');
          conns.push({ c, slot: serve.slot, ok: 0, okAfter: 0, errors: [] });
        }
      } finally {
        signal(pause.pid, 'SIGCONT');
      }
    }
    // confirm the mapping: 3 clients per worker
    await lib.waitFor(async () => {
      for (const x of conns) await x.c.call(req('net_version'));
      const st = await pool.ctl('status');
      return st.workers.filter((w) => w.kind === 'worker').every((w) => w.clients === 3);
    }, { timeout: 10000, message: '3 clients on each worker' });
    const victim = ws[0];
    const survivors = conns.filter((x) => x.slot !== victim.slot);
    const doomed = conns.filter((x) => x.slot === victim.slot);
    // continuous load: 4 calls in flight on every connection
    let stop = false;
    let killed = false;
    const loops = [];
    for (const x of conns) {
      for (let k = 0; k < 4; k++) {
        loops.push((async () => {
          for (let i = 0; !stop && i < 100000; i++) {
            try {
              const r = await x.c.call(req('net_version'), { timeout: 15000 });
              if (r.result === '31337') {
                x.ok++;
                if (killed) x.okAfter++;
              } else x.errors.push(JSON.stringify(r));
            } catch (e) {
              x.errors.push(e.message);
              if (x.c.isClosed()) return;
            }
          }
        })());
      }
    }
    await lib.waitFor(() => conns.every((x) => x.ok >= 10), { timeout: 20000, message: 'load running' });
    const inflightBefore = (await stat(pool)).endpoints.reduce((n, e) => n + e.inflight, 0);
    signal(victim.pid, 'SIGKILL');
    killed = true;
    const fresh = await lib.waitFor(async () => {
      const w = (await pool.ctl('status')).workers.find((x) => x.slot === victim.slot);
      return w && w.pid > 1 && w.pid !== victim.pid && w.state === 'running' ? w : null;
    }, { timeout: 15000, message: 'a replacement worker' });
    // the survivors keep being served for a while after the replacement
    const mark = survivors.map((x) => x.okAfter);
    await lib.waitFor(() => survivors.every((x, i) => x.okAfter >= mark[i] + 40),
      { timeout: 20000, message: 'surviving connections served' });
    stop = true;
    await lib.withTimeout(Promise.all(loops), 30000, 'load loops ending');
    for (const x of survivors) assert.deepEqual(x.errors, [], 'a survivor lost nothing');
    for (const x of doomed) assert.ok(x.c.isClosed(), 'the dead worker\'s clients were closed');
    // idle now: every count the dead worker held is given back
    let last;
    await lib.waitFor(async () => {
      last = await stat(pool);
      return last.endpoints.every((e) => e.inflight === 0 && e.connections.active === 0);
    }, { timeout: 10000, message: 'inflight and active connections back to 0' }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(last.endpoints.map((x) => [x.name, x.inflight, x.connections]))}`);
    });
    figure(`worker ${victim.pid} SIGKILLed with ${inflightBefore} calls in flight on the host; ` +
      `survivors answered ${survivors.reduce((n, x) => n + x.ok, 0)} calls, 0 errors; ` +
      `replacement ${fresh.pid}; inflight back to 0`);
    // the new worker serves
    const c = await lib.ipcClient(pool.socket);
    for (let i = 0; i < 10; i++) assert.equal((await c.call(req('net_version'))).result, '31337');
    c.destroy();
    for (const x of conns) x.c.destroy();
    assert.equal(await pool.stop(), 0);
    lib.assertNoErrors(pool, [/worker died/]);
  });

test('SIGKILL of the worker holding a half-open trial slot: the slot is given back', async (t) => {
  const flaky = await lib.startFault({});
  t.after(() => flaky.stop());
  const RECOVERY = 1000;
  const pool = await ready(await lib.startPool({
    endpoints: [{ name: 'flaky', url: flaky.url }],
    workers: 2,
    settings: { ...QUIET, retries: 0, request_timeout_ms: 60000, attempt_timeout_ms: 60000, min_connections: 0,
      circuit_breaker: { failure_threshold: 2, recovery_timeout_ms: RECOVERY, half_open_max_attempts: 1 } },
  }));
  t.after(() => pool.stop().catch(() => {}));
  const ep = async () => (await pool.ctl('status')).endpoints.find((e) => e.name === 'flaky');
  await children(pool, 2);

  // open the breaker
  await flaky.setMode('http500');
  const opener = await lib.ipcClient(pool.socket);
  await lib.waitFor(async () => {
    await opener.call(req('net_version'));
    return (await ep()).breaker === 'open';
  }, { timeout: 10000, message: 'breaker open' });
  opener.destroy();
  // heal it with a hang: the next trial stays in flight
  await flaky.setMode('hang');
  await flaky.resetCounters();
  await lib.waitFor(async () => (await ep()).breaker === 'half_open',
    { timeout: RECOVERY + 5000, message: 'breaker half_open after recovery_timeout_ms' });
  // one client: it lands on one worker, which takes the trial
  const c = await lib.ipcClient(pool.socket);
  const trial = c.call(req('net_version'), { timeout: 60000 }).catch((e) => ({ transport: e.message }));
  await lib.waitFor(async () => ((await flaky.state()).by_method.net_version || 0) === 1,
    { timeout: 10000, message: 'the trial reached the endpoint' });
  const holder = (await pool.ctl('status')).workers.find((w) => w.kind === 'worker' && w.clients === 1);
  assert.ok(holder && holder.pid > 1, 'the worker holding the client (and its trial)');
  // the only slot is taken: another call is refused at once
  const c2 = await lib.ipcClient(pool.socket);
  const denied = await c2.call(req('net_version'), { timeout: 10000 });
  assert.equal(denied.error && denied.error.code, -32002, `no trial slot free: ${JSON.stringify(denied)}`);
  c2.destroy();
  const e1 = await ep();
  assert.equal(e1.breaker, 'half_open');
  assert.equal(e1.inflight, 1);

  // kill the holder; heal the endpoint for real
  signal(holder.pid, 'SIGKILL');
  const lost = await lib.withTimeout(trial, 10000, 'the trial call ending with its worker');
  assert.ok(lost.transport, `the killed worker's client lost its call: ${JSON.stringify(lost)}`);
  await flaky.setMode('ok');
  await lib.waitFor(async () => {
    const w = (await pool.ctl('status')).workers.find((x) => x.slot === holder.slot);
    return w && w.pid > 1 && w.pid !== holder.pid && w.state === 'running';
  }, { timeout: 15000, message: 'a replacement worker' });
  assert.equal((await ep()).inflight, 0, 'the dead worker\'s in-flight count repaired');
  // the breaker admits a trial again: it succeeds and closes the breaker
  const c3 = await lib.ipcClient(pool.socket);
  const answers = [];
  await lib.waitFor(async () => {
    const r = await c3.call(req('net_version'), { timeout: 10000 });
    answers.push(r.result || r.error.code);
    return r.result === '31337';
  }, { timeout: 10000, interval: 100, message: 'a trial admitted after the holder died' }).catch((e) => {
    throw new Error(`${e.message}; answers ${answers.slice(-5)}; endpoint ${JSON.stringify(answers.length)}`);
  });
  const e2 = await lib.waitFor(async () => {
    const e = await ep();
    return e.breaker === 'closed' ? e : null;
  }, { timeout: 5000, message: 'breaker closed after the trial success' });
  assert.equal(e2.inflight, 0);
  for (let i = 0; i < 10; i++) assert.equal((await c3.call(req('net_version'))).result, '31337');
  c3.destroy();
  c.destroy();
  figure(`trial slot: holder ${holder.pid} killed with its trial in flight; a new trial admitted ` +
    `after ${answers.length} call(s), breaker closed`);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool, [/worker died/]);
});
