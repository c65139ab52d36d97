// cache.test.js - issue 19 (part 1) end to end: the shared response cache and
// host-wide coalescing (INTERFACE.md section 8 "Cache, coalescing"), seen
// from outside, over a real anvil behind a counting proxy
// (countproxy.js): every upstream call the pool makes is counted there.
//
// - Coalescing across workers, cache off: N identical slow reads from N
//   clients spread over several workers make one upstream call, and each
//   client gets its own id back (numbers and strings).
// - A failing leader (HTTP 500, no retries) or a SIGKILLed leader worker
//   does not strand its followers: they make their own call at once.
// - The cache: a repeated read is answered without an upstream call (hits
//   counted); never a stale head (a block mined through the pool shows on
//   the very next eth_blockNumber; one mined behind its back shows once the
//   head-dependent entry's 100 ms are over); never an answer from a block a
//   reorg removed (anvil_reorg through the pool: at once; behind its back:
//   after 100 ms), while final blocks stay cached.
// - Never cached: writes, errors, "pending", null results, filters,
//   no_retry_methods.
// - status (rpcpoolctl), rpcpoolstat -j and the metrics show the counters.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib.js');
const promcheck = require('./promcheck.js');
const { startCountProxy } = require('./countproxy.js');

const NO_LIMIT = { max_requests: 1000000, window_ms: 1000, burst_size: 100000 };
const HEAD_MAX_AGE_MS = 100; /* src/worker/cache_hook.c */
const TEST_MS = 120000;
const ADDR = '0x00000000000000000000000000000000000000aa';

async function setup({ workers = 2, cache = { max_bytes: 4194304, finality_depth: 3 }, coalesce = true,
  settings = {} } = {}) {
  const anvil = await lib.startAnvil();
  const proxy = await startCountProxy(anvil.url);
  const pool = await lib.startPool({
    endpoints: [{ url: proxy.url, name: 'anvil' }],
    workers,
    settings: {
      rate_limit: NO_LIMIT,
      health_check_interval_ms: 600000, /* the prober stays out of the counts */
      health_check: { method: 'web3_clientVersion' },
      min_connections: 0, /* no warm-up calls either */
      cache,
      coalesce,
      ...settings,
    },
    timeout: 30000,
  });
  /* the prober's first round (health, chain id, head) is out of the counts */
  await lib.waitFor(() => proxy.counts.web3_clientVersion && proxy.counts.eth_chainId &&
    proxy.counts.eth_blockNumber, { timeout: 20000, message: "the prober's first probes" });
  proxy.reset();
  const cleanup = async () => {
    await pool.stop().catch(() => {});
    await proxy.close();
    await anvil.stop();
  };
  return { anvil, proxy, pool, cleanup };
}

async function counter(pool, name, labels = {}) {
  const m = await pool.ctl('metrics', { timeout: 10000 });
  assert.equal(m.ok, true);
  const s = promcheck.parse(m.text).filter((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => x.labels && x.labels[k] === v));
  return s.reduce((a, x) => a + x.value, 0);
}

// Open N IPC clients.
async function clients(pool, n) {
  const cs = [];
  for (let i = 0; i < n; i++) cs.push(await lib.ipcClient(pool.socket));
  return cs;
}

