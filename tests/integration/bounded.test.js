// bounded.test.js - issue 14: bounded by the client, strict at the edges,
// defaults that never conflict.
//
//   - output amplification: a client writing `1 ` (each answered by a ~95-byte
//     -32600) and never reading stops being framed at the output bound, and
//     the worker's RSS stays bounded (measured from /proc);
//   - a client that never reads is closed after client_idle_timeout_ms (its
//     unsent answers are not activity); one that reads slowly is not;
//   - the HTTP front answers 400 (and closes) for obs-fold, bare LF, chunked
//     with HTTP/1.0 and absurd chunk sizes; a pipelining client held back by
//     its own unread answers gets no false 408;
//   - request_timeout_ms = 800 alone: `rpcpoold -t` is ok and the pool serves,
//     a hung endpoint is given up within the 800 ms;
//   - the prober's own connection is counted in the shm connection counts and
//     closed after idle_timeout_ms.
//
// Figures (RSS, times) are printed as "# ..." lines.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const lib = require('./lib.js');
const { figure, shmStat: stat, rssKiB, rawExchange } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };
const CHAIN_HEX = '0x7a69';
// a small ASan quarantine, so that RSS reflects what is really held
const SMALL_QUARANTINE = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:quarantine_size_mb=16' };

const req = (method, params = []) => ({ jsonrpc: '2.0', method, params });

async function workers(pool) {
  return (await pool.ctl('status')).workers.filter((w) => w.kind === undefined || w.kind === 'worker');
}

// Client requests answered by the workers so far.
async function answered(pool) {
  return (await workers(pool)).reduce((n, w) => n + w.requests, 0);
}

