// hostile.test.js - issue 9 items 1 and 2: the catalogue of hostile input
// and the limits. Every case sends something a careless or malicious client
// (or endpoint) might send and checks the answer docs/interface.md specifies:
// the error code and message, whether the connection is closed, and that
// the daemon keeps serving everyone else (after each case a normal call on
// a connection opened before the case, and on a fresh one, must succeed).
// Each pool is stopped with SIGTERM at the end of its group and its log
// checked for sanitizer reports and unexpected level=error lines.
//
// Groups: client side (one pool in front of anvil: framing, validation,
// ids, batches, HTTP, sizes, a client that never reads), limits
// (max_clients, client_idle_timeout_ms, slow partial requests, running out
// of file descriptors), upstream side (fault.js and a raw TCP upstream:
// truncated body, short Content-Length, non-JSON, another id, a response
// over max_response_bytes, a slow drip).
//
// The number of cases is printed as "# hostile catalogue: N cases".

'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const lib = require('./lib.js');
const { figure, shmStat: stat, endpointStat, rssKiB, rawExchange } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };
const CHAIN_HEX = '0x7a69';
const MAX_REQUEST_BYTES = 65536;
const MAX_BATCH = 10;

let cases = 0;
after(() => process.stderr.write(`# hostile catalogue: ${cases} cases\n`));

const req = (method, params = [], extra = {}) => ({ jsonrpc: '2.0', method, params, ...extra });

// Wait until POOL is fully up: the client socket listens before the shm
// segment, the control socket and the workers exist.
async function ready(pool) {
  await lib.waitFor(async () => (await pool.ctl('ping')).ok === true, { timeout: 15000, message: 'control socket up' });
  return pool;
}

function workerPids(s) {
  return s.workers.filter((w) => w.kind === 'worker' && w.pid > 1).map((w) => w.pid);
}

// utime + stime of PID in clock ticks.
function cpuTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

