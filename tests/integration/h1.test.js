// h1.test.js - the native HTTP/1.1 upstream client (src/worker/transport_h1.c), which
// serves every http:// endpoint, end to end through rpcpoold: every mode of
// the fault upstream (tests/upstream/fault.js) and what the attempt's error
// says; keep-alive reuse (connections_total at the upstream stays at the
// pool's size over 500 requests); idle connections closing after
// idle_timeout_ms (rpcpoolstat -j) while min_connections stay warm; a
// scripted raw upstream for the framings fault.js does not produce
// (chunked, HTTP/1.0 read-until-close, 1xx, Connection: close, a short
// Content-Length) and for a keep-alive connection the server drops just as
// it is reused; and anvil with real calls and a transaction.
'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const lib = require('./lib.js');
const { figure, shmStat: stat, endpointStat } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
// No health probing during a test, no breaker opening, no retries: what an
// attempt met comes back in the -32603 data.
const QUIET = {
  health_check_interval_ms: 600000,
  rate_limit: NO_LIMIT,
  circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 3 },
  retries: 0,
  min_connections: 0,
};
const ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const TX = '0x02f86b827a6980843b9aca00843b9aca0082520894000000000000000000000000000000000000dead80' +
  '80c001a0' + '11'.repeat(32) + 'a0' + '22'.repeat(32);

const req = (method, params = []) => ({ jsonrpc: '2.0', method, params });

// Start a pool over the endpoints ({name, url}) and wait for the prober's
// first round to publish them up. Stopped when T ends.
async function startPool(t, endpoints, opts = {}) {
  const pool = await lib.startPool({
    workers: 1,
    ...opts,
    settings: { ...QUIET, ...(opts.settings || {}) },
    endpoints,
  });
  t.after(async () => {
    await pool.stop().catch(() => {});
  });
  await lib.waitFor(async () => {
    const eps = (await stat(pool)).endpoints;
    return endpoints.every((x) => {
      const e = eps.find((y) => y.name === x.name);
      return e && e.state === 'up' && e.head_block >= (opts.minBlock !== undefined ? opts.minBlock : 1);
    });
  }, { timeout: 15000, message: "the prober's first round" });
  return pool;
}

async function finish(pool, allow = []) {
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool, allow);
}

// What the one attempt of a failed call met (retries = 0).
function attemptError(r) {
  assert.ok(r.error, `expected an error, got ${JSON.stringify(r)}`);
  assert.equal(r.error.code, -32603, JSON.stringify(r.error));
  assert.ok(Array.isArray(r.error.data) && r.error.data.length >= 1, JSON.stringify(r.error));
  return r.error.data[r.error.data.length - 1].error;
}

