// security.test.js - issue 9 item 5: secrets never leave the process;
// socket, control socket and shm permissions; the control socket's
// SO_PEERCRED check; dropping root privileges to server.user/server.group.
//
// Secrets are planted in an endpoint URL's path and query, in user info and
// in header values; traffic (successes and failures: one endpoint is down,
// the others are made to fail so -32603 data names every endpoint), a bad
// reload and a failing `rpcpoold -t` are driven, and then every secret is
// looked for in everything rpcpool shows: the daemon log (debug), rpcpoolctl
// status/stats/metrics (table and -j), rpcpoolstat -j and -1, GET /metrics
// and /health (IPC socket and http_listen), every answer sent to a client.
//
// The privilege tests need root (CI runs as root) and setpriv(1); they are
// skipped with a message otherwise.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
const NOBODY = 65534;

const req = (method, params = [], extra = {}) => ({ jsonrpc: '2.0', method, params, ...extra });

function figure(text) {
  process.stderr.write(`# ${text}\n`);
}

// Wait until POOL is fully up: the client socket listens before the shm
// segment, the control socket and the workers exist.
async function ready(pool) {
  await lib.waitFor(async () => (await pool.ctl('ping')).ok === true, { timeout: 15000, message: 'control socket up' });
  return pool;
}

function mode(p) {
  return fs.statSync(p).mode & 0o7777;
}

function octal(m) {
  return `0${m.toString(8)}`;
}

// Uid: line of /proc/PID/status as [real, effective, saved, fs].
function uids(pid) {
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m.slice(1).map(Number);
}

function gids(pid) {
  const m = /^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m.slice(1).map(Number);
}

async function stat(pool) {
  const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-j'], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function runningWorkers(pool, n) {
  return lib.waitFor(async () => {
    const ws = (await stat(pool)).workers;
    const live = ws.filter((w) => w.state === 'running' && w.pid > 1);
    return live.length === n + 2 ? live : null; // workers, the prober and the head follower
  }, { timeout: 15000, message: `${n} workers, the prober and the head follower running` });
}

