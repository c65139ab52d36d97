// lib.js - the harness of rpcpool's integration tests (node:test, CommonJS).
//
// It starts the real programs (anvil, the fault upstream tests/upstream/fault.js,
// build/rpcpoold), waits for them with deadlines (never bare sleeps), talks to
// them (IPC client, HTTP, control socket, cast), and guarantees that every
// process it started is gone when the test file ends: each one is tracked and
// killed by pid (the daemon by its own process group, so its workers go too)
// from a node:test `after` hook, on exit and on SIGINT/SIGTERM/SIGHUP.
//
// Typical use:
//   const lib = require('./lib.js');
//   test('reads go through', async () => {
//     const node = await lib.startAnvil();
//     const bad = await lib.startFault({ mode: 'http500' });
//     const pool = await lib.startPool({ endpoints: [node, bad], workers: 2,
//       settings: { retries: 2 }, server: { max_batch: 10 } });
//     const c = await lib.ipcClient(pool.socket);
//     const r = await c.call({ method: 'eth_chainId', params: [] });
//     assert.equal(r.result, '0x7a69');
//     c.destroy();
//     assert.equal(await pool.stop(), 0);
//     lib.assertNoErrors(pool, [/upstream failed/]);
//   });
//
// Environment:
//   RPCPOOL_BUILD     build directory holding rpcpoold (default "build")
//   RPCPOOL_KEEP_TMP  set to 1 to keep the temporary directories
//   RPCPOOL_TEST_VERBOSE  set to 1 to copy daemon logs to stderr as they come
'use strict';

const assert = require('node:assert/strict');
const child_process = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const nodeTest = require('node:test');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.RPCPOOL_BUILD || 'build');
const BIN = path.join(ROOT, 'tests', 'node_modules', '.bin');
const FAULT = path.join(ROOT, 'tests', 'upstream', 'fault.js');
const VERBOSE = process.env.RPCPOOL_TEST_VERBOSE === '1';

// Sanitizer settings for the daemon when the caller (tests/run.sh) set none.
const CHILD_ENV = {
  ...process.env,
  ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
};

/* ------------------------------------------------------------------ */
/* Process tracking and cleanup                                        */
/* ------------------------------------------------------------------ */

const tracked = new Set(); // {proc, group, name}
const tmpDirs = [];
const shmNames = [];
let cleanedUp = false;

// Kill every tracked process still running (by pid, or by its process group
// when it was started as a group leader), then remove temporary state.
function cleanupAll() {
  for (const t of tracked) {
    if (t.proc.exitCode === null && t.proc.signalCode === null) {
      try {
        if (t.group) process.kill(-t.proc.pid, 'SIGKILL');
        else process.kill(t.proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    } else if (t.group && !t.reaped) {
      // The leader is gone; workers it forked may still be in its group.
      try {
        process.kill(-t.proc.pid, 'SIGKILL');
      } catch {
        /* no such group */
      }
    }
  }
  tracked.clear();
  for (const name of shmNames.splice(0)) {
    try {
      fs.unlinkSync(path.join('/dev/shm', name.replace(/^\//, '')));
    } catch {
      /* removed by the daemon */
    }
  }
  if (process.env.RPCPOOL_KEEP_TMP !== '1') {
    for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
}

function finalCleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  cleanupAll();
}

process.on('exit', finalCleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    finalCleanup();
    process.exit(128 + os.constants.signals[sig]);
  });
}
// Runs after the last test of the file that loaded this module (not for a
// script outside the test runner, e.g. bench/hedge.js: the exit handler
// above cleans up, and no empty TAP report is printed).
if (process.env.RPCPOOL_LIB_NO_TEST !== '1') nodeTest.after(() => cleanupAll());

// Spawn CMD ARGS tracked; GROUP makes it a process-group leader (the daemon,
// so its workers can be killed with it). Returns the ChildProcess, which has
// an `exited` promise resolving to {code, signal}.
function spawnTracked(cmd, args, opts = {}) {
  const proc = child_process.spawn(cmd, args, {
    cwd: opts.cwd || ROOT,
    env: opts.env || CHILD_ENV,
    stdio: opts.stdio || ['pipe', 'pipe', 'pipe'],
    detached: !!opts.group,
  });
  const entry = { proc, group: !!opts.group, name: opts.name || path.basename(cmd) };
  tracked.add(entry);
  proc.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', (err) => {
      proc.spawnError = err;
      resolve({ code: null, signal: null, error: err });
    });
  });
  proc.exited.then(() => {
    if (!entry.group) tracked.delete(entry);
  });
  return proc;
}