describe('native HTTP/1.1 client against fault.js', () => {
  test('ok: 500 requests reuse keep-alive connections (connections_total stays at the pool size)',
    async (t) => {
      const f = await lib.startFault({});
      t.after(() => f.stop());
      const pool = await startPool(t, [{ name: 'f', url: f.url }],
        { workers: 2, settings: { max_connections: 4 } });
      await f.resetCounters();
      const clients = await Promise.all(Array.from({ length: 8 }, () => lib.ipcClient(pool.socket)));
      let ok = 0;
      const bad = [];
      let next = 0;
      await Promise.all(clients.map(async (c) => {
        while (next < 500) {
          next++;
          const r = await c.call(req('net_version'));
          if (r.result === '31337') ok++;
          else bad.push(JSON.stringify(r));
        }
      }));
      for (const c of clients) c.destroy();
      assert.deepEqual(bad, []);
      assert.equal(ok, 500);
      const st = await f.state();
      figure(`500 requests through 8 clients, 2 workers, max_connections 4: ` +
        `${st.connections_total} upstream connections opened`);
      assert.equal(st.by_method.net_version, 500);
      assert.ok(st.connections_total >= 1 && st.connections_total <= 4,
        `connections_total ${st.connections_total} should stay within max_connections`);
      // the shm counts agree: no more open than the host-wide cap, none active now
      const e = await endpointStat(pool, 'f');
      assert.equal(e.connections.active, 0);
      assert.ok(e.connections.idle >= 1 && e.connections.idle <= 4, JSON.stringify(e.connections));
      await finish(pool);
    });

  test('every fault mode ends as documented, with a short reason in the -32603 data', async (t) => {
    const f = await lib.startFault({});
    t.after(() => f.stop());
    const pool = await startPool(t, [{ name: 'f', url: f.url }], {
      settings: { attempt_timeout_ms: 1000, request_timeout_ms: 5000 },
      server: { max_response_bytes: 100000 },
    });
    const c = await lib.ipcClient(pool.socket);
    t.after(() => c.destroy());
    const call = (m = 'net_version', params = []) => c.call(req(m, params), { timeout: 10000 });
    // a warm keep-alive connection first: the faults below meet a reused one
    assert.equal((await call()).result, '31337');

    await f.setMode('delay', { delay_ms: 300 });
    assert.equal((await call()).result, '31337');

    await f.setMode('drip', { drip_ms: 2 });
    assert.equal((await call()).result, '31337');

    await f.setMode('big', { big_bytes: 50000 });
    let r = await call();
    assert.equal(typeof r.result, 'string');
    assert.equal(r.result.length, 50000);

    await f.setMode('big', { big_bytes: 200000 });
    assert.equal(attemptError(await call()), 'response larger than max_response_bytes');

    await f.setMode('http500');
    assert.equal(attemptError(await call()), 'HTTP 500');

    await f.setMode('garbage');
    assert.equal(attemptError(await call()), 'HTTP 200: not a JSON-RPC response');

    await f.setMode('truncated');
    assert.equal(attemptError(await call()), 'closed before the response was complete');

    await f.setMode('ok');
    assert.equal((await call()).result, '31337');
    await f.setMode('reset');
    const before = (await f.state()).by_method;
    assert.equal(attemptError(await call()), 'connection reset');
    // a state-changing call on a reused connection that is reset: sent once, never twice
    assert.equal((await f.setMode('ok')).mode, 'ok');
    assert.equal((await call()).result, '31337');
    await f.setMode('reset');
    assert.equal(attemptError(await call('eth_sendRawTransaction', [TX])), 'connection reset');
    const after = (await f.state()).by_method;
    assert.equal((after.eth_sendRawTransaction || 0) - (before.eth_sendRawTransaction || 0), 1,
      'eth_sendRawTransaction reached the endpoint exactly once');

    assert.equal((await f.setMode('ok')).mode, 'ok');
    assert.equal((await call()).result, '31337'); // one kept connection again
    await f.setMode('hang');
    const open0 = (await f.state()).connections_open;
    const t0 = Date.now();
    const hung = call();
    await lib.waitFor(async () => (await endpointStat(pool, 'f')).connections.active === 1,
      { timeout: 900, interval: 20, message: 'the hanging request on a connection' });
    assert.equal(attemptError(await hung), 'timeout');
    const ms = Date.now() - t0;
    assert.ok(ms >= 900 && ms < 3000, `attempt timeout after ${ms} ms`);
    // the hung connection is closed, not kept (what is left is the prober's
    // connection, counted like the workers' ones: issue 14)
    await lib.waitFor(async () => (await f.state()).connections_open === open0 - 1,
      { timeout: 5000, message: 'the hung connection closed at the upstream' });
    assert.deepEqual((await endpointStat(pool, 'f')).connections, { active: 0, idle: open0 - 1 });

    await f.setMode('429', { retry_after: 2 });
    assert.equal(attemptError(await call()), 'HTTP 429');
    await f.setMode('ok');
    // Retry-After holds the only endpoint back: nothing to route to
    r = await call();
    assert.equal(r.error && r.error.code, -32002, JSON.stringify(r));
    await lib.waitFor(async () => (await call()).result === '31337',
      { timeout: 6000, interval: 200, message: 'the endpoint back after Retry-After' });

    // the upstream goes away: idle connections close with it, new ones are refused
    await f.stop();
    await lib.waitFor(async () => (await endpointStat(pool, 'f')).connections.idle === 0,
      { timeout: 5000, message: 'idle connections closed with the server' });
    assert.equal(attemptError(await call()), 'connect failed: connection refused');
    c.destroy();
    await finish(pool);
  });

  test('idle connections close idle_timeout_ms after their last use; min_connections stay warm',
    async (t) => {
      const IDLE = 1500;
      const f = await lib.startFault({});
      t.after(() => f.stop());
      // max_connections 7: the worker's 6 and the prober's one
      const pool = await startPool(t, [{ name: 'f', url: f.url }], {
        settings: { max_connections: 7, min_connections: 2, idle_timeout_ms: IDLE },
      });
      // the prober's connection of its first round is trimmed too
      await lib.waitFor(async () => (await f.state()).connections_open === 2,
        { timeout: IDLE + 4000, interval: 100, message: "the prober's idle connection closed" });
      await f.setMode('delay', { delay_ms: 300 });
      const clients = await Promise.all(Array.from({ length: 6 }, () => lib.ipcClient(pool.socket)));
      const rs = await Promise.all(clients.map((c) => c.call(req('net_version'))));
      for (const c of clients) c.destroy();
      const done = Date.now();
      assert.ok(rs.every((r) => r.result === '31337'), JSON.stringify(rs));
      await f.setMode('ok');
      let e = await endpointStat(pool, 'f');
      assert.equal(e.connections.active, 0);
      assert.equal(e.connections.idle, 6, JSON.stringify(e.connections));
      // not before idle_timeout_ms
      if (Date.now() - done < IDLE - 500) {
        e = await endpointStat(pool, 'f');
        assert.equal(e.connections.idle, 6, 'closed too early');
      }
      // then down to the warm minimum (refreshed by warm-ups, so it stays)
      await lib.waitFor(async () => (await endpointStat(pool, 'f')).connections.idle === 2,
        { timeout: IDLE + 4000, interval: 100, message: 'idle connections beyond the minimum closed' });
      const ms = Date.now() - done;
      figure(`6 idle connections down to min_connections 2 after ${ms} ms (idle_timeout_ms ${IDLE})`);
      assert.ok(ms >= IDLE - 100, `closed after ${ms} ms, before idle_timeout_ms`);
      await new Promise((r) => setTimeout(r, IDLE * 2));
      e = await endpointStat(pool, 'f');
      assert.equal(e.connections.idle, 2, `the warm minimum stays: ${JSON.stringify(e.connections)}`);
      await finish(pool);
    });
});

