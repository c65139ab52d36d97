// upstream.test.js - tests of the test tools themselves: every mode of the
// fault upstream (tests/upstream/fault.js) behaves as documented and counts
// what it receives; anvil starts and answers; the harness pieces that do not
// need rpcpoold (config writer, IPC client, run/cast) work.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const rpc = (method, id, params = []) => ({ jsonrpc: '2.0', id, method, params });

// POST BODY to the fault upstream; resolves to {status, headers, body}.
function post(f, body, opts = {}) {
  return lib.httpRequest(f.url, { method: 'POST', body, ...opts });
}

// Send raw HTTP bytes REQ to PORT and collect what comes back until the
// server closes or TIMEOUT ms pass: {data, chunks, closed, error, ms}.
function rawExchange(port, reqText, timeout = 10000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    let error = null;
    const timer = setTimeout(() => done(false), timeout);
    function done(closed) {
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks).toString('utf8'), chunks: chunks.length, closed, error, ms: Date.now() - t0 });
    }
    s.on('connect', () => s.write(reqText));
    s.on('data', (c) => chunks.push(c));
    s.on('error', (e) => {
      error = e;
    });
    s.on('close', () => done(true));
  });
}

// Wait until the fault upstream has no client connection open.
function quiesce(f) {
  return lib.waitFor(async () => (await f.state()).connections_open === 0,
    { timeout: 10000, message: 'fault upstream connections closed' });
}

