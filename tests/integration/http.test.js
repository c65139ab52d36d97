// http.test.js - the HTTP/1.1 front (src/proto/http.c, src/worker/conn.c; docs/interface.md
// section 3) against anvil: POST / over the client UNIX socket (told from IPC
// by its first bytes) and over server.http_listen, GET /health (200 and 503)
// and GET /metrics, keep-alive, pipelining answered in request order, chunked
// bodies, Expect: 100-continue, the error answers (413, 400 for smuggling and
// malformed requests, 431, 405, 404, -32700 on an open connection), and real
// clients: curl --unix-socket and ethers' JsonRpcProvider.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const lib = require('./lib.js');

const { ethers } = require(path.join(lib.ROOT, 'tests', 'node_modules', 'ethers'));

const MAX_REQUEST_BYTES = 4096;
const ANVIL_ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

const rpc = (method, id, params = []) => ({ jsonrpc: '2.0', id, method, params });

// An HTTP request as raw text with a Content-Length body.
function rawPost(body, { pathName = '/', headers = '' } = {}) {
  return `POST ${pathName} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`;
}

// Split BUF (a Buffer) into complete HTTP responses (1xx interim ones
// included); returns {responses, rest}. Bodies are Content-Length framed.
function parseResponses(buf) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(head[0]);
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head[0])}`);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    const len = status < 200 ? 0 : Number(headers['content-length']);
    assert.ok(Number.isInteger(len), `response without Content-Length: ${head.join(' | ')}`);
    if (buf.length < end + 4 + len) break;
    const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    responses.push({ status, headers, body });
    off = end + 4 + len;
  }
  return { responses, rest: buf.subarray(off) };
}

// A raw client connection: send(text) and next(n) resolving to the next N
// final responses (interim 1xx ones are kept in .interim), closed().
function rawConn(target) {
  return new Promise((resolve, reject) => {
    const sock = target.socketPath ? net.connect(target.socketPath) : net.connect(target.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const queue = [];
    const interim = [];
    const waiters = [];
    let isClosed = false;
    let closeResolve;
    const closedP = new Promise((r) => { closeResolve = r; });
    const serve = () => {
      while (waiters.length && (queue.length >= waiters[0].n || isClosed)) {
        const w = waiters.shift();
        clearTimeout(w.timer);
        if (queue.length >= w.n) w.resolve(queue.splice(0, w.n));
        else w.reject(new Error(`connection closed with ${queue.length} of ${w.n} response(s); rest: ${buf.toString().slice(0, 300)}`));
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const { responses, rest } = parseResponses(buf);
      buf = rest;
      for (const r of responses) (r.status < 200 ? interim : queue).push(r);
      serve();
    });
    const done = () => {
      if (isClosed) return;
      isClosed = true;
      closeResolve();
      serve();
    };
    sock.on('close', done);
    sock.on('error', done);
    sock.once('connect', () => resolve({
      sock,
      interim,
      send: (text) => new Promise((res) => sock.write(text, () => res())),
      next: (n = 1, timeout = 10000) => new Promise((res, rej) => {
        const w = { n, resolve: res, reject: rej, timer: null };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          rej(new Error(`${queue.length} of ${n} response(s) within ${timeout} ms`));
        }, timeout);
        waiters.push(w);
        serve();
      }),
      closed: (timeout = 5000) => lib.withTimeout(closedP, timeout, 'server close'),
      isClosed: () => isClosed,
      destroy: () => sock.destroy(),
    }));
    sock.once('error', reject);
  });
}

// One exchange: send TEXT, expect N responses, then (when CLOSE) the close.
async function exchange(target, text, { n = 1, close = false } = {}) {
  const c = await rawConn(target);
  await c.send(text);
  const rs = await c.next(n);
  if (close) await c.closed();
  c.destroy();
  return rs;
}

// curl ARGS; resolves to {code, stdout, stderr}.
function curl(args) {
  return lib.run('curl', ['-sS', '--max-time', '20', ...args], { timeout: 30000 });
}

describe('HTTP front', () => {
  let node;
  let pool;
  let port;
  let unix;
  let tcp;
  let url;

  before(async () => {
    node = await lib.startAnvil();
    let lastErr;
    for (let attempt = 0; attempt < 3 && !pool; attempt++) {
      port = await lib.freePort();
      try {
        pool = await lib.startPool({
          endpoints: [node.url, `http://localhost:${node.port}/`],
          workers: 2,
          settings: {
            min_connections: 0,
            health_check_interval_ms: 60000,
            rate_limit: { max_requests: 100000, window_ms: 1000, burst_size: 1000 },
          },
          server: { http_listen: `127.0.0.1:${port}`, max_request_bytes: MAX_REQUEST_BYTES },
        });
      } catch (e) {
        lastErr = e; // the port was taken in between: another one
      }
    }
    if (!pool) throw lastErr;
    unix = { socketPath: pool.socket };
    tcp = { port };
    url = `http://127.0.0.1:${port}/`;
    await lib.waitFor(async () => (await lib.httpRequest(url, { path: '/health' })).status === 200,
      { timeout: 10000, message: 'pool healthy' });
  });

  after(async () => {
    if (pool) {
      assert.equal(await pool.stop(), 0);
      lib.assertNoErrors(pool);
    }
    if (node) await node.stop();
  });

  test('curl --unix-socket: POST / and GET /health', async () => {
    let r = await curl(['--unix-socket', pool.socket, 'http://localhost/', '-H', 'Content-Type: application/json',
      '-d', JSON.stringify(rpc('eth_chainId', 1))]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { jsonrpc: '2.0', id: 1, result: '0x7a69' });
    // curl -d without a Content-Type (form encoding) is accepted as well
    r = await curl(['--unix-socket', pool.socket, 'http://localhost/', '-d', JSON.stringify(rpc('eth_blockNumber', 'x'))]);
    assert.equal(JSON.parse(r.stdout).id, 'x');
    assert.match(JSON.parse(r.stdout).result, /^0x[0-9a-f]+$/);
    r = await curl(['--unix-socket', pool.socket, '-i', 'http://localhost/health']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.stdout, /\r\nContent-Type: application\/json\r\n/i);
    assert.deepEqual(JSON.parse(r.stdout.split('\r\n\r\n')[1]), { status: 'ok', healthy: 2 });
  });

  test('GET /metrics on both sockets', async () => {
    for (const t of [unix, tcp]) {
      const r = await lib.httpRequest(t.socketPath ? { socketPath: t.socketPath } : { port: t.port },
        { path: '/metrics' });
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
      assert.match(r.body, /^# HELP /);
      assert.match(r.body, /\nrpcpool_requests_total\{endpoint="[^"]+",outcome="ok"\} \d+\n/);
      assert.match(r.body, /\nrpcpool_client_requests_total\{result="ok"\} [1-9]\d*\n/);
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    }
    // HEAD: the same head, no body
    const h = await new Promise((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'HEAD', path: '/health', agent: false }, (res) => {
        let n = 0;
        res.on('data', (d) => { n += d.length; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, n }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(h.status, 200);
    assert.equal(h.n, 0);
    assert.equal(Number(h.headers['content-length']), JSON.stringify({ status: 'ok', healthy: 2 }).length);
  });

  test('GET /health is 503 while no endpoint can serve', async () => {
    for (const ep of ['0', '1']) assert.equal((await pool.ctl(`drain ${ep}`)).ok, true);
    try {
      const r = await lib.httpRequest(url, { path: '/health' });
      assert.equal(r.status, 503);
      assert.deepEqual(JSON.parse(r.body), { status: 'unavailable', healthy: 0 });
      const u = await lib.httpRequest({ socketPath: pool.socket }, { path: '/health' });
      assert.equal(u.status, 503);
      // the calls themselves get -32002 in a 200
      const c = await lib.httpRequest(url, { method: 'POST', body: rpc('eth_chainId', 5) });
      assert.equal(c.status, 200);
      assert.equal(JSON.parse(c.body).error.code, -32002);
      // one endpoint back: healthy 1
      assert.equal((await pool.ctl('enable 1')).ok, true);
      const one = await lib.httpRequest(url, { path: '/health' });
      assert.equal(one.status, 200);
      assert.deepEqual(JSON.parse(one.body), { status: 'ok', healthy: 1 });
    } finally {
      for (const ep of ['0', '1']) await pool.ctl(`enable ${ep}`);
    }
    assert.equal((await lib.httpRequest(url, { path: '/health' })).status, 200);
  });

  test('keep-alive: one connection serves many requests (TCP and UNIX)', async () => {
    for (const t of [{ host: '127.0.0.1', port }, { socketPath: pool.socket }]) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const sockets = new Set();
      try {
        for (let i = 0; i < 5; i++) {
          const r = await new Promise((resolve, reject) => {
            const body = JSON.stringify(rpc('eth_chainId', i));
            const req = http.request({ ...t, method: 'POST', path: '/', agent,
              headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
              sockets.add(res.socket);
              let data = '';
              res.setEncoding('utf8');
              res.on('data', (d) => { data += d; });
              res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, data, reused: req.reusedSocket }));
            });
            req.on('error', reject);
            req.end(body);
          });
          assert.equal(r.status, 200);
          assert.deepEqual(JSON.parse(r.data), { jsonrpc: '2.0', id: i, result: '0x7a69' });
          assert.notEqual(r.headers.connection, 'close');
          if (i > 0) assert.equal(r.reused, true, `request ${i} did not reuse the connection`);
        }
        assert.equal(sockets.size, 1);
      } finally {
        agent.destroy();
      }
    }
  });

  test('pipelining: answers come back in request order', async () => {
    for (const t of [tcp, unix]) {
      // the GET /health in the middle is answered at once by rpcpool; it
      // must still wait for the upstream answer before it
      const text = rawPost(JSON.stringify(rpc('eth_blockNumber', 1))) +
        'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n' +
        rawPost(JSON.stringify(rpc('eth_chainId', 2))) +
        rawPost(JSON.stringify({ jsonrpc: '2.0', method: 'eth_chainId', params: [] })) + // notification
        rawPost(JSON.stringify([rpc('eth_chainId', 3), rpc('net_version', 4)]));
      const rs = await exchange(t, text, { n: 5 });
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
      assert.equal(JSON.parse(rs[0].body).id, 1);
      assert.deepEqual(JSON.parse(rs[1].body), { status: 'ok', healthy: 2 });
      assert.deepEqual(JSON.parse(rs[2].body), { jsonrpc: '2.0', id: 2, result: '0x7a69' });
      assert.equal(rs[3].body, ''); // a notification: empty 200
      assert.deepEqual(JSON.parse(rs[4].body).map((x) => x.id).sort(), [3, 4]);
    }
  });

  test('pipelining: many requests written at once, split across reads', async () => {
    const c = await rawConn(tcp);
    let text = '';
    for (let i = 0; i < 40; i++) text += rawPost(JSON.stringify(rpc(i % 2 ? 'eth_chainId' : 'eth_blockNumber', 100 + i)));
    // written in odd-sized pieces so requests straddle reads
    for (let off = 0; off < text.length; off += 333) await c.send(text.slice(off, off + 333));
    const rs = await c.next(40, 20000);
    assert.deepEqual(rs.map((r) => JSON.parse(r.body).id), Array.from({ length: 40 }, (_, i) => 100 + i));
    c.destroy();
  });

  test('chunked request bodies', async () => {
    const body = JSON.stringify(rpc('eth_chainId', 'c1'));
    const chunks = [body.slice(0, 7), body.slice(7, 20), body.slice(20)];
    const text = 'POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n' +
      chunks.map((ch) => `${Buffer.byteLength(ch).toString(16)}\r\n${ch}\r\n`).join('') + '0\r\n\r\n';
    for (const t of [tcp, unix]) {
      const [r] = await exchange(t, text);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: 'c1', result: '0x7a69' });
    }
    // node's own chunked encoding (no Content-Length, several writes)
    const r = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false }, (res) => {
        let data = '';
        res.on('data', (d) => { data += d; });
        res.on('end', () => resolve({ status: res.statusCode, data }));
      });
      req.on('error', reject);
      const b = JSON.stringify(rpc('eth_chainId', 'c2'));
      req.write(b.slice(0, 10));
      setTimeout(() => req.end(b.slice(10)), 50);
    });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.data).id, 'c2');
  });

  test('Expect: 100-continue', async () => {
    // curl waits for the 100 before it sends the body
    const r = await curl(['-v', '-H', 'Expect: 100-continue', '-H', 'Content-Type: application/json',
      '--expect100-timeout', '10', url, '-d', JSON.stringify(rpc('eth_chainId', 'e'))]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /< HTTP\/1\.1 100 Continue/);
    assert.deepEqual(JSON.parse(r.stdout), { jsonrpc: '2.0', id: 'e', result: '0x7a69' });
    // raw: the 100 comes after the head and before the final answer
    const c = await rawConn(unix);
    const body = JSON.stringify(rpc('eth_chainId', 'e2'));
    await c.send(`POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    await lib.waitFor(() => c.interim.length === 1, { timeout: 5000, message: '100 Continue' });
    assert.equal(c.interim[0].status, 100);
    await c.send(body);
    const [fin] = await c.next(1);
    assert.equal(JSON.parse(fin.body).id, 'e2');
    c.destroy();
    // a body too large: 413 at once, without a 100
    const c2 = await rawConn(tcp);
    await c2.send(`POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${MAX_REQUEST_BYTES + 1}\r\n\r\n`);
    const [big] = await c2.next(1);
    assert.equal(big.status, 413);
    assert.equal(c2.interim.length, 0);
    await c2.closed();
  });

  test('413 over max_request_bytes, then the connection closes', async () => {
    const dir = lib.tmpDir('http-');
    const file = path.join(dir, 'big.json');
    fs.writeFileSync(file, JSON.stringify({ ...rpc('eth_chainId', 1), pad: 'x'.repeat(MAX_REQUEST_BYTES) }));
    const r = await curl(['--unix-socket', pool.socket, '-o', '/dev/null', '-w', '%{http_code}', 'http://localhost/',
      '-H', 'Content-Type: application/json', '--data-binary', `@${file}`]);
    assert.equal(r.stdout, '413', r.stderr);
    const r2 = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', 'Expect: 100-continue', url,
      '--data-binary', `@${file}`]);
    assert.equal(r2.stdout, '413', r2.stderr);
    // chunked past the limit
    const part = 'x'.repeat(1000);
    let text = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (let i = 0; i < 5; i++) text += `${part.length.toString(16)}\r\n${part}\r\n`;
    text += '0\r\n\r\n';
    const [c] = await exchange(tcp, text, { close: true });
    assert.equal(c.status, 413);
    assert.equal(c.headers.connection, 'close');
  });

  test('400: request smuggling and malformed requests close the connection', async () => {
    const cases = [
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n{}',
      'GET /health HTTP/7.0\r\n\r\n',
      'POST / HTTP/1.1\r\nBad header line\r\n\r\n',
    ];
    for (const t of [tcp, unix]) {
      for (const text of cases) {
        const [r] = await exchange(t, text, { close: true });
        assert.equal(r.status, 400, JSON.stringify(text));
        assert.equal(r.headers.connection, 'close');
      }
    }
    // after a good request on the same connection: the good one is answered first
    const rs = await exchange(tcp, rawPost(JSON.stringify(rpc('eth_chainId', 9))) +
      'POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', { n: 2, close: true });
    assert.equal(JSON.parse(rs[0].body).id, 9);
    assert.equal(rs[1].status, 400);
  });

  test('431 for oversized headers, 405 and 404', async () => {
    const [big] = await exchange(tcp, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`,
      { close: true });
    assert.equal(big.status, 431);
    const rs = await exchange(unix, 'GET / HTTP/1.1\r\nHost: x\r\n\r\nPUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n' +
      'DELETE /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n' +
      'GET /health HTTP/1.1\r\n\r\n', { n: 6 });
    assert.deepEqual(rs.map((r) => r.status), [405, 405, 405, 404, 200, 200]);
    assert.equal(rs[0].headers.allow, 'POST, OPTIONS');
    assert.equal(rs[1].headers.allow, 'POST, OPTIONS');
    assert.equal(rs[2].headers.allow, 'GET, HEAD, OPTIONS');
    assert.match(rs[4].headers.allow, /POST/);
    assert.equal(JSON.parse(rs[5].body).status, 'ok'); // still open after all of them
  });

  test('a body that is not one JSON value: 200 with -32700, connection stays open', async () => {
    const c = await rawConn(tcp);
    for (const bad of ['{"jsonrpc":', 'not json', '{}{}', '']) {
      await c.send(rawPost(bad));
      const [r] = await c.next(1);
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /application\/json/);
      const v = JSON.parse(r.body);
      assert.equal(v.error.code, -32700);
      assert.match(v.error.message, /^Parse error/);
    }
    await c.send(rawPost('42'));
    const [inv] = await c.next(1);
    assert.equal(JSON.parse(inv.body).error.code, -32600);
    await c.send(rawPost(` ${JSON.stringify(rpc('eth_chainId', 'ok'))}\n`));
    const [ok] = await c.next(1);
    assert.deepEqual(JSON.parse(ok.body), { jsonrpc: '2.0', id: 'ok', result: '0x7a69' });
    assert.equal(c.isClosed(), false);
    c.destroy();
  });

  test('HTTP/1.0 closes after the answer unless it asks for keep-alive', async () => {
    const body = JSON.stringify(rpc('eth_chainId', 10));
    const [r] = await exchange(tcp, `POST / HTTP/1.0\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { close: true });
    assert.equal(r.headers.connection, 'close');
    assert.equal(JSON.parse(r.body).id, 10);
    const c = await rawConn(tcp);
    await c.send(`POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const [k] = await c.next(1);
    assert.equal(k.headers.connection, 'keep-alive');
    await c.send('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n');
    const [h] = await c.next(1);
    assert.equal(h.status, 200);
    assert.equal(h.headers.connection, 'close');
    await c.closed();
  });

  test('IPC framing still works on the same socket', async () => {
    const c = await lib.ipcClient(pool.socket);
    const r = await c.call(rpc('eth_chainId', 'ipc'));
    assert.equal(r.result, '0x7a69');
    c.destroy();
  });

  test('ethers JsonRpcProvider over http_listen', async () => {
    const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: null });
    try {
      const n = await provider.getBlockNumber();
      assert.equal(typeof n, 'number');
      assert.ok(n >= 0);
      const net0 = await provider.getNetwork();
      assert.equal(net0.chainId, 31337n);
      const bal = await provider.getBalance(ANVIL_ACCOUNT0);
      assert.equal(bal, ethers.parseEther('10000'));
      // several calls at once: ethers batches them into one POST
      const all = await Promise.all([provider.getBlockNumber(), provider.getBalance(ANVIL_ACCOUNT0),
        provider.getTransactionCount(ANVIL_ACCOUNT0)]);
      assert.equal(all[1], bal);
    } finally {
      provider.destroy();
    }
  });
});