/* ------------------------------------------------------------------ */
/* a scripted raw upstream                                             */
/* ------------------------------------------------------------------ */

// A loopback HTTP/1.1 server written on net: each request (read whole by
// Content-Length) is answered by SCRIPT(ctx) -> {raw, close} where ctx has
// {call (parsed JSON body), nth (requests on this connection, from 1), id}.
// Counts connections and requests per method.
function rawUpstream(script) {
  const st = { connections: 0, byMethod: {} };
  const socks = new Set();
  const srv = net.createServer((sock) => {
    st.connections++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    let buf = Buffer.alloc(0);
    let nth = 0;
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        nth++;
        let call;
        try {
          call = JSON.parse(body);
        } catch {
          call = {};
        }
        st.byMethod[call.method] = (st.byMethod[call.method] || 0) + 1;
        const a = script({ call, nth, id: JSON.stringify(call.id === undefined ? null : call.id), head });
        if (a.drop) {
          sock.end();
          return;
        }
        sock.write(a.raw);
        if (a.close) {
          sock.end();
          return;
        }
      }
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        st,
        stop: () => new Promise((r) => {
          srv.close(() => r());
          for (const s of socks) s.destroy();
        }),
        srv,
      });
    });
  });
}

// The JSON-RPC answer to CTX's call: eth_blockNumber -> "0x10", others -> method name.
function answer(ctx) {
  const result = ctx.call.method === 'eth_blockNumber' ? '0x10' : ctx.call.method;
  return `{"jsonrpc":"2.0","id":${ctx.id},"result":${JSON.stringify(result)}}`;
}

