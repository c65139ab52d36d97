// subscriptions.test.js - issue 17 end to end: eth_subscribe on the IPC
// socket (INTERFACE.md section 8 "Subscriptions"), seen only from outside.
//
// The pool's one endpoint is an anvil behind a small counting proxy (in this
// file): the proxy counts every upstream call by method, and can be switched
// "down" (it resets every request) to make an outage.
//
// - ethers IpcSocketProvider.on("block") gets every block mined, once, in
//   order.
// - A raw newHeads subscription gets headers linked by parentHash;
//   eth_unsubscribe answers true (false for an id it does not know) and
//   stops them; over HTTP (on the socket and on http_listen) eth_subscribe
//   answers -32601 naming the IPC socket.
// - A logs subscription gets the events of a contract deployed on anvil (a
//   hand-assembled one: no solc), filtered by address and topics, and an
//   ethers Contract event listener works.
// - A reorg (evm_snapshot / tx / evm_revert / longer branch) re-sends the
//   removed block's logs with "removed":true and delivers the new branch.
// - With the endpoint down for a few blocks the subscriber gets the missed
//   blocks on recovery; beyond backfill_blocks the subscription ends with an
//   error (id null, naming the subscription) and the connection closes.
// - A reload keeps subscriptions working (no gap, no duplicate).
// - 1000 subscribers cost one header fetch (and one eth_getLogs) per block
//   at the endpoint; the delivery latency is printed.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const lib = require('./lib.js');

const { figure } = lib;
const { ethers } = require(path.join(lib.ROOT, 'tests', 'node_modules', 'ethers'));

const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const TEST_MS = 120000;
const NO_CACHE = { cacheTimeout: -1, pollingInterval: 100 };

const num = (h) => Number.parseInt(h, 16);

// A counting proxy in front of TARGET (an anvil URL): {url, counts,
// reset(), setDown(bool), close()}.
function startProxy(target) {
  const counts = {};
  let down = false;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (down) {
        req.socket.destroy();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        const msg = JSON.parse(body);
        for (const c of Array.isArray(msg) ? msg : [msg]) counts[c.method] = (counts[c.method] || 0) + 1;
      } catch {
        /* counted nothing */
      }
      try {
        const r = await lib.httpRequest(target, { method: 'POST', body });
        res.writeHead(r.status, { 'Content-Type': 'application/json' });
        res.end(r.body);
      } catch {
        req.socket.destroy();
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        counts,
        reset() {
          for (const k of Object.keys(counts)) delete counts[k];
        },
        setDown(v) {
          down = v;
        },
        close() {
          server.closeAllConnections();
          return new Promise((r) => server.close(r));
        },
      });
    });
  });
}

// A tiny contract, assembled by hand: any call emits
//   LOG1 Ping(uint256 value)                 data = the calldata
//   LOG2 Pong(address indexed from, uint256) data = the calldata
const PING = ethers.id('Ping(uint256)');
const PONG = ethers.id('Pong(address,uint256)');
const ABI = ['event Ping(uint256 value)', 'event Pong(address indexed from, uint256 value)'];
function initCode() {
  const h = (s) => s.replace(/^0x/, '');
  const runtime = '36' + '6000' + '6000' + '37' + // CALLDATACOPY(0, 0, CALLDATASIZE)
    '7f' + h(PING) + '36' + '6000' + 'a1' + // LOG1(0, CALLDATASIZE, PING)
    '33' + '7f' + h(PONG) + '36' + '6000' + 'a2' + // LOG2(0, CALLDATASIZE, PONG, CALLER)
    '00';
  const len = runtime.length / 2;
  const hex1 = (n) => n.toString(16).padStart(2, '0');
  // CODECOPY(0, 11, len); RETURN(0, len)
  return '0x60' + hex1(len) + '80' + '60' + hex1(11) + '6000' + '39' + '6000' + 'f3' + runtime;
}

let anvil;
let proxy;
let pool;
let wallet;
let keeper; // a subscription held for the whole file: the follower works only while one exists