// Parse the JSON lines of TEXT.
function jsonLines(text) {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

/* ------------------------------------------------------------------ */
/* client side                                                         */
/* ------------------------------------------------------------------ */

describe('client side', () => {
  let node;
  let pool;
  let keeper; // a connection opened before every case, used after each one

  before(async () => {
    node = await lib.startAnvil();
    pool = await ready(await lib.startPool({
      endpoints: [node],
      workers: 2,
      settings: QUIET,
      server: { max_batch: MAX_BATCH, max_request_bytes: MAX_REQUEST_BYTES },
      // a small ASan quarantine, so that RSS reflects what is really held
      env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:quarantine_size_mb=16' },
    }));
    keeper = await lib.ipcClient(pool.socket);
    assert.equal((await keeper.call(req('eth_chainId'))).result, CHAIN_HEX);
  });

  after(async () => {
    if (keeper) keeper.destroy();
    if (pool) {
      assert.equal(await pool.stop(), 0);
      lib.assertNoErrors(pool);
    }
    if (node) await node.stop();
  });

  // After a case: the connection opened before it, and a fresh one, are served.
  async function stillServing() {
    assert.equal((await keeper.call(req('eth_chainId'))).result, CHAIN_HEX, 'earlier connection served');
    const c = await lib.ipcClient(pool.socket);
    try {
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX, 'new connection served');
    } finally {
      c.destroy();
    }
  }

  // Write BYTES to client C in 8 KiB pieces, waiting briefly after each,
  // and stop once an answer arrived or the connection closed: the daemon
  // stops reading at the first error and closes, and a write into a closed
  // socket (EPIPE) would make node drop the answer already received. (So of
  // a 100,000-deep value the daemon reads only what it needs to refuse it.)
  async function sendPieces(c, bytes) {
    const buf = Buffer.from(bytes);
    const answered = () => c.isClosed() || c.lines.length > 0;
    for (let off = 0; off < buf.length && !answered(); off += 8192) {
      await c.send(buf.subarray(off, off + 8192)).catch(() => {});
      // give the daemon time to answer before writing on
      for (let k = 0; k < 20 && !answered(); k++) await new Promise((r) => setTimeout(r, 5));
    }
  }

  // Send BYTES on a new IPC connection; expect one answer line with error
  // CODE (message starting with MSG) and id ID (default null), and the
  // connection then closed (CLOSE) or still serving. A connection that
  // ended without any answer (the EPIPE race above) is tried again, twice.
  async function ipcCase(bytes, { code, msg, close, id = null }) {
    cases++;
    for (let attempt = 0; ; attempt++) {
      const c = await lib.ipcClient(pool.socket);
      try {
        await sendPieces(c, bytes);
        let line;
        try {
          line = await c.readLine(5000);
        } catch (e) {
          if (close && attempt < 2 && c.isClosed() && c.lines.length === 0) continue;
          throw e;
        }
        const v = JSON.parse(line);
        assert.equal(v.jsonrpc, '2.0');
        assert.equal(v.id, id, `id ${id} in ${line}`);
        assert.equal(v.error.code, code, line);
        assert.ok(v.error.message.startsWith(msg), `message "${v.error.message}" starts with "${msg}"`);
        if (close) {
          await lib.withTimeout(c.ended, 5000, 'the daemon closing the connection');
        } else {
          assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX, 'same connection still served');
        }
        break;
      } finally {
        c.destroy();
      }
    }
    await stillServing();
  }

  test('garbage bytes: -32700, closed', async () => {
    await ipcCase('hello, is this the node?\n', { code: -32700, msg: 'Parse error', close: true });
    await ipcCase(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a]), { code: -32700, msg: 'Parse error', close: true });
  });

  test('NUL bytes, between values and inside a string: -32700, closed', async () => {
    await ipcCase(Buffer.from('\0{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}\n'),
      { code: -32700, msg: 'Parse error', close: true });
    await ipcCase(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["a\0b"]}\n'),
      { code: -32700, msg: 'Parse error', close: true });
  });

  test('invalid UTF-8 in a string: -32700, closed', async () => {
    const wrap = (bytes) => Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["'),
      Buffer.from(bytes), Buffer.from('"]}\n')]);
    await ipcCase(wrap([0xc3, 0x28]), { code: -32700, msg: 'Parse error', close: true }); // bad continuation
    await ipcCase(wrap([0xc0, 0xaf]), { code: -32700, msg: 'Parse error', close: true }); // overlong '/'
    await ipcCase(wrap([0xed, 0xa0, 0x80]), { code: -32700, msg: 'Parse error', close: true }); // surrogate
    await ipcCase(wrap([0xf4, 0x90, 0x80, 0x80]), { code: -32700, msg: 'Parse error', close: true }); // > U+10FFFF
  });

  test('100,000-deep nesting: -32600 nesting too deep, closed', async () => {
    // frame.c stops at RP_FRAME_MAX_DEPTH (512) without recursion; conn.c
    // answers -32600 and closes (the rest of the stream cannot be framed)
    await ipcCase('['.repeat(100000) + ']'.repeat(100000) + '\n',
      { code: -32600, msg: 'Invalid Request: nesting too deep', close: true });
    await ipcCase('{"a":'.repeat(100000) + '1' + '}'.repeat(100000) + '\n',
      { code: -32600, msg: 'Invalid Request: nesting too deep', close: true });
    // inside params of a real call, too
    await ipcCase(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":${'['.repeat(100000)}`,
      { code: -32600, msg: 'Invalid Request: nesting too deep', close: true });
    // HTTP: the body's nesting is answered the same way (200); 30,000 deep
    // to stay under max_request_bytes
    cases++;
    const deep = '['.repeat(30000) + ']'.repeat(30000);
    const r = await lib.httpRequest({ socketPath: pool.socket }, { method: 'POST', body: deep });
    assert.equal(r.status, 200);
    const v = JSON.parse(r.body);
    assert.equal(v.error.code, -32600);
    assert.match(v.error.message, /nesting too deep/);
    await stillServing();
  });

  test('huge numbers in params are forwarded and the node answers', async () => {
    cases++;
    const c = await lib.ipcClient(pool.socket);
    try {
      const big = '123456789012345678901234567890123456789012345678901234567890';
      await c.send(`{"jsonrpc":"2.0","id":501,"method":"eth_getBlockByNumber","params":[${big},false]}\n`);
      await c.send('{"jsonrpc":"2.0","id":502,"method":"eth_getBlockByNumber","params":[1e400,false]}\n');
      await c.send('{"jsonrpc":"2.0","id":503,"method":"eth_getBlockByNumber","params":[-1.5e-308,false]}\n');
      const got = new Map(jsonLines((await c.readLines(3, 10000)).join('\n')).map((v) => [v.id, v]));
      for (const id of [501, 502, 503]) {
        const v = got.get(id);
        assert.ok(v, `answer to ${id}`);
        // the node's own error object passes through untouched
        assert.equal(v.error && v.error.code, -32602, JSON.stringify(v));
      }
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    } finally {
      c.destroy();
    }
    await stillServing();
  });

  test('duplicate keys: -32600, connection kept (id null when the id itself is repeated)', async () => {
    const dups = [
      ['{"jsonrpc":"2.0","id":1,"method":"eth_chainId","id":2}', null],
      ['{"jsonrpc":"2.0","id":"\\u0061","method":"eth_chainId","i\\u0064":"a"}', null],
      ['{"jsonrpc":"2.0","id":1,"method":"eth_chainId","method":"eth_sendRawTransaction"}', 1],
      ['{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"eth_chainId"}', 1],
      ['{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"params":[]}', 1],
      ['{"jsonrpc":"2.0","id":1,"method":"eth_chainId","m\\u0065thod":"eth_sendRawTransaction"}', 1],
    ];
    for (const [d, id] of dups) {
      await ipcCase(`${d}\n`, { code: -32600, msg: 'Invalid Request: duplicate member', close: false, id });
    }
  });

  test('an id of every JSON type', async () => {
    // string, integer, negative, zero, fraction, exponent, null, huge:
    // answered with the id unchanged (raw bytes)
    const c = await lib.ipcClient(pool.socket);
    try {
      const ids = ['"abc"', '"ĳ✓"', '42', '-7', '0', '1.5', '-0.25e-3', 'null',
        '123456789012345678901234567890', '1e400'];
      for (const id of ids) {
        cases++;
        await c.send(`{"jsonrpc":"2.0","id":${id},"method":"eth_chainId"}\n`);
        const line = await c.readLine(10000);
        assert.ok(line.replace(/\s/g, '').includes(`"id":${id}`), `id ${id} unchanged in ${line}`);
        const v = JSON.parse(line);
        assert.ok(v.result !== undefined || v.error !== undefined, line);
        if (['"abc"', '42', '-7', '0', 'null'].includes(id)) assert.equal(v.result, CHAIN_HEX, line);
      }
      // true, false, object, array: -32600 with id null, connection kept
      for (const id of ['true', 'false', '{"a":1}', '[1]', '{}', '[]']) {
        cases++;
        await c.send(`{"jsonrpc":"2.0","id":${id},"method":"eth_chainId"}\n`);
        const v = JSON.parse(await c.readLine(5000));
        assert.equal(v.id, null);
        assert.equal(v.error.code, -32600);
        assert.match(v.error.message, /^Invalid Request: id must be/);
      }
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    } finally {
      c.destroy();
    }
    await stillServing();
  });

  test('no jsonrpc, a wrong version, no method, a scalar: -32600, connection kept', async () => {
    const c = await lib.ipcClient(pool.socket);
    try {
      const bad = [
        ['{"id":11,"method":"eth_chainId"}', 11, /^Invalid Request: missing jsonrpc/],
        ['{"jsonrpc":"1.0","id":12,"method":"eth_chainId"}', 12, /^Invalid Request: jsonrpc must be "2.0"/],
        ['{"jsonrpc":2.0,"id":13,"method":"eth_chainId"}', 13, /^Invalid Request: jsonrpc must be "2.0"/],
        ['{"jsonrpc":"2.0","id":14}', 14, /^Invalid Request: missing method/],
        ['{"jsonrpc":"2.0","id":15,"method":7}', 15, /^Invalid Request: method must be a string/],
        ['{"jsonrpc":"2.0","id":16,"method":"eth_chainId","params":"x"}', 16, /^Invalid Request: params/],
        ['42', null, /^Invalid Request/],
        ['"hello"', null, /^Invalid Request/],
        ['null', null, /^Invalid Request/],
      ];
      for (const [text, id, re] of bad) {
        cases++;
        await c.send(`${text}\n`);
        const v = JSON.parse(await c.readLine(5000));
        assert.equal(v.id, id, text);
        assert.equal(v.error.code, -32600, text);
        assert.match(v.error.message, re, text);
      }
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    } finally {
      c.destroy();
    }
    await stillServing();
  });

  test('a batch of only notifications gets no answer at all', async () => {
    cases++;
    const c = await lib.ipcClient(pool.socket);
    try {
      const notes = JSON.stringify([req('eth_chainId'), req('eth_blockNumber'), req('net_version')]);
      await c.send(`${notes}\n`);
      await c.send(`${JSON.stringify(req('eth_blockNumber'))}\n`); // a single notification
      await c.send(`${JSON.stringify(req('eth_chainId', [], { id: 'after' }))}\n`);
      const line = await c.readLine(10000);
      assert.deepEqual(JSON.parse(line), { jsonrpc: '2.0', id: 'after', result: CHAIN_HEX },
        'the next request\'s answer is the next line');
      // nothing else arrives
      await assert.rejects(c.readLine(1000), /readLines/);
    } finally {
      c.destroy();
    }
    await stillServing();
  });

  test('batches: over max_batch and empty -32600, at max_batch answered', async () => {
    const c = await lib.ipcClient(pool.socket);
    try {
      const over = Array.from({ length: MAX_BATCH + 1 }, (_, i) => req('eth_chainId', [], { id: 900 + i }));
      const cases2 = [[JSON.stringify(over), /^Invalid Request: batch larger than max_batch/],
        ['[]', /^Invalid Request: empty batch/], ['[ ]', /^Invalid Request: empty batch/]];
      for (const [text, re] of cases2) {
        cases++;
        await c.send(`${text}\n`);
        const v = JSON.parse(await c.readLine(5000));
        assert.ok(!Array.isArray(v), 'one error object for the whole batch');
        assert.equal(v.id, null);
        assert.equal(v.error.code, -32600);
        assert.match(v.error.message, re);
      }
      cases++;
      const full = Array.from({ length: MAX_BATCH }, (_, i) => req('eth_chainId', [], { id: 800 + i }));
      const r = await c.call(full);
      assert.equal(r.length, MAX_BATCH);
      assert.ok(r.every((x) => x.result === CHAIN_HEX));
      // a batch mixing valid and invalid calls: each invalid one -32600 with its id
      cases++;
      await c.send(`${JSON.stringify([req('eth_chainId', [], { id: 'm1' }), { jsonrpc: '2.0', id: 'm2' }, 5])}\n`);
      const mixed = JSON.parse(await c.readLine(10000));
      assert.ok(Array.isArray(mixed));
      assert.equal(mixed.length, 3);
      const byId = new Map(mixed.map((x) => [x.id, x]));
      assert.equal(byId.get('m1').result, CHAIN_HEX);
      assert.equal(byId.get('m2').error.code, -32600);
      assert.equal(byId.get(null).error.code, -32600);
    } finally {
      c.destroy();
    }
    await stillServing();
  });

  test('HTTP request smuggling: Content-Length with Transfer-Encoding -> 400 and close', async () => {
    const body = JSON.stringify(req('eth_chainId', [], { id: 1 }));
    const smuggled = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` +
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}';
    const variants = [
      smuggled,
      // Transfer-Encoding first, then Content-Length
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
      // two different Content-Length values
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}',
      // a Transfer-Encoding that does not end in chunked
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n{}',
    ];
    for (const v of variants) {
      cases++;
      const r = await rawExchange({ path: pool.socket }, v);
      assert.match(r.text, /^HTTP\/1\.1 400 /, JSON.stringify(r.text.slice(0, 200)));
      assert.equal(r.closed, true, 'connection closed after the 400');
      assert.equal((r.text.match(/HTTP\/1\.1 /g) || []).length, 1, 'exactly one answer: nothing smuggled');
    }
    await stillServing();
  });

  test('oversized headers -> 431 and close', async () => {
    const variants = [
      `POST / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(100000)}\r\nContent-Length: 2\r\n\r\n{}`,
      `POST / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`,
      `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ];
    for (const v of variants) {
      cases++;
      const r = await rawExchange({ path: pool.socket }, v);
      assert.match(r.text, /^HTTP\/1\.1 431 /, JSON.stringify(r.text.slice(0, 200)));
      assert.equal(r.closed, true);
    }
    await stillServing();
  });

  test('over max_request_bytes: IPC -32600 Request too large and close; HTTP 413', async () => {
    const pad = 'a'.repeat(MAX_REQUEST_BYTES + 1000);
    // a whole value over the limit
    await ipcCase(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["${pad}"]}\n`,
      { code: -32600, msg: 'Request too large', close: true });
    // a value still open past the limit (never finished)
    await ipcCase(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["${pad}`,
      { code: -32600, msg: 'Request too large', close: true });
    // a batch over the limit
    const batch = JSON.stringify(Array.from({ length: 5 }, (_, i) => req('eth_call', ['a'.repeat(20000)], { id: i })));
    await ipcCase(`${batch}\n`, { code: -32600, msg: 'Request too large', close: true });
    // just under the limit is forwarded (the node answers it)
    cases++;
    const c = await lib.ipcClient(pool.socket);
    try {
      const r = await c.call(req('web3_sha3', [`0x${'ab'.repeat((MAX_REQUEST_BYTES - 200) / 2)}`]));
      assert.ok(r.result || r.error, JSON.stringify(r).slice(0, 200));
      assert.notEqual(r.error && r.error.code, -32600);
    } finally {
      c.destroy();
    }
    // HTTP: Content-Length over the limit, and a chunked body that grows past it
    cases++;
    const big = JSON.stringify(req('eth_call', [pad], { id: 1 }));
    const r1 = await rawExchange({ path: pool.socket },
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
    assert.match(r1.text, /^HTTP\/1\.1 413 /, r1.text.slice(0, 200));
    assert.equal(r1.closed, true);
    cases++;
    const chunks = Array.from({ length: 20 }, () => `1000\r\n${'b'.repeat(4096)}\r\n`).join('');
    const r2 = await rawExchange({ path: pool.socket },
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
    assert.match(r2.text, /^HTTP\/1\.1 413 /, r2.text.slice(0, 200));
    assert.equal(r2.closed, true);
    await stillServing();
  });

  test('a client that never reads: back-pressure keeps memory bounded and others served', async () => {
    cases++;
    // eth_getBlockByNumber(0) answers ~1 KB each: 50,000 of them (~50 MB)
    // would pile up in the worker without back-pressure
    const N = 50000;
    const CALL = (i) => `{"jsonrpc":"2.0","id":${i},"method":"eth_getBlockByNumber","params":["0x0",false]}`;
    const one = await keeper.call(JSON.parse(CALL(0).replace('"id":0', '"id":"size"')));
    const answerBytes = JSON.stringify(one).length;
    const workersRequests = async () => (await pool.ctl('status')).workers
      .filter((w) => w.kind === 'worker').reduce((n, w) => n + w.requests, 0);
    const pids = workerPids(await stat(pool));
    assert.equal(pids.length, 2);
    const rssBefore = pids.map(rssKiB);
    const reqBefore = await workersRequests();
    const lines = [];
    for (let i = 0; i < N; i++) lines.push(CALL(i));
    const sock = net.connect(pool.socket);
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // read nothing
    sock.write(Buffer.from(lines.join('\n') + '\n'));
    const t0 = Date.now();
    // the daemon stops taking requests from it: its count stays put 1.5 s
    let last = -1;
    let since = Date.now();
    let done = 0;
    await lib.waitFor(async () => {
      const n = await workersRequests();
      if (n !== last) {
        last = n;
        since = Date.now();
      }
      done = n - reqBefore;
      return Date.now() - since >= 1500;
    }, { timeout: 60000, interval: 250, message: 'the daemon pausing a client that does not read' });
    // RSS stays bounded while it waits; other clients are served promptly
    const samples = [];
    for (let k = 0; k < 4; k++) {
      const s0 = Date.now();
      await stillServing();
      assert.ok(Date.now() - s0 < 5000, `served within 5 s while a client does not read (${Date.now() - s0} ms)`);
      samples.push(pids.map(rssKiB));
      await new Promise((r) => setTimeout(r, 250));
    }
    const grow = Math.max(...samples.map((s) => Math.max(...s.map((x, i) => x - rssBefore[i]))));
    figure(`never-reading client: answers ~${answerBytes} B; the daemon stopped after ${done} of ${N} ` +
      `requests (${Date.now() - t0} ms); worker RSS before ${rssBefore.join('/')} KiB, growth at most ${grow} KiB`);
    assert.ok(done < N / 4, `back-pressure: ${done} of ${N} requests taken while nothing was read`);
    // the unsent output (1 MiB), at most 512 requests in flight, the ASan
    // quarantine (16 MiB) and slack; not the ~${N} KB of all the answers
    assert.ok(grow < 32 * 1024, `worker RSS growth ${grow} KiB stays bounded`);
    // now read everything: exactly one answer per request
    const seen = new Uint8Array(N);
    let count = 0;
    let buf = '';
    let bad = 0;
    sock.setEncoding('utf8');
    await lib.withTimeout(new Promise((resolve) => {
      sock.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const v = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (!v.result || v.result.number !== '0x0' || seen[v.id]) bad++;
          else seen[v.id] = 1;
          count++;
          if (count === N) resolve();
        }
      });
      sock.resume();
    }), 180000, `reading ${N} answers`);
    figure(`never-reading client: ${count} answers read after ${Date.now() - t0} ms`);
    assert.equal(bad, 0, 'every answer a result, no id twice');
    assert.equal(count, N);
    await assert.rejects(lib.withTimeout(new Promise((r) => sock.once('data', r)), 500, 'extra'), /timed out/);
    sock.destroy();
    await stillServing();
  });

  test('a client that never reads and then goes away: nothing crashes', async () => {
    cases++;
    const lines = [];
    for (let i = 0; i < 50000; i++) lines.push(`{"jsonrpc":"2.0","id":${i},"method":"eth_chainId"}`);
    const sock = net.connect(pool.socket);
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    sock.write(lines.join('\n') + '\n');
    await new Promise((r) => setTimeout(r, 1000));
    sock.destroy();
    await new Promise((r) => setTimeout(r, 500));
    await stillServing();
    const s = await stat(pool);
    assert.ok(s.workers.filter((w) => w.kind === 'worker').every((w) => w.restarts === 0), 'no worker died');
  });
});