function rawPost(body, extraHeaders = '') {
  return `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

describe('fault upstream', () => {
  let f;
  before(async () => {
    f = await lib.startFault({ chainId: 5, block: 100 });
  });
  after(async () => {
    assert.equal(await f.stop(), 0);
  });

  test('ok: answers like a node and counts calls', async () => {
    await f.setMode('ok');
    await f.resetCounters();
    let r = await post(f, rpc('eth_blockNumber', 1));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: 1, result: '0x64' });
    r = await post(f, rpc('eth_chainId', 'a'));
    assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: 'a', result: '0x5' });
    r = await post(f, rpc('eth_getBalance', 3, ['0x00', 'latest']));
    assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: 3, result: 'eth_getBalance' });
    // a batch of 3 with one notification: 3 calls counted, 2 answers
    r = await post(f, [rpc('eth_chainId', 10), { jsonrpc: '2.0', method: 'eth_subscribe' }, rpc('net_version', 11)]);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), [
      { jsonrpc: '2.0', id: 10, result: '0x5' },
      { jsonrpc: '2.0', id: 11, result: '5' },
    ]);
    // a lone notification is not answered
    r = await post(f, { jsonrpc: '2.0', method: 'eth_foo' });
    assert.equal(r.status, 204);
    assert.equal(r.body, '');
    const s = await f.state();
    assert.equal(s.mode, 'ok');
    assert.equal(s.requests, 7);
    assert.equal(s.http_requests, 5);
    assert.deepEqual(s.by_method, {
      eth_blockNumber: 1, eth_chainId: 2, eth_getBalance: 1, eth_subscribe: 1, net_version: 1, eth_foo: 1,
    });
  });

  test('ok: parse errors and invalid requests are answered and counted', async () => {
    await f.resetCounters();
    let r = await post(f, '{"jsonrpc":');
    assert.equal(JSON.parse(r.body).error.code, -32700);
    r = await post(f, '42');
    assert.equal(JSON.parse(r.body).error.code, -32600);
    r = await post(f, '[]');
    assert.equal(JSON.parse(r.body).error.code, -32600);
    const s = await f.state();
    assert.equal(s.http_requests, 3);
    assert.equal(s.requests, 2); // the empty batch holds no call
    assert.equal(s.by_method['(invalid)'], 2);
  });

  test('block: the head block can be moved', async () => {
    await f.setBlock(123456789);
    const r = await post(f, rpc('eth_blockNumber', 1));
    assert.equal(JSON.parse(r.body).result, '0x75bcd15');
    assert.equal((await f.state()).block, 123456789);
    await f.setBlock(100);
  });

  test('keep-alive: requests share one connection; control connections are not counted', async () => {
    await quiesce(f);
    await f.resetCounters();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await new Promise((resolve, reject) => {
          const body = JSON.stringify(rpc('eth_blockNumber', i));
          const req = http.request({
            host: '127.0.0.1', port: f.port, method: 'POST', path: '/', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Test': 'yes' },
          }, (res) => {
            let d = '';
            res.on('data', (c) => { d += c; });
            res.on('end', () => resolve({ status: res.statusCode, body: d, keep: res.headers.connection }));
          });
          req.on('error', reject);
          req.end(body);
        });
        assert.equal(r.status, 200);
        assert.equal(r.keep, 'keep-alive');
      }
      const s = await f.state();
      assert.equal(s.connections_total, 1);
      assert.equal(s.connections_open, 1);
      assert.equal(s.requests, 5);
      assert.equal(s.last_headers['x-test'], 'yes');
    } finally {
      agent.destroy();
    }
    await quiesce(f);
  });

  test('delay: answers after delay_ms', async () => {
    await f.setMode('delay', { delay_ms: 300 });
    const t0 = Date.now();
    const r = await post(f, rpc('eth_chainId', 1));
    assert.ok(Date.now() - t0 >= 290, `answered after ${Date.now() - t0} ms`);
    assert.equal(JSON.parse(r.body).result, '0x5');
  });

  test('http500: the configured status, counted', async () => {
    await f.setMode('http500');
    await f.resetCounters();
    let r = await post(f, rpc('eth_chainId', 1));
    assert.equal(r.status, 500);
    await f.setMode('http500', { status: 503 });
    r = await post(f, [rpc('eth_chainId', 1), rpc('eth_blockNumber', 2)]);
    assert.equal(r.status, 503);
    const s = await f.state();
    assert.equal(s.requests, 3);
    assert.equal(s.params.status, 503);
  });

  test('429: Retry-After as configured', async () => {
    await f.setMode('429', { retry_after: 7 });
    const r = await post(f, rpc('eth_chainId', 1));
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '7');
  });

  test('reset: the connection is reset without an answer, the call counted', async () => {
    await f.setMode('reset');
    await f.resetCounters();
    await assert.rejects(post(f, rpc('eth_chainId', 1)), (e) => /ECONNRESET|socket hang up/.test(e.code + e.message));
    const s = await f.state();
    assert.equal(s.requests, 1);
    assert.equal(s.by_method.eth_chainId, 1);
  });

  test('hang: no answer, the connection stays open', async () => {
    await f.setMode('hang');
    await quiesce(f);
    await f.resetCounters();
    const sock = net.connect(f.port, '127.0.0.1');
    let data = '';
    let closed = false;
    sock.on('data', (c) => { data += c; });
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    sock.write(rawPost(JSON.stringify(rpc('eth_chainId', 1))));
    try {
      const s = await lib.waitFor(async () => {
        const st = await f.state();
        return st.requests === 1 && st;
      }, { timeout: 10000, message: 'hung request received' });
      assert.equal(s.connections_open, 1);
      // A fixed window to observe that nothing comes back.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(data, '');
      assert.equal(closed, false);
    } finally {
      sock.destroy();
    }
    await quiesce(f);
  });

  test('garbage: 200 with a body that is not JSON', async () => {
    await f.setMode('garbage');
    const r = await post(f, rpc('eth_chainId', 1));
    assert.equal(r.status, 200);
    assert.throws(() => JSON.parse(r.body));
  });

  test('wrong_id: a valid response with another id', async () => {
    await f.setMode('wrong_id');
    let v = JSON.parse((await post(f, rpc('eth_chainId', 41))).body);
    assert.equal(v.jsonrpc, '2.0');
    assert.equal(v.result, '0x5');
    assert.notEqual(v.id, 41);
    v = JSON.parse((await post(f, rpc('eth_chainId', 'abc'))).body);
    assert.notEqual(v.id, 'abc');
    v = JSON.parse((await post(f, [rpc('eth_chainId', 1), rpc('eth_chainId', 2)])).body);
    assert.equal(v.length, 2);
    assert.ok(v.every((x) => x.id !== 1 && x.id !== 2));
  });

  test('truncated: Content-Length larger than the body, then close', async () => {
    await f.setMode('truncated');
    const res = await rawExchange(f.port, rawPost(JSON.stringify(rpc('eth_chainId', 1))));
    assert.equal(res.closed, true);
    const [head, body] = res.data.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200/);
    const len = Number(/content-length: (\d+)/i.exec(head)[1]);
    assert.ok(Buffer.byteLength(body) < len, `body ${Buffer.byteLength(body)} bytes, Content-Length ${len}`);
    assert.ok(Buffer.byteLength(body) > 0);
  });

  test('drip: the whole body, one byte at a time', async () => {
    await f.setMode('drip', { drip_ms: 10 });
    const body = JSON.stringify(rpc('eth_chainId', 1));
    const res = await rawExchange(f.port, rawPost(body, 'Connection: close\r\n'), 20000);
    assert.equal(res.closed, true);
    const [head, got] = res.data.split('\r\n\r\n');
    const len = Number(/content-length: (\d+)/i.exec(head)[1]);
    assert.equal(Buffer.byteLength(got), len);
    assert.deepEqual(JSON.parse(got), { jsonrpc: '2.0', id: 1, result: '0x5' });
    assert.ok(res.chunks >= 2, `${res.chunks} chunks`);
    assert.ok(res.ms >= (len - 1) * 10, `dripped ${len} bytes in ${res.ms} ms`);
  });

  test('big: a result of big_bytes bytes', async () => {
    await f.setMode('big', { big_bytes: 3 * 1024 * 1024 + 7 });
    const r = await post(f, rpc('eth_getLogs', 9), { timeout: 30000 });
    const v = JSON.parse(r.body);
    assert.equal(v.id, 9);
    assert.equal(v.result.length, 3 * 1024 * 1024 + 7);
  });

  test('rpc_error: a JSON-RPC error object with HTTP 200', async () => {
    await f.setMode('rpc_error');
    const r = await post(f, rpc('eth_call', 5));
    assert.equal(r.status, 200);
    const v = JSON.parse(r.body);
    assert.equal(v.id, 5);
    assert.equal(v.error.code, 3);
  });

  test('times: a mode for the next N requests only', async () => {
    await f.setMode('http500', { times: 2 });
    assert.equal((await post(f, rpc('eth_chainId', 1))).status, 500);
    assert.equal((await f.state()).remaining, 1);
    assert.equal((await post(f, rpc('eth_chainId', 2))).status, 500);
    assert.equal((await post(f, rpc('eth_chainId', 3))).status, 200);
    assert.equal((await f.state()).mode, 'ok');
  });

  test('GET /health honours the mode', async () => {
    await f.setMode('ok');
    await f.resetCounters();
    let r = await lib.httpRequest(f.url, { path: '/health' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).status, 'ok');
    await f.setMode('http500');
    r = await lib.httpRequest(f.url, { path: '/health' });
    assert.equal(r.status, 500);
    await f.setMode('429', { retry_after: 2 });
    r = await lib.httpRequest(f.url, { path: '/health' });
    assert.equal(r.status, 429);
    await f.setMode('reset');
    await assert.rejects(lib.httpRequest(f.url, { path: '/health' }));
    const s = await f.state();
    assert.equal(s.health_requests, 4);
    assert.equal(s.http_requests, 4);
    assert.equal(s.requests, 0);
    await f.setMode('ok');
  });

  test('control: bad requests are refused, counters reset', async () => {
    await assert.rejects(f.setMode('no_such_mode'), /unknown mode/);
    await assert.rejects(f.setMode('delay', { delay_ms: -1 }), /non-negative/);
    await assert.rejects(f.setBlock('x'), /non-negative/);
    const r = await lib.httpRequest(f.url, { path: '/_control/nope' });
    assert.equal(r.status, 404);
    await post(f, rpc('eth_chainId', 1));
    const s = await f.resetCounters();
    assert.equal(s.requests, 0);
    assert.equal(s.http_requests, 0);
    assert.deepEqual(s.by_method, {});
    assert.equal(s.connections_total, 0);
  });

  test('command line: mode and parameters from flags; stops on SIGTERM', async () => {
    const g = await lib.startFault({ mode: '429', retry_after: 9, block: 7, chainId: 1 });
    try {
      const r = await post(g, rpc('eth_chainId', 1));
      assert.equal(r.status, 429);
      assert.equal(r.headers['retry-after'], '9');
      const s = await g.state();
      assert.equal(s.block, 7);
      assert.equal(s.chain_id, 1);
    } finally {
      assert.equal(await g.stop(), 0);
    }
    const bad = await lib.run(process.execPath, [lib.FAULT, '--mode', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown mode/);
  });
});

describe('anvil', () => {
  test('startAnvil: eth_chainId answers over HTTP, cast and IPC', async () => {
    const a = await lib.startAnvil({ chainId: 31337, ipc: true });
    try {
      const v = await a.rpc('eth_chainId');
      assert.equal(v.result, '0x7a69');
      const c = await lib.cast(['chain-id', '--rpc-url', a.url]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout.trim(), '31337');
      const ci = await lib.cast(['block-number', '--rpc-url', a.ipc]);
      assert.equal(ci.code, 0, ci.stderr);
      assert.match(ci.stdout.trim(), /^\d+$/);
    } finally {
      const code = await a.stop();
      assert.ok(code === 0 || code === 'SIGTERM', `anvil exit ${code}`);
    }
  });

  test('two anvils with their own chain ids on their own ports', async () => {
    const [a, b] = await Promise.all([lib.startAnvil({ chainId: 1 }), lib.startAnvil({ chainId: 10 })]);
    try {
      assert.notEqual(a.port, b.port);
      assert.equal((await a.rpc('eth_chainId')).result, '0x1');
      assert.equal((await b.rpc('eth_chainId')).result, '0xa');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('harness', () => {
  test('toLibconfig writes libconfig values', () => {
    assert.equal(lib.toLibconfig('a"b'), '"a\\"b"');
    assert.equal(lib.toLibconfig(5), '5');
    assert.equal(lib.toLibconfig(2 ** 40), '1099511627776L');
    assert.equal(lib.toLibconfig(true), 'true');
    assert.equal(lib.toLibconfig(['x', 'y']), '[ "x", "y" ]');
    assert.equal(lib.toLibconfig({ a: 1, b: { c: 'd' } }), '{\n  a = 1;\n  b = {\n    c = "d";\n  };\n}');
  });

  test('writePoolConfig: unique paths under a temporary directory', () => {
    const c1 = lib.writePoolConfig({
      endpoints: ['http://127.0.0.1:1', { url: 'http://127.0.0.1:2', name: 'two', weight: 2, headers: ['X-A: b'] }],
      workers: 1,
      settings: { retries: 1 },
      server: { log_level: 'info' },
      extra: 'balance = "round_robin";',
    });
    const c2 = lib.writePoolConfig({ endpoints: ['http://127.0.0.1:1'] });
    assert.notEqual(c1.socket, c2.socket);
    assert.notEqual(c1.shmName, c2.shmName);
    assert.ok(c1.socket.length < 100);
    const text = fs.readFileSync(c1.conf, 'utf8');
    assert.equal(text, c1.text);
    assert.match(text, /endpoints = \(\n {2}"http:\/\/127\.0\.0\.1:1",\n {2}\{\n {4}url = "http:\/\/127\.0\.0\.1:2";/);
    assert.match(text, /headers = \[ "X-A: b" \];/);
    assert.match(text, /retries = 1;/);
    assert.match(text, /workers = 1;/);
    assert.match(text, /log_level = "info";/);
    assert.match(text, /balance = "round_robin";/);
    assert.equal(path.dirname(c1.socket), c1.dir);
  });

  test('ipcClient: calls matched by id, raw lines, end of stream', async () => {
    // A line-echo server standing in for rpcpoold: answers each request line
    // with {"id":...} in reverse order of arrival per chunk.
    const dir = lib.tmpDir();
    const sockPath = path.join(dir, 's.ipc');
    const srv = net.createServer((c) => {
      let buf = '';
      c.on('data', (d) => {
        buf += d;
        const out = [];
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === 'bye') {
            c.end();
            return;
          }
          const v = JSON.parse(line);
          const ans = (r) => ({ jsonrpc: '2.0', id: r.id, result: r.method });
          out.unshift(JSON.stringify(Array.isArray(v) ? v.map(ans) : ans(v)));
        }
        if (out.length) c.write(out.join('\n') + '\n');
      });
    });
    await new Promise((r) => srv.listen(sockPath, r));
    try {
      const cl = await lib.ipcClient(sockPath);
      const [x, y] = await Promise.all([cl.call({ method: 'a' }), cl.call({ method: 'b' })]);
      assert.equal(x.result, 'a');
      assert.equal(y.result, 'b');
      const batch = await cl.call([{ method: 'c' }, { method: 'd' }]);
      assert.deepEqual(batch.map((r) => r.result), ['c', 'd']);
      await cl.send('{"jsonrpc":"2.0","id":"raw","method":"e"}\n');
      const [line] = await cl.readLines(1, 5000);
      assert.deepEqual(JSON.parse(line), { jsonrpc: '2.0', id: 'raw', result: 'e' });
      await assert.rejects(cl.readLines(1, 100), /0 of 1 line/);
      await cl.send('bye\n');
      const end = await cl.ended;
      assert.equal(end.error, null);
      assert.ok(cl.isClosed());
      await assert.rejects(cl.call({ method: 'late' }), /closed/);
      assert.equal(cl.lines.length, 4);
    } finally {
      srv.close();
    }
  });

  test('waitFor: returns the value, fails at the deadline', async () => {
    let n = 0;
    assert.equal(await lib.waitFor(() => (++n >= 3 ? 'yes' : false), { interval: 1 }), 'yes');
    await assert.rejects(lib.waitFor(() => false, { timeout: 50, message: 'never' }), /never not met within 50 ms/);
  });

  test('run: exit codes and timeouts', async () => {
    const r = await lib.run('sh', ['-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
    const t = await lib.run('sh', ['-c', 'exec sleep 30'], { timeout: 200 });
    assert.equal(t.timedOut, true);
  });
});
