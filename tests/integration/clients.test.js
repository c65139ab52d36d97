// clients.test.js - real Ethereum clients end to end through rpcpoold
// (issue 7, docs/interface.md sections 2 and 3): ethers v6 IpcSocketProvider and
// JsonRpcProvider, Foundry's cast over IPC and over HTTP, and curl
// --unix-socket, against one anvil node reached through two endpoints
// (http://127.0.0.1:P/ and http://localhost:P/: two endpoints, one chain, so
// transactions sent through either land on the same chain).
//
// Each transaction case sends ETH from anvil's first development account to a
// fresh address, awaits its receipt (status 1), and checks that the
// recipient's balance grew by exactly the value (read through the pool and
// directly from anvil) and that the transaction reached anvil exactly once:
// the sender's nonce on anvil advanced by exactly the number of transactions
// sent, and anvil logged exactly that many eth_sendRawTransaction calls
// (eth_sendRawTransaction is in no_retry_methods by default).
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const { ethers } = require(path.join(lib.ROOT, 'tests', 'node_modules', 'ethers'));

// anvil's first development account (public, well-known test key).
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const CHAIN_ID = 31337;
const ONE_ETHER = 10n ** 18n;

// ethers answers an identical call made within 250 ms from its own cache
// (AbstractProvider's cacheTimeout): a balance read right after a transaction
// would be the one from before it, and a second transaction in a row would
// reuse the first one's nonce. Every call must reach the pool here.
const NO_CACHE = { cacheTimeout: -1 };

// Bounds: every step has one, and the whole file stays far under run.sh's
// per-suite limit even on a loaded machine.
const STEP_MS = 60000;
const CAST_MS = 60000;
const TEST_MS = 240000;

// Start anvil on a free loopback port WITHOUT --quiet, so that it logs the
// name of every JSON-RPC method it serves (one line each): the test counts
// eth_sendRawTransaction lines to prove a transaction reached the node once.
// Returns {port, url, proc, log, rpc(), stop(), count(method)}.
async function startLoggingAnvil() {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await lib.freePort();
    const proc = lib.spawnTracked(lib.tool('anvil'),
      ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(CHAIN_ID)],
      { name: 'anvil', stdio: ['ignore', 'pipe', 'pipe'] });
    const log = [];
    for (const stream of [proc.stdout, proc.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          log.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    const url = `http://127.0.0.1:${port}`;
    try {
      await lib.waitFor(async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error('anvil exited');
        const r = await lib.httpRpc(url, 'eth_blockNumber', [], { timeout: 2000 });
        return typeof r.result === 'string';
      }, { timeout: 30000, interval: 50, message: `anvil on port ${port}` });
    } catch (e) {
      lastErr = new Error(`${e.message}\n${log.slice(-30).join('\n')}`);
      try {
        proc.kill('SIGKILL');
      } catch {
        /* gone */
      }
      await proc.exited;
      continue;
    }
    return {
      port,
      url,
      proc,
      log,
      rpc: (method, params = []) => lib.httpRpc(url, method, params, { timeout: 10000 }),
      stop: () => lib.stopProc(proc, { timeout: 10000 }),
      // How many times anvil logged serving METHOD (a line that is exactly its name).
      count: (method) => log.filter((l) => l.trim() === method).length,
    };
  }
  throw lastErr;
}

// A fresh address nobody has used: its balance starts at 0.
function freshAddress() {
  return ethers.Wallet.createRandom().address;
}

