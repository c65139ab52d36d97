// consistency.test.js - issue 16 end to end: chain-consistent answers
// (INTERFACE.md section 8 "Consistency"), seen only from outside, over three
// real anvil endpoints whose heads are made to differ by mining directly on
// each anvil (its own url).
//
// - Monotonic reads: on one IPC connection, and on one HTTP keep-alive
//   connection (http_listen, and HTTP on the UNIX socket), eth_blockNumber
//   never decreases while one endpoint leads by 3 blocks and while the leader
//   mines further; block objects ("latest") and block numbers a connection
//   asked for raise its floor too.
// - Heads learned from traffic: with the prober idle, a block number seen in
//   an answer raises that endpoint's head in the shared segment at once, and
//   the connection that saw it stays at or above it.
// - Filters: an eth_newBlockFilter id made through the pool answers
//   eth_getFilterChanges from every connection (several workers), returns
//   the hashes of the node that made it, uninstalls; afterwards, and for ids
//   the pool never handed out, -32000 "filter not found". A filter whose
//   endpoint a reload removed answers "filter not found"; others survive it.
// - Affinity: nonce read, gas estimate and send of one connection land on
//   one endpoint, so each transaction (the account's nonce differs on every
//   anvil) is accepted and mined on exactly the anvil whose nonce it used.
// - Not-yet-seen lookups: a receipt / transaction / block by hash that only
//   the leading anvil has is found through the pool on every call; a hash
//   nobody has is answered null.
// - consistency_wait_ms: the only endpoint at a connection's floor drained,
//   a head-dependent call waits for another to catch up (never answered
//   below the floor), and with none catching up it is answered after about
//   consistency_wait_ms from the best usable endpoint.
//
// Every pool here uses balance = "round_robin" (the strongest spreading, the
// worst case for consistency), fast probes and a max_block_lag large enough
// that the lagging anvils stay usable. Counts are printed as "# ..." lines.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const lib = require('./lib.js');
const promcheck = require('./promcheck.js');
const { figure } = lib;

const { ethers } = require(path.join(lib.ROOT, 'tests', 'node_modules', 'ethers'));

// anvil's first development account (public, well-known test key); every
// anvil has it funded, and chain id 31337: one signed tx is valid on all.
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const RECIPIENT = ethers.getAddress('0x70997970c51812dc3a732fbe9b1f3d5e4f5b8c3a');
const CHAIN_ID = 31337;
const NAMES = ['a', 'b', 'c'];

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const PROBE_MS = 200;
const TEST_MS = 120000;

const num = (h) => {
  assert.equal(typeof h, 'string', `not a hex quantity: ${JSON.stringify(h)}`);
  return Number.parseInt(h, 16);
};
const hex = (n) => `0x${n.toString(16)}`;

// Three anvils, each with a name (a, b, c) used as its endpoint name. Their
// genesis timestamps differ, so no two of them ever have a block in common
// (anvils started in the same second would mine identical empty blocks):
// a block hash tells which anvil made it.
async function startAnvils(n = 3) {
  const t = Math.floor(Date.now() / 1000) - 3600;
  const nodes = await Promise.all(Array.from({ length: n },
    (_, i) => lib.startAnvil({ args: ['--timestamp', String(t + 100 * i)] })));
  nodes.forEach((x, i) => { x.name = NAMES[i]; });
  return nodes;
}

// A direct call on an anvil; asserts it answered a result.
async function direct(node, method, params = []) {
  const r = await node.rpc(method, params);
  assert.ok(!r.error, `${method} on anvil ${node.name}: ${JSON.stringify(r.error)}`);
  return r.result;
}

async function mine(node, n = 1) {
  await direct(node, 'anvil_mine', [hex(n)]);
}

async function headOf(node) {
  return num(await direct(node, 'eth_blockNumber'));
}

// The endpoints of a pool over NODES (by name), and the settings every pool here shares.
function endpointsOf(nodes) {
  return nodes.map((x) => ({ name: x.name, url: x.url }));
}

function baseSettings(extra = {}) {
  return {
    chain_id: CHAIN_ID,
    balance: 'round_robin',
    health_check_interval_ms: PROBE_MS,
    max_block_lag: 50,
    attempt_timeout_ms: 3000,
    rate_limit: NO_LIMIT,
    ...extra,
  };
}