/* ------------------------------------------------------------------ */
/* limits                                                              */
/* ------------------------------------------------------------------ */

describe('limits', () => {
  let node;
  before(async () => {
    node = await lib.startAnvil();
  });
  after(async () => {
    if (node) await node.stop();
  });

  test('max_clients: the 6th client is refused and closed, the first 5 served; a freed place is reused',
    async () => {
      cases++;
      const pool = await ready(await lib.startPool({ endpoints: [node], workers: 2, settings: QUIET, server: { max_clients: 5 } }));
      const cs = [];
      try {
        for (let i = 0; i < 5; i++) {
          const c = await lib.ipcClient(pool.socket);
          assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
          cs.push(c);
        }
        await lib.waitFor(async () => (await stat(pool)).workers.reduce((a, w) => a + (w.clients || 0), 0) === 5,
          { timeout: 5000, message: '5 clients counted' });
        const r = await rawExchange({ path: pool.socket }, '', { timeout: 5000 });
        assert.equal(r.closed, true, 'the 6th is closed');
        const v = JSON.parse(r.text.trim());
        assert.equal(v.error.code, -32005);
        assert.match(v.error.message, /^Limit exceeded: too many clients/);
        // HTTP on the same socket: the refusal is the same bytes (the daemon
        // cannot know the protocol before reading); still closed
        const h = await rawExchange({ path: pool.socket }, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(h.closed, true);
        for (const c of cs) assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX, 'earlier clients served');
        cs.shift().destroy();
        const c6 = await lib.waitFor(async () => {
          const c = await lib.ipcClient(pool.socket);
          try {
            const a = await c.call(req('eth_chainId'), { timeout: 3000 });
            if (a.result === CHAIN_HEX) return c;
          } catch {
            /* refused: the close was not counted yet */
          }
          c.destroy();
          return null;
        }, { timeout: 10000, interval: 100, message: 'a new client accepted after one left' });
        cs.push(c6);
        for (const c of cs) assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
      } finally {
        for (const c of cs) c.destroy();
        assert.equal(await pool.stop(), 0);
      }
      lib.assertNoErrors(pool);
    });

  test('client_idle_timeout_ms closes an idle connection, not a busy one; slow partial requests time out',
    async () => {
      const IDLE = 2500;
      const REQ_TIMEOUT = 1000;
      const pool = await ready(await lib.startPool({
        endpoints: [node], workers: 2,
        settings: { ...QUIET, request_timeout_ms: REQ_TIMEOUT, attempt_timeout_ms: REQ_TIMEOUT },
        server: { client_idle_timeout_ms: IDLE },
      }));
      try {
        // idle: closed within IDLE (+ slack), without an answer
        cases++;
        const idle = await lib.ipcClient(pool.socket);
        assert.equal((await idle.call(req('eth_chainId'))).result, CHAIN_HEX);
        const t0 = Date.now();
        await lib.withTimeout(idle.ended, IDLE + 3000, 'idle connection closed');
        const waited = Date.now() - t0;
        assert.ok(waited >= IDLE - 300, `closed after ${waited} ms, not before ${IDLE}`);
        assert.equal(idle.lines.length, 1, 'nothing written to an idle client');
        // an idle HTTP keep-alive connection too
        cases++;
        const h = await rawExchange({ path: pool.socket },
          'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', { timeout: IDLE + 3000 });
        assert.match(h.text, /^HTTP\/1\.1 200 /);
        assert.equal(h.closed, true, 'idle keep-alive connection closed');
        // busy: a call every 400 ms keeps it open past IDLE
        cases++;
        const busy = await lib.ipcClient(pool.socket);
        for (let i = 0; i < Math.ceil((IDLE * 1.6) / 400); i++) {
          assert.equal((await busy.call(req('eth_chainId'))).result, CHAIN_HEX);
          await new Promise((r) => setTimeout(r, 400));
        }
        assert.equal(busy.isClosed(), false);
        busy.destroy();

        // slowloris over IPC: a value begun and left unfinished
        cases++;
        const s1 = await rawExchange({ path: pool.socket }, '{"jsonrpc":"2.0","id":1,"meth', { timeout: 6000 });
        assert.equal(s1.closed, true);
        assert.ok(s1.ms < REQ_TIMEOUT + 2000, `closed after ${s1.ms} ms`);
        const v1 = JSON.parse(s1.text.trim());
        assert.equal(v1.error.code, -32600);
        assert.match(v1.error.message, /incomplete after request_timeout_ms/);
        // ... even when it trickles in a byte at a time (progress on a
        // request that never completes does not extend the deadline)
        cases++;
        const text = '{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[' + '1,'.repeat(100);
        const steps = [...text].map((ch) => [100, ch]);
        const s2 = await rawExchange({ path: pool.socket }, steps, { timeout: 8000 });
        assert.equal(s2.closed, true, 'the trickle is cut');
        assert.ok(s2.ms < REQ_TIMEOUT + 2500, `closed after ${s2.ms} ms`);
        assert.equal(JSON.parse(s2.text.trim()).error.code, -32600);
        // complete requests trickled slowly are fine: the clock restarts per request
        cases++;
        const c = await lib.ipcClient(pool.socket);
        const one = `{"jsonrpc":"2.0","id":"slow","method":"eth_chainId"}\n`;
        for (let k = 0; k < 3; k++) {
          for (const part of [one.slice(0, 20), one.slice(20)]) {
            await c.send(part);
            await new Promise((r) => setTimeout(r, REQ_TIMEOUT / 3));
          }
          assert.equal(JSON.parse(await c.readLine(5000)).result, CHAIN_HEX);
        }
        c.destroy();
        // slowloris over HTTP: headers never finished, then a body never finished
        cases++;
        const s3 = await rawExchange({ path: pool.socket }, 'POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ', { timeout: 6000 });
        assert.match(s3.text, /^HTTP\/1\.1 408 /);
        assert.equal(s3.closed, true);
        cases++;
        const s4 = await rawExchange({ path: pool.socket },
          'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"jsonrpc"', { timeout: 6000 });
        assert.match(s4.text, /^HTTP\/1\.1 408 /);
        assert.equal(s4.closed, true);
        const other = await lib.ipcClient(pool.socket);
        assert.equal((await other.call(req('eth_chainId'))).result, CHAIN_HEX);
        other.destroy();
      } finally {
        assert.equal(await pool.stop(), 0);
      }
      lib.assertNoErrors(pool);
    });

  test('out of file descriptors: accepting pauses instead of spinning, and resumes', async (t) => {
    cases++;
    const prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => fs.existsSync(p));
    if (!prlimit) {
      t.skip('prlimit(1) not installed');
      return;
    }
    const cfg = lib.writePoolConfig({ endpoints: [node], workers: 1, settings: QUIET });
    const proc = lib.spawnTracked(prlimit, ['--nofile=64:64', lib.daemonBin('rpcpoold'), '-c', cfg.conf],
      { group: true, name: 'rpcpoold' });
    const log = [];
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => log.push(...d.split('\n').filter(Boolean)));
    const cs = [];
    try {
      await lib.waitFor(() => lib.canConnect(cfg.socket), { timeout: 15000, message: 'socket' });
      const pool = { shmName: cfg.shmName };
      const [wpid] = await lib.waitFor(async () => {
        const p = workerPids(await stat(pool));
        return p.length === 1 ? p : null;
      }, { timeout: 10000, message: 'worker running' });
      // open clients until the worker runs out of descriptors
      for (let i = 0; i < 80; i++) {
        const c = await lib.ipcClient(cfg.socket).catch(() => null);
        if (c) cs.push(c);
      }
      await lib.waitFor(() => log.some((l) => /accept failed: pausing accepts/.test(l)),
        { timeout: 10000, message: 'the worker logging EMFILE' });
      // it does not spin: CPU over 2 s well below one core
      const c0 = cpuTicks(wpid);
      await new Promise((r) => setTimeout(r, 2000));
      const used = (cpuTicks(wpid) - c0) / 100 / 2;
      figure(`EMFILE: worker CPU ${(used * 100).toFixed(1)}% while clients wait in the backlog`);
      assert.ok(used < 0.5, `worker CPU ${used} of a core while out of descriptors`);
      // the clients it holds are served
      const served = [];
      for (const c of cs.slice(0, 10)) {
        served.push(await c.call(req('eth_chainId'), { timeout: 3000 }).then((r) => r.result).catch(() => null));
      }
      assert.ok(served.filter((x) => x === CHAIN_HEX).length >= 5, `held clients served: ${served}`);
      // close them all: the waiting ones get accepted and served
      for (const c of cs.splice(0)) c.destroy();
      const c = await lib.waitFor(async () => {
        const x = await lib.ipcClient(cfg.socket);
        try {
          if ((await x.call(req('eth_chainId'), { timeout: 3000 })).result === CHAIN_HEX) return x;
        } catch {
          /* not yet */
        }
        x.destroy();
        return null;
      }, { timeout: 15000, interval: 200, message: 'accepting again after descriptors freed' });
      c.destroy();
    } finally {
      for (const c of cs) c.destroy();
      assert.equal(await lib.stopProc(proc, { timeout: 20000 }), 0);
    }
    lib.assertNoErrors(log);
  });
});

