// transport.test.js - one conformance suite, run against every transport
// that serves worker requests: plain http:// and https:// (both the native
// client of src/worker/transport_h1.c; libcurl no longer serves worker requests). Each
// upstream is tests/upstream/fault.js reached by host name (localhost, so
// the worker's resolver is exercised); for https it has a CA of its own,
// made with the openssl CLI into a temporary directory, trusted through
// tls_ca_file.
//
// For each transport: calls and batches over reused keep-alive
// connections; exactly once for a state-changing call on a reused
// connection the endpoint resets after reading it; a second response
// nobody asked for (in the same read, or later on an idle connection) is
// never delivered; a batch answer that lacks a call; and calls while idle
// connections close and reopen past the resolver's refresh
// (RPCPOOL_RESOLVE_REFRESH_MS=1000; RPCPOOL_TRANSPORT_SOAK_S sets how long,
// default 8 s, 75 for the full run). For https also: a wrong-host
// and an untrusted certificate are refused with a clear error in the log,
// in the client's answer and in `status`.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib.js');
const { figure, shmStat: stat, endpointStat } = lib;

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const QUIET = {
  health_check_interval_ms: 600000,
  rate_limit: NO_LIMIT,
  circuit_breaker: { failure_threshold: 1000, recovery_timeout_ms: 1000, half_open_max_attempts: 3 },
  retries: 0,
  min_connections: 0,
};
const TX = '0x02f86b827a6980843b9aca00843b9aca0082520894000000000000000000000000000000000000dead80' +
  '80c001a0' + '11'.repeat(32) + 'a0' + '22'.repeat(32);
const SOAK_S = Number(process.env.RPCPOOL_TRANSPORT_SOAK_S || 8);

const req = (method, params = [], extra = {}) => ({ jsonrpc: '2.0', method, params, ...extra });

// Upstream connections the pool holds open to endpoint NAME.
async function openConns(pool, name) {
  const e = await endpointStat(pool, name);
  return e.connections.active + e.connections.idle;
}

let tlsFiles = null;

