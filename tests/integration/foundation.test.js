// foundation.test.js - issue 2 end to end: rpcpoold (supervisor + forked
// workers + shm) in front of three anvil nodes serves real Ethereum clients
// (cast) and raw IPC clients: pipelining, many connections, batches, the
// framing errors (-32700 and "Request too large" close the connection,
// -32600 keeps it), a SIGKILLed worker replaced while the other serves,
// graceful stop with requests in flight, stale / live socket files, and the
// command line (-t, -V, -h).
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

// anvil's first default account and its starting balance (10000 ether).
const ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const BALANCE0 = '10000000000000000000000';
const CHAIN_HEX = '0x7a69'; // 31337

// A rate limit no test here comes near (the default is 100 per minute).
const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const BASE_SETTINGS = { health_check_interval_ms: 600000, rate_limit: NO_LIMIT };

const req = (method, id, params = []) => ({ jsonrpc: '2.0', id, method, params });

// Parse every line of LINES as JSON (fails naming the bad line).
function parseLines(lines) {
  return lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`answer is not one JSON value per line: ${JSON.stringify(l.slice(0, 200))}`);
    }
    return undefined;
  });
}

// Assert ANSWERS (parsed) answer each of IDS exactly once with a result,
// checked by EXPECT(id, answer) when given.
function assertAnsweredOnce(answers, ids, expect) {
  const seen = new Map();
  for (const a of answers) {
    assert.ok(a && typeof a === 'object' && !Array.isArray(a), `not a single answer: ${JSON.stringify(a)}`);
    assert.equal(a.jsonrpc, '2.0');
    assert.ok(!a.error, `error answer: ${JSON.stringify(a)}`);
    const k = JSON.stringify(a.id);
    assert.ok(!seen.has(k), `id ${k} answered twice`);
    seen.set(k, a);
  }
  assert.equal(seen.size, ids.length, `${seen.size} distinct answers for ${ids.length} requests`);
  for (const id of ids) {
    const a = seen.get(JSON.stringify(id));
    assert.ok(a, `id ${JSON.stringify(id)} not answered`);
    if (expect) expect(id, a);
  }
}