// Mine one block on anvil directly; returns its number.
async function mine() {
  await anvil.rpc('evm_mine', []);
  return num((await anvil.rpc('eth_blockNumber', [])).result);
}

async function subsStatus(p = pool) {
  const st = await p.ctl('status');
  assert.equal(st.ok, true);
  return st.subscriptions;
}

// Wait until the follower has delivered block N (so a subscription made
// now gets only later blocks).
async function followerAt(n, p = pool) {
  await lib.waitFor(async () => (await subsStatus(p)).follower.head_block >= n,
    { timeout: 20000, message: `follower at block ${n}` });
}

// Notifications of subscription ID among client C's unclaimed lines.
function notes(c, id) {
  return c.lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return null;
    }
  }).filter((v) => v && v.method === 'eth_subscription' && v.params && v.params.subscription === id);
}

async function waitNotes(c, id, n, timeout = 20000) {
  await lib.waitFor(() => notes(c, id).length >= n,
    { timeout, message: `${n} notifications for ${id} (have ${notes(c, id).length})` });
  return notes(c, id);
}

before(async () => {
  anvil = await lib.startAnvil();
  proxy = await startProxy(anvil.url);
  pool = await lib.startPool({
    endpoints: [proxy.url],
    workers: 2,
    settings: {
      rate_limit: NO_LIMIT,
      health_check_interval_ms: 200,
      circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 300, half_open_max_attempts: 1 },
      subscriptions: { poll_interval_ms: 100, max_per_connection: 100, max_total: 1100 },
    },
    server: { http_listen: `127.0.0.1:${await lib.freePort()}` },
  });
  wallet = new ethers.Wallet(KEY0, new ethers.JsonRpcProvider(anvil.url, undefined, NO_CACHE));
  keeper = await lib.ipcClient(pool.socket);
  await keeper.call({ method: 'eth_subscribe', params: ['newHeads'] });
  await followerAt(0);
});

after(async () => {
  if (keeper) keeper.destroy();
  if (pool) {
    for (const l of pool.log.filter((x) => /level=(warn|error)|follower|subscriptions ended|reorg/.test(x)).slice(-40)) {
      process.stderr.write(`# ${l}\n`);
    }
  }
  if (pool) await pool.stop();
  if (proxy) await proxy.close();
  if (anvil) await anvil.stop();
});

test('ethers IpcSocketProvider.on("block") gets every block once, in order', { timeout: TEST_MS }, async () => {
  const provider = new ethers.IpcSocketProvider(pool.socket, undefined, NO_CACHE);
  try {
    const seen = [];
    const start = await mine();
    await followerAt(start);
    await provider.on('block', (n) => seen.push(n));
    // the listener is subscribed once the provider says so: then mine
    await lib.waitFor(async () => (await subsStatus()).new_heads >= 1, { message: 'newHeads subscription' });
    const first = start + 1;
    for (let i = 0; i < 10; i++) await mine();
    await lib.waitFor(() => seen.includes(first + 9), { timeout: 20000, message: `block ${first + 9}` });
    const got = seen.filter((n) => n >= first);
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => first + i), `blocks: ${seen}`);
    figure(`ethers on("block"): ${got.length} blocks, once each and in order`);
  } finally {
    provider.destroy();
  }
});