/* ------------------------------------------------------------------ */
/* upstream side                                                       */
/* ------------------------------------------------------------------ */

// A raw HTTP upstream on 127.0.0.1: for each request it reads the head and
// the Content-Length body, then writes RESPOND(body) (raw bytes) and closes
// the connection. Returns {url, port, requests, close()}.
async function rawUpstream(respond) {
  const st = { requests: 0 };
  const socks = new Set();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const h = buf.indexOf('\r\n\r\n');
      if (h < 0) return;
      const head = buf.slice(0, h).toString('latin1');
      const m = /content-length:\s*(\d+)/i.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (buf.length < h + 4 + len) return;
      const body = buf.slice(h + 4, h + 4 + len).toString('utf8');
      buf = buf.slice(h + 4 + len);
      st.requests++;
      s.end(respond(body));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    st,
    close: () => new Promise((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

// The answer an honest node would give to BODY (one call), as JSON text.
function honest(body) {
  let id = null;
  try {
    id = JSON.parse(body).id;
  } catch {
    /* keep null */
  }
  return JSON.stringify({ jsonrpc: '2.0', id, result: '31337' });
}

describe('upstream side', () => {
  let good;
  let bad;
  let pool;
  const ATTEMPT_MS = 600;

  before(async () => {
    good = await lib.startFault({});
    bad = await lib.startFault({});
    pool = await ready(await lib.startPool({
      endpoints: [{ name: 'bad', url: bad.url }, { name: 'good', url: good.url }],
      workers: 2,
      settings: {
        ...QUIET, balance: 'round_robin', retries: 2, request_timeout_ms: 8000, attempt_timeout_ms: ATTEMPT_MS,
        circuit_breaker: { failure_threshold: 60000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 },
      },
    }));
  });

  after(async () => {
    if (pool) {
      assert.equal(await pool.stop(), 0);
      lib.assertNoErrors(pool);
    }
    if (good) await good.stop();
    if (bad) await bad.stop();
  });

  // With BAD in MODE, N calls all get results (retried on good), and bad
  // saw some of them and counted them as failures.
  async function retriedElsewhere(mode, params = {}, n = 20) {
    cases++;
    await bad.setMode(mode, params);
    await bad.resetCounters();
    const before = await endpointStat(pool, 'bad');
    const c = await lib.ipcClient(pool.socket);
    const t0 = Date.now();
    try {
      const answers = await Promise.all(Array.from({ length: n }, () => c.call(req('net_version'), { timeout: 15000 })));
      for (const a of answers) assert.equal(a.result, '31337', `${mode}: ${JSON.stringify(a)}`);
    } finally {
      c.destroy();
      await bad.setMode('ok');
    }
    const ms = Date.now() - t0;
    const seen = (await bad.state()).by_method.net_version || 0;
    assert.ok(seen > 0, `${mode}: the bad endpoint was tried`);
    // a call hedged to good (hedge, on by default) is answered before its
    // attempt on bad ends: that attempt runs on and fails within its bound
    let afterS = null;
    await lib.waitFor(async () => {
      afterS = await endpointStat(pool, 'bad');
      return afterS.requests.failed > before.requests.failed && afterS.inflight === 0;
    }, { timeout: ATTEMPT_MS * 3 + 5000, message: `${mode}: failures counted on bad, nothing in flight` });
    figure(`upstream ${mode}: ${n} calls all answered in ${ms} ms; bad tried ${seen} times, ` +
      `failed ${afterS.requests.failed - before.requests.failed}`);
    return ms;
  }

  test('a truncated body (Content-Length beyond the body, then close): retried elsewhere', async () => {
    await retriedElsewhere('truncated');
  });

  test('non-JSON: retried elsewhere', async () => {
    await retriedElsewhere('garbage');
  });

  test('JSON with another id: retried elsewhere', async () => {
    await retriedElsewhere('wrong_id');
  });

  test('a slow drip: bounded by attempt_timeout_ms, retried elsewhere', async () => {
    const ms = await retriedElsewhere('drip', { drip_ms: 200 }, 6);
    // every call is answered within a few attempt bounds (the body would take
    // ~8 s to arrive at 200 ms a byte)
    assert.ok(ms < ATTEMPT_MS * 3 + 2000, `answered in ${ms} ms`);
  });

  test('a Content-Length shorter than the body, and a body cut mid-way: not answers', async () => {
    const variants = {
      short: (b) => {
        const body = honest(b);
        return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length - 8}\r\n` +
          `Connection: close\r\n\r\n${body}`;
      },
      chunked_cut: (b) => {
        const body = honest(b);
        return 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `${(10).toString(16)}\r\n${body.slice(0, 10)}\r\n`;
      },
      no_length_cut: (b) => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n${honest(b).slice(0, 15)}`,
      not_http: () => 'SSH-2.0-OpenSSH_9.0\r\n',
    };
    for (const [name, respond] of Object.entries(variants)) {
      cases++;
      const raw = await rawUpstream(respond);
      const p = await ready(await lib.startPool({
        endpoints: [{ name: 'raw', url: raw.url }, { name: 'good', url: good.url }],
        workers: 1,
        settings: { ...QUIET, balance: 'round_robin', retries: 2, min_connections: 0,
          circuit_breaker: { failure_threshold: 60000, recovery_timeout_ms: 1000, half_open_max_attempts: 1 } },
      }));
      try {
        const c = await lib.ipcClient(p.socket);
        for (let i = 0; i < 6; i++) assert.equal((await c.call(req('net_version'))).result, '31337', name);
        c.destroy();
        assert.ok(raw.st.requests > 0, `${name}: the raw upstream was tried`);
        const e = await endpointStat(p, 'raw');
        assert.ok(e.requests.failed > 0, `${name}: counted as failures`);
        assert.equal(e.requests.ok, 0, `${name}: never taken as an answer`);
      } finally {
        assert.equal(await p.stop(), 0);
        await raw.close();
      }
      lib.assertNoErrors(p);
    }
  });

  test('a response beyond max_response_bytes: cut, answered -32603, not retried, not a breaker failure',
    async () => {
      cases++;
      const big = await lib.startFault({});
      const other = await lib.startFault({});
      const p = await ready(await lib.startPool({
        endpoints: [{ name: 'big', url: big.url }, { name: 'other', url: other.url }],
        workers: 1,
        settings: { ...QUIET, balance: 'round_robin', retries: 2,
          circuit_breaker: { failure_threshold: 2, recovery_timeout_ms: 600000, half_open_max_attempts: 1 } },
        server: { max_response_bytes: 4096 },
      }));
      try {
        await big.setMode('big', { big_bytes: 200000 });
        await big.resetCounters();
        await other.resetCounters();
        // (warm-ups and the first probe may have failed on a loaded host:
        // only what the calls below do is looked at)
        const before = await endpointStat(p, 'big');
        const c = await lib.ipcClient(p.socket);
        const N = 10;
        const answers = [];
        for (let i = 0; i < N; i++) answers.push(await c.call(req('net_version')));
        c.destroy();
        const errs = answers.filter((a) => a.error);
        const oks = answers.filter((a) => a.result === '31337');
        assert.equal(errs.length + oks.length, N);
        assert.ok(errs.length >= 1, 'some calls met the big endpoint');
        for (const a of errs) {
          assert.equal(a.error.code, -32603);
          assert.match(a.error.message, /^Upstream error/);
          assert.match(JSON.stringify(a.error.data), /max_response_bytes/);
          assert.ok(JSON.stringify(a).length < 4096, 'the big body never reaches the client');
        }
        // not retried: other saw exactly the calls answered with a result
        assert.equal((await other.state()).by_method.net_version || 0, oks.length, 'no retry of a too-large answer');
        assert.equal((await big.state()).by_method.net_version || 0, errs.length);
        // not an endpoint failure: the breaker (threshold 2) stays closed
        const e = await endpointStat(p, 'big');
        assert.equal(e.breaker, 'closed');
        assert.equal(e.requests.failed - before.requests.failed, 0, 'no failure counted');
        assert.equal(e.requests.retried - before.requests.retried, 0, 'no retry counted');
        assert.equal(e.inflight, 0);
        figure(`max_response_bytes: ${errs.length} of ${N} calls cut and answered -32603, ${oks.length} served by other`);
      } finally {
        assert.equal(await p.stop(), 0);
        await big.stop();
        await other.stop();
      }
      lib.assertNoErrors(p);
    });
});

/* ------------------------------------------------------------------ */
/* daemon bugs found by the catalogue                                  */
/* ------------------------------------------------------------------ */

// Nodes that re-serialise the id (anvil, reth, any serde/JS node) answer an
// id written with escapes ("\u0061") with the decoded string, and answer ids
// they cannot represent (1.5, 1e400, 2^100) with id null and -32600. rpcpool
// compares ids by value, takes a null-id error as the node's answer, and
// gives the client its own id bytes back; none of it counts against the
// endpoint's breaker (one client must not be able to open it for all).
describe('odd ids must not count against an endpoint', () => {
  test('escaped-string, fractional and huge ids from one client leave the breaker closed',
    async () => {
      cases++;
      const node = await lib.startAnvil();
      const pool = await ready(await lib.startPool({
        endpoints: [{ name: 'node', url: node.url }], workers: 1,
        settings: { ...QUIET, circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600000, half_open_max_attempts: 1 } },
      }));
      try {
        const c = await lib.ipcClient(pool.socket);
        const ids = ['"\\u0061"', '"a\\/b"', '1.5', '1e400', '123456789012345678901234567890', '1.0'];
        const answers = [];
        for (const id of ids) {
          await c.send(`{"jsonrpc":"2.0","id":${id},"method":"eth_chainId"}\n`);
          answers.push(JSON.parse(await c.readLine(10000)));
        }
        // another client is still served
        const other = await lib.ipcClient(pool.socket);
        const r = await other.call(req('eth_chainId'));
        other.destroy();
        c.destroy();
        const e = await endpointStat(pool, 'node');
        figure(`odd ids: answers ${answers.map((a) => (a.error ? a.error.code : 'result')).join(',')}; ` +
          `breaker ${e.breaker}, failed ${e.requests.failed}`);
        assert.equal(r.result, CHAIN_HEX, `another client served: ${JSON.stringify(r)}`);
        assert.equal(e.breaker, 'closed');
        assert.equal(answers[0].result, CHAIN_HEX, 'an escaped string id the node echoed decoded is an answer');
        for (let i = 0; i < ids.length; i++) {
          assert.equal(JSON.stringify(answers[i].id), JSON.stringify(JSON.parse(ids[i])),
            `answer ${i} carries the client's id`);
        }
        assert.equal(e.requests.failed, 0);
      } finally {
        await pool.stop();
        await node.stop();
      }
    });
});