// `rpcpoolstat -n SHM -j`, parsed.
async function stat(pool) {
  const r = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-j'], { timeout: 10000 });
  assert.equal(r.code, 0, `rpcpoolstat failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function workersOf(s) {
  return s.workers.filter((w) => w.kind === 'worker');
}

const shmPath = (pool) => path.join('/dev/shm', pool.shmName.replace(/^\//, ''));

describe('three anvil endpoints, two workers', () => {
  let nodes;
  let pool;

  before(async () => {
    nodes = await Promise.all([lib.startAnvil(), lib.startAnvil(), lib.startAnvil()]);
    pool = await lib.startPool({
      endpoints: nodes,
      workers: 2,
      settings: { ...BASE_SETTINGS, max_connections: 12 },
      server: { max_request_bytes: 4096, max_batch: 10 },
    });
  });

  after(async () => {
    if (pool) {
      assert.equal(await pool.stop(), 0);
      lib.assertNoErrors(pool);
    }
    if (nodes) await Promise.all(nodes.map((n) => n.stop()));
  });

  test('cast block-number, chain-id and balance through the socket', async () => {
    const direct = BigInt((await nodes[0].rpc('eth_blockNumber')).result);
    let r = await lib.cast(['block-number', '--rpc-url', pool.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(BigInt(r.stdout.trim()), direct);
    r = await lib.cast(['chain-id', '--rpc-url', pool.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '31337');
    r = await lib.cast(['balance', ACCOUNT0, '--rpc-url', pool.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), BALANCE0);
  });

  test('1000 pipelined requests in one write, no whitespace between them', async () => {
    const c = await lib.ipcClient(pool.socket);
    const methods = ['eth_chainId', 'net_version', 'eth_blockNumber'];
    const ids = [];
    let text = '';
    for (let i = 0; i < 1000; i++) {
      const id = i % 2 ? `p-${i}` : 100000 + i;
      ids.push(id);
      text += JSON.stringify(req(methods[i % 3], id));
    }
    await c.send(text);
    const lines = await c.readLines(1000, 60000);
    const byId = new Map(ids.map((id, i) => [JSON.stringify(id), methods[i % 3]]));
    assertAnsweredOnce(parseLines(lines), ids, (id, a) => {
      const m = byId.get(JSON.stringify(id));
      if (m === 'eth_chainId') assert.equal(a.result, CHAIN_HEX);
      else if (m === 'net_version') assert.equal(a.result, '31337');
      else assert.match(a.result, /^0x[0-9a-f]+$/);
    });
    // nothing more comes: exactly once each
    await c.send(JSON.stringify(req('eth_chainId', 'after')));
    assert.deepEqual(JSON.parse(await c.readLine(10000)), { jsonrpc: '2.0', id: 'after', result: CHAIN_HEX });
    assert.equal(c.lines.length, 1001);
    c.destroy();
  });

  test('16 connections x 200 requests, all answered once with their ids', async () => {
    const clients = await Promise.all(Array.from({ length: 16 }, () => lib.ipcClient(pool.socket)));
    await Promise.all(clients.map(async (c, k) => {
      const ids = Array.from({ length: 200 }, (_, i) => `c${k}-${i}`);
      await c.send(ids.map((id) => JSON.stringify(req('eth_chainId', id))).join(i2ws(k)));
      const lines = await c.readLines(200, 60000);
      assertAnsweredOnce(parseLines(lines), ids, (_id, a) => assert.equal(a.result, CHAIN_HEX));
    }));
    // a little more after the load on each: nothing extra was queued
    for (const c of clients) {
      const r = await c.call(req('net_version', undefined));
      assert.equal(r.result, '31337');
      assert.equal(c.lines.length, 201);
      c.destroy();
    }
    const s = await stat(pool);
    assert.equal(workersOf(s).length, 2);
    assert.ok(s.client_requests.ok >= 3200, `client_requests ${JSON.stringify(s.client_requests)}`);
  });

  test('a batch with valid, invalid and notification members gets the right array', async () => {
    const c = await lib.ipcClient(pool.socket);
    const batch = '[' + [
      JSON.stringify(req('eth_chainId', 'b1')),
      '42',
      JSON.stringify({ jsonrpc: '2.0', method: 'eth_blockNumber', params: [] }), // notification
      JSON.stringify({ jsonrpc: '2.0', id: 'b4' }), // no method
      JSON.stringify(req('net_version', 'b5')),
      JSON.stringify({ jsonrpc: '1.0', id: 'b6', method: 'eth_chainId' }),
    ].join(',') + ']';
    await c.send(batch);
    const arr = JSON.parse(await c.readLine(15000));
    assert.ok(Array.isArray(arr), `not an array: ${JSON.stringify(arr)}`);
    assert.equal(arr.length, 5, JSON.stringify(arr));
    const byId = new Map();
    const nullIds = [];
    for (const a of arr) {
      assert.equal(a.jsonrpc, '2.0');
      if (a.id === null) nullIds.push(a);
      else byId.set(a.id, a);
    }
    assert.equal(byId.get('b1').result, CHAIN_HEX);
    assert.equal(byId.get('b5').result, '31337');
    for (const k of ['b4', 'b6']) {
      assert.equal(byId.get(k).error.code, -32600, JSON.stringify(byId.get(k)));
      assert.match(byId.get(k).error.message, /^Invalid Request/);
    }
    assert.equal(nullIds.length, 1, 'the scalar member is answered with id null');
    assert.equal(nullIds[0].error.code, -32600);

    // notifications alone (single and in a batch) are never answered
    await c.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_chainId', params: [] }));
    await c.send(JSON.stringify([{ jsonrpc: '2.0', method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', method: 'net_version', params: [] }]));
    await c.send(JSON.stringify(req('eth_chainId', 'last')));
    assert.deepEqual(JSON.parse(await c.readLine(15000)), { jsonrpc: '2.0', id: 'last', result: CHAIN_HEX });
    assert.equal(c.lines.length, 2, `extra lines: ${JSON.stringify(c.lines)}`);
    c.destroy();
  });

  test('-32600 cases answer and keep the connection open', async () => {
    const c = await lib.ipcClient(pool.socket);
    const cases = [
      ['42\n', null],
      ['"a string"', null],
      ['{"jsonrpc":"2.0","id":7}', 7],
      ['{"jsonrpc":"1.0","id":8,"method":"eth_chainId","params":[]}', 8],
      ['{"id":9,"method":"eth_chainId","params":[]}', 9],
      ['{"jsonrpc":"2.0","id":10,"method":5}', 10],
      ['[]', null],
      [JSON.stringify(Array.from({ length: 11 }, (_, i) => req('eth_chainId', 900 + i))), null], // max_batch 10
    ];
    for (const [text, id] of cases) {
      await c.send(text);
      const a = JSON.parse(await c.readLine(10000));
      assert.equal(a.jsonrpc, '2.0');
      assert.equal(a.id, id, `${text.slice(0, 60)} -> ${JSON.stringify(a)}`);
      assert.equal(a.error.code, -32600, `${text.slice(0, 60)} -> ${JSON.stringify(a)}`);
      assert.match(a.error.message, /^Invalid Request/);
      assert.ok(!c.isClosed(), `closed after ${text.slice(0, 60)}`);
    }
    // a batch of exactly max_batch is fine
    const ten = Array.from({ length: 10 }, (_, i) => req('eth_chainId', 800 + i));
    const arr = await c.call(ten);
    assert.equal(arr.length, 10);
    assert.ok(arr.every((a) => a.result === CHAIN_HEX));
    const r = await c.call(req('eth_chainId', 'still-open'));
    assert.equal(r.result, CHAIN_HEX);
    c.destroy();
  });

  test('-32700 on garbage answers earlier requests, then closes the connection', async () => {
    const c = await lib.ipcClient(pool.socket);
    await c.send(JSON.stringify(req('eth_chainId', 'g1')) + JSON.stringify(req('net_version', 'g2')) +
      ' }nonsense' + JSON.stringify(req('eth_chainId', 'never')));
    const end = await lib.withTimeout(c.ended, 15000, 'connection close after -32700');
    assert.equal(end.rest, '', 'a partial line before the close');
    const answers = parseLines(c.lines);
    assert.equal(answers.length, 3, JSON.stringify(c.lines));
    const perr = answers.find((a) => a.error);
    assert.equal(perr.id, null);
    assert.equal(perr.error.code, -32700);
    assert.match(perr.error.message, /^Parse error/);
    assertAnsweredOnce(answers.filter((a) => !a.error), ['g1', 'g2']);
    // the pool goes on serving others
    const d = await lib.ipcClient(pool.socket);
    assert.equal((await d.call(req('eth_chainId'))).result, CHAIN_HEX);
    d.destroy();
  });

  test('"Request too large" answers and closes; a large one under the limit passes', async () => {
    const c = await lib.ipcClient(pool.socket);
    // 3000 bytes of whitespace inside the value: under max_request_bytes 4096
    const under = `{"jsonrpc":"2.0","id":"u1","method":"eth_chainId","params":[${' '.repeat(3000)}]}`;
    await c.send(under);
    assert.deepEqual(JSON.parse(await c.readLine(10000)), { jsonrpc: '2.0', id: 'u1', result: CHAIN_HEX });
    const over = `{"jsonrpc":"2.0","id":"o1","method":"eth_chainId","params":[${' '.repeat(5000)}]}`;
    await c.send(JSON.stringify(req('net_version', 'before')) + over);
    const end = await lib.withTimeout(c.ended, 15000, 'connection close after Request too large');
    assert.equal(end.rest, '');
    const answers = parseLines(c.lines.slice(1));
    assert.equal(answers.length, 2, JSON.stringify(c.lines));
    const big = answers.find((a) => a.error);
    assert.equal(big.error.code, -32600);
    assert.match(big.error.message, /^Request too large/);
    assert.deepEqual(answers.find((a) => !a.error), { jsonrpc: '2.0', id: 'before', result: '31337' });
  });
});

// The state letter of process PID from /proc (R, S, T, ...).
function procState(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
}

// Joiner for connection K: alternate no whitespace, a newline, and spaces.
function i2ws(k) {
  return ['', '\n', ' \r\n\t '][k % 3];
}

describe('worker replacement', () => {
  test('a SIGKILLed worker is replaced while the other keeps serving', async () => {
    const nodes = await Promise.all([lib.startAnvil(), lib.startAnvil(), lib.startAnvil()]);
    const pool = await lib.startPool({ endpoints: nodes, workers: 2, settings: BASE_SETTINGS });
    // Open connections one by one and learn each one's worker from the
    // per-worker client counts in shm (one call first: then it is accepted).
    // With EPOLLEXCLUSIVE an idle host hands every new connection to the
    // same waiting worker, so each worker in turn is stopped (SIGSTOP takes
    // it out of epoll_wait) while four connections open: the other one
    // takes them, 4 and 4.
    const conns = []; // {c, slot, ok, okAfter, errors}
    const clientsBy = async () => {
      const m = new Map();
      for (const w of workersOf(await stat(pool))) m.set(w.slot, w.clients);
      return m;
    };
    const open = async () => {
      const c = await lib.ipcClient(pool.socket);
      assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
      // the worker holding one client more than the ones already mapped to it
      let slot;
      let last;
      await lib.waitFor(async () => {
        last = await clientsBy();
        const extra = [...last].filter(([sl, n]) => n !== conns.filter((x) => x.slot === sl).length);
        if (extra.length === 1 && extra[0][1] === conns.filter((x) => x.slot === extra[0][0]).length + 1) {
          slot = extra[0][0];
        }
        return slot !== undefined;
      }, { timeout: 10000, message: 'a worker counting the new client' }).catch((e) => {
        throw new Error(`${e.message}: clients ${JSON.stringify([...last])}, mapped ` +
          JSON.stringify(conns.map((x) => x.slot)));
      });
      conns.push({ c, slot, ok: 0, okAfter: 0, errors: [] });
    };
    // every worker running (a pid of 0 must never reach kill(2): it would
    // signal this test's own process group)
    const ws = await lib.waitFor(async () => {
      const w = workersOf(await stat(pool));
      return w.length === 2 && w.every((x) => x.state === 'running' && x.pid > 1) ? w : null;
    }, { timeout: 15000, message: 'two workers running' });
    for (const [pause, serve] of [[ws[1], ws[0]], [ws[0], ws[1]]]) {
      process.kill(pause.pid, 'SIGSTOP');
      try {
        await lib.waitFor(() => procState(pause.pid) === 'T', { timeout: 5000, interval: 5,
          message: `worker ${pause.pid} stopped` });
        for (let i = 0; i < 4; i++) await open();
      } finally {
        process.kill(pause.pid, 'SIGCONT');
      }
      assert.equal(conns.slice(-4).filter((x) => x.slot === serve.slot).length, 4,
        'connections went to the worker that was not stopped');
    }
    const bySlot = (s) => conns.filter((x) => x.slot === s);
    const slots = [...new Set(conns.map((x) => x.slot))];
    assert.equal(slots.length, 2, `both workers own connections (${conns.length} opened)`);

    const before = workersOf(await stat(pool));
    const victim = before.find((w) => w.slot === conns[0].slot);
    assert.ok(victim.pid > 1);
    const survivorSlot = slots.find((s) => s !== victim.slot);

    // Continuous load on every connection.
    let stop = false;
    let killed = false;
    const loops = conns.map(async (x) => {
      for (let i = 0; !stop && i < 100000; i++) {
        try {
          const r = await x.c.call(req(i % 2 ? 'eth_chainId' : 'eth_blockNumber'), { timeout: 10000 });
          if (r.error) x.errors.push(JSON.stringify(r.error));
          else {
            x.ok++;
            if (killed) x.okAfter++;
          }
        } catch (e) {
          x.errors.push(e.message);
          if (x.c.isClosed()) return;
        }
      }
    });
    await lib.waitFor(() => conns.every((x) => x.ok >= 5), { timeout: 20000, message: 'load running' });
    process.kill(victim.pid, 'SIGKILL');
    killed = true;
    const after = await lib.waitFor(async () => {
      const w = workersOf(await stat(pool)).find((x) => x.slot === victim.slot);
      return w && w.pid !== victim.pid && w.state === 'running' ? w : null;
    }, { timeout: 15000, message: 'a replacement worker running' });
    assert.equal(after.restarts, victim.restarts + 1);
    // the survivor served throughout: its connections keep getting answers
    const mark = new Map(bySlot(survivorSlot).map((x) => [x, x.okAfter]));
    await lib.waitFor(() => [...mark].every(([x, n]) => x.okAfter >= n + 20),
      { timeout: 20000, message: 'surviving connections served after the replacement' });
    // new connections are served (by either worker, the new one included)
    const fresh = await Promise.all(Array.from({ length: 8 }, () => lib.ipcClient(pool.socket)));
    for (const c of fresh) {
      for (let i = 0; i < 5; i++) assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    }
    stop = true;
    await Promise.all(loops);
    for (const c of fresh) c.destroy();

    const survivors = bySlot(survivorSlot);
    const dropped = bySlot(victim.slot);
    const survivorErrors = survivors.reduce((n, x) => n + x.errors.length, 0);
    const report = conns.map((x) => `slot ${x.slot}: ok ${x.ok} after-kill ${x.okAfter} ` +
      `errors ${x.errors.length} closed ${x.c.isClosed()}`).join('\n');
    assert.equal(survivorErrors, 0, `errors on the surviving worker's connections:\n${report}\n` +
      survivors.flatMap((x) => x.errors).slice(0, 5).join('\n'));
    assert.ok(survivors.every((x) => !x.c.isClosed()), report);
    assert.ok(dropped.every((x) => x.c.isClosed()), `killed worker's connections closed:\n${report}`);
    for (const x of dropped) assert.ok(x.errors.length <= 1, `at most the one call in flight failed: ${report}`);
    process.stderr.write(`# worker kill: ${survivors.length} surviving connections, 0 errors; ` +
      `${dropped.length} dropped; restarts ${victim.restarts} -> ${after.restarts}\n`);
    for (const x of conns) x.c.destroy();

    assert.equal(await pool.stop(), 0);
    lib.assertNoErrors(pool);
    await lib.waitFor(() => pool.log.some((l) => /level=warn .*msg="worker died"/.test(l)),
      { timeout: 1000, message: 'the death logged as a warning' });
    await Promise.all(nodes.map((n) => n.stop()));
  });
});