// Forget PROC (a reaped group leader): its pid may be reused from now on.
function untrack(proc) {
  for (const t of tracked) if (t.proc === proc) tracked.delete(t);
}

function isRunning(proc) {
  return proc.exitCode === null && proc.signalCode === null && !proc.spawnError;
}

// Capture the lines of STREAM into the array LINES (and call ONLINE for each).
function captureLines(stream, lines, onLine, prefix) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      if (VERBOSE) process.stderr.write(`${prefix || ''}${line}\n`);
      if (onLine) onLine(line);
    }
  });
  stream.on('end', () => {
    if (buf !== '') {
      lines.push(buf);
      if (onLine) onLine(buf);
      buf = '';
    }
  });
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Poll FN (sync or async) every INTERVAL ms until it returns a truthy value,
// which is returned; throws after TIMEOUT ms naming MESSAGE and the last
// error FN threw.
async function waitFor(fn, { timeout = 10000, interval = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastErr = null;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? `: last error: ${lastErr.message}` : '';
      throw new Error(`waitFor: ${message} not met within ${timeout} ms${why}`);
    }
    await delay(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

// Race PROMISE against a TIMEOUT ms deadline; rejects with WHAT on expiry.
function withTimeout(promise, timeout, what) {
  let t;
  const d = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: timed out after ${timeout} ms`)), timeout);
  });
  return Promise.race([promise, d]).finally(() => clearTimeout(t));
}

// A free TCP port on 127.0.0.1 (bound and released; the callers retry when
// another process took it in between).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A new empty directory under os.tmpdir() (or /tmp when that path would
// leave too little room for UNIX socket names), removed when the file ends.
function tmpDir(prefix = 'rpcpool-') {
  let base = os.tmpdir();
  if (base.length > 60) base = '/tmp';
  const d = fs.mkdtempSync(path.join(base, prefix));
  tmpDirs.push(d);
  return d;
}

let uniq = 0;
function uniqueTag() {
  uniq++;
  return `${process.pid}-${uniq}`;
}

// Run CMD ARGS to completion (execFile, no shell). Resolves to {code, signal,
// stdout, stderr, timedOut}; never rejects for a non-zero exit.
function run(cmd, args = [], { timeout = 30000, env, input, cwd } = {}) {
  return new Promise((resolve) => {
    const p = child_process.execFile(
      cmd, args,
      { timeout, env: env || CHILD_ENV, cwd: cwd || ROOT, maxBuffer: 64 << 20, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({
          code,
          signal: err ? err.signal || null : null,
          timedOut: !!(err && err.killed && err.signal === 'SIGKILL'),
          stdout: String(stdout),
          stderr: String(stderr),
          error: err && typeof err.code === 'string' ? err.code : undefined,
        });
      });
    const entry = { proc: p, group: false, name: path.basename(cmd) };
    tracked.add(entry);
    p.once('exit', () => tracked.delete(entry));
    if (input !== undefined) p.stdin.end(input);
    else if (p.stdin) p.stdin.end();
  });
}

// A test tool from tests/node_modules/.bin (anvil, cast).
function tool(name) {
  return path.join(BIN, name);
}

// A program of the build under test (rpcpoold, rpcpoolctl, rpcpoolstat).
function daemonBin(name) {
  return path.join(BUILD, name);
}

// `cast ARGS...` from tests/node_modules/.bin.
function cast(args, opts) {
  return run(tool('cast'), args, opts);
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */
/* ------------------------------------------------------------------ */

// One HTTP request, without keep-alive. TARGET is a URL string or
// {socketPath} / {host, port}. Resolves to {status, headers, body} (body a
// string); rejects on a connection error or after TIMEOUT ms.
function httpRequest(target, { method = 'GET', path: p = '/', body, headers = {}, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const opts = { method, headers: { ...headers }, agent: false, path: p };
    if (typeof target === 'string') {
      const u = new URL(target);
      opts.host = u.hostname;
      opts.port = u.port;
      opts.path = p === '/' ? u.pathname + u.search : p;
    } else if (target.socketPath) {
      opts.socketPath = target.socketPath;
    } else {
      opts.host = target.host || '127.0.0.1';
      opts.port = target.port;
    }
    let data;
    if (body !== undefined) {
      data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      opts.headers['Content-Type'] = opts.headers['Content-Type'] || 'application/json';
      opts.headers['Content-Length'] = data.length;
    }
    opts.headers.Connection = 'close';
    const req = http.request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`HTTP ${method} ${p}: timed out after ${timeout} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

let rpcSeq = 0;
// Call METHOD on a JSON-RPC HTTP endpoint URL; resolves to the parsed
// response object (result or error).
async function httpRpc(url, method, params = [], opts = {}) {
  const r = await httpRequest(url, {
    method: 'POST',
    body: { jsonrpc: '2.0', id: ++rpcSeq, method, params },
    timeout: opts.timeout || 10000,
  });
  if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body);
}

/* ------------------------------------------------------------------ */
/* anvil                                                               */
/* ------------------------------------------------------------------ */

// Start anvil on a free loopback port: {port, url, ipc, proc, log, rpc(),
// stop()}. IPC: true adds an IPC socket in a temporary directory.
async function startAnvil({ chainId = 31337, ipc = false, args = [], timeout = 30000 } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const ipcPath = ipc ? path.join(tmpDir('anvil-'), 'anvil.ipc') : null;
    const argv = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--quiet',
      ...(ipcPath ? ['--ipc', ipcPath] : []), ...args];
    const proc = spawnTracked(tool('anvil'), argv, { name: 'anvil', stdio: ['ignore', 'pipe', 'pipe'] });
    const log = [];
    captureLines(proc.stdout, log, null, '[anvil] ');
    captureLines(proc.stderr, log, null, '[anvil] ');
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (!isRunning(proc)) throw Object.assign(new Error('anvil exited'), { fatal: true });
        const r = await httpRpc(url, 'eth_blockNumber', [], { timeout: 2000 });
        return typeof r.result === 'string';
      }, { timeout, interval: 50, message: `anvil on port ${port} answering eth_blockNumber` });
      if (ipcPath) await waitFor(() => fs.existsSync(ipcPath), { timeout, message: 'anvil IPC socket' });
    } catch (e) {
      lastErr = new Error(`${e.message}\n${log.join('\n')}`);
      if (isRunning(proc)) {
        proc.kill('SIGKILL');
      }
      await proc.exited;
      continue;
    }
    return {
      port,
      url,
      ipc: ipcPath,
      chainId,
      proc,
      log,
      rpc: (method, params, opts) => httpRpc(url, method, params, opts),
      stop: () => stopProc(proc, { timeout: 10000 }),
    };
  }
  throw lastErr;
}