test('raw newHeads: chained headers; unsubscribe stops them; HTTP answers -32601', { timeout: TEST_MS }, async () => {
  const c = await lib.ipcClient(pool.socket);
  try {
    await followerAt(await mine());
    const sub = await c.call({ method: 'eth_subscribe', params: ['newHeads'] });
    assert.match(sub.result, /^0x[0-9a-f]{32}$/);
    const sentinel = (await c.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    assert.notEqual(sentinel, sub.result);
    for (let i = 0; i < 5; i++) await mine();
    const heads = (await waitNotes(c, sub.result, 5)).map((v) => v.params.result);
    for (let i = 1; i < heads.length; i++) {
      assert.equal(num(heads[i].number), num(heads[i - 1].number) + 1);
      assert.equal(heads[i].parentHash, heads[i - 1].hash, 'parentHash links');
    }
    for (const h of heads) {
      assert.equal(h.transactions, undefined, 'a header, not a block');
      assert.match(h.hash, /^0x[0-9a-f]{64}$/);
      assert.ok(h.stateRoot && h.logsBloom && h.timestamp, 'header fields');
    }
    // the header is the block's, as the node has it
    const blk = (await anvil.rpc('eth_getBlockByNumber', [heads[2].number, false])).result;
    assert.equal(heads[2].hash, blk.hash);
    assert.equal(heads[2].stateRoot, blk.stateRoot);

    assert.deepEqual((await c.call({ method: 'eth_unsubscribe', params: [sub.result] })).result, true);
    assert.deepEqual((await c.call({ method: 'eth_unsubscribe', params: [sub.result] })).result, false);
    assert.deepEqual((await c.call({ method: 'eth_unsubscribe', params: ['0x1234'] })).result, false);
    const before = notes(c, sub.result).length;
    const last = await mine();
    // the sentinel on the same connection got the block: the other would
    // have come before it
    await lib.waitFor(() => notes(c, sentinel).some((v) => num(v.params.result.number) === last),
      { timeout: 20000, message: 'sentinel got the block' });
    assert.equal(notes(c, sub.result).length, before, 'no notification after eth_unsubscribe');

    // errors a client can act on
    const bad = await c.call({ method: 'eth_subscribe', params: ['newPendingTransactions'] });
    assert.equal(bad.error.code, -32602);
    const inBatch = await c.call([{ jsonrpc: '2.0', id: 'b1', method: 'eth_subscribe', params: ['newHeads'] }]);
    assert.equal(inBatch[0].error.code, -32601);

    // HTTP on the socket, and on http_listen
    const body = { jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] };
    for (const target of [{ socketPath: pool.socket }, `http://${pool.text.match(/http_listen = "([^"]+)"/)[1]}`]) {
      const r = await lib.httpRequest(target, { method: 'POST', body });
      assert.equal(r.status, 200);
      const v = JSON.parse(r.body);
      assert.equal(v.error.code, -32601);
      assert.ok(v.error.message.includes(pool.socket), `names the IPC socket: ${v.error.message}`);
    }
    const st = await subsStatus();
    assert.ok(st.notifications >= 6);
    const m = await pool.ctl('metrics');
    assert.match(m.text, /rpcpool_subscriptions\{type="newHeads"\} \d+/);
    assert.match(m.text, /rpcpool_follower_head_block \d+/);
    const stat = await lib.shmStat(pool);
    assert.ok(stat.subscriptions && stat.subscriptions.follower.head_block >= last, 'rpcpoolstat -j');
  } finally {
    await c.close();
  }
});

let contract;
let contractAddr;

async function emitTx(value) {
  const tx = await wallet.sendTransaction({ to: contractAddr, data: ethers.toBeHex(value, 32), gasLimit: 100000 });
  const rc = await tx.wait();
  return rc;
}