describe('graceful stop and the socket file', () => {
  test('SIGTERM with requests in flight: every one answered, exit 0, socket and shm gone', async () => {
    const slow = await lib.startFault({ mode: 'delay', delay_ms: 300 });
    const pool = await lib.startPool({
      endpoints: [slow],
      workers: 2,
      settings: { ...BASE_SETTINGS, max_connections: 40, retries: 0 },
    });
    assert.ok(fs.existsSync(shmPath(pool)), 'the shm segment exists while running');
    const clients = await Promise.all(Array.from({ length: 4 }, () => lib.ipcClient(pool.socket)));
    const calls = [];
    for (const c of clients) {
      for (let i = 0; i < 10; i++) calls.push(c.call(req('net_version'), { timeout: 20000 }));
    }
    // all 40 reached the upstream and wait there for 300 ms
    await lib.waitFor(async () => ((await slow.state()).by_method.net_version || 0) >= 40,
      { timeout: 10000, interval: 10, message: 'requests in flight at the upstream' });
    const t0 = Date.now();
    pool.kill('SIGTERM');
    const answers = await Promise.allSettled(calls);
    const failed = answers.filter((a) => a.status !== 'fulfilled' || a.value.result !== '31337');
    assert.equal(failed.length, 0, JSON.stringify(failed.slice(0, 3)));
    const code = await pool.stop();
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 10000);
    assert.ok(!fs.existsSync(pool.socket), 'socket file removed');
    assert.ok(!fs.existsSync(pool.controlSocket), 'control socket removed');
    assert.ok(!fs.existsSync(shmPath(pool)), 'shm segment removed');
    for (const c of clients) c.destroy();
    lib.assertNoErrors(pool);
    await slow.stop();
  });

  test('a stale socket file is replaced', async () => {
    const node = await lib.startAnvil();
    const dir = lib.tmpDir('rpcpool-stale-');
    const sock = path.join(dir, 'pool.ipc');
    // A process that binds the path and exits without unlinking it.
    const r = await lib.run(process.execPath, ['-e',
      `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.exit(0))`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.statSync(sock).isSocket(), 'stale socket file left behind');
    assert.equal(await lib.canConnect(sock), false);
    const pool = await lib.startPool({ dir, endpoints: [node], workers: 1, settings: BASE_SETTINGS });
    const c = await lib.ipcClient(pool.socket);
    assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    c.destroy();
    assert.equal(await pool.stop(), 0);
    lib.assertNoErrors(pool);
    await node.stop();
  });

  test('a socket a live server answers on makes a second rpcpoold exit 2', async () => {
    const node = await lib.startAnvil();
    const first = await lib.startPool({ endpoints: [node], workers: 1, settings: BASE_SETTINGS });
    const cfg = lib.writePoolConfig({ endpoints: [node], workers: 1, settings: BASE_SETTINGS,
      server: { socket: first.socket } });
    const second = lib.spawnDaemon(['-c', cfg.conf]);
    const r = await lib.withTimeout(second.exited, 15000, 'second rpcpoold exit');
    assert.equal(r.code, 2, second.log.join('\n'));
    assert.ok(second.log.some((l) => /level=error/.test(l)), 'the reason is logged');
    // the first one is untouched
    assert.ok(fs.existsSync(first.socket));
    const c = await lib.ipcClient(first.socket);
    assert.equal((await c.call(req('eth_chainId'))).result, CHAIN_HEX);
    c.destroy();
    assert.equal(await first.stop(), 0);
    lib.assertNoErrors(first);
    await node.stop();
  });
});