// SIGTERM PROC (or its group), wait up to TIMEOUT ms, then SIGKILL. Resolves
// to the exit code, or the signal name when it died of a signal.
async function stopProc(proc, { timeout = 10000, signal = 'SIGTERM' } = {}) {
  if (isRunning(proc)) {
    try {
      proc.kill(signal);
    } catch {
      /* gone */
    }
  }
  let r;
  try {
    r = await withTimeout(proc.exited, timeout, 'stop');
  } catch {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    r = await proc.exited;
    r.killed = true;
  }
  return r.code !== null ? r.code : r.signal;
}

/* ------------------------------------------------------------------ */
/* fault upstream                                                      */
/* ------------------------------------------------------------------ */

// Start tests/upstream/fault.js: {port, url, proc, log, state(), setMode(),
// resetCounters(), setBlock(), stop()}. OPTS: mode, chainId, block, and the
// mode parameters (delay_ms, retry_after, drip_ms, big_bytes, status, times);
// tls: {cert, key} (files, e.g. from makeTls()) makes it an HTTPS upstream
// whose url is https://localhost:PORT, controlled over a separate plain-HTTP
// port; host: the host name the url names (default localhost for https,
// 127.0.0.1 for http).
async function startFault(opts = {}) {
  const argv = [FAULT, '--port', '0', '--exit-with-stdin'];
  if (opts.tls) argv.push('--tls-cert', opts.tls.cert, '--tls-key', opts.tls.key, '--control-port', '0');
  if (opts.mode) argv.push('--mode', String(opts.mode));
  if (opts.chainId !== undefined) argv.push('--chain-id', String(opts.chainId));
  if (opts.block !== undefined) argv.push('--block', String(opts.block));
  if (opts.alsoListen) argv.push('--also-listen', opts.alsoListen);
  const flags = { delay_ms: '--delay-ms', retry_after: '--retry-after', drip_ms: '--drip-ms',
    big_bytes: '--big-bytes', status: '--status', times: '--times', delay_every: '--delay-every',
    fail_delay_ms: '--fail-delay-ms' };
  for (const [k, f] of Object.entries(flags)) if (opts[k] !== undefined) argv.push(f, String(opts[k]));
  const proc = spawnTracked(process.execPath, argv, { name: 'fault' });
  const out = [];
  const log = [];
  let portResolve;
  let controlPort = null;
  const portP = new Promise((r) => { portResolve = r; });
  captureLines(proc.stdout, out, (line) => {
    try {
      const v = JSON.parse(line);
      if (v && v.control_port) controlPort = v.control_port;
      if (v && v.port) portResolve(v.port);
    } catch {
      /* not the port line */
    }
  });
  captureLines(proc.stderr, log, null, '[fault] ');
  const port = await withTimeout(Promise.race([
    portP,
    proc.exited.then((r) => {
      throw new Error(`fault.js exited (${r.code ?? r.signal}): ${log.join('\n')}`);
    }),
  ]), 15000, 'fault.js start');
  const url = opts.tls ? `https://${opts.host || 'localhost'}:${port}` : `http://${opts.host || '127.0.0.1'}:${port}`;
  const ctlUrl = opts.tls ? `http://127.0.0.1:${controlPort}` : url;
  const ctl = async (method, p, body) => {
    const r = await httpRequest(ctlUrl, { method, path: p, body });
    const v = JSON.parse(r.body);
    if (r.status !== 200) throw new Error(`fault control ${p}: ${r.status} ${v.error || r.body}`);
    return v;
  };
  return {
    port,
    url,
    proc,
    log,
    state: () => ctl('GET', '/_control/state'),
    setMode: (mode, params = {}) => ctl('POST', '/_control/mode', { mode, ...params }),
    resetCounters: () => ctl('POST', '/_control/reset', {}),
    setBlock: (block) => ctl('POST', '/_control/block', { block }),
    setTls: (files) => ctl('POST', '/_control/tls', { cert: files.cert, key: files.key }),
    stop: () => stopProc(proc, { timeout: 10000 }),
  };
}