// Start a pool over NODES; with HTTP, also on http_listen (a free port,
// retried when taken in between). Returns the pool, with .httpPort.
async function startPool(nodes, { workers = 2, settings = {}, http: withHttp = false } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = withHttp ? await lib.freePort() : null;
    try {
      const pool = await lib.startPool({
        endpoints: endpointsOf(nodes),
        workers,
        settings: baseSettings(settings),
        server: withHttp ? { http_listen: `127.0.0.1:${port}` } : {},
        timeout: 30000,
      });
      pool.httpPort = port;
      pool.settings = baseSettings(settings);
      pool.workers = workers;
      return pool;
    } catch (e) {
      lastErr = e;
      if (!withHttp) break;
    }
  }
  throw lastErr;
}

async function status(pool) {
  const st = await pool.ctl('status', { timeout: 10000 });
  assert.equal(st.ok, true, JSON.stringify(st));
  return st;
}

// Wait until the pool's status shows every node of NODES at the head it has
// now (read directly) and up (the prober has seen it).
async function waitHeads(pool, nodes, timeout = 10000) {
  const want = {};
  for (const x of nodes) want[x.name] = await headOf(x);
  await lib.waitFor(async () => {
    const st = await status(pool);
    return nodes.every((x) => {
      const e = st.endpoints.find((y) => y.name === x.name);
      return e && e.head_block === want[x.name] && e.state === 'up';
    });
  }, { timeout, interval: 25, message: `endpoint heads ${JSON.stringify(want)} in status` });
  return want;
}

// The metrics text (rpcpoolctl metrics), parsed; and the sum of a family's samples.
async function metrics(pool) {
  const m = await pool.ctl('metrics', { timeout: 10000 });
  assert.equal(m.ok, true);
  return { text: m.text, samples: promcheck.parse(m.text) };
}

async function counter(pool, name) {
  const { samples } = await metrics(pool);
  const s = samples.filter((x) => x.name === name);
  if (!s.length) return undefined;
  return s.reduce((a, x) => a + x.value, 0);
}

// Number of decreases in a sequence, and the first one.
function decreases(seq) {
  let n = 0;
  let first = null;
  for (let i = 1; i < seq.length; i++) {
    if (seq[i] < seq[i - 1]) {
      n++;
      if (first === null) first = `call ${i}: ${seq[i - 1]} -> ${seq[i]}`;
    }
  }
  return { n, first };
}