// Wait until the workers' answer count has not moved for QUIET_MS: the
// daemon stopped taking requests. Returns the count.
async function waitStill(pool, quietMs, timeout = 60000) {
  let last = -1;
  let since = Date.now();
  await lib.waitFor(async () => {
    const n = await answered(pool);
    if (n !== last) {
      last = n;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, { timeout, interval: 100, message: `the daemon taking no more requests for ${quietMs} ms` });
  return last;
}

// A raw connection to P that reads nothing (its socket paused).
async function silentClient(p) {
  const s = net.connect(p);
  s.on('error', () => {});
  await new Promise((r, j) => {
    s.once('connect', r);
    s.once('error', j);
  });
  s.pause();
  return s;
}

/* ------------------------------------------------------------------ */
/* back-pressure and the send timeout                                  */
/* ------------------------------------------------------------------ */

describe('a client that does not read', () => {
  let node;
  before(async () => {
    node = await lib.startAnvil();
  });
  after(async () => {
    if (node) await node.stop();
  });

  test('writing "1 " and never reading: framing stops at the bound, worker RSS stays bounded', async () => {
    const pool = await lib.startPool({ endpoints: [node], workers: 1, settings: QUIET, env: SMALL_QUARANTINE });
    const socks = [];
    try {
      const keeper = await lib.ipcClient(pool.socket);
      assert.equal((await keeper.call(req('eth_chainId'))).result, CHAIN_HEX);
      const [w] = await workers(pool);
      const rss0 = rssKiB(w.pid);
      const before0 = await answered(pool);
      // 3 connections x 1 MiB of "1 ": 3 x 524,288 values, each answered by
      // a ~95-byte error; without a bound on framing that is ~150 MB
      const PER = 1 << 20;
      const VALUES = PER / 2;
      const bytes = Buffer.alloc(PER, '1 ');
      for (let i = 0; i < 3; i++) {
        const s = await silentClient(pool.socket);
        s.write(bytes);
        socks.push(s);
      }
      const t0 = Date.now();
      const n = (await waitStill(pool, 1500)) - before0;
      const samples = [];
      for (let k = 0; k < 4; k++) {
        const s0 = Date.now();
        assert.equal((await keeper.call(req('eth_chainId'))).result, CHAIN_HEX, 'others served');
        assert.ok(Date.now() - s0 < 5000, 'served promptly');
        samples.push(rssKiB(w.pid));
      }
      const peak = Math.max(...samples);
      figure(`amplification: 3 clients x 1 MiB of "1 " never read: ${n} of ${3 * VALUES} values answered ` +
        `(${Date.now() - t0} ms); worker RSS ${rss0} KiB before, ${peak} KiB under the load ` +
        `(+${peak - rss0} KiB)`);
      assert.ok(n < (3 * VALUES) / 8, `framing stopped: ${n} of ${3 * VALUES} answered`);
      // 3 x (1 MiB of queued answers + 1 MiB read buffer), the 16 MiB ASan
      // quarantine and slack; not the ~150 MB of every answer
      assert.ok(peak - rss0 < 48 * 1024, `worker RSS growth ${peak - rss0} KiB stays bounded`);
      // reading resumes the framing: the first client gets answers past
      // what was framed while it did not read
      const s = socks[0];
      const WANT = Math.min(VALUES, 4 * Math.ceil(n / 3) + 10000);
      let got = 0;
      let buf = '';
      s.setEncoding('utf8');
      await lib.withTimeout(new Promise((resolve) => {
        s.on('data', (d) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const v = JSON.parse(buf.slice(0, i));
            buf = buf.slice(i + 1);
            assert.equal(v.error.code, -32600);
            if (++got >= WANT) resolve();
          }
        });
        s.resume();
      }), 60000, `reading ${WANT} answers`);
      assert.ok(got >= WANT, `${got} answers read`);
      keeper.destroy();
    } finally {
      for (const s of socks) s.destroy();
      assert.equal(await pool.stop(), 0);
    }
    lib.assertNoErrors(pool);
  });

  test('answers held for one client are bounded in total bytes, not only one by one', async () => {
    // max_response_bytes 1 MiB: one connection holds at most 2 MiB of
    // answers (queued for it and being received); 20 answers of 300 kB each
    // to a client that reads nothing pass that
    const BIG = 300000;
    const N = 20;
    const fault = await lib.startFault({ mode: 'ok' });
    const pool = await lib.startPool({
      endpoints: [fault], workers: 1, settings: { ...QUIET, retries: 0 },
      server: { max_response_bytes: 1 << 20 },
    });
    try {
      const c = await lib.ipcClient(pool.socket);
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
      await fault.setMode('big', { big_bytes: BIG });
      const s = await silentClient(pool.socket);
      const before0 = await answered(pool);
      let text = '';
      for (let i = 1; i <= N; i++) text += `{"jsonrpc":"2.0","id":${i},"method":"eth_getLogs","params":[]}\n`;
      s.write(text);
      await lib.waitFor(async () => (await answered(pool)) - before0 >= N,
        { timeout: 30000, message: `all ${N} calls answered (or refused) while the client reads nothing` });
      let buf = '';
      const got = [];
      s.setEncoding('utf8');
      await lib.withTimeout(new Promise((resolve) => {
        s.on('data', (d) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            got.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
            if (got.length === N) resolve();
          }
        });
        s.resume();
      }), 30000, `reading ${N} answers`);
      const results = got.filter((v) => typeof v.result === 'string');
      const refused = got.filter((v) => v.error);
      figure(`20 answers of 300 kB to a client that did not read (max_response_bytes 1 MiB): ` +
        `${results.length} delivered, ${refused.length} refused: ${refused.length ? refused[0].error.data[0].error : ''}`);
      assert.equal(results.length + refused.length, N);
      assert.ok(results.every((v) => v.result.length === BIG));
      assert.ok(refused.length > 0, 'some answers refused once the connection held its bound');
      // 2 MiB held, plus what the kernel's socket buffers took, plus the
      // answer that passed the bound
      assert.ok(results.length * BIG <= 3 * (1 << 20) + BIG, `${results.length} answers held at once`);
      for (const v of refused) {
        assert.equal(v.error.code, -32603);
        assert.match(v.error.data[0].error, /client's answer buffer/);
      }
      // the connection is served normally once it reads
      s.destroy();
      assert.equal((await c.call(req('eth_chainId'))).result !== undefined, true);
      c.destroy();
    } finally {
      assert.equal(await pool.stop(), 0);
      await fault.stop();
    }
    lib.assertNoErrors(pool, [/upstream failed/]);
  });

  test('never reading: closed after client_idle_timeout_ms; reading slowly: kept', async () => {
    const IDLE = 1000;
    const pool = await lib.startPool({
      endpoints: [node], workers: 1, settings: QUIET, server: { client_idle_timeout_ms: IDLE },
    });
    try {
      const t0 = Date.now();
      const s = await silentClient(pool.socket);
      s.write(Buffer.alloc(1 << 20, '1 '));
      const line = await pool.waitLog(/client took none of its answers for client_idle_timeout_ms: closing/,
        { timeout: IDLE + 10000 });
      const ms = Date.now() - t0;
      figure(`send timeout: a client that never reads closed ${ms} ms after it connected ` +
        `(client_idle_timeout_ms = ${IDLE}): ${line.replace(/^.*msg=/, '')}`);
      assert.ok(ms >= IDLE - 100 && ms < IDLE + 4000, `closed after ${ms} ms`);
      await lib.waitFor(async () => (await workers(pool)).every((w) => (w.clients || 0) === 0),
        { timeout: 5000, message: 'its connection counted closed' });
      s.destroy();

      // a slow reader: takes what its stream buffered (a few kB) every
      // 300 ms, for 3 x IDLE, of ~25 MB of answers it has asked for
      const slow = await silentClient(pool.socket);
      slow.write(Buffer.alloc(1 << 19, '1 '));
      let read = 0;
      let closed = false;
      slow.on('close', () => { closed = true; });
      const until = Date.now() + 3 * IDLE;
      while (Date.now() < until) {
        const chunk = slow.read();
        if (chunk) read += chunk.length;
        await lib.withTimeout(new Promise((r) => setTimeout(r, 300)), 1000, 'pause');
      }
      figure(`slow reader: ${read} bytes taken over ${3 * IDLE} ms, still connected: ${!closed}`);
      assert.equal(closed, false, 'a client taking its answers slowly stays connected');
      assert.ok(read > 0 && read < 25 * 1024 * 1024, `${read} bytes read`);
      slow.destroy();
    } finally {
      assert.equal(await pool.stop(), 0);
    }
    lib.assertNoErrors(pool);
  });
});