/* ------------------------------------------------------------------ */
/* redis-server (fleet mode)                                           */
/* ------------------------------------------------------------------ */

// 1 when something accepts TCP connections on 127.0.0.1:PORT.
function canConnectTcp(port, timeout = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const t = setTimeout(() => { s.destroy(); resolve(false); }, timeout);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

// Start a redis-server of our own on 127.0.0.1:PORT (a free port when not
// given; BIND: more addresses, e.g. a veth's), persistence off, in a fresh directory; resolves once it accepts
// connections. Returns {port, addr, proc, log, stop(), kill(sig)}; stopped by
// pid (tracked like every process started here).
async function startRedis({ port, bind = [], args = [] } = {}) {
  port = port || await freePort();
  const dir = tmpDir('rpcpool-redis-');
  const proc = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...bind,
    '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', ...args],
  { name: 'redis-server' });
  const log = [];
  captureLines(proc.stdout, log, null, '[redis] ');
  captureLines(proc.stderr, log, null, '[redis] ');
  await waitFor(async () => {
    if (!isRunning(proc)) throw new Error(`redis-server exited: ${log.join('\n')}`);
    return canConnectTcp(port, 500);
  }, { timeout: 15000, message: `redis-server on port ${port}` });
  return {
    port,
    addr: `127.0.0.1:${port}`,
    proc,
    log,
    stop: () => stopProc(proc, { timeout: 10000 }),
    kill(sig = 'SIGKILL') {
      if (isRunning(proc)) proc.kill(sig);
      return proc.exited;
    },
  };
}