for (const transport of ['http', 'https']) {
  describe(`transport ${transport}`, () => {
    const https = transport === 'https';

    before(async () => {
      if (https && !tlsFiles) tlsFiles = await lib.makeTls();
    });

    // A fault upstream of this transport, reached as localhost.
    async function fault(t, opts = {}) {
      const f = await lib.startFault({ host: 'localhost', ...(https ? { tls: tlsFiles.good } : {}), ...opts });
      t.after(() => f.stop());
      return f;
    }

    // A pool over ENDPOINTS, waited for until the prober has them up.
    async function pool(t, endpoints, opts = {}) {
      const settings = { ...QUIET, ...(https ? { tls_ca_file: tlsFiles.ca } : {}), ...(opts.settings || {}) };
      const p = await lib.startPool({ workers: 1, ...opts, settings, endpoints });
      t.after(async () => {
        await p.stop().catch(() => {});
      });
      if (opts.waitUp !== false) {
        await lib.waitFor(async () => {
          const eps = (await stat(p)).endpoints;
          return endpoints.every((x) => {
            const e = eps.find((y) => y.name === x.name);
            return e && e.state === 'up';
          });
        }, { timeout: 15000, message: "the prober's first round" });
      }
      return p;
    }

    test('calls and batches over reused keep-alive connections', async (t) => {
      const f = await fault(t);
      const p = await pool(t, [{ name: 'f', url: f.url }], { settings: { max_connections: 2 } });
      await f.resetCounters();
      const c = await lib.ipcClient(p.socket);
      try {
        for (let i = 0; i < 50; i++) {
          const r = await c.call(req('net_version'));
          assert.equal(r.result, '31337', JSON.stringify(r));
        }
        const b = await c.call([req('a', [], { id: 'x' }), req('b', [], { id: 7 }), req('c')]);
        assert.deepEqual(b.map((x) => [x.id, x.result]), [['x', 'a'], [7, 'b'], [b[2].id, 'c']]);
      } finally {
        c.destroy();
      }
      const st = await f.state();
      assert.ok(st.connections_total >= 1 && st.connections_total <= 2,
        `${st.connections_total} upstream connections for 51 sequential requests`);
      assert.equal(await p.stop(), 0);
      lib.assertNoErrors(p);
    });

    test('exactly once: a state-changing call on a reused connection reset after reading it', async (t) => {
      const a = await fault(t);
      const b = await fault(t);
      const p = await pool(t, [{ name: 'a', url: a.url }, { name: 'b', url: b.url }],
        { settings: { retries: 2 } });
      const c = await lib.ipcClient(p.socket);
      let sends = 0;
      try {
        for (let round = 0; round < 8; round++) {
          await a.setMode('ok');
          await b.setMode('ok');
          // keep-alive connections to both, then both read and reset
          for (let i = 0; i < 6; i++) assert.equal((await c.call(req('net_version'))).result, '31337');
          await a.resetCounters();
          await b.resetCounters();
          await a.setMode('reset');
          await b.setMode('reset');
          const r = await c.call(req('eth_sendRawTransaction', [TX]));
          sends++;
          assert.ok(r.error, JSON.stringify(r));
          assert.equal(r.error.code, -32603, JSON.stringify(r));
          assert.match(r.error.message, /state-changing call reached the endpoint; not retried/);
          const n = ((await a.state()).by_method.eth_sendRawTransaction || 0) +
            ((await b.state()).by_method.eth_sendRawTransaction || 0);
          assert.equal(n, 1, `round ${round}: the transaction reached the endpoints ${n} times`);
          // an idempotent call is retried on the other endpoint (both reset)
          await a.resetCounters();
          await b.resetCounters();
          const q = await c.call(req('eth_call', [{}]));
          assert.ok(q.error, JSON.stringify(q));
          // (once more on a fresh connection of the first one: it was a reused one)
          assert.ok((await a.state()).by_method.eth_call >= 1 && (await b.state()).by_method.eth_call >= 1,
            'eth_call tried on both endpoints');
        }
      } finally {
        c.destroy();
      }
      figure(`${transport}: ${sends} sends on reused connections reset after the read: each reached an endpoint once`);
      await p.stop();
    });

    test('no crossed answers: a second response after the answer is never delivered', async (t) => {
      // every client counts from id 1; one connection carries every call; the
      // endpoint follows each answer with a response nobody asked for
      const f = await fault(t, { mode: 'extra' });
      const p = await pool(t, [{ name: 'f', url: f.url }], { settings: { max_connections: 1 } });
      const c1 = await lib.ipcClient(p.socket);
      const c2 = await lib.ipcClient(p.socket);
      const wrong = [];
      let right = 0;
      let errors = 0;
      const check = (r, method) => {
        if (r.result === method) right++;
        else if (r.error && r.error.code === -32603) errors++;
        else wrong.push(JSON.stringify(r));
      };
      try {
        for (let i = 0; i < 20; i++) {
          const [r1, r2] = await Promise.all([
            c1.call({ jsonrpc: '2.0', id: 1, method: 'client_one', params: [] }),
            c2.call({ jsonrpc: '2.0', id: 1, method: 'client_two', params: [] }),
          ]);
          check(r1, 'client_one');
          check(r2, 'client_two');
        }
      } finally {
        c1.destroy();
        c2.destroy();
      }
      figure(`${transport}: 40 calls on one connection that speaks out of turn: ${right} answered, ` +
        `${errors} -32603, ${wrong.length} another call's data`);
      assert.deepEqual(wrong, [], `${wrong.length} of 40 answers were another call's data`);
      // the answers to other calls are skipped on the connection: the calls' own come
      assert.ok(right >= 36, `only ${right} of 40 answered`);
      await p.stop();
    });

    test('unsolicited bytes on an idle connection close it; the next call is answered right', async (t) => {
      const f = await fault(t, { mode: 'unsolicited', delay_ms: 20 });
      const p = await pool(t, [{ name: 'f', url: f.url }], { settings: { max_connections: 1 } });
      const c = await lib.ipcClient(p.socket);
      try {
        for (let i = 0; i < 5; i++) {
          await f.resetCounters();
          const r = await c.call({ jsonrpc: '2.0', id: 1, method: `m${i}`, params: [] });
          assert.equal(r.result, `m${i}`, JSON.stringify(r));
          // the stray response arrives on the idle connection: the pool closes it
          await lib.waitFor(async () => (await openConns(p, 'f')) === 0,
            { timeout: 5000, message: 'the idle connection that spoke closed' });
        }
      } finally {
        c.destroy();
      }
      await p.stop();
    });

    test('a batch answer without an element: -32603 for that call, strangers dropped', async (t) => {
      const f = await fault(t, { mode: 'batch_missing' });
      const p = await pool(t, [{ name: 'f', url: f.url }]);
      const c = await lib.ipcClient(p.socket);
      try {
        const r = await c.call([req('a', [], { id: 1 }), req('b', [], { id: 'two' }), req('c', [], { id: 3 })]);
        assert.equal(r.length, 3, JSON.stringify(r));
        assert.deepEqual(r.map((x) => x.id), [1, 'two', 3]);
        assert.equal(r[0].result, 'a');
        assert.equal(r[1].result, 'b');
        assert.equal(r[2].error.code, -32603, JSON.stringify(r[2]));
        assert.equal(r[2].error.message, 'Upstream error');
        assert.ok(!r.some((x) => x.id === 'nobody-asked'));
      } finally {
        c.destroy();
      }
      await p.stop();
    });

    test(`calls while idle connections close and reopen past the resolver's refresh (${SOAK_S} s)`, async (t) => {
      const f = await fault(t);
      const p = await pool(t, [{ name: 'f', url: f.url }], {
        settings: { idle_timeout_ms: 200 },
        env: { RPCPOOL_RESOLVE_REFRESH_MS: '1000' },
      });
      await f.resetCounters();
      const c = await lib.ipcClient(p.socket);
      const end = Date.now() + SOAK_S * 1000;
      let calls = 0;
      let cycles = 0;
      const bad = [];
      try {
        while (Date.now() < end) {
          for (let i = 0; i < 5; i++) {
            const r = await c.call(req('net_version'));
            calls++;
            if (r.result !== '31337') bad.push(JSON.stringify(r));
          }
          cycles++;
          await lib.waitFor(async () => (await openConns(p, 'f')) === 0,
            { timeout: 5000, interval: 50, message: 'the idle connection closed' });
        }
      } finally {
        c.destroy();
      }
      assert.deepEqual(bad, []);
      const st = await f.state();
      const lookups = p.log.filter((l) => /endpoint host looked up/.test(l)).length;
      figure(`${transport}: ${calls} calls over ${SOAK_S} s, ${st.connections_total} connections opened, ` +
        `${lookups} lookups of localhost`);
      assert.ok(st.connections_total >= cycles, `${st.connections_total} connections for ${cycles} cycles`);
      assert.ok(lookups >= Math.floor(SOAK_S / 2), `${lookups} lookups in ${SOAK_S} s with a 1 s refresh`);
      assert.equal(await p.stop(), 0);
      lib.assertNoErrors(p);
    });

    if (!https) return;

    test('a wrong-host certificate is refused: error in the answer, the log and status', async (t) => {
      const f = await fault(t);
      const p = await pool(t, [{ name: 'f', url: f.url }],
        { settings: { circuit_breaker: { failure_threshold: 1, recovery_timeout_ms: 600000, half_open_max_attempts: 1 } } });
      // new connections now get a certificate for wrong.example only
      await f.setTls(tlsFiles.wrong);
      await lib.waitFor(async () => (await openConns(p, 'f')) === 0,
        { timeout: 5000, message: 'no connection open' });
      const c = await lib.ipcClient(p.socket);
      let r;
      try {
        r = await c.call(req('net_version'));
      } finally {
        c.destroy();
      }
      assert.ok(r.error, JSON.stringify(r));
      assert.equal(r.error.code, -32603);
      assert.match(JSON.stringify(r.error.data), /TLS certificate rejected: [Hh]ostname mismatch/);
      await p.waitLog(/TLS handshake with endpoint failed.*endpoint=f.*[Hh]ostname mismatch/);
      const e = (await p.ctl('status')).endpoints.find((x) => x.name === 'f');
      assert.equal(e.breaker, 'open', JSON.stringify(e));
      assert.equal((await f.state()).by_method.net_version, undefined, 'nothing was sent');
      await p.stop();
    });

    test('an untrusted certificate is refused: the endpoint is down in status, why in the log', async (t) => {
      const f = await fault(t, { tls: tlsFiles.untrusted });
      const p = await pool(t, [{ name: 'f', url: f.url }],
        { waitUp: false, settings: { health_check_interval_ms: 200 } });
      await lib.waitFor(async () => {
        const e = (await p.ctl('status')).endpoints.find((x) => x.name === 'f');
        return e && e.state === 'down';
      }, { timeout: 15000, message: 'endpoint down in status' });
      await p.waitLog(/endpoint down.*endpoint=f.*error=.*(certificate|SSL)/i);
      // and why, in status and rpcpoolstat
      const e = (await p.ctl('status')).endpoints.find((x) => x.name === 'f');
      assert.match(e.last_error || '', /certificate|SSL/i, JSON.stringify(e));
      const se = (await lib.shmStat(p)).endpoints.find((x) => x.name === 'f');
      assert.match(se.last_error || '', /certificate|SSL/i, JSON.stringify(se));
      const c = await lib.ipcClient(p.socket);
      try {
        const r = await c.call(req('net_version'));
        assert.ok(r.error, JSON.stringify(r));
      } finally {
        c.destroy();
      }
      assert.equal((await f.state()).by_method.net_version, undefined, 'nothing was sent');
      await p.stop();
    });

    test('without tls_ca_file the private CA is not trusted (verification is never off)', async (t) => {
      const f = await fault(t);
      const p = await lib.startPool({ workers: 1, settings: { ...QUIET, health_check_interval_ms: 200 },
        endpoints: [{ name: 'f', url: f.url }] });
      t.after(async () => {
        await p.stop().catch(() => {});
      });
      await lib.waitFor(async () => {
        const e = (await p.ctl('status')).endpoints.find((x) => x.name === 'f');
        return e && e.state === 'down';
      }, { timeout: 15000, message: 'endpoint down in status' });
      await p.stop();
    });
  });
}

after(() => {});