test('secrets in URLs, user info and headers never appear in logs, status, stats, metrics or errors', async (t) => {
  const S = {
    path: 'SECRETKEY123',
    query: 'SECRETQ456',
    user: 'SECRETUSR888',
    password: 'SECRETPW789',
    header: 'SECRETHDR000',
    header2: 'SECRETHDR111',
    downPath: 'SECRETDOWN222',
    downQuery: 'SECRETQ333',
    badUrl: 'SECRETBAD444',
    badQuery: 'SECRETBAD555',
    badHeader: 'SECRETHDR666',
  };
  const a = await lib.startFault({});
  const b = await lib.startFault({});
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  const deadPort = await lib.freePort();
  const httpPort = await lib.freePort();
  const endpoints = [
    { url: `${a.url}/v3/${S.path}?key=${S.query}`,
      headers: [`Authorization: Bearer ${S.header}`, `X-Api-Key: ${S.header2}`] },
    `http://${S.user}:${S.password}@127.0.0.1:${b.port}/`,
    { name: 'down', url: `http://127.0.0.1:${deadPort}/rpc/${S.downPath}?token=${S.downQuery}` },
  ];
  const pool = await ready(await lib.startPool({
    endpoints,
    workers: 2,
    settings: { ...QUIET, health_check_interval_ms: 1000, retries: 2, balance: 'round_robin',
      circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 1000, half_open_max_attempts: 1 } },
    server: { http_listen: `127.0.0.1:${httpPort}`, log_level: 'debug' },
  }));
  t.after(() => pool.stop().catch(() => {}));
  const seen = []; // [where, text]
  const keep = (where, text) => seen.push([where, String(text)]);

  // the secrets are really used: the header reaches the endpoint
  const c = await lib.ipcClient(pool.socket);
  await lib.waitFor(async () => {
    for (let i = 0; i < 10; i++) keep('ipc answer', JSON.stringify(await c.call(req('net_version'))));
    return ((await a.state()).by_method.net_version || 0) > 0 && ((await b.state()).by_method.net_version || 0) > 0;
  }, { timeout: 20000, message: 'both live endpoints served' });
  const st = await a.state();
  assert.equal(st.last_headers.authorization, `Bearer ${S.header}`, 'the planted header is sent');
  assert.equal(st.last_headers['x-api-key'], S.header2);
  assert.ok((st.by_method.net_version || 0) > 0, 'the endpoint with the secret URL served');
  assert.ok(((await b.state()).by_method.net_version || 0) > 0, 'the endpoint with user info served');

  // failures: every endpoint fails, so -32603 data names each one and what it met
  await a.setMode('http500');
  await b.setMode('garbage');
  for (let i = 0; i < 10; i++) {
    const r = await c.call(req('net_version'));
    keep('ipc error answer', JSON.stringify(r));
  }
  const errs = seen.filter(([w]) => w === 'ipc error answer').map(([, x]) => JSON.parse(x));
  assert.ok(errs.some((r) => r.error && r.error.code === -32603 && Array.isArray(r.error.data) &&
    r.error.data.length >= 2), `a -32603 with endpoint data: ${JSON.stringify(errs.slice(0, 3))}`);
  assert.ok(errs.some((r) => r.error && (r.error.code === -32002 || r.error.code === -32603)));
  // HTTP answers, errors included
  for (const target of [{ socketPath: pool.socket }, { port: httpPort }]) {
    const r = await lib.httpRequest(target, { method: 'POST', body: req('net_version', [], { id: 1 }) });
    keep('http error answer', r.body);
    for (const p of ['/metrics', '/health']) {
      const h = await lib.httpRequest(target, { path: p });
      keep(`GET ${p}`, `${JSON.stringify(h.headers)}\n${h.body}`);
    }
  }
  // let the prober see the failures too (health lines in the log)
  await new Promise((r) => setTimeout(r, 2500));
  await a.setMode('ok');
  await b.setMode('ok');

  // a bad reload naming new secrets: refused, the old config stays
  const good = fs.readFileSync(pool.conf, 'utf8');
  const bads = [
    good.replace('endpoints = (', `endpoints = (\n  "ftp://u:${S.badUrl}@127.0.0.1/x?q=${S.badQuery}",`),
    good.replace('endpoints = (', `endpoints = (\n  { url = "${a.url}/v3/${S.path}?key=${S.query}"; },`),
    good.replace('endpoints = (', `endpoints = (\n  { url = "http://127.0.0.1:1/${S.badUrl}"; headers = [ "NoColon${S.badHeader}" ]; },`),
    good.replace('endpoints = (', `endpoints = (\n  { url = "http://127.0.0.1:1/${S.badUrl}"; bogus = "${S.badHeader}"; },`),
  ];
  for (const text of bads) {
    fs.writeFileSync(pool.conf, text);
    const r = await pool.ctl('reload');
    keep('reload answer', JSON.stringify(r));
    assert.equal(r.ok, false, `bad reload refused: ${JSON.stringify(r)}`);
    const ctl = await lib.run(lib.daemonBin('rpcpoolctl'), ['-s', pool.controlSocket, 'reload']);
    keep('rpcpoolctl reload', ctl.stdout + ctl.stderr);
    const chk = await lib.run(lib.daemonBin('rpcpoold'), ['-t', '-c', pool.conf]);
    assert.equal(chk.code, 1, `rpcpoold -t refuses: ${chk.stdout}${chk.stderr}`);
    keep('rpcpoold -t', chk.stdout + chk.stderr);
  }
  fs.writeFileSync(pool.conf, good);
  const ok = await pool.ctl('reload');
  assert.equal(ok.ok, true, JSON.stringify(ok));
  await lib.waitFor(async () => (await c.call(req('net_version'))).result === '31337',
    { timeout: 15000, message: 'serving again' });

  // everything an operator can look at
  for (const cmd of ['status', 'stats', 'metrics', 'ping']) {
    for (const j of [['-j'], []]) {
      const r = await lib.run(lib.daemonBin('rpcpoolctl'), ['-s', pool.controlSocket, ...j, cmd]);
      assert.equal(r.code, 0, `rpcpoolctl ${cmd}: ${r.stderr}`);
      keep(`rpcpoolctl ${j.join('')} ${cmd}`, r.stdout + r.stderr);
    }
    keep(`control ${cmd}`, JSON.stringify(await pool.ctl(cmd)));
  }
  for (const args of [['-j'], ['-1']]) {
    const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, ...args]);
    assert.equal(r.code, 0, r.stderr);
    keep(`rpcpoolstat ${args.join(' ')}`, r.stdout + r.stderr);
  }
  // the status shows the redacted URLs (so the check above looked at them)
  const status = await pool.ctl('status');
  const urls = status.endpoints.map((e) => e.url);
  assert.ok(urls.some((u) => u.includes('***')), `redacted URLs in status: ${urls}`);
  keep('raw shm segment', fs.readFileSync(path.join('/dev/shm', pool.shmName.slice(1))).toString('latin1'));
  // self-check: the search does find every secret where it is planted
  const planted = [good, ...bads].join('\n');
  for (const [k, v] of Object.entries(S)) assert.ok(planted.includes(v), `secret ${k} planted in the config`);
  c.destroy();
  assert.equal(await pool.stop(), 0);
  keep('daemon log', pool.log.join('\n'));
  assert.ok(pool.log.some((l) => /level=debug/.test(l)), 'the log ran at debug');

  const leaks = [];
  for (const [where, text] of seen) {
    for (const [k, v] of Object.entries(S)) {
      if (text.includes(v)) {
        const i = text.indexOf(v);
        leaks.push(`${k} in ${where}: ...${text.slice(Math.max(0, i - 80), i + 40).replace(/\n/g, '\\n')}...`);
      }
    }
  }
  figure(`secrets: ${Object.keys(S).length} planted, looked for in ${seen.length} outputs ` +
    `(${seen.reduce((n, [, x]) => n + x.length, 0)} bytes)`);
  assert.deepEqual(leaks, [], `secrets leaked:\n${leaks.join('\n')}`);
  lib.assertNoErrors(pool, [/reload/i, /configuration/i]);
});