// With the openssl CLI, into DIR (a fresh temporary directory when not
// given): a CA of its own (ca.pem) and, signed by it, a server certificate
// for the host names NAMES and 127.0.0.1 (cert.pem, key.pem); a second
// certificate from the same CA for another name only (wrong.pem,
// wrong.key); and a certificate for NAMES from a CA nobody trusts
// (untrusted.pem, untrusted.key). Resolves to the file names.
async function makeTls({ dir, names = ['localhost'] } = {}) {
  dir = dir || tmpDir('rpcpool-tls-');
  const f = (n) => path.join(dir, n);
  const ossl = async (args) => {
    const r = await run('openssl', args, { cwd: dir });
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name) => ossl(['req', '-x509', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`),
    '-days', '2', '-subj', `/CN=rpcpool test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = async (caName, out, sans) => {
    fs.writeFileSync(f(`${out}.ext`), `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\n` +
      'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    await ossl(['req', ...ec, '-keyout', f(`${out}.key`), '-out', f(`${out}.csr`), '-subj', `/CN=${out}`]);
    await ossl(['x509', '-req', '-in', f(`${out}.csr`), '-CA', f(`${caName}.pem`), '-CAkey', f(`${caName}.key`),
      '-CAcreateserial', '-out', f(`${out}.pem`), '-days', '2', '-extfile', f(`${out}.ext`)]);
  };
  const sans = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  await ca('ca');
  await ca('otherca');
  await leaf('ca', 'cert', sans);
  await leaf('ca', 'wrong', 'DNS:wrong.example');
  await leaf('otherca', 'untrusted', sans);
  return {
    dir,
    ca: f('ca.pem'),
    cert: f('cert.pem'),
    key: f('cert.key'),
    wrong: { cert: f('wrong.pem'), key: f('wrong.key') },
    untrusted: { cert: f('untrusted.pem'), key: f('untrusted.key') },
    good: { cert: f('cert.pem'), key: f('cert.key') },
  };
}

/* ------------------------------------------------------------------ */
/* rpcpoold                                                            */
/* ------------------------------------------------------------------ */

// A JS value as libconfig text: integers (with L past 32 bits), floats,
// strings, booleans, arrays of scalars as [ ], arrays of groups as ( ),
// objects as groups { key = value; }.
function toLibconfig(v, indent = '') {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return `${v}L`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`toLibconfig: ${v}`);
    if (Number.isInteger(v)) return Math.abs(v) > 2147483647 ? `${v}L` : String(v);
    return String(v);
  }
  if (Array.isArray(v)) {
    const inner = indent + '  ';
    const scalars = v.every((x) => x === null || typeof x !== 'object');
    const items = v.map((x) => toLibconfig(x, inner));
    if (scalars) return `[ ${items.join(', ')} ]`;
    return `(\n${items.map((x) => inner + x).join(',\n')}\n${indent})`;
  }
  if (v && typeof v === 'object') {
    const inner = indent + '  ';
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    return `{\n${keys.map((k) => `${inner}${k} = ${toLibconfig(v[k], inner)};`).join('\n')}\n${indent}}`;
  }
  throw new Error(`toLibconfig: cannot write ${v}`);
}

// An endpoint as given to startPool: a URL string, a handle from startAnvil /
// startFault (its url), or a group object {url, name, weight, headers, ...}.
function endpointValue(e) {
  if (typeof e === 'string') return e;
  if (e && e.proc && typeof e.url === 'string') return e.url;
  if (e && typeof e.url === 'string') return e;
  throw new Error(`startPool: bad endpoint ${JSON.stringify(e)}`);
}

// Write a configuration file for a pool in a fresh temporary directory and
// return {dir, conf, socket, controlSocket, shmName, name, text}.
// OPTS: endpoints (required), workers, name, settings (top-level keys),
// server (keys merged into server = { }), extra (raw text appended).
function writePoolConfig(opts = {}) {
  const dir = opts.dir || tmpDir('rpcpool-');
  const tag = uniqueTag();
  const name = opts.name || `t${tag}`;
  const socket = path.join(dir, 'pool.ipc');
  const controlSocket = path.join(dir, 'pool.ctl');
  const shmName = `/rpcpool.test.${tag}`;
  const server = {
    socket,
    control_socket: controlSocket,
    shm_name: shmName,
    workers: opts.workers !== undefined ? opts.workers : 2,
    log_level: 'debug',
    ...(opts.server || {}),
  };
  const top = {
    name,
    // The response cache and coalescing are on by default in rpcpoold; test
    // pools count upstream calls, so they are off here unless a test (e.g.
    // cache.test.js) turns them on.
    cache: { max_bytes: 0, finality_depth: 64 },
    coalesce: false,
    ...(opts.settings || {}),
  };
  const eps = (opts.endpoints || []).map(endpointValue);
  let text = '# written by tests/integration/lib.js\n';
  for (const [k, v] of Object.entries(top)) if (v !== undefined) text += `${k} = ${toLibconfig(v)};\n`;
  if (eps.length) text += `endpoints = ${endpointsText(eps)};\n`;
  text += `server = ${toLibconfig(server)};\n`;
  if (opts.extra) text += `${opts.extra}\n`;
  const conf = path.join(dir, 'rpcpool.conf');
  fs.writeFileSync(conf, text);
  shmNames.push(server.shm_name);
  return {
    dir, conf, socket: server.socket, controlSocket: server.control_socket, shmName: server.shm_name, name, text,
  };
}

// endpoints is a libconfig list ( ... ) (it may mix strings and groups), even
// when every element is a URL string.
function endpointsText(eps) {
  return `(\n${eps.map((e) => `  ${toLibconfig(e, '  ')}`).join(',\n')}\n)`;
}

// Spawn `rpcpoold ARGS` (its own process group) with its stderr and stdout
// captured as lines. Returns {proc, log, exited}.
function spawnDaemon(args, { env, wrap } = {}) {
  const bin = daemonBin('rpcpoold');
  // WRAP: a command that execs the daemon in place (e.g. ip netns exec NS)
  const [cmd, argv] = wrap && wrap.length ? [wrap[0], [...wrap.slice(1), bin, ...args]] : [bin, args];
  const proc = spawnTracked(cmd, argv, { group: true, name: 'rpcpoold', env: env ? { ...CHILD_ENV, ...env } : CHILD_ENV });
  const log = [];
  captureLines(proc.stderr, log, null, '[rpcpoold] ');
  captureLines(proc.stdout, log, null, '[rpcpoold] ');
  return { proc, log, exited: proc.exited };
}

// 1 when something accepts connections on the UNIX socket P.
function canConnect(p, timeout = 1000) {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeout);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

function tail(lines, n = 60) {
  return lines.slice(-n).join('\n');
}

// Start rpcpoold on a generated configuration (see writePoolConfig) and wait
// until its client socket accepts connections (TIMEOUT, default 15 s; fails
// with the captured log if the daemon exits first). Returns {socket,
// controlSocket, shmName, conf, dir, proc, pid, log, exited, stop(), kill(),
// waitLog(), ctl()}.
async function startPool(opts = {}) {
  const cfg = writePoolConfig(opts);
  const args = ['-c', cfg.conf, ...(opts.args || [])];
  const d = spawnDaemon(args, { env: opts.env, wrap: opts.wrap });
  const pool = {
    ...cfg,
    proc: d.proc,
    pid: d.proc.pid,
    log: d.log,
    exited: d.exited,
    // SIGTERM, wait for the exit (TIMEOUT ms, then SIGKILL of the group and
    // an error); resolves to the exit code or the signal name. Fails too when
    // workers outlive the supervisor.
    async stop({ timeout = 30000 } = {}) {
      if (isRunning(d.proc)) d.proc.kill('SIGTERM');
      let r;
      try {
        r = await withTimeout(d.exited, timeout, 'rpcpoold stop');
      } catch {
        try {
          process.kill(-d.proc.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await d.exited;
        throw new Error(`rpcpoold did not exit within ${timeout} ms of SIGTERM\n${tail(d.log)}`);
      }
      const clean = await reapGroup(d.proc.pid);
      untrack(d.proc);
      if (!clean) {
        throw new Error(`rpcpoold's supervisor exited but processes of its group (workers) were still ` +
          `running 5 s later; killed\n${tail(d.log)}`);
      }
      return r.code !== null ? r.code : r.signal;
    },
    kill(sig = 'SIGKILL') {
      if (isRunning(d.proc)) d.proc.kill(sig);
    },
    // Wait until a captured log line matches RE; returns the line.
    waitLog(re, { timeout = 10000, from = 0 } = {}) {
      return waitFor(() => d.log.slice(from).find((l) => re.test(l)),
        { timeout, message: `log line ${re}` }).catch((e) => {
        throw new Error(`${e.message}\n${tail(d.log)}`);
      });
    },
    // One control command; resolves to the parsed JSON answer.
    ctl: (cmd, o) => controlCommand(cfg.controlSocket, cmd, o),
  };
  const waitMs = opts.timeout || 15000;
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (!isRunning(d.proc)) {
      const r = await d.exited;
      throw new Error(`rpcpoold exited (${r.code ?? r.signal}) before its socket accepted connections\n` +
        `config:\n${cfg.text}\nlog:\n${tail(d.log, 200)}`);
    }
    // The client socket listens before the shm segment, the control socket
    // and the workers exist: ready means the control socket answers and
    // every worker it lists is running.
    if (fs.existsSync(cfg.socket) && (await canConnect(cfg.socket)) &&
        (await poolReady(cfg.controlSocket))) break;
    if (Date.now() >= deadline) {
      try {
        process.kill(-d.proc.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw new Error(`rpcpoold socket ${cfg.socket} not accepting within ${waitMs} ms\nlog:\n${tail(d.log, 200)}`);
    }
    await delay(25);
  }
  return pool;
}

// One look at the control socket: 1 when it answers status with every
// worker process running.
async function poolReady(ctlPath) {
  try {
    const st = await controlCommand(ctlPath, 'status', { timeout: 2000 });
    const workers = (st.workers || []).filter((w) => w.kind === undefined || w.kind === 'worker');
    return st.ok === true && workers.length > 0 && workers.every((w) => w.state === 'running');
  } catch {
    return false;
  }
}

// Wait (bounded) until no process of the group led by PID is left, so one
// test's workers cannot leak into the next. Returns true when the group went
// away by itself; false when stragglers had to be SIGKILLed.
async function reapGroup(pid, timeout = 5000) {
  const gone = () => {
    try {
      process.kill(-pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  try {
    await waitFor(gone, { timeout, interval: 25, message: `process group ${pid} gone` });
    return true;
  } catch {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await waitFor(gone, { timeout: 5000, interval: 25, message: `process group ${pid} gone after SIGKILL` })
      .catch(() => {});
    return false;
  }
}

// Send one line CMD to the control socket P; resolves to the parsed answer.
function controlCommand(p, cmd, { timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(p);
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`control ${cmd}: no answer within ${timeout} ms`));
    }, timeout);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (c) => {
      buf += c;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(t);
        s.destroy();
        try {
          resolve(JSON.parse(buf.slice(0, i)));
        } catch (e) {
          reject(new Error(`control ${cmd}: not JSON: ${buf.slice(0, i)}`));
        }
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('end', () => {
      clearTimeout(t);
      if (buf.indexOf('\n') < 0) reject(new Error(`control ${cmd}: closed without an answer (${buf})`));
    });
  });
}

// Lines that always fail a test: sanitizer reports.
const SANITIZER_RE = /ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)/;

// Fail unless every captured line of POOL (or an array of lines) is free of
// `level=error` (except lines matching one of the ALLOW regexes) and of
// sanitizer reports (never allowed).
function assertNoErrors(pool, allow = []) {
  const lines = Array.isArray(pool) ? pool : pool.log;
  const bad = lines.filter((l) => SANITIZER_RE.test(l) ||
    (/(^|\s)level=error(\s|$)/.test(l) && !allow.some((re) => re.test(l))));
  if (bad.length) {
    assert.fail(`rpcpoold logged ${bad.length} unexpected error line(s):\n${bad.slice(0, 30).join('\n')}`);
  }
}

/* ------------------------------------------------------------------ */
/* IPC client                                                          */
/* ------------------------------------------------------------------ */

let idSeq = 0;
// Ids unique across every client of the test file.
function nextId() {
  idSeq++;
  return idSeq;
}

function idKey(id) {
  return JSON.stringify(id);
}

// Connect to the UNIX socket SOCKETPATH. Resolves to a client:
//   send(str|Buffer)        write raw bytes
//   readLines(n, timeout)   the next N response lines not claimed by call()
//   readLine(timeout)       one such line
//   call(obj|array, {timeout}) write one request (ids assigned when absent)
//                           and resolve to its response (parsed)
//   close(), destroy(), ended (promise: resolves when the server closes),
//   lines (every line received, raw), isClosed()
function ipcClient(socketPath, { timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`ipcClient: connect to ${socketPath} timed out`));
    }, timeout);
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    sock.once('connect', () => {
      clearTimeout(t);
      resolve(makeClient(sock));
    });
  });
}