describe('real clients through rpcpoold (one anvil, two endpoints)', () => {
  let node;
  let pool;
  let port;
  let httpUrl;

  // Read straight from anvil (not through the pool).
  const directNonce = async (addr) => BigInt((await node.rpc('eth_getTransactionCount', [addr, 'latest'])).result);
  const directBalance = async (addr) => BigInt((await node.rpc('eth_getBalance', [addr, 'latest'])).result);

  // Snapshot what a transaction case checks afterwards.
  async function snapshot(to) {
    return {
      nonce: await directNonce(ACCOUNT0),
      balance: await directBalance(to),
      sends: node.count('eth_sendRawTransaction'),
    };
  }

  // After N transactions of VALUE wei to TO since BEFORE: the sender's nonce
  // on anvil advanced by exactly N, anvil served exactly N
  // eth_sendRawTransaction calls, and TO received exactly N * VALUE.
  async function checkSentOnce(before, to, value, n = 1) {
    assert.equal(await directNonce(ACCOUNT0), before.nonce + BigInt(n), 'sender nonce advanced by the txs sent');
    // anvil logs the method line as it serves the call; bounded wait for the pipe.
    await lib.waitFor(() => node.count('eth_sendRawTransaction') >= before.sends + n,
      { timeout: 5000, message: 'anvil logged the eth_sendRawTransaction' });
    assert.equal(node.count('eth_sendRawTransaction'), before.sends + n,
      'eth_sendRawTransaction reached anvil exactly once per transaction');
    assert.equal(await directBalance(to), before.balance + value * BigInt(n), 'recipient got exactly the value');
  }

  before(async () => {
    node = await startLoggingAnvil();
    let lastErr;
    for (let attempt = 0; attempt < 3 && !pool; attempt++) {
      port = await lib.freePort();
      try {
        pool = await lib.startPool({
          endpoints: [`http://127.0.0.1:${node.port}/`, `http://localhost:${node.port}/`],
          workers: 2,
          settings: {
            chain_id: CHAIN_ID,
            // both endpoints carry reads and transactions (p2c over two
            // endpoints would mostly keep to the faster one)
            balance: 'round_robin',
            rate_limit: { max_requests: 100000, window_ms: 1000, burst_size: 10000 },
          },
          server: { http_listen: `127.0.0.1:${port}` },
          timeout: 30000,
        });
      } catch (e) {
        lastErr = e; // most likely the port was taken in between: try another
      }
    }
    if (!pool) throw lastErr;
    httpUrl = `http://127.0.0.1:${port}`;
    // Both endpoints probed and up (the first probe runs at start).
    await lib.waitFor(async () => {
      const r = await lib.httpRequest(`${httpUrl}/`, { path: '/health', timeout: 5000 });
      return r.status === 200 && JSON.parse(r.body).healthy === 2;
    }, { timeout: 30000, interval: 100, message: 'both endpoints healthy' });
  }, { timeout: TEST_MS });

  after(async () => {
    try {
      if (pool) {
        assert.equal(await pool.stop(), 0, 'rpcpoold stopped cleanly');
        lib.assertNoErrors(pool);
      }
    } finally {
      if (node) await node.stop();
    }
  });

  test('curl --unix-socket: POST eth_chainId and GET /health', { timeout: TEST_MS }, async () => {
    const curl = (args) => lib.run('curl', ['-sS', '--max-time', '30', ...args], { timeout: 40000 });
    let r = await curl(['--unix-socket', pool.socket, 'http://localhost/', '-H', 'content-type: application/json',
      '-d', '{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { jsonrpc: '2.0', id: 7, result: '0x7a69' });

    r = await curl(['--unix-socket', pool.socket, '-w', '\n%{http_code}', 'http://localhost/health']);
    assert.equal(r.code, 0, r.stderr);
    const nl = r.stdout.lastIndexOf('\n');
    assert.equal(r.stdout.slice(nl + 1), '200');
    assert.deepEqual(JSON.parse(r.stdout.slice(0, nl)), { status: 'ok', healthy: 2 });
  });

  // The ethers cases: reads, then one real transaction through PROVIDER.
  async function ethersCase(provider) {
    const n = await lib.withTimeout(provider.getBlockNumber(), STEP_MS, 'getBlockNumber');
    assert.equal(typeof n, 'number');
    assert.equal(BigInt(n), BigInt((await node.rpc('eth_blockNumber')).result));
    const network = await lib.withTimeout(provider.getNetwork(), STEP_MS, 'getNetwork');
    assert.equal(network.chainId, 31337n);
    const bal0 = await lib.withTimeout(provider.getBalance(ACCOUNT0), STEP_MS, 'getBalance');
    assert.equal(bal0, await directBalance(ACCOUNT0));

    const to = freshAddress();
    const value = ethers.parseEther('1.25');
    const before0 = await snapshot(to);
    assert.equal(await provider.getBalance(to), 0n);
    const wallet = new ethers.Wallet(KEY0, provider);
    const tx = await lib.withTimeout(wallet.sendTransaction({ to, value }), STEP_MS, 'sendTransaction');
    const receipt = await lib.withTimeout(tx.wait(), STEP_MS, 'tx.wait');
    assert.equal(receipt.status, 1);
    assert.equal(receipt.hash, tx.hash);
    assert.equal(await provider.getBalance(to), before0.balance + value, 'balance through the pool');
    await checkSentOnce(before0, to, value, 1);
  }

  test('ethers IpcSocketProvider: reads and a transaction', { timeout: TEST_MS }, async () => {
    const provider = new ethers.IpcSocketProvider(pool.socket, undefined, NO_CACHE);
    try {
      await ethersCase(provider);
    } finally {
      provider.destroy();
    }
  });

  test('ethers JsonRpcProvider over http_listen: reads and a transaction', { timeout: TEST_MS }, async () => {
    const provider = new ethers.JsonRpcProvider(httpUrl, undefined, NO_CACHE);
    try {
      await ethersCase(provider);
    } finally {
      provider.destroy();
    }
  });

  test('ethers JsonRpcProvider with staticNetwork', { timeout: TEST_MS }, async () => {
    const provider = new ethers.JsonRpcProvider(httpUrl, undefined, { ...NO_CACHE, staticNetwork: true });
    try {
      const network = await lib.withTimeout(provider.getNetwork(), STEP_MS, 'getNetwork');
      assert.equal(network.chainId, 31337n);
      assert.equal(typeof (await provider.getBlockNumber()), 'number');
    } finally {
      provider.destroy();
    }
  });

  test('ethers over IPC: several transactions in a row, each sent once', { timeout: TEST_MS }, async () => {
    const provider = new ethers.IpcSocketProvider(pool.socket, undefined, NO_CACHE);
    try {
      const wallet = new ethers.Wallet(KEY0, provider);
      const to = freshAddress();
      const value = 12345n;
      const before0 = await snapshot(to);
      const N = 3;
      for (let i = 0; i < N; i++) {
        const tx = await lib.withTimeout(wallet.sendTransaction({ to, value }), STEP_MS, `sendTransaction ${i}`);
        const receipt = await lib.withTimeout(tx.wait(), STEP_MS, `tx.wait ${i}`);
        assert.equal(receipt.status, 1);
      }
      await checkSentOnce(before0, to, value, N);
    } finally {
      provider.destroy();
    }
  });

  // The cast cases: block-number, chain-id, balance, send and receipt through RPCURL.
  async function castCase(rpcUrl) {
    const cast = async (args) => {
      const r = await lib.cast([...args, '--rpc-url', rpcUrl], { timeout: CAST_MS });
      assert.equal(r.code, 0, `cast ${args.join(' ')}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n` +
        `${r.stderr}${r.stdout}`);
      return r.stdout.trim();
    };
    const bn = await cast(['block-number']);
    assert.match(bn, /^\d+$/);
    assert.equal(BigInt(bn), BigInt((await node.rpc('eth_blockNumber')).result));
    assert.equal(await cast(['chain-id']), String(CHAIN_ID));
    assert.equal(BigInt(await cast(['balance', ACCOUNT0])), await directBalance(ACCOUNT0));

    const to = freshAddress();
    const before0 = await snapshot(to);
    assert.equal(await cast(['balance', to]), '0');
    const hash = await cast(['send', '--async', '--private-key', KEY0, to, '--value', '1ether']);
    assert.match(hash, /^0x[0-9a-f]{64}$/);
    const receipt = JSON.parse(await cast(['receipt', '--json', hash]));
    assert.equal(receipt.transactionHash, hash);
    assert.equal(BigInt(receipt.status), 1n);
    assert.equal(BigInt(await cast(['balance', to])), before0.balance + ONE_ETHER);
    await checkSentOnce(before0, to, ONE_ETHER, 1);
  }

  test('cast over IPC (--rpc-url SOCKET)', { timeout: TEST_MS }, async () => {
    assert.ok(fs.existsSync(pool.socket));
    await castCase(pool.socket);
  });

  test('cast over HTTP (--rpc-url http://127.0.0.1:PORT)', { timeout: TEST_MS }, async () => {
    await castCase(httpUrl);
  });

  // Runs last (the tests of a file run in order): both URLs carried the
  // traffic above and none of it failed.
  test('both endpoints served the clients, without failures', { timeout: TEST_MS }, async () => {
    const st = await pool.ctl('status');
    assert.equal(st.ok, true);
    assert.equal(st.endpoints.length, 2);
    for (const e of st.endpoints) {
      assert.equal(e.state, 'up', JSON.stringify(e));
      assert.ok(e.requests.ok > 0, `endpoint ${e.name} served requests: ${JSON.stringify(e)}`);
      assert.equal(e.requests.failed, 0, `endpoint ${e.name} had no failure: ${JSON.stringify(e)}`);
    }
  });
});