function withLength(status, body, extra = '') {
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

describe('native HTTP/1.1 client against a scripted upstream', () => {
  test('chunked, 1xx, HTTP/1.0 until close, Connection: close, a short Content-Length', async (t) => {
    let mode = 'plain';
    const up = await rawUpstream((ctx) => {
      const body = answer(ctx);
      if (ctx.call.method === 'eth_blockNumber' || mode === 'plain') return { raw: withLength('200 OK', body) };
      if (mode === 'chunked') {
        const a = body.slice(0, 5);
        const b = body.slice(5);
        return {
          raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
            `${Buffer.byteLength(a).toString(16)}\r\n${a}\r\n${Buffer.byteLength(b).toString(16)};x=y\r\n${b}\r\n` +
            '0\r\nX-Trailer: 1\r\n\r\n',
        };
      }
      if (mode === 'continue') {
        return { raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' + withLength('200 OK', body) };
      }
      if (mode === 'http10') return { raw: `HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`, close: true };
      if (mode === 'conn-close') return { raw: withLength('200 OK', body, 'Connection: close\r\n'), close: true };
      if (mode === 'short-cl') {
        return { raw: `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body) - 3}\r\n\r\n${body}` };
      }
      throw new Error(`mode ${mode}`);
    });
    t.after(() => up.stop());
    const pool = await startPool(t, [{ name: 'raw', url: up.url + '/rpc/KEY?x=1' }]);
    const c = await lib.ipcClient(pool.socket);
    t.after(() => c.destroy());
    const call = () => c.call(req('net_version'), { timeout: 10000 });

    for (const m of ['chunked', 'continue']) {
      mode = m;
      const c0 = up.st.connections;
      for (let i = 0; i < 3; i++) assert.equal((await call()).result, 'net_version', m);
      assert.ok(up.st.connections - c0 <= 1, `${m}: the connection is kept (${up.st.connections - c0} new)`);
    }
    for (const m of ['http10', 'conn-close']) {
      mode = m;
      const c0 = up.st.connections;
      for (let i = 0; i < 3; i++) assert.equal((await call()).result, 'net_version', m);
      assert.ok(up.st.connections - c0 >= 2, `${m}: a new connection for each request`);
    }
    mode = 'short-cl';
    assert.equal(attemptError(await call()), 'HTTP 200: not a JSON-RPC response');
    mode = 'plain';
    assert.equal((await call()).result, 'net_version');
    c.destroy();
    await finish(pool);
  });

  test('a reused connection the server drops: a read moves once to a fresh connection, ' +
    'a state-changing call is not sent twice', async (t) => {
    let drop = false;
    const up = await rawUpstream((ctx) => {
      if (drop && ctx.nth >= 2) return { drop: true }; // read the request, close without a byte
      return { raw: withLength('200 OK', answer(ctx)) };
    });
    t.after(() => up.stop());
    const pool = await startPool(t, [{ name: 'raw', url: up.url }]);
    const c = await lib.ipcClient(pool.socket);
    t.after(() => c.destroy());
    assert.equal((await c.call(req('net_version'))).result, 'net_version');
    drop = true;
    const c0 = up.st.connections;
    const n0 = up.st.byMethod.net_version;
    // the kept connection takes the call and is closed: the client sees nothing of it
    assert.equal((await c.call(req('net_version'))).result, 'net_version');
    assert.equal(up.st.byMethod.net_version - n0, 2, 'sent on the dropped connection, then on a fresh one');
    assert.equal(up.st.connections - c0, 1);
    // now the fresh connection is the kept one; a transaction on it is dropped too
    const t0 = up.st.byMethod.eth_sendRawTransaction || 0;
    const r = await c.call(req('eth_sendRawTransaction', [TX]));
    assert.equal(attemptError(r), 'closed before the response was complete');
    assert.equal(up.st.byMethod.eth_sendRawTransaction - t0, 1, 'never sent twice');
    c.destroy();
    await finish(pool);
  });
});

describe('native HTTP/1.1 client against anvil', () => {
  test('calls, a batch and a transaction with its receipt', async (t) => {
    const node = await lib.startAnvil();
    t.after(() => node.stop());
    const pool = await startPool(t, [{ name: 'anvil', url: node.url }], { workers: 2, minBlock: 0 });
    const c = await lib.ipcClient(pool.socket);
    t.after(() => c.destroy());
    assert.equal((await c.call(req('eth_chainId'))).result, '0x7a69');
    const b = await c.call([req('eth_blockNumber'), req('eth_getBalance', [ACCOUNT0, 'latest']), req('net_version')]);
    assert.equal(b.length, 3);
    assert.ok(b.every((x) => typeof x.result === 'string'), JSON.stringify(b));
    const h = await c.call(req('eth_sendTransaction', [{ from: ACCOUNT0, to: '0x000000000000000000000000000000000000dEaD', value: '0x1' }]));
    assert.match(h.result, /^0x[0-9a-f]{64}$/, JSON.stringify(h));
    // anvil mines it right after answering: poll for the receipt
    const rc = await lib.waitFor(async () => {
      const x = await c.call(req('eth_getTransactionReceipt', [h.result]));
      return x.result ? x : null;
    }, { timeout: 10000, interval: 50, message: 'the transaction receipt' });
    assert.equal(rc.result.status, '0x1', JSON.stringify(rc));
    // an error object of the node passes through as an answer
    const e = await c.call(req('eth_call', [{ to: ACCOUNT0, data: '0xzz' }, 'latest']));
    assert.ok(e.error && e.error.code !== -32603, JSON.stringify(e));
    const e2 = await endpointStat(pool, 'anvil');
    assert.ok(e2.requests.ok >= 5, JSON.stringify(e2.requests));
    c.destroy();
    await finish(pool);
  });
});