function makeClient(sock) {
  const all = [];        // every line, raw
  const unclaimed = [];  // lines nobody's call() is waiting for
  const pendingCalls = new Map(); // key -> {resolve, reject}
  const lineWaiters = [];         // {n, resolve, reject, timer}
  let closed = false;
  let buf = '';
  let endResolve;
  const ended = new Promise((r) => { endResolve = r; });

  const serveWaiters = () => {
    while (lineWaiters.length && unclaimed.length >= lineWaiters[0].n) {
      const w = lineWaiters.shift();
      clearTimeout(w.timer);
      w.resolve(unclaimed.splice(0, w.n));
    }
  };

  const onLine = (line) => {
    all.push(line);
    let v;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    let key = null;
    if (v && Array.isArray(v)) key = 'batch:' + v.map((r) => idKey(r && r.id)).sort().join(',');
    else if (v && typeof v === 'object' && 'id' in v) key = idKey(v.id);
    if (key !== null && pendingCalls.has(key)) {
      const p = pendingCalls.get(key);
      pendingCalls.delete(key);
      p.resolve(v);
      return;
    }
    unclaimed.push(line);
    serveWaiters();
  };

  sock.setEncoding('utf8');
  sock.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
  const finish = (err) => {
    if (closed) return;
    closed = true;
    const why = err ? `: ${err.message}` : '';
    for (const [k, p] of pendingCalls) p.reject(new Error(`ipc connection closed before the answer to ${k}${why}`));
    pendingCalls.clear();
    for (const w of lineWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(Object.assign(new Error(`ipc connection closed with ${unclaimed.length} of ${w.n} line(s)${why}; ` +
        `partial: ${JSON.stringify(buf.slice(0, 200))}`), { lines: unclaimed.slice() }));
    }
    endResolve({ error: err || null, rest: buf });
  };
  sock.on('end', () => finish(null));
  sock.on('close', () => finish(null));
  sock.on('error', (e) => finish(e));

  const client = {
    sock,
    lines: all,
    ended,
    isClosed: () => closed,
    send(data) {
      return new Promise((resolve, reject) => {
        sock.write(data, (err) => (err ? reject(err) : resolve()));
      });
    },
    readLines(n = 1, timeout = 10000) {
      return new Promise((resolve, reject) => {
        const w = { n, resolve, reject, timer: null };
        w.timer = setTimeout(() => {
          const i = lineWaiters.indexOf(w);
          if (i >= 0) lineWaiters.splice(i, 1);
          reject(new Error(`readLines: ${unclaimed.length} of ${n} line(s) within ${timeout} ms: ` +
            JSON.stringify(unclaimed.slice(0, 5))));
        }, timeout);
        lineWaiters.push(w);
        serveWaiters();
        if (closed && lineWaiters.includes(w)) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          clearTimeout(w.timer);
          reject(new Error(`readLines: connection closed with ${unclaimed.length} of ${n} line(s)`));
        }
      });
    },
    async readLine(timeout = 10000) {
      return (await client.readLines(1, timeout))[0];
    },
    call(req, { timeout = 15000 } = {}) {
      const reqs = Array.isArray(req) ? req : [req];
      for (const r of reqs) {
        if (r && typeof r === 'object') {
          if (r.jsonrpc === undefined) r.jsonrpc = '2.0';
          if (r.id === undefined) r.id = nextId();
        }
      }
      const key = Array.isArray(req)
        ? 'batch:' + reqs.filter((r) => r && r.id !== undefined).map((r) => idKey(r.id)).sort().join(',')
        : idKey(req.id);
      if (pendingCalls.has(key)) return Promise.reject(new Error(`call: id ${key} already in flight`));
      if (closed) return Promise.reject(new Error('call: connection closed'));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingCalls.delete(key);
          reject(new Error(`call ${key}: no answer within ${timeout} ms`));
        }, timeout);
        pendingCalls.set(key, {
          resolve: (v) => { clearTimeout(timer); resolve(v); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        });
        sock.write(JSON.stringify(req) + '\n');
      });
    },
    close() {
      sock.end();
      return ended;
    },
    destroy() {
      sock.destroy();
    },
  };
  return client;
}