// The pid of the pool process whose TCP connection from local port PORT
// reaches the proxy (ss -tnp).
async function pidOfPort(port) {
  const r = await lib.run('ss', ['-tnpH', `sport = :${port}`], { timeout: 10000 });
  const m = /pid=(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : null;
}

async function workerRequests(pool) {
  const st = await pool.ctl('status', { timeout: 10000 });
  return Object.fromEntries(st.workers.filter((w) => w.kind === 'worker').map((w) => [w.pid, w.requests]));
}

test('identical reads from clients on different workers share one upstream call (cache off)', { timeout: TEST_MS }, async () => {
  const N = 12;
  const { proxy, pool, cleanup } = await setup({ workers: 3, cache: { max_bytes: 0, finality_depth: 3 } });
  try {
    const cs = await clients(pool, N);
    await lib.waitFor(async () => {
      const st = await pool.ctl('status');
      return st.workers.filter((w) => w.kind === 'worker' && w.clients > 0).length >= 2;
    }, { timeout: 10000, message: 'clients on at least two workers' });
    const before = await workerRequests(pool);
    proxy.reset();
    proxy.delayMs.eth_getBalance = 1500; /* every follower arrives while the leader waits */
    const ids = cs.map((_, i) => (i % 2 ? `client-${i}` : 1000 + i));
    const answers = await Promise.all(cs.map((c, i) => c.call({ jsonrpc: '2.0', id: ids[i],
      method: 'eth_getBalance', params: [i % 3 ? ADDR : ADDR.toUpperCase().replace('0X', '0x'), 'latest'] })));
    for (let i = 0; i < N; i++) {
      assert.deepEqual(answers[i].id, ids[i], `client ${i} got its own id back`);
      assert.equal(answers[i].result, '0x0', JSON.stringify(answers[i]));
    }
    const after = await workerRequests(pool);
    const used = Object.keys(after).filter((pid) => (after[pid] || 0) > (before[pid] || 0)).length;
    lib.figure(`coalescing: ${N} clients on ${used} workers -> ${proxy.counts.eth_getBalance} upstream eth_getBalance`);
    assert.ok(used >= 2, `the clients were served by ${used} worker(s)`);
    assert.equal(proxy.counts.eth_getBalance, 1, JSON.stringify(proxy.counts));
    assert.equal(await counter(pool, 'rpcpool_coalesced_total'), N - 1);
    /* the cache is off: the same call again goes upstream */
    proxy.delayMs.eth_getBalance = 0;
    await cs[0].call({ method: 'eth_getBalance', params: [ADDR, 'latest'] });
    assert.equal(proxy.counts.eth_getBalance, 2);
    assert.equal(await counter(pool, 'rpcpool_cache_requests_total', { result: 'hit' }), 0);
    for (const c of cs) c.destroy();
  } finally {
    await cleanup();
  }
});

test('a failing leader does not strand its followers: they ask themselves', { timeout: TEST_MS }, async () => {
  const N = 6;
  const { proxy, pool, cleanup } = await setup({ workers: 2, cache: { max_bytes: 0, finality_depth: 3 },
    settings: { retries: 0 } });
  try {
    const cs = await clients(pool, N);
    proxy.reset();
    proxy.delayMs.eth_getCode = 1000;
    proxy.failNext.eth_getCode = 1; /* the leader's call: HTTP 500 after 1 s */
    const t0 = Date.now();
    const answers = await Promise.all(cs.map((c) => c.call({ method: 'eth_getCode', params: [ADDR, 'latest'] })));
    const failed = answers.filter((a) => a.error);
    const ok = answers.filter((a) => a.result === '0x');
    lib.figure(`failing leader: ${failed.length} error(s), ${ok.length} answers, upstream ${proxy.counts.eth_getCode}, ${Date.now() - t0} ms`);
    assert.equal(failed.length, 1, JSON.stringify(answers));
    assert.equal(failed[0].error.code, -32603);
    assert.equal(ok.length, N - 1, JSON.stringify(answers));
    assert.equal(proxy.counts.eth_getCode, 1 + (N - 1), 'each follower made its own call');
    for (const c of cs) c.destroy();
  } finally {
    await cleanup();
  }
});

test('a SIGKILLed leader does not strand its followers on other workers', { timeout: TEST_MS }, async () => {
  const N = 8;
  const { proxy, pool, cleanup } = await setup({ workers: 2, cache: { max_bytes: 0, finality_depth: 3 },
    settings: { request_timeout_ms: 30000, attempt_timeout_ms: 30000 } });
  try {
    /* clients on both workers: connect more until each worker holds some */
    const cs = await clients(pool, N);
    await lib.waitFor(async () => {
      const st = await pool.ctl('status');
      if (st.workers.filter((w) => w.kind === 'worker' && w.clients > 0).length >= 2) return true;
      if (cs.length < 64) cs.push(await lib.ipcClient(pool.socket));
      return false;
    }, { timeout: 20000, message: 'clients on both workers' });
    proxy.reset();
    proxy.delayMs.eth_getStorageAt = 60000; /* the leader never gets its answer */
    const req = () => ({ method: 'eth_getStorageAt', params: [ADDR, '0x0', 'latest'] });
    const first = cs[0].call(req(), { timeout: 60000 }).catch((e) => ({ lost: e.message }));
    await lib.waitFor(() => proxy.arrivals.length === 1, { timeout: 10000, message: 'the leader upstream' });
    proxy.delayMs.eth_getStorageAt = 0;
    const leaderPid = await pidOfPort(proxy.arrivals[0].port);
    assert.ok(leaderPid, 'the leader worker found by its upstream connection');
    const rest = cs.slice(1).map((c) => c.call(req(), { timeout: 10000 }).catch((e) => ({ lost: e.message })));
    /* let the followers join the flight (if one has not yet, it leads its
     * own call: the assertions below hold either way) */
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(proxy.arrivals.length, 1, 'the followers wait for the leader');
    process.kill(leaderPid, 'SIGKILL');
    const answers = await Promise.all(rest);
    await first;
    const served = answers.filter((a) => a.result === '0x0000000000000000000000000000000000000000000000000000000000000000');
    const lost = answers.filter((a) => a.lost);
    lib.figure(`killed leader ${leaderPid}: ${served.length} followers answered, ${lost.length} lost with its worker, upstream ${proxy.counts.eth_getStorageAt}`);
    assert.equal(served.length + lost.length, cs.length - 1, JSON.stringify(answers));
    assert.ok(served.length >= 1, 'some followers were on the other worker');
    for (const c of cs) c.destroy();
  } finally {
    await cleanup();
  }
});

test('repeated reads are hits; never a stale head', { timeout: TEST_MS }, async () => {
  const { anvil, proxy, pool, cleanup } = await setup({ workers: 2 });
  try {
    const [c] = await clients(pool, 1);
    const bn = async () => Number((await c.call({ method: 'eth_blockNumber' })).result);
    proxy.reset();
    const hits0 = await counter(pool, 'rpcpool_cache_requests_total', { result: 'hit' });
    const first = await bn();
    for (let i = 0; i < 19; i++) assert.equal(await bn(), first);
    const hits = (await counter(pool, 'rpcpool_cache_requests_total', { result: 'hit' })) - hits0;
    lib.figure(`20 eth_blockNumber back to back: ${proxy.counts.eth_blockNumber} upstream, ${hits} hits`);
    assert.ok(proxy.counts.eth_blockNumber < 20 && hits > 0, JSON.stringify(proxy.counts));
    assert.equal(proxy.counts.eth_blockNumber + hits, 20);

    /* a block mined through the pool: the very next call shows it */
    await c.call({ method: 'evm_mine' });
    assert.equal(await bn(), first + 1);
    const blk = await c.call({ method: 'eth_getBlockByNumber', params: ['latest', false] });
    assert.equal(Number(blk.result.number), first + 1);

    /* mined behind the pool's back: shown once the entry's time is over */
    await anvil.rpc('evm_mine', []);
    const t = Date.now();
    await lib.waitFor(() => Date.now() - t > HEAD_MAX_AGE_MS, { timeout: 5000, interval: 5 });
    assert.equal(await bn(), first + 2, 'the next eth_blockNumber shows the new block');
    const blk2 = await c.call({ method: 'eth_getBlockByNumber', params: ['latest', false] });
    assert.equal(Number(blk2.result.number), first + 2);
    c.destroy();
  } finally {
    await cleanup();
  }
});

test('never an answer from a block a reorg removed; final blocks stay cached', { timeout: TEST_MS }, async () => {
  const { anvil, proxy, pool, cleanup } = await setup({ workers: 2, cache: { max_bytes: 4194304, finality_depth: 3 } });
  try {
    await anvil.rpc('anvil_mine', ['0xa']);
    const [c] = await clients(pool, 1);
    const head = Number((await c.call({ method: 'eth_blockNumber' })).result);
    const byNum = async (n) => (await c.call({ method: 'eth_getBlockByNumber', params: ['0x' + n.toString(16), false] })).result;
    const direct = async (n) => (await anvil.rpc('eth_getBlockByNumber', ['0x' + n.toString(16), false])).result;

    /* a final block (head - 5 with finality_depth 3): cached for good */
    proxy.reset();
    const fin = await byNum(head - 5);
    const t0 = Date.now();
    await lib.waitFor(() => Date.now() - t0 > 2 * HEAD_MAX_AGE_MS, { timeout: 5000, interval: 5 });
    assert.equal((await byNum(head - 5)).hash, fin.hash);
    assert.equal(proxy.counts.eth_getBlockByNumber, 1, 'the final block came from the cache');

    /* a recent block, reorged behind the pool's back */
    const old = await byNum(head - 1);
    assert.equal(old.hash, (await direct(head - 1)).hash);
    await anvil.rpc('anvil_reorg', [2, []]);
    const t1 = Date.now();
    const fresh = (await direct(head - 1)).hash;
    assert.notEqual(fresh, old.hash, 'anvil_reorg replaced the block');
    await lib.waitFor(() => Date.now() - t1 > HEAD_MAX_AGE_MS, { timeout: 5000, interval: 5 });
    assert.equal((await byNum(head - 1)).hash, fresh, 'the removed block is not served');
    const latest = (await c.call({ method: 'eth_getBlockByNumber', params: ['latest', false] })).result;
    assert.equal(latest.hash, (await direct(head)).hash);

    /* a reorg through the pool: the very next read shows it */
    await byNum(head - 1); /* cached again */
    const r = await c.call({ method: 'anvil_reorg', params: [2, []] });
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal((await byNum(head - 1)).hash, (await direct(head - 1)).hash);
    assert.notEqual((await byNum(head - 1)).hash, fresh);
    /* the final block is still a hit */
    const n0 = proxy.counts.eth_getBlockByNumber;
    assert.equal((await byNum(head - 5)).hash, fin.hash);
    assert.equal(proxy.counts.eth_getBlockByNumber, n0);
    c.destroy();
  } finally {
    await cleanup();
  }
});

test('writes, errors, pending, nulls, filters and no_retry_methods are never cached', { timeout: TEST_MS }, async () => {
  const { anvil, proxy, pool, cleanup } = await setup({ workers: 2,
    settings: { no_retry_methods: ['eth_sendRawTransaction', 'eth_sendTransaction', 'eth_getCode'] } });
  try {
    const [c] = await clients(pool, 1);
    const accts = (await anvil.rpc('eth_accounts', [])).result;
    proxy.reset();
    const twice = async (method, params) => {
      const a = await c.call({ method, params });
      const b = await c.call({ method, params });
      return [a, b];
    };
    const [s1, s2] = await twice('eth_sendTransaction', [{ from: accts[0], to: ADDR, value: '0x1' }]);
    assert.match(s1.result, /^0x[0-9a-f]{64}$/);
    assert.notEqual(s1.result, s2.result);
    const [e1, e2] = await twice('eth_getBalance', ['0xnot-an-address', 'latest']);
    assert.ok(e1.error && e2.error, JSON.stringify([e1, e2]));
    await twice('eth_getBalance', [ADDR, 'pending']);
    const [n1] = await twice('eth_getBlockByHash', ['0x' + '11'.repeat(32), false]);
    assert.equal(n1.result, null);
    await twice('eth_getCode', [ADDR, 'latest']);
    const f = await c.call({ method: 'eth_newBlockFilter' });
    await twice('eth_getFilterChanges', [f.result]);
    const expect = { eth_sendTransaction: 2, eth_getBalance: 4, eth_getBlockByHash: 2, eth_getCode: 2,
      eth_getFilterChanges: 2 };
    for (const [m, n] of Object.entries(expect)) assert.equal(proxy.counts[m], n, `${m}: ${JSON.stringify(proxy.counts)}`);
    /* a cacheable read for contrast: the second one is a hit (net_version:
     * the prober's chain check asks eth_chainId on its own schedule) */
    await c.call({ method: 'net_version' });
    await c.call({ method: 'net_version' });
    assert.equal(proxy.counts.net_version, 1);
    c.destroy();
  } finally {
    await cleanup();
  }
});

test('status, rpcpoolstat -j and metrics show the cache', { timeout: TEST_MS }, async () => {
  const { pool, cleanup } = await setup({ workers: 1 });
  try {
    const [c] = await clients(pool, 1);
    await c.call({ method: 'eth_chainId' });
    await c.call({ method: 'eth_chainId' });
    const st = await pool.ctl('status');
    assert.equal(st.cache.enabled, true);
    assert.ok(st.cache.hits >= 1 && st.cache.misses >= 1 && st.cache.entries >= 1, JSON.stringify(st.cache));
    assert.ok(st.cache.bytes_used > 0 && st.cache.bytes_total >= 4194304, JSON.stringify(st.cache));
    const j = await lib.shmStat(pool);
    assert.equal(j.cache.hits, st.cache.hits);
    for (const k of ['hits', 'misses', 'coalesced', 'entries', 'bytes_used']) assert.equal(typeof j.cache[k], 'number');
    const table = await lib.run(lib.daemonBin('rpcpoolctl'), ['-s', pool.controlSocket, 'status'], { timeout: 10000 });
    assert.match(table.stdout, /cache on\s+hits \d+\s+misses \d+\s+coalesced \d+\s+entries \d+\s+bytes \d+\/\d+/);
    const stat1 = await lib.run(lib.daemonBin('rpcpoolstat'), ['-n', pool.shmName, '-1'], { timeout: 10000 });
    assert.match(stat1.stdout, /cache: on\s+hits \d+/);
    const m = await pool.ctl('metrics');
    assert.match(m.text, /rpcpool_cache_requests_total\{result="hit"\} \d+/);
    assert.match(m.text, /rpcpool_cache_requests_total\{result="miss"\} \d+/);
    assert.match(m.text, /rpcpool_coalesced_total \d+/);
    c.destroy();
  } finally {
    await cleanup();
  }
});

test('batches: all hits answered from the cache with each id; else sent whole, their answers kept', { timeout: TEST_MS }, async () => {
  const { proxy, pool, cleanup } = await setup({ workers: 1 });
  try {
    const [c] = await clients(pool, 1);
    const blk = ['0x0', false];
    /* a batch of misses goes upstream as it came; its cacheable answers are kept */
    const b1 = await c.call([{ id: 'a', method: 'eth_chainId' }, { id: 2, method: 'net_version' },
      { id: 3, method: 'eth_getBalance', params: [ADDR, 'pending'] }]);
    assert.deepEqual(b1.map((x) => x.id).sort(), [2, 3, 'a'].sort());
    assert.equal(proxy.counts.eth_chainId, 1);
    /* single calls now hit what the batch brought */
    await c.call({ method: 'eth_chainId' });
    await c.call({ method: 'net_version' });
    assert.equal(proxy.counts.eth_chainId, 1);
    assert.equal(proxy.counts.net_version, 1);
    /* every call a hit (and an invalid one): no upstream call, each its own id */
    await c.call({ method: 'eth_getBlockByHash', params: [(await c.call({ method: 'eth_getBlockByNumber', params: blk })).result.hash, false] });
    const total = proxy.total();
    const raw = await c.call([{ id: 'x', method: 'eth_chainId' }, { id: 7, method: 'net_version' },
      { jsonrpc: '2.0', id: 8 }]);
    assert.equal(proxy.total(), total, `answered from the cache: ${JSON.stringify(proxy.counts)}`);
    const byId = Object.fromEntries(raw.map((x) => [JSON.stringify(x.id), x]));
    assert.equal(byId['"x"'].result, '0x7a69');
    assert.equal(byId['7'].result, '31337');
    assert.equal(byId['8'].error.code, -32600);
    /* one call not cacheable (pending), or a notification: the batch goes upstream */
    await c.call([{ id: 10, method: 'eth_chainId' }, { id: 11, method: 'eth_getBalance', params: [ADDR, 'pending'] }]);
    assert.equal(proxy.counts.eth_chainId, 2);
    await c.send(JSON.stringify([{ jsonrpc: '2.0', id: 12, method: 'eth_chainId' }, { jsonrpc: '2.0', method: 'eth_chainId' }]) + '\n');
    await lib.waitFor(() => proxy.counts.eth_chainId === 4, { timeout: 10000, message: 'the batch with a notification upstream' });
    /* a write in a batch goes upstream and ends the head's entries */
    const n0 = Number((await c.call({ method: 'eth_blockNumber' })).result);
    await c.call([{ id: 20, method: 'evm_mine' }, { id: 21, method: 'eth_chainId' }]);
    assert.equal(Number((await c.call({ method: 'eth_blockNumber' })).result), n0 + 1);
    c.destroy();
  } finally {
    await cleanup();
  }
});