test('socket_mode, control socket 0600, shm 0600, and 0640 with a group', async (t) => {
  const node = await lib.startFault({});
  t.after(() => node.stop());
  for (const sm of ['0660', '0600', '0666']) {
    const pool = await ready(await lib.startPool({ endpoints: [node], workers: 1, settings: QUIET, server: { socket_mode: sm } }));
    try {
      assert.equal(octal(mode(pool.socket)), sm, 'client socket mode = socket_mode');
      assert.ok(fs.statSync(pool.socket).isSocket());
      assert.equal(octal(mode(pool.controlSocket)), '0600', 'control socket 0600');
      const shm = path.join('/dev/shm', pool.shmName.slice(1));
      assert.equal(octal(mode(shm)), '0600', 'shm segment 0600 without a group');
      assert.equal(fs.statSync(shm).uid, process.getuid());
    } finally {
      assert.equal(await pool.stop(), 0);
    }
    lib.assertNoErrors(pool);
  }
  // with server.group: the segment is 0640 and belongs to that group
  const gid = IS_ROOT ? NOBODY : process.getgid();
  const group = IS_ROOT ? 'nogroup' : (await lib.run('id', ['-gn'])).stdout.trim();
  const pool = await ready(await lib.startPool({ endpoints: [node], workers: 1, settings: QUIET,
    server: { socket_mode: '0660', group } }));
  try {
    const shm = path.join('/dev/shm', pool.shmName.slice(1));
    assert.equal(octal(mode(shm)), '0640', 'shm 0640 with a group');
    assert.equal(fs.statSync(shm).gid, gid, 'shm group');
    assert.equal(fs.statSync(pool.socket).gid, gid, 'client socket group');
    assert.equal(octal(mode(pool.socket)), '0660');
    const c = await lib.ipcClient(pool.socket);
    assert.equal((await c.call(req('net_version'))).result, '31337');
    c.destroy();
  } finally {
    assert.equal(await pool.stop(), 0);
  }
  lib.assertNoErrors(pool);
});