/* ------------------------------------------------------------------ */
/* Helpers the test files share                                        */
/* ------------------------------------------------------------------ */

// Print a measured figure into the TAP output (a comment line).
function figure(text) {
  process.stderr.write(`# ${text}\n`);
}

// The pool's segment as `rpcpoolstat -j` shows it.
async function shmStat(pool) {
  const r = await run(daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-j'], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// One endpoint of the pool, by name, as `rpcpoolstat -j` shows it.
async function endpointStat(pool, name) {
  const e = (await shmStat(pool)).endpoints.find((x) => x.name === name);
  assert.ok(e, `endpoint ${name} in rpcpoolstat`);
  return e;
}

// VmRSS of process PID in KiB (0 when it is gone).
function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// Open a connection to TARGET (a UNIX socket path, {path} or {port} on
// 127.0.0.1), write DATA (bytes at once, or an array of [delay_ms, chunk]
// steps), and collect what comes back until the server closes or TIMEOUT ms
// pass. Resolves to {text, closed, ms} (text decoded as latin1 so any byte
// survives).
function rawExchange(target, data, { timeout = 5000 } = {}) {
  if (typeof target === 'string') target = { path: target };
  return new Promise((resolve) => {
    const s = target.path ? net.connect(target.path) : net.connect(target.port, '127.0.0.1');
    const chunks = [];
    const t0 = Date.now();
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeout);
    s.on('data', (c) => chunks.push(c));
    s.on('close', () => finish(true));
    s.on('end', () => finish(true));
    s.on('error', () => {});
    s.on('connect', async () => {
      if (!Array.isArray(data)) {
        if (data.length) s.write(data); // nothing to write: no EPIPE race with a refusal
        return;
      }
      for (const [ms, chunk] of data) {
        if (done) return;
        if (ms) await withTimeout(new Promise((r) => setTimeout(r, ms)), ms + 1000, 'step');
        if (!done) s.write(chunk);
      }
    });
  });
}

module.exports = {
  ROOT,
  BUILD,
  BIN,
  FAULT,
  tool,
  daemonBin,
  freePort,
  tmpDir,
  waitFor,
  delay,
  withTimeout,
  run,
  cast,
  httpRequest,
  httpRpc,
  startAnvil,
  startFault,
  startRedis,
  makeTls,
  toLibconfig,
  writePoolConfig,
  spawnDaemon,
  startPool,
  controlCommand,
  assertNoErrors,
  ipcClient,
  nextId,
  canConnect,
  spawnTracked,
  stopProc,
  figure,
  shmStat,
  endpointStat,
  rssKiB,
  rawExchange,
};