test('logs: a contract\'s events by address and topic; an ethers Contract listener works', { timeout: TEST_MS }, async () => {
  const factory = new ethers.ContractFactory(ABI, initCode(), wallet);
  contract = await factory.deploy();
  await contract.waitForDeployment();
  contractAddr = await contract.getAddress();
  const c = await lib.ipcClient(pool.socket);
  const provider = new ethers.IpcSocketProvider(pool.socket, undefined, NO_CACHE);
  try {
    await followerAt(num((await anvil.rpc('eth_blockNumber', [])).result));
    const all = (await c.call({ method: 'eth_subscribe', params: ['logs', { address: contractAddr }] })).result;
    const pongs = (await c.call({ method: 'eth_subscribe', params: ['logs', { topics: [PONG] }] })).result;
    const none = (await c.call({ method: 'eth_subscribe',
      params: ['logs', { address: '0x000000000000000000000000000000000000dead' }] })).result;
    const listened = [];
    const ec = new ethers.Contract(contractAddr, ABI, provider);
    await ec.on('Ping', (value) => listened.push(value));
    await lib.waitFor(async () => (await subsStatus()).logs >= 4, { message: 'logs subscriptions' });
    const receipts = [];
    for (const v of [7n, 8n, 9n]) receipts.push(await emitTx(v));
    const got = await waitNotes(c, all, 6);
    const logs = got.map((n) => n.params.result);
    for (const l of logs) {
      assert.equal(l.address.toLowerCase(), contractAddr.toLowerCase());
      assert.equal(l.removed, false);
    }
    assert.deepEqual(logs.map((l) => l.topics[0]), [PING, PONG, PING, PONG, PING, PONG]);
    assert.deepEqual(logs.filter((l) => l.topics[0] === PING).map((l) => BigInt(l.data)), [7n, 8n, 9n]);
    assert.deepEqual(logs.map((l) => l.transactionHash),
      receipts.flatMap((r) => [r.hash, r.hash]));
    const p = (await waitNotes(c, pongs, 3)).map((n) => n.params.result);
    assert.ok(p.every((l) => l.topics[0] === PONG && l.topics[1] === ethers.zeroPadValue(wallet.address, 32).toLowerCase()));
    await lib.waitFor(() => listened.length >= 3, { timeout: 20000, message: 'ethers Ping listener' });
    assert.deepEqual(listened, [7n, 8n, 9n]);
    await lib.waitFor(async () => (await subsStatus()).follower.head_block >= receipts[2].blockNumber,
      { message: 'follower past the last tx' });
    assert.equal(notes(c, none).length, 0, 'a filter nobody matches gets nothing');
    assert.equal(notes(c, pongs).length, 3);
  } finally {
    provider.destroy();
    await c.close();
  }
});