describe('HTTP across a reload', () => {
  test('keep-alive HTTP clients survive a reload, a half-sent request included', async () => {
    const node = await lib.startAnvil();
    let pool;
    let port;
    for (let attempt = 0; attempt < 3 && !pool; attempt++) {
      port = await lib.freePort();
      pool = await lib.startPool({
        endpoints: [node.url],
        workers: 2,
        settings: { min_connections: 0, health_check_interval_ms: 60000 },
        server: { http_listen: `127.0.0.1:${port}` },
      }).catch(() => null);
    }
    assert.ok(pool, 'pool started');
    try {
      const tcpC = await rawConn({ port });
      const unixC = await rawConn({ socketPath: pool.socket });
      for (const [i, c] of [tcpC, unixC].entries()) {
        await c.send(rawPost(JSON.stringify(rpc('eth_chainId', `before-${i}`))));
        assert.equal(JSON.parse((await c.next(1))[0].body).id, `before-${i}`);
      }
      // the TCP client is in the middle of a request when the reload comes
      const body = JSON.stringify(rpc('eth_chainId', 'straddle'));
      await tcpC.send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
      const from = pool.log.length;
      const gen = await pool.ctl('reload');
      assert.equal(gen.ok, true, JSON.stringify(gen));
      await pool.waitLog(/msg="worker retiring: handing clients over"/, { from });
      await tcpC.send(body.slice(10));
      assert.equal(JSON.parse((await tcpC.next(1))[0].body).id, 'straddle');
      // both old workers go once their clients are handed over
      await lib.waitFor(() => pool.log.slice(from).filter((l) => /msg="worker stopped"/.test(l)).length >= 2,
        { timeout: 15000, message: 'old workers stopped' });
      for (const [i, c] of [tcpC, unixC].entries()) {
        await c.send(rawPost(JSON.stringify(rpc('eth_chainId', `after-${i}`))) +
          'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
        const rs = await c.next(2);
        assert.equal(JSON.parse(rs[0].body).id, `after-${i}`);
        assert.equal(rs[1].status, 200);
        assert.equal(c.isClosed(), false);
        c.destroy();
      }
    } finally {
      assert.equal(await pool.stop(), 0);
      await node.stop();
    }
    lib.assertNoErrors(pool);
  });
});