// One JSON-RPC call over HTTP through AGENT (keep-alive) to TARGET
// ({port} or {socketPath}); resolves to the parsed answer. The socket used
// is added to SOCKETS.
function keepAliveCall(agent, target, sockets, method, params = []) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: lib.nextId(), method, params }));
    const opts = {
      agent,
      method: 'POST',
      path: '/',
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
    };
    if (target.socketPath) opts.socketPath = target.socketPath;
    else {
      opts.host = '127.0.0.1';
      opts.port = target.port;
    }
    const req = http.request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`${method}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new Error(`${method}: not JSON: ${text.slice(0, 200)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('socket', (s) => sockets.add(s));
    req.setTimeout(15000, () => req.destroy(new Error(`${method}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

// N eth_blockNumber calls in a row through CALL (async () => answer); before
// calls listed in MINE_AT, mine one block on LEADER. Returns the numbers.
async function blockNumbers(call, n, leader, mineAt = []) {
  const seq = [];
  for (let i = 0; i < n; i++) {
    if (mineAt.includes(i)) await mine(leader, 1);
    const r = await call();
    assert.ok(!r.error, `eth_blockNumber call ${i}: ${JSON.stringify(r.error)}`);
    seq.push(num(r.result));
  }
  return seq;
}

function range(seq) {
  return `${Math.min(...seq)}..${Math.max(...seq)}`;
}

test('eth_blockNumber never decreases on one IPC connection or one HTTP keep-alive connection', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  const [a, b, c] = nodes;
  await mine(a, 13);
  await mine(b, 10);
  await mine(c, 10);
  const pool = await startPool(nodes, { workers: 2, http: true });
  await waitHeads(pool, nodes);
  const failures = [];

  // one IPC connection, the leader mining twice during the run
  const ipc = await lib.ipcClient(pool.socket);
  const ipcSeq = await blockNumbers(() => ipc.call({ method: 'eth_blockNumber', params: [] }), 150, a, [50, 100]);
  const d1 = decreases(ipcSeq);
  figure(`IPC: 150 eth_blockNumber calls, values ${range(ipcSeq)}, ${d1.n} decreases`);
  if (d1.n) failures.push(`IPC: eth_blockNumber went backwards ${d1.n} times in 150 calls (first at ${d1.first})`);

  // one HTTP keep-alive connection on http_listen, then one on the UNIX socket
  for (const [label, target] of [['http_listen', { port: pool.httpPort }], ['HTTP on the socket', { socketPath: pool.socket }]]) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set();
    try {
      const seq = await blockNumbers(() => keepAliveCall(agent, target, sockets, 'eth_blockNumber'), 150, a, [50, 100]);
      assert.equal(sockets.size, 1, `${label}: the keep-alive connection was not kept (${sockets.size} connections)`);
      const d = decreases(seq);
      figure(`${label} keep-alive: 150 eth_blockNumber calls on 1 connection, values ${range(seq)}, ${d.n} decreases`);
      if (d.n) failures.push(`${label}: eth_blockNumber went backwards ${d.n} times in 150 calls (first at ${d.first})`);
    } finally {
      agent.destroy();
    }
  }

  // block objects raise the floor too: "latest" blocks and numbers mixed
  const mixed = await lib.ipcClient(pool.socket);
  const mixSeq = [];
  for (let i = 0; i < 60; i++) {
    if (i === 30) await mine(a, 1);
    if (i % 2 === 0) {
      const r = await mixed.call({ method: 'eth_getBlockByNumber', params: ['latest', false] });
      assert.ok(!r.error && r.result, `eth_getBlockByNumber("latest"): ${JSON.stringify(r)}`);
      mixSeq.push(num(r.result.number));
    } else {
      const r = await mixed.call({ method: 'eth_blockNumber', params: [] });
      assert.ok(!r.error, JSON.stringify(r.error));
      mixSeq.push(num(r.result));
    }
  }
  const d2 = decreases(mixSeq);
  figure(`IPC: 60 calls alternating eth_getBlockByNumber("latest") and eth_blockNumber, values ${range(mixSeq)}, ${d2.n} decreases`);
  if (d2.n) failures.push(`mixed "latest" blocks and eth_blockNumber went backwards ${d2.n} times (first at ${d2.first})`);

  // a block number a connection asked for is its floor (fresh connections)
  const lead = await headOf(a);
  let below = 0;
  let nullBlocks = 0;
  for (let i = 0; i < 10; i++) {
    const f = await lib.ipcClient(pool.socket);
    const blk = await f.call({ method: 'eth_getBlockByNumber', params: [hex(lead), false] });
    assert.ok(!blk.error, JSON.stringify(blk.error));
    if (blk.result === null) nullBlocks++;
    const r = await f.call({ method: 'eth_blockNumber', params: [] });
    assert.ok(!r.error, JSON.stringify(r.error));
    if (num(r.result) < lead) below++;
    f.destroy();
  }
  figure(`asked for block ${lead} on 10 fresh connections: ${nullBlocks} null blocks, ${below} later eth_blockNumber below it`);
  if (below) failures.push(`${below} of 10 connections that asked for block ${lead} were then shown a lower eth_blockNumber`);
  if (nullBlocks) failures.push(`${nullBlocks} of 10 eth_getBlockByNumber(${lead}) were answered null by an endpoint without it`);

  ipc.destroy();
  mixed.destroy();
  assert.deepEqual(failures, []);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

test('heads are learned from traffic: a block number seen in an answer raises the head at once', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  const [a] = nodes;
  // the prober runs at start only (then every 10 minutes)
  const pool = await startPool(nodes, { workers: 2, settings: { health_check_interval_ms: 600000 } });
  await waitHeads(pool, nodes);
  await mine(a, 5);
  const conn = await lib.ipcClient(pool.socket);
  let calls = 0;
  await lib.waitFor(async () => {
    calls++;
    const r = await conn.call({ method: 'eth_blockNumber', params: [] });
    return r.result === hex(5);
  }, { timeout: 10000, interval: 1, message: 'eth_blockNumber 5 through the pool' });
  // no probe runs for 10 minutes: only the answer can tell the pool (allowed
  // 1 s for the worker to write it after answering)
  const t0 = Date.now();
  let head = null;
  await lib.waitFor(async () => {
    head = (await status(pool)).endpoints.find((x) => x.name === 'a').head_block;
    return head === 5;
  }, { timeout: 1000, interval: 10, message: 'head 5' }).catch(() => {});
  figure(`block 5 seen after ${calls} calls; endpoint a's head in status: ${head} (${Date.now() - t0} ms later)`);
  assert.equal(head, 5, 'the head seen in an answer was not in the shared segment at once');
  const seq = await blockNumbers(() => conn.call({ method: 'eth_blockNumber', params: [] }), 30, a);
  const low = seq.filter((x) => x < 5).length;
  figure(`30 further calls without a probe: ${low} below 5`);
  assert.equal(low, 0, `the connection was shown a block below 5 (${seq.join(',')})`);
  conn.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

// Which of NODES has the block HASH (directly); names.
async function ownersOfBlock(nodes, hash) {
  const out = [];
  for (const x of nodes) {
    const r = await x.rpc('eth_getBlockByHash', [hash, false]);
    if (r.result) out.push(x.name);
  }
  return out;
}

function isFilterNotFound(r) {
  return r && r.error && r.error.code === -32000 && r.error.message === 'filter not found';
}

test('a block filter made through the pool works from every connection and uninstalls', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  const [, b, c] = nodes;
  // the anvils at different heights (their genesis blocks differ already)
  await mine(b, 1);
  await mine(c, 2);
  const pool = await startPool(nodes, { workers: 3 });
  await waitHeads(pool, nodes);
  const before = (await lib.shmStat(pool)).workers.map((w) => w.requests);

  const maker = await lib.ipcClient(pool.socket);
  const made = await maker.call({ method: 'eth_newBlockFilter', params: [] });
  assert.ok(!made.error && typeof made.result === 'string', `eth_newBlockFilter: ${JSON.stringify(made)}`);
  const id = made.result;

  // 9 rounds: one block on every anvil, then the changes from a new connection
  const conns = [maker];
  const errors = [];
  const hashes = [];
  for (let round = 0; round < 9; round++) {
    for (const x of nodes) await mine(x, 1);
    const conn = await lib.ipcClient(pool.socket);
    conns.push(conn);
    const r = await conn.call({ method: 'eth_getFilterChanges', params: [id] });
    if (r.error || !Array.isArray(r.result)) errors.push(`round ${round + 1}: ${JSON.stringify(r.error || r.result)}`);
    else hashes.push(...r.result);
  }
  const owners = new Set();
  for (const h of hashes) for (const o of await ownersOfBlock(nodes, h)) owners.add(o);
  const after = (await lib.shmStat(pool)).workers.map((w) => w.requests);
  const busy = after.filter((v, i) => v > (before[i] || 0)).length;
  figure(`block filter: 9 rounds over 10 connections (${busy} of 3 workers served calls): ${errors.length} errors, ` +
    `${hashes.length} hashes (${new Set(hashes).size} distinct), from anvil(s) ${[...owners].join(',') || '-'}`);
  assert.deepEqual(errors, [], 'eth_getFilterChanges with the id the pool handed out failed');
  assert.equal(new Set(hashes).size, 9, 'one new block hash per round');
  assert.equal(owners.size, 1, 'the hashes come from the one node that made the filter');
  const owner = nodes.find((x) => x.name === [...owners][0]);

  // the id: "0x" + 8 hex digits of endpoint tag + the node's own hex digits
  assert.match(id, /^0x[0-9a-fA-F]{8}[0-9a-fA-F]+$/, `filter id ${id}`);
  const nodeId = `0x${id.slice(10)}`;
  for (const x of nodes) {
    const r = await x.rpc('eth_getFilterChanges', [nodeId]);
    assert.equal(!r.error, x === owner, `anvil ${x.name} on the node's own id ${nodeId}: ${JSON.stringify(r)}`);
  }

  // uninstall from yet another connection, then the id is gone
  const last = await lib.ipcClient(pool.socket);
  conns.push(last);
  const un = await last.call({ method: 'eth_uninstallFilter', params: [id] });
  assert.equal(un.result, true, `eth_uninstallFilter: ${JSON.stringify(un)}`);
  const gone = await maker.call({ method: 'eth_getFilterChanges', params: [id] });
  assert.ok(isFilterNotFound(gone), `eth_getFilterChanges after uninstall: ${JSON.stringify(gone)}`);

  // ids the pool never handed out
  for (const bad of ['0x1234', `0x${'f'.repeat(8)}`]) {
    for (const method of ['eth_getFilterChanges', 'eth_getFilterLogs']) {
      const r = await maker.call({ method, params: [bad] });
      assert.ok(isFilterNotFound(r), `${method}(${bad}): ${JSON.stringify(r)}`);
    }
    // geth and anvil answer false to uninstalling an unknown id; the pool may say "filter not found"
    const u = await maker.call({ method: 'eth_uninstallFilter', params: [bad] });
    assert.ok(u.result === false || isFilterNotFound(u), `eth_uninstallFilter(${bad}): ${JSON.stringify(u)}`);
  }

  // a log filter and a pending-transaction filter: 6 calls each from fresh connections
  let otherErrors = 0;
  for (const [make, params, poll] of [['eth_newFilter', [{ fromBlock: 'latest' }], 'eth_getFilterLogs'],
    ['eth_newPendingTransactionFilter', [], 'eth_getFilterChanges']]) {
    const m = await maker.call({ method: make, params });
    assert.ok(!m.error && typeof m.result === 'string', `${make}: ${JSON.stringify(m)}`);
    for (let i = 0; i < 6; i++) {
      const conn = await lib.ipcClient(pool.socket);
      conns.push(conn);
      const r = await conn.call({ method: i % 2 ? 'eth_getFilterChanges' : poll, params: [m.result] });
      if (r.error || !Array.isArray(r.result)) otherErrors++;
    }
    const u = await maker.call({ method: 'eth_uninstallFilter', params: [m.result] });
    if (u.result !== true) otherErrors++;
  }
  figure(`log filter and pending-transaction filter: ${otherErrors} errors in 12 polls and 2 uninstalls`);
  assert.equal(otherErrors, 0);

  for (const x of conns) x.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

// A whole configuration file for POOL's paths over NODES (as
// lib.writePoolConfig lays it out), so that a reload keeps the sockets.
function configText(pool, nodes) {
  const srv = {
    socket: pool.socket,
    control_socket: pool.controlSocket,
    shm_name: pool.shmName,
    workers: pool.workers,
    log_level: 'debug',
  };
  let text = '# rewritten by consistency.test.js\n';
  text += `name = ${lib.toLibconfig(pool.name)};\n`;
  for (const [k, v] of Object.entries(pool.settings)) text += `${k} = ${lib.toLibconfig(v)};\n`;
  text += `endpoints = ${lib.toLibconfig(endpointsOf(nodes))};\n`;
  text += `server = ${lib.toLibconfig(srv)};\n`;
  return text;
}

test('a filter whose endpoint a reload removed: "filter not found"; the others survive the reload', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  await mine(nodes[1], 1);
  await mine(nodes[2], 2);
  const pool = await startPool(nodes, { workers: 2 });
  await waitHeads(pool, nodes);
  const conn = await lib.ipcClient(pool.socket);

  // Which endpoint made filter ID: mine a block on every anvil; the one
  // hash the filter then reports is that anvil's.
  const ownerOf = async (id) => {
    for (const x of nodes) await mine(x, 1);
    const r = await conn.call({ method: 'eth_getFilterChanges', params: [id] });
    assert.ok(!r.error && r.result.length === 1, `eth_getFilterChanges(${id}): ${JSON.stringify(r)}`);
    const o = await ownersOfBlock(nodes, r.result[0]);
    assert.equal(o.length, 1);
    return o[0];
  };
  const newFilter = async () => {
    const r = await conn.call({ method: 'eth_newBlockFilter', params: [] });
    assert.ok(!r.error && typeof r.result === 'string', JSON.stringify(r));
    return r.result;
  };
  // two filters on two endpoints: the second made while the first's endpoint is drained
  const removed = { id: await newFilter() };
  removed.owner = await ownerOf(removed.id);
  assert.equal((await pool.ctl(`drain ${removed.owner}`)).ok, true);
  const kept = { id: await newFilter() };
  assert.equal((await pool.ctl(`enable ${removed.owner}`)).ok, true);
  kept.owner = await ownerOf(kept.id);
  figure(`filters made on endpoints ${removed.owner} and ${kept.owner}`);
  assert.notEqual(kept.owner, removed.owner, 'a filter was made on a drained endpoint');
  const rest = nodes.filter((x) => x.name !== removed.owner);

  fs.writeFileSync(pool.conf, configText(pool, rest));
  const rl = await pool.ctl('reload', { timeout: 20000 });
  assert.equal(rl.ok, true, JSON.stringify(rl));
  await lib.waitFor(async () => (await status(pool)).endpoints.length === 2,
    { timeout: 10000, message: 'two endpoints after the reload' });

  for (const x of rest) await mine(x, 1);
  const fresh = await lib.ipcClient(pool.socket);
  const gone = await fresh.call({ method: 'eth_getFilterChanges', params: [removed.id] });
  assert.ok(isFilterNotFound(gone), `filter of the removed endpoint ${removed.owner}: ${JSON.stringify(gone)}`);
  const still = await fresh.call({ method: 'eth_getFilterChanges', params: [kept.id] });
  assert.ok(!still.error && still.result.length === 1, `filter of ${kept.owner} after the reload: ${JSON.stringify(still)}`);
  assert.deepEqual(await ownersOfBlock(nodes, still.result[0]), [kept.owner]);
  figure(`after removing ${removed.owner}: its filter "filter not found", ${kept.owner}'s filter still answers`);
  conn.destroy();
  fresh.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

test('nonce read, gas estimate and send of one connection land on one endpoint', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  const [a, b] = nodes;
  await mine(a, 2);
  await mine(b, 1);
  // the account's nonce differs on every anvil
  const start = { a: 0, b: 5, c: 9 };
  for (const x of nodes) await direct(x, 'anvil_setNonce', [ACCOUNT0, hex(start[x.name])]);
  const pool = await startPool(nodes, { workers: 2 });
  await waitHeads(pool, nodes);
  const wallet = new ethers.Wallet(KEY0);
  const conn = await lib.ipcClient(pool.socket);

  const problems = [];
  const landed = [];
  for (let i = 0; i < 10; i++) {
    const nonces = {};
    for (const x of nodes) nonces[x.name] = num(await direct(x, 'eth_getTransactionCount', [ACCOUNT0, 'pending']));
    const cnt = await conn.call({ method: 'eth_getTransactionCount', params: [ACCOUNT0, 'pending'] });
    assert.ok(!cnt.error, JSON.stringify(cnt.error));
    const nonce = num(cnt.result);
    const matching = nodes.filter((x) => nonces[x.name] === nonce).map((x) => x.name);
    const est = await conn.call({ method: 'eth_estimateGas', params: [{ from: ACCOUNT0, to: RECIPIENT, value: '0x1' }] });
    assert.ok(!est.error, `eth_estimateGas: ${JSON.stringify(est.error)}`);
    const raw = await wallet.signTransaction({
      type: 2, chainId: CHAIN_ID, nonce, to: RECIPIENT, value: 1n, gasLimit: 21000n,
      maxFeePerGas: 20n * 10n ** 9n, maxPriorityFeePerGas: 10n ** 9n,
    });
    const hash = ethers.keccak256(raw);
    const sent = await conn.call({ method: 'eth_sendRawTransaction', params: [raw] });
    if (sent.error) {
      problems.push(`tx ${i} (nonce ${nonce}, matching ${matching}): ${JSON.stringify(sent.error)}`);
      landed.push('-');
      continue;
    }
    assert.equal(sent.result, hash);
    // mined (anvil's miner runs just after it answers the send) on which anvils
    let mined = [];
    await lib.waitFor(async () => {
      mined = [];
      for (const x of nodes) {
        const r = await x.rpc('eth_getTransactionReceipt', [hash]);
        if (r.result && r.result.blockNumber) mined.push(x.name);
      }
      return mined.length > 0;
    }, { timeout: 5000, message: `tx ${i} mined` }).catch(() => {});
    landed.push(mined.join('+') || 'none');
    if (mined.length !== 1 || !matching.includes(mined[0])) {
      problems.push(`tx ${i} (nonce ${nonce}, read from anvil(s) ${matching}) mined on ${mined.join(',') || 'no anvil'}`);
    }
  }
  const hits = await counter(pool, 'rpcpool_affinity_hits_total');
  figure(`10 nonce/estimate/send rounds on one connection: landed on ${landed.join(',')}; ${problems.length} problems; ` +
    `rpcpool_affinity_hits_total ${hits}`);
  assert.deepEqual(problems, []);
  assert.equal(new Set(landed).size, 1, 'the sends of one connection moved between endpoints');
  assert.ok(hits > 0, `rpcpool_affinity_hits_total ${hits}`);
  conn.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

test('a lookup null on a lagging endpoint is found on the leading one', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils();
  const [a] = nodes;
  const pool = await startPool(nodes, { workers: 2 });
  await waitHeads(pool, nodes);
  // a transaction only the leader has: a mines it (automine), b and c lag 1 block behind
  const wallet = new ethers.Wallet(KEY0);
  const raw = await wallet.signTransaction({
    type: 2, chainId: CHAIN_ID, nonce: 0, to: RECIPIENT, value: 1n, gasLimit: 21000n,
    maxFeePerGas: 20n * 10n ** 9n, maxPriorityFeePerGas: 10n ** 9n,
  });
  const hash = await direct(a, 'eth_sendRawTransaction', [raw]);
  // anvil answers the send before its miner has put the transaction in a block
  const receipt = await lib.waitFor(async () => {
    const r = await direct(a, 'eth_getTransactionReceipt', [hash]);
    return r && r.blockHash ? r : null;
  }, { timeout: 10000, message: 'anvil a mined the transaction' });
  const heads = await waitHeads(pool, nodes);
  assert.ok(heads.a >= heads.b + 1 && heads.a >= heads.c + 1, JSON.stringify(heads));
  const retries0 = (await counter(pool, 'rpcpool_lookup_retries_total')) || 0;

  let misses = 0;
  const long = await lib.ipcClient(pool.socket);
  const lookup = async (conn, method, params, check) => {
    const r = await conn.call({ method, params });
    if (r.error || !r.result || !check(r.result)) misses++;
  };
  const isReceipt = (x) => x.transactionHash === hash && x.blockHash === receipt.blockHash;
  for (let i = 0; i < 30; i++) {
    // half on one connection, half on fresh ones
    const conn = i % 2 ? long : await lib.ipcClient(pool.socket);
    await lookup(conn, 'eth_getTransactionReceipt', [hash], isReceipt);
    if (conn !== long) conn.destroy();
  }
  const receiptMisses = misses;
  for (let i = 0; i < 10; i++) {
    const conn = await lib.ipcClient(pool.socket);
    await lookup(conn, 'eth_getTransactionByHash', [hash], (x) => x.hash === hash);
    await lookup(conn, 'eth_getBlockByHash', [receipt.blockHash, false], (x) => x.hash === receipt.blockHash);
    conn.destroy();
  }
  // a hash nobody has: null from the best endpoint is the answer, promptly
  let nulls = 0;
  let slowest = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const r = await long.call({ method: 'eth_getTransactionReceipt', params: [`0x${'11'.repeat(31)}${hex(16 + i).slice(2)}`] });
    slowest = Math.max(slowest, Date.now() - t0);
    assert.ok(!r.error, JSON.stringify(r.error));
    if (r.result === null) nulls++;
  }
  const retries = ((await counter(pool, 'rpcpool_lookup_retries_total')) || 0) - retries0;
  figure(`lookups of a tx only the leader has: receipts ${30 - receiptMisses}/30 found, by hash tx+block ` +
    `${20 - (misses - receiptMisses)}/20 found; unknown hash null ${nulls}/5 (slowest ${slowest} ms); ` +
    `rpcpool_lookup_retries_total +${retries}`);
  assert.equal(receiptMisses, 0, `${receiptMisses} of 30 eth_getTransactionReceipt calls did not return the receipt`);
  assert.equal(misses, 0, `${misses - receiptMisses} of 20 eth_getTransactionByHash/eth_getBlockByHash missed`);
  assert.equal(nulls, 5);
  assert.ok(slowest < 3000, `an unknown hash took ${slowest} ms`);
  assert.ok(retries > 0, `rpcpool_lookup_retries_total did not grow (${retries})`);
  long.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

test('consistency_wait_ms: a floor nobody else meets waits for a catch-up, bounded', { timeout: TEST_MS }, async () => {
  const WAIT = 2000;
  const nodes = await startAnvils();
  const [a, b, c] = nodes;
  await mine(a, 13);
  await mine(b, 10);
  await mine(c, 10);
  const pool = await startPool(nodes, { workers: 2, settings: { consistency_wait_ms: WAIT } });
  await waitHeads(pool, nodes);

  // the connection is shown the leader's head: its floor is 13
  const conn = await lib.ipcClient(pool.socket);
  await lib.waitFor(async () => (await conn.call({ method: 'eth_blockNumber', params: [] })).result === hex(13),
    { timeout: 10000, interval: 1, message: 'the connection shown block 13' });
  const waits0 = (await counter(pool, 'rpcpool_consistency_waits_total')) || 0;
  assert.equal((await pool.ctl('drain a')).ok, true);

  // phase 1: the only endpoint at the floor drained; b catches up during the wait
  let t0 = Date.now();
  let answeredAt = 0;
  const p = conn.call({ method: 'eth_blockNumber', params: [] }, { timeout: WAIT + 10000 })
    .then((r) => { answeredAt = Date.now(); return r; });
  // b mines once the pool is seen waiting (the counter grew), or after half the wait
  await lib.waitFor(async () => answeredAt || Date.now() - t0 >= WAIT / 2 ||
    ((await counter(pool, 'rpcpool_consistency_waits_total')) || 0) > waits0,
  { timeout: WAIT, interval: 20, message: 'the wait seen' }).catch(() => {});
  const earlyAnswer = answeredAt ? answeredAt - t0 : null;
  await mine(b, 5); // b: 15
  const tMine = Date.now() - t0;
  const r1 = await p;
  const ms1 = answeredAt - t0;
  assert.ok(!r1.error, JSON.stringify(r1.error));
  figure(`phase 1: floor 13, a drained, b mined to 15 at +${tMine} ms: answered ${num(r1.result)} after ${ms1} ms` +
    (earlyAnswer !== null ? ' (before b caught up)' : ''));
  assert.ok(num(r1.result) >= 13, `answered block ${num(r1.result)} below the connection's floor 13 after ${ms1} ms`);
  assert.ok(ms1 <= WAIT + 1500, `answered after ${ms1} ms, consistency_wait_ms is ${WAIT}`);
  const waits1 = (await counter(pool, 'rpcpool_consistency_waits_total')) || 0;
  assert.ok(waits1 > waits0, `rpcpool_consistency_waits_total did not grow (${waits0} -> ${waits1})`);

  // phase 2: the connection has seen 15; b drained too, c (10) never catches up:
  // answered after about consistency_wait_ms, from the best usable endpoint
  assert.equal(num(r1.result), 15);
  assert.equal((await pool.ctl('drain b')).ok, true);
  t0 = Date.now();
  const r2 = await conn.call({ method: 'eth_blockNumber', params: [] }, { timeout: WAIT + 10000 });
  const ms2 = Date.now() - t0;
  assert.ok(!r2.error, JSON.stringify(r2.error));
  const waits2 = (await counter(pool, 'rpcpool_consistency_waits_total')) || 0;
  figure(`phase 2: floor 15, a and b drained, c at 10: answered ${num(r2.result)} after ${ms2} ms; ` +
    `rpcpool_consistency_waits_total ${waits0} -> ${waits1} -> ${waits2}`);
  assert.ok(ms2 >= WAIT - 100, `answered after ${ms2} ms without waiting consistency_wait_ms (${WAIT})`);
  assert.ok(ms2 <= WAIT + 1500, `answered after ${ms2} ms, consistency_wait_ms is ${WAIT}`);
  assert.equal(num(r2.result), await headOf(c), 'answered from the best usable endpoint');
  assert.ok(waits2 > waits1, `rpcpool_consistency_waits_total did not grow in phase 2 (${waits1} -> ${waits2})`);

  // the three counters are exposed, as counters, on both metrics paths
  const { text } = await metrics(pool);
  const viaHttp = await lib.httpRequest({ socketPath: pool.socket }, { path: '/metrics' });
  for (const name of ['rpcpool_consistency_waits_total', 'rpcpool_affinity_hits_total', 'rpcpool_lookup_retries_total']) {
    assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'), `${name} in rpcpoolctl metrics`);
    assert.match(viaHttp.body, new RegExp(`^${name}(\\{[^}]*\\})? `, 'm'), `${name} in GET /metrics`);
  }

  for (const n of ['a', 'b']) assert.equal((await pool.ctl(`enable ${n}`)).ok, true);
  conn.destroy();
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});

test('a node that goes backwards (reset behind its URL) is seen behind again by the prober', { timeout: TEST_MS }, async () => {
  const nodes = await startAnvils(2);
  const [a, b] = nodes;
  await mine(a, 10);
  await mine(b, 10);
  const snap = await direct(a, 'evm_snapshot');
  await mine(a, 5); // a at 15
  const pool = await startPool(nodes, { workers: 1 });
  await waitHeads(pool, nodes);
  // traffic shows 15 from a: heads only move up between probes
  const c = await lib.ipcClient(pool.socket);
  for (let i = 0; i < 4; i++) await c.call({ method: 'eth_blockNumber', params: [] });
  c.destroy();
  // a goes back to 10 (as a node replaced or resynced behind its URL would)
  assert.equal(await direct(a, 'evm_revert', [snap]), true);
  const t0 = Date.now();
  await waitHeads(pool, nodes); // status shows a at 10 again: the probe is the truth
  figure(`a reverted 15 -> 10: its head in status back to 10 after ${Date.now() - t0} ms (probes every ${PROBE_MS} ms)`);
  assert.equal(await pool.stop(), 0);
  lib.assertNoErrors(pool);
});