describe('command line', () => {
  const rpcpoold = lib.daemonBin('rpcpoold');

  test('-t prints "FILE: ok" and exits 0 for a valid file', async () => {
    const cfg = lib.writePoolConfig({ endpoints: ['http://127.0.0.1:1'], settings: BASE_SETTINGS });
    const r = await lib.run(rpcpoold, ['-t', '-c', cfg.conf]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), `${cfg.conf}: ok`);
    assert.ok(!fs.existsSync(cfg.socket), '-t starts nothing');
  });

  test('-t prints "FILE:LINE: reason" and exits 1 for a bad file', async () => {
    const dir = lib.tmpDir('rpcpool-cfg-');
    const cases = [
      // [text, line, what the reason names]
      ['name = "x";\nendpoints = ( "http://127.0.0.1:1" );\nbogus_key = 1;\n', 3, /bogus_key/],
      ['name = "x";\nendpoints = ( "http://127.0.0.1:1" );\n\nretries = "two";\n', 4, /retries/],
      ['endpoints = (\n  "http://127.0.0.1:1",\n  "http://127.0.0.1:1"\n);\n', 3, /endpoint|duplicate/i],
      ['endpoints = ( "ftp://127.0.0.1:1" );\n', 1, /url|http/i],
      ['endpoints = ( "http://127.0.0.1:1" );\nbalance = "fastest";\n', 2, /balance/],
    ];
    for (const [i, [text, line, why]] of cases.entries()) {
      const f = path.join(dir, `bad${i}.conf`);
      fs.writeFileSync(f, text);
      const r = await lib.run(rpcpoold, ['-t', '-c', f]);
      assert.equal(r.code, 1, `${text}: exit ${r.code}: ${r.stdout}${r.stderr}`);
      const out = r.stdout.trim();
      assert.ok(out.startsWith(`${f}:${line}: `), `${JSON.stringify(text)} -> ${out}`);
      assert.match(out, why);
    }
    // a file that does not exist
    const r = await lib.run(rpcpoold, ['-t', '-c', path.join(dir, 'missing.conf')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /missing\.conf/);
  });

  test('-V and -h', async () => {
    let r = await lib.run(rpcpoold, ['-V']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^rpcpoold \d+\.\d+\.\d+/);
    r = await lib.run(rpcpoold, ['-h']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: rpcpoold \[-c FILE\] \[-t\] \[-w N\] \[-V\] \[-h\]/);
    r = await lib.run(rpcpoold, ['-x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /usage:/);
  });

  test('a configuration error at start exits 1 and names the file and line', async () => {
    const dir = lib.tmpDir('rpcpool-cfg-');
    const f = path.join(dir, 'bad.conf');
    fs.writeFileSync(f, 'endpoints = ( "http://127.0.0.1:1" );\nworkers = 3;\n');
    const d = lib.spawnDaemon(['-c', f]);
    const r = await lib.withTimeout(d.exited, 15000, 'rpcpoold exit');
    assert.equal(r.code, 1);
    assert.ok(d.log.some((l) => l.includes(`${f}:2`)), d.log.join('\n'));
  });
});