/* ------------------------------------------------------------------ */
/* the HTTP front                                                      */
/* ------------------------------------------------------------------ */

describe('HTTP framing', () => {
  let node;
  let pool;
  before(async () => {
    node = await lib.startAnvil();
    pool = await lib.startPool({ endpoints: [node], workers: 2, settings: { ...QUIET, request_timeout_ms: 800 } });
  });
  after(async () => {
    if (pool) {
      assert.equal(await pool.stop(), 0);
      lib.assertNoErrors(pool);
    }
    if (node) await node.stop();
  });

  const BODY = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}';
  const CHUNKED = `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`;
  const bad = {
    'obs-fold in Transfer-Encoding':
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n${CHUNKED}`,
    'obs-fold in another header':
      `POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    'bare LF line endings':
      `POST / HTTP/1.1\nHost: x\nContent-Length: ${BODY.length}\n\n${BODY}`,
    'one bare LF among CRLFs':
      `POST / HTTP/1.1\r\nHost: x\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    'bare LF after a chunk size':
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED.replace('\r\n', '\n')}`,
    'chunked with HTTP/1.0':
      `POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED}`,
    '5000 leading zeros in a chunk size':
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${'0'.repeat(5000)}${CHUNKED}`,
  };
  for (const [name, text] of Object.entries(bad)) {
    test(`400 and close: ${name}`, async () => {
      const r = await rawExchange(pool.socket, text);
      assert.match(r.text, /^HTTP\/1\.1 400 /, `${name}: ${JSON.stringify(r.text.slice(0, 120))}`);
      assert.match(r.text, /Connection: close\r\n/);
      assert.equal(r.closed, true, 'closed after the 400');
      assert.doesNotMatch(r.text, /"result"/, 'the request was not served');
    });
  }

  test('the same requests well framed are served', async () => {
    for (const text of [
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${CHUNKED}`,
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${'0'.repeat(16 - BODY.length.toString(16).length)}${CHUNKED}`, // 16 digits: the most
      `POST / HTTP/1.0\r\nHost: x\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    ]) {
      const r = await rawExchange(pool.socket, text);
      assert.match(r.text, /^HTTP\/1\.1 200 /, JSON.stringify(r.text.slice(0, 120)));
      assert.match(r.text, /"result":"0x7a69"/);
    }
  });

  test('a pipelining client held back by its own unread answers gets no 408', async () => {
    // 3000 pipelined requests whose answers (~1 KB each) pass the output
    // bound long before the client reads; request_timeout_ms is 800
    const N = 3000;
    const body = `[${Array(10).fill('1').join(',')}]`;
    const one = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const s = await silentClient(pool.socket);
    s.write(one.repeat(N));
    const before0 = await answered(pool);
    // held back: nothing more is answered for well over request_timeout_ms
    const n = (await waitStill(pool, 2000)) - before0;
    assert.ok(n < N, `back-pressure held the client back (${n} of ${N} answered)`);
    let text = '';
    let statuses = 0;
    s.setEncoding('latin1');
    await lib.withTimeout(new Promise((resolve) => {
      s.on('data', (d) => {
        text += d;
        statuses = (text.match(/HTTP\/1\.1 \d\d\d /g) || []).length;
        if (statuses >= N) resolve();
      });
      s.resume();
    }), 60000, `reading ${N} answers`);
    const codes = text.match(/HTTP\/1\.1 \d\d\d /g);
    figure(`pipelining client held back: ${n} of ${N} answered while it did not read; ` +
      `then ${codes.length} answers, ${codes.filter((c) => c !== 'HTTP/1.1 200 ').length} not 200`);
    assert.equal(codes.length, N);
    assert.ok(codes.every((c) => c === 'HTTP/1.1 200 '), 'every answer 200, no 408');
    s.destroy();
  });
});

/* ------------------------------------------------------------------ */
/* timeouts that follow each other                                     */
/* ------------------------------------------------------------------ */