test('the control socket refuses another uid (file mode, and SO_PEERCRED)', async (t) => {
  if (!IS_ROOT || !SETPRIV) {
    t.skip(`needs root and setpriv(1) (uid ${process.getuid()}, setpriv ${SETPRIV || 'missing'})`);
    return;
  }
  const node = await lib.startFault({});
  t.after(() => node.stop());
  const dir = lib.tmpDir('rpcpool-sec-');
  fs.chmodSync(dir, 0o755); // reachable by nobody
  const pool = await ready(await lib.startPool({ dir, endpoints: [node], workers: 1, settings: QUIET,
    server: { socket_mode: '0666' } }));
  t.after(() => pool.stop().catch(() => {}));
  const asNobody = (args) => lib.run(SETPRIV, ['--reuid=65534', '--regid=65534', '--clear-groups',
    lib.daemonBin('rpcpoolctl'), ...args], { timeout: 10000 });
  // root (the owner) is served
  const own = await lib.run(lib.daemonBin('rpcpoolctl'), ['-s', pool.controlSocket, '-j', 'status']);
  assert.equal(own.code, 0, own.stderr);
  assert.equal(JSON.parse(own.stdout).ok, true);
  // nobody cannot even connect to a 0600 socket
  const r1 = await asNobody(['-s', pool.controlSocket, '-j', 'status']);
  assert.notEqual(r1.code, 0, `nobody refused by the file mode: ${r1.stdout}`);
  assert.doesNotMatch(r1.stdout, /"ok":true/);
  // a socket file opened up by mistake: SO_PEERCRED still refuses
  fs.chmodSync(pool.controlSocket, 0o666);
  for (const cmd of ['status', 'shutdown', 'workers 1', 'drain 0']) {
    const r = await asNobody(['-s', pool.controlSocket, '-j', ...cmd.split(' ')]);
    figure(`control as nobody "${cmd}": exit ${r.code} ${(r.stdout + r.stderr).trim().slice(0, 120)}`);
    assert.notEqual(r.code, 0, `nobody refused by SO_PEERCRED (${cmd}): ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /"ok":true/);
  }
  // still running, still serving, nothing was drained or shut down
  const s = await pool.ctl('status');
  assert.equal(s.ok, true);
  assert.ok(s.endpoints.every((e) => e.state === 'up'), JSON.stringify(s.endpoints));
  const c = await lib.ipcClient(pool.socket);
  assert.equal((await c.call(req('net_version'))).result, '31337');
  c.destroy();
  // the client socket (0666) is open to nobody: the IPC path works for it
  const cast = await lib.run(SETPRIV, ['--reuid=65534', '--regid=65534', '--clear-groups',
    lib.tool('cast'), 'chain-id', '--rpc-url', pool.socket], { timeout: 30000 });
  assert.equal(cast.code, 0, cast.stderr);
  assert.equal(cast.stdout.trim(), '31337');
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool, [/refused|not allowed|permission|peer/i]);
});

test('started as root with server.user/group: supervisor, workers and prober run as nobody', async (t) => {
  if (!IS_ROOT) {
    t.skip(`needs root (uid ${process.getuid()})`);
    return;
  }
  const node = await lib.startFault({});
  t.after(() => node.stop());
  // nobody must be able to remove the socket at stop: the directory is its
  const dir = lib.tmpDir('rpcpool-priv-');
  fs.chownSync(dir, NOBODY, NOBODY);
  fs.chmodSync(dir, 0o755);
  const pool = await ready(await lib.startPool({ dir, endpoints: [node], workers: 2, settings: QUIET,
    server: { user: 'nobody', group: 'nogroup', socket_mode: '0660' } }));
  t.after(() => pool.stop().catch(() => {}));
  const procs = await runningWorkers(pool, 2);
  const all = [{ kind: 'supervisor', pid: pool.pid }, ...procs];
  for (const p of all) {
    assert.deepEqual(uids(p.pid), [NOBODY, NOBODY, NOBODY, NOBODY], `${p.kind} ${p.pid} Uid`);
    assert.deepEqual(gids(p.pid), [NOBODY, NOBODY, NOBODY, NOBODY], `${p.kind} ${p.pid} Gid`);
    const groups = /^Groups:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))[1].trim();
    assert.ok(groups === '' || groups.split(/\s+/).every((g) => Number(g) === NOBODY),
      `${p.kind} supplementary groups "${groups}" (root's dropped)`);
  }
  figure(`privileges: ${all.map((p) => `${p.kind} ${p.pid}`).join(', ')} all uid/gid ${NOBODY}`);
  const sock = fs.statSync(pool.socket);
  assert.equal(sock.uid, NOBODY, 'client socket owned by nobody');
  assert.equal(sock.gid, NOBODY, 'client socket group nogroup');
  assert.equal(octal(mode(pool.socket)), '0660');
  const shm = path.join('/dev/shm', pool.shmName.slice(1));
  assert.equal(fs.statSync(shm).uid, NOBODY, 'shm owned by nobody');
  assert.equal(octal(mode(shm)), '0640');
  // it serves, and its control socket answers its owner... and root
  const c = await lib.ipcClient(pool.socket);
  for (let i = 0; i < 20; i++) assert.equal((await c.call(req('net_version'))).result, '31337');
  c.destroy();
  assert.equal((await pool.ctl('ping')).ok, true);
  // a worker replaced after a crash runs as nobody too
  const victim = procs.find((p) => p.kind === 'worker');
  process.kill(victim.pid, 'SIGKILL');
  const fresh = await lib.waitFor(async () => {
    const w = (await stat(pool)).workers.find((x) => x.slot === victim.slot);
    return w && w.pid > 1 && w.pid !== victim.pid && w.state === 'running' ? w : null;
  }, { timeout: 15000, message: 'replacement worker' });
  assert.deepEqual(uids(fresh.pid), [NOBODY, NOBODY, NOBODY, NOBODY], 'replacement worker Uid');
  // stops cleanly: exit 0, socket, control socket and shm removed
  assert.equal(await pool.stop(), 0);
  assert.equal(fs.existsSync(pool.socket), false, 'client socket removed');
  assert.equal(fs.existsSync(pool.controlSocket), false, 'control socket removed');
  assert.equal(fs.existsSync(shm), false, 'shm removed');
  lib.assertNoErrors(pool, [/worker died/]);
});

test('a user that does not exist is a start-up failure (exit 2), nothing left behind', async (t) => {
  if (!IS_ROOT) {
    t.skip(`needs root (uid ${process.getuid()})`);
    return;
  }
  const node = await lib.startFault({});
  t.after(() => node.stop());
  const cfg = lib.writePoolConfig({ endpoints: [node], workers: 1, settings: QUIET,
    server: { user: 'no-such-user-rpcpool' } });
  const d = lib.spawnDaemon(['-c', cfg.conf]);
  const r = await lib.withTimeout(d.exited, 15000, 'rpcpoold exit');
  assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}: ${d.log.join('\n')}`);
  assert.equal(fs.existsSync(cfg.socket), false);
  assert.equal(fs.existsSync(path.join('/dev/shm', cfg.shmName.slice(1))), false);
});