test('reorg: removed logs come again with removed:true, then the new branch', { timeout: TEST_MS }, async () => {
  const c = await lib.ipcClient(pool.socket);
  try {
    const base = await mine();
    await followerAt(base);
    const logsId = (await c.call({ method: 'eth_subscribe', params: ['logs', { address: contractAddr }] })).result;
    const headsId = (await c.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    const snap = (await anvil.rpc('evm_snapshot', [])).result;
    const rc = await emitTx(42n); // block base+1, two logs
    assert.equal(rc.blockNumber, base + 1);
    await waitNotes(c, logsId, 2);
    const oldHash = (await waitNotes(c, headsId, 1))[0].params.result.hash;
    const reorgsBefore = (await subsStatus()).follower.reorgs;
    assert.equal((await anvil.rpc('evm_revert', [snap])).result, true);
    await mine(); // base+1'
    await mine(); // base+2'
    const all = await waitNotes(c, logsId, 4);
    const removed = all.slice(2).map((n) => n.params.result);
    for (const l of removed) {
      assert.equal(l.removed, true);
      assert.equal(l.transactionHash, rc.hash);
      assert.equal(l.blockHash, oldHash);
    }
    const heads = (await waitNotes(c, headsId, 3)).map((n) => n.params.result);
    assert.deepEqual(heads.map((h) => num(h.number)), [base + 1, base + 1, base + 2]);
    assert.notEqual(heads[1].hash, oldHash, 'the new branch\'s block');
    assert.equal(heads[2].parentHash, heads[1].hash);
    const canon = (await anvil.rpc('eth_getBlockByNumber', [ethers.toQuantity(base + 1), false])).result;
    assert.equal(heads[1].hash, canon.hash);
    assert.equal((await subsStatus()).follower.reorgs, reorgsBefore + 1);
    figure(`reorg: ${removed.length} logs re-sent with removed:true, new branch ${base + 1}..${base + 2}`);
  } finally {
    await c.close();
  }
});

test('reorg of the only block a fresh follower holds: removed, then delivered again from its height', { timeout: TEST_MS }, async () => {
  const fresh = await lib.startPool({
    endpoints: [proxy.url],
    workers: 1,
    settings: { rate_limit: NO_LIMIT, health_check_interval_ms: 200, subscriptions: { poll_interval_ms: 100 } },
  });
  const c = await lib.ipcClient(fresh.socket);
  try {
    const snap = (await anvil.rpc('evm_snapshot', [])).result;
    const rc = await emitTx(43n); // block X with two logs
    const x = rc.blockNumber;
    const logsId = (await c.call({ method: 'eth_subscribe', params: ['logs', { address: contractAddr }] })).result;
    const headsId = (await c.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    // the follower starts at the head: X, with its logs (the head when subscribing)
    await lib.waitFor(() => notes(c, headsId).some((v) => num(v.params.result.number) === x),
      { timeout: 20000, message: `block ${x}` });
    await waitNotes(c, logsId, 2);
    assert.equal((await anvil.rpc('evm_revert', [snap])).result, true);
    await mine(); // X'
    await mine(); // X+1'
    const logs = (await waitNotes(c, logsId, 4)).map((v) => v.params.result);
    assert.deepEqual(logs.map((l) => l.removed), [false, false, true, true]);
    assert.ok(logs.every((l) => l.transactionHash === rc.hash));
    await lib.waitFor(() => notes(c, headsId).some((v) => num(v.params.result.number) === x + 1),
      { timeout: 20000, message: `block ${x + 1}` });
    const heads = notes(c, headsId).map((v) => v.params.result).filter((h) => num(h.number) >= x);
    assert.deepEqual(heads.map((h) => num(h.number)), [x, x, x + 1]);
    assert.notEqual(heads[1].hash, heads[0].hash);
    assert.equal(heads[2].parentHash, heads[1].hash);
    assert.equal((await subsStatus(fresh)).follower.gaps, 0, 'no subscription ended');
  } finally {
    await c.close();
    await fresh.stop();
  }
});

test('outage: missed blocks are delivered on recovery; beyond backfill_blocks the subscription ends', { timeout: TEST_MS }, async () => {
  // a second pool, behind a proxy of its own, with backfill_blocks = 3
  const proxy2 = await startProxy(anvil.url);
  const small = await lib.startPool({
    endpoints: [proxy2.url],
    workers: 1,
    settings: {
      rate_limit: NO_LIMIT,
      health_check_interval_ms: 200,
      circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 300, half_open_max_attempts: 1 },
      subscriptions: { poll_interval_ms: 100, backfill_blocks: 3 },
    },
  });
  // no subscription there: its follower makes no call at all
  proxy2.reset();
  const quiet = await mine();
  await lib.waitFor(async () => (await small.ctl('status')).endpoints[0].head_block >= quiet + 0 &&
    (proxy2.counts.eth_blockNumber || 0) >= 3, { timeout: 20000, message: 'the small pool\'s prober saw the head' });
  assert.equal(proxy2.counts.eth_getBlockByNumber, undefined, `no follower calls: ${JSON.stringify(proxy2.counts)}`);
  assert.equal((await subsStatus(small)).follower.fetches.headers, 0);
  const keep2 = await lib.ipcClient(small.socket);
  await keep2.call({ method: 'eth_subscribe', params: ['newHeads'] });
  const c = await lib.ipcClient(pool.socket);
  const c2 = await lib.ipcClient(small.socket);
  try {
    const base = await mine();
    await followerAt(base);
    await followerAt(base, small);
    const id = (await c.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    const id2 = (await c2.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    proxy.setDown(true);
    proxy2.setDown(true);
    for (const p of [pool, small]) {
      await lib.waitFor(async () => (await p.ctl('status')).endpoints[0].state !== 'up',
        { timeout: 20000, message: 'endpoint down' });
    }
    for (let i = 0; i < 4; i++) await mine(); // base+1 .. base+4: 4 > backfill_blocks (3) of the small pool
    proxy.setDown(false);
    proxy2.setDown(false);
    const t0 = Date.now();
    const heads = (await waitNotes(c, id, 4, 30000)).map((n) => num(n.params.result.number));
    assert.deepEqual(heads, [base + 1, base + 2, base + 3, base + 4]);
    figure(`outage of 4 blocks: delivered ${heads.join(',')} ${Date.now() - t0} ms after the endpoint came back`);

    // the small pool: an error notification, then the connection closes
    const end = await lib.withTimeout(c2.ended, 30000, 'the subscriber\'s connection closes');
    // an error object with a null id naming the subscription (libraries
    // ignore it; they see the close), then the close
    const errs = c2.lines.map((l) => JSON.parse(l)).filter((v) => v.id === null && v.error);
    assert.equal(errs.length, 1, `an error: ${c2.lines.slice(-3)}`);
    assert.equal(errs[0].error.code, -32000);
    assert.match(errs[0].error.message, /^subscription ended: .*backfill_blocks/);
    assert.equal(errs[0].error.data.subscription, id2);
    assert.equal(end.error, null);
    assert.equal(notes(c2, id2).filter((n) => n.params.result).length, 0, 'nothing from the gap');
    assert.ok((await subsStatus(small)).follower.gaps >= 1);
    // a new subscription there gets the blocks from now on
    const c3 = await lib.ipcClient(small.socket);
    const id3 = (await c3.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    const n = await mine();
    // (a first subscription on a quiet host may get the head of that moment first)
    await lib.waitFor(() => notes(c3, id3).some((v) => num(v.params.result.number) === n),
      { timeout: 20000, message: `block ${n} on the new subscription` });
    await c3.close();
  } finally {
    proxy.setDown(false);
    c.destroy();
    c2.destroy();
    keep2.destroy();
    await small.stop();
    await proxy2.close();
  }
});

test('a reload keeps subscriptions: no gap, no duplicate', { timeout: TEST_MS }, async () => {
  const c = await lib.ipcClient(pool.socket);
  try {
    const base = await mine();
    await followerAt(base);
    const id = (await c.call({ method: 'eth_subscribe', params: ['newHeads'] })).result;
    await mine();
    await waitNotes(c, id, 1);
    const gen = (await pool.ctl('status')).generation;
    const r = await pool.ctl('reload');
    assert.equal(r.ok, true);
    for (let i = 0; i < 3; i++) await mine();
    // the old workers are gone: the connection lives in a new one
    await lib.waitFor(async () => {
      const st = await pool.ctl('status');
      return st.workers.filter((w) => w.kind === 'worker' || w.kind === undefined).every((w) => w.generation > gen);
    }, { timeout: 30000, message: 'old workers retired' });
    for (let i = 0; i < 2; i++) await mine();
    const heads = (await waitNotes(c, id, 6, 30000)).map((n) => num(n.params.result.number));
    assert.deepEqual(heads, [base + 1, base + 2, base + 3, base + 4, base + 5, base + 6]);
    // and it is still the same subscription: unsubscribe knows it
    assert.equal((await c.call({ method: 'eth_unsubscribe', params: [id] })).result, true);
  } finally {
    await c.close();
  }
});

test('1000 subscribers cost one fetch per block at the endpoint', { timeout: TEST_MS }, async () => {
  const conns = [];
  try {
    const base = await mine();
    await followerAt(base);
    const ids = [];
    for (let k = 0; k < 10; k++) {
      const c = await lib.ipcClient(pool.socket);
      conns.push(c);
      const reqs = [];
      for (let i = 0; i < 100; i++) {
        reqs.push(c.call({ method: 'eth_subscribe',
          params: i % 2 ? ['newHeads'] : ['logs', { address: contractAddr }] }));
      }
      ids.push((await Promise.all(reqs)).map((v) => v.result));
    }
    // max_per_connection = 100
    const over = await conns[0].call({ method: 'eth_subscribe', params: ['newHeads'] });
    assert.equal(over.error.code, -32005);
    assert.match(over.error.message, /max_per_connection/);
    const st0 = await subsStatus();
    assert.equal(st0.total, 1001); // and the keeper
    proxy.reset();
    const before = st0.follower.fetches;
    const BLOCKS = 5;
    const mined = [];
    for (let i = 0; i < BLOCKS; i++) {
      mined.push(await mine());
      await emitTx(BigInt(i)); // a block with logs too
      mined.push(mined[mined.length - 1] + 1);
    }
    for (let k = 0; k < 10; k++) {
      for (let i = 1; i < 100; i += 2) await waitNotes(conns[k], ids[k][i], mined.length, 30000);
      for (let i = 0; i < 100; i += 2) await waitNotes(conns[k], ids[k][i], 2 * BLOCKS, 30000);
    }
    for (let k = 0; k < 10; k++) {
      for (let i = 1; i < 100; i += 2) {
        const got = notes(conns[k], ids[k][i]).map((n) => num(n.params.result.number));
        assert.deepEqual(got, mined, 'every block once, in order, for every subscriber');
      }
    }
    const st = await subsStatus();
    const headers = st.follower.fetches.headers - before.headers;
    const logs = st.follower.fetches.logs - before.logs;
    const upHeaders = proxy.counts.eth_getBlockByNumber || 0;
    const upLogs = proxy.counts.eth_getLogs || 0;
    assert.equal(upHeaders, mined.length, `eth_getBlockByNumber calls at the endpoint: ${JSON.stringify(proxy.counts)}`);
    assert.equal(upLogs, mined.length, 'eth_getLogs calls at the endpoint');
    assert.equal(headers, mined.length);
    assert.equal(logs, mined.length);
    figure(`1000 subscribers, ${mined.length} blocks: ${upHeaders / mined.length} header fetch and ` +
      `${upLogs / mined.length} eth_getLogs per block at the endpoint; polls ${proxy.counts.eth_blockNumber || 0}`);
    figure(`delivery latency (follower saw block -> worker queued notifications): avg ${st.delivery_latency_ms.avg} ms, ` +
      `max ${st.delivery_latency_ms.max} ms over ${st.delivery_latency_ms.count} deliveries`);
  } finally {
    for (const c of conns) await c.close();
  }
});

test('a subscriber that does not read is closed at a bound; a worker that dies closes its subscribers', { timeout: TEST_MS }, async () => {
  // big logs: each call's calldata (64 KiB) comes back twice as hex (LOG1, LOG2)
  const reader = await lib.ipcClient(pool.socket);
  const idle = await lib.ipcClient(pool.socket);
  try {
    await followerAt(await mine());
    const rid = (await reader.call({ method: 'eth_subscribe', params: ['logs', { address: contractAddr }] })).result;
    await idle.call({ method: 'eth_subscribe', params: ['logs', { address: contractAddr }] });
    idle.sock.pause(); // reads nothing from here on
    const data = '0x' + 'ab'.repeat(65536);
    for (let i = 0; i < 80; i++) {
      const r = await anvil.rpc('eth_sendTransaction', [{ from: wallet.address, to: contractAddr, data, gas: '0x4c4b40' }]);
      assert.ok(r.result, JSON.stringify(r.error));
    }
    // about 21 MiB of notifications for the one that does not read: more
    // than the 16 MiB it may leave unread
    await lib.waitFor(() => pool.log.some((l) => /subscriber does not read its notifications: closing/.test(l)),
      { timeout: 60000, message: 'the non-reader closed' });
    idle.sock.resume();
    await lib.withTimeout(idle.ended, 30000, 'the non-reader sees its connection close');
    // the one that reads got everything
    await waitNotes(reader, rid, 160, 60000);
    figure('a subscriber leaving more than 16 MiB unread was closed; the reading one got all 160 logs');

    // a worker dies: its subscribers' connections close (never a silent stall)
    const st = await pool.ctl('status');
    const workers = st.workers.filter((w) => w.kind === 'worker' || w.kind === undefined);
    for (const w of workers) process.kill(w.pid, 'SIGKILL');
    await lib.withTimeout(reader.ended, 20000, 'the subscriber sees its connection close');
    await lib.waitFor(async () => {
      const s2 = await pool.ctl('status');
      return s2.workers.filter((w) => w.kind === 'worker').every((w) => w.state === 'running' &&
        !workers.some((o) => o.pid === w.pid));
    }, { timeout: 30000, message: 'workers replaced' });
    await lib.waitFor(async () => (await subsStatus()).total === 0, { message: 'their cells repaired' });
  } finally {
    idle.destroy();
    reader.destroy();
  }
});