test('request_timeout_ms = 800 alone: -t ok, serving, a hung endpoint given up in time', async () => {
  const fault = await lib.startFault({ mode: 'ok' });
  const cfg = lib.writePoolConfig({ endpoints: [fault], workers: 1, settings: { request_timeout_ms: 800 } });
  const t = await lib.run(lib.daemonBin('rpcpoold'), ['-t', '-c', cfg.conf]);
  assert.equal(t.code, 0, `rpcpoold -t: ${t.stdout}${t.stderr}`);
  assert.equal(t.stdout.trim(), `${cfg.conf}: ok`);
  const pool = await lib.startPool({ endpoints: [fault], workers: 1, settings: { request_timeout_ms: 800, retries: 0 } });
  try {
    const c = await lib.ipcClient(pool.socket);
    const ok = await lib.waitFor(async () => {
      const r = await c.call(req('eth_chainId'));
      return r.result ? r : null;
    }, { timeout: 10000, message: 'an answer from the endpoint' });
    assert.equal(ok.result, '0x7a69');
    await fault.setMode('hang');
    const t0 = Date.now();
    const r = await c.call(req('eth_blockNumber'), { timeout: 10000 });
    const ms = Date.now() - t0;
    figure(`request_timeout_ms = 800 alone: a hung endpoint answered ${r.error && r.error.code} after ${ms} ms`);
    assert.equal(r.error.code, -32603);
    assert.ok(ms >= 700 && ms < 2500, `given up after ${ms} ms`);
    c.destroy();
  } finally {
    assert.equal(await pool.stop(), 0);
    await fault.stop();
  }
  lib.assertNoErrors(pool, [/upstream failed/]);
});

/* ------------------------------------------------------------------ */
/* the prober's connection                                             */
/* ------------------------------------------------------------------ */

// Connections the pool shows for its only endpoint: idle + active.
async function shownConnections(pool) {
  const e = (await stat(pool)).endpoints[0];
  return e.connections.idle + e.connections.active;
}

test('the prober\'s connection is counted in shm and closed after idle_timeout_ms', async () => {
  const fault = await lib.startFault({ mode: 'ok' });
  // counted: no warm connections, no requests: the prober's is the only one
  let pool = await lib.startPool({
    endpoints: [fault], workers: 2,
    settings: { min_connections: 0, health_check_interval_ms: 300, idle_timeout_ms: 30000, rate_limit: NO_LIMIT },
  });
  try {
    await lib.waitFor(async () => (await fault.state()).connections_open === 1 && (await shownConnections(pool)) === 1,
      { timeout: 10000, message: 'the prober\'s connection open at the endpoint and shown in shm' });
  } finally {
    assert.equal(await pool.stop(), 0);
  }
  lib.assertNoErrors(pool);
  await lib.waitFor(async () => (await fault.state()).connections_open === 0,
    { timeout: 5000, message: 'every connection closed at stop' });

  // trimmed: one warm connection is kept; after a burst, everything else
  // (the workers' extra ones and the prober's) closes after idle_timeout_ms
  const IDLE = 1000;
  pool = await lib.startPool({
    endpoints: [fault], workers: 2,
    settings: {
      min_connections: 1, max_connections: 5, idle_timeout_ms: IDLE, health_check_interval_ms: 60000,
      rate_limit: NO_LIMIT,
    },
  });
  try {
    await fault.setMode('delay', { delay_ms: 100 });
    const cs = [];
    for (let i = 0; i < 4; i++) cs.push(await lib.ipcClient(pool.socket));
    let peak = 0;
    const sample = setInterval(() => {
      fault.state().then((s) => { peak = Math.max(peak, s.connections_open); }).catch(() => {});
    }, 20);
    const calls = [];
    for (let k = 0; k < 3; k++) for (const c of cs) calls.push(c.call(req('eth_chainId')));
    const rs = await Promise.all(calls);
    clearInterval(sample);
    assert.ok(rs.every((r) => r.result === '0x7a69'), 'the burst served');
    const t0 = Date.now();
    await lib.waitFor(async () => (await fault.state()).connections_open <= 1,
      { timeout: IDLE + 5000, interval: 50, message: 'idle connections beyond min_connections closed' });
    const ms = Date.now() - t0;
    const open = (await fault.state()).connections_open;
    figure(`after a burst: ${open} connection(s) left ${ms} ms later (idle_timeout_ms = ${IDLE}, ` +
      `min_connections = 1, peak ${peak}, max_connections = 5)`);
    assert.ok(peak <= 5, `never more than max_connections open (peak ${peak})`);
    await lib.waitFor(async () => (await shownConnections(pool)) === (await fault.state()).connections_open,
      { timeout: 5000, message: 'shm counts what the endpoint sees' });
    for (const c of cs) c.destroy();
  } finally {
    assert.equal(await pool.stop(), 0);
    await fault.stop();
  }
  lib.assertNoErrors(pool);
});
