#!/usr/bin/env node
// cache_poll.js - issue 19 target 1, run by bench/cache.sh: CLIENTS clients
// each polling eth_blockNumber and eth_getBlockByNumber("latest", false)
// every POLL_MS against an anvil that makes a block per second
// (--block-time 1), through rpcpoold, in three modes: the response cache and
// coalescing on ("on"); the same with the endpoint's ws_url straight to
// anvil (not through the proxy), so the head follower's pushed head keeps
// head-dependent entries until the head moves ("ws"); and both off
// (cache.max_bytes = 0; coalesce = false: "off"). A counting proxy (tests/integration/countproxy.js) in front of
// anvil counts the upstream calls; an observer polls anvil directly every
// 10 ms to learn when each block appeared.
//
//   node bench/cache_poll.js --rpcpoold BIN --anvil BIN [--seconds S]
//        [--clients N] [--poll-ms MS] [--json FILE]
//
// Printed per mode: upstream calls per method per block (per distinct head
// the clients were shown: the blocks made while they polled and the head
// current when they began, which costs its call too), the share of the
// clients' calls saved, and freshness: for each client and each new block,
// whether the client's first poll sent after the block appeared showed it,
// else whether its second one did, and the worst lag.
'use strict';

const child_process = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startCountProxy } = require('../tests/integration/countproxy.js');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const RPCPOOLD = opt('--rpcpoold', 'build/bench/rpcpoold');
const ANVIL = opt('--anvil', 'tests/node_modules/.bin/anvil');
const SECONDS = Number(opt('--seconds', '12'));
const CLIENTS = Number(opt('--clients', '100'));
const POLL_MS = Number(opt('--poll-ms', '100'));
const JSON_OUT = opt('--json', null);
const METHODS = ['eth_blockNumber', 'eth_getBlockByNumber'];

const procs = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function killAll() {
  for (const p of procs) {
    try {
      process.kill(p.group ? -p.pid : p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function rpc(url, method, params = []) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: '/', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => {
        try {
          resolve(JSON.parse(b));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startAnvil() {
  const port = await freePort();
  const p = child_process.spawn(ANVIL, ['--host', '127.0.0.1', '--port', String(port), '--block-time', '1',
    '--quiet'], { stdio: 'ignore' });
  procs.push({ pid: p.pid });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => typeof (await rpc(url, 'eth_blockNumber')).result === 'string', 20000, 'anvil');
  return { url, proc: p };
}

async function startPool(dir, upstream, on, wsUrl) {
  const sock = path.join(dir, 'pool.ipc');
  const ctl = path.join(dir, 'pool.ctl');
  const conf = path.join(dir, 'pool.conf');
  fs.writeFileSync(conf, `name = "bench-cache";
endpoints = ( ${wsUrl ? `{ url = "${upstream}"; ws_url = "${wsUrl}"; }` : `"${upstream}"`} );
rate_limit = { max_requests = 1000000000; window_ms = 1000; burst_size = 1000000000; };
max_connections = 64;
min_connections = 0;
health_check_interval_ms = 600000;
health_check = { method = "web3_clientVersion"; };
cache = { max_bytes = ${on ? 67108864 : 0}; finality_depth = 64; };
coalesce = ${on ? 'true' : 'false'};
server = { socket = "${sock}"; control_socket = "${ctl}"; shm_name = "/rpcpool.bench-cache-${process.pid}";
  workers = 2; log_level = "warn"; max_clients = 10000; };
`);
  const p = child_process.spawn(RPCPOOLD, ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  procs.push({ pid: p.pid, group: true });
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(sock);
    s.once('connect', () => {
      s.write('{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}\n');
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
    });
    s.once('error', () => resolve(false));
  }), 20000, 'rpcpoold');
  return { sock, proc: p };
}

// One polling client: every POLL_MS (first at a random phase) both calls on
// one IPC connection; records {sent, got, block} per answer.
function client(sock, until, polls) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let buf = '';
    let id = 0;
    const pending = new Map();
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const v = JSON.parse(line);
        const p = pending.get(v.id);
        if (!p) continue;
        pending.delete(v.id);
        const r = v.result;
        const block = r == null ? null : Number(typeof r === 'string' ? r : r.number);
        polls.push({ sent: p.sent, got: Date.now(), method: p.method, block, error: v.error ? 1 : 0 });
      }
    });
    s.once('error', reject);
    s.once('connect', () => {
      const tick = () => {
        const now = Date.now();
        if (now >= until) {
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 500);
          return;
        }
        for (const m of METHODS) {
          id++;
          pending.set(id, { sent: now, method: m });
          const params = m === 'eth_getBlockByNumber' ? ['latest', false] : [];
          s.write(JSON.stringify({ jsonrpc: '2.0', id, method: m, params }) + '\n');
        }
        setTimeout(tick, POLL_MS);
      };
      setTimeout(tick, Math.floor(Math.random() * POLL_MS));
    });
  });
}

async function runMode(mode) {
  const on = mode !== 'off';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpcpool-cachebench-'));
  const anvil = await startAnvil();
  const proxy = await startCountProxy(anvil.url);
  const wsUrl = mode === 'ws' ? anvil.url.replace('http://', 'ws://') + '/' : null;
  const pool = await startPool(dir, proxy.url, on, wsUrl);
  // the observer: when each block appeared, straight from anvil
  const seen = new Map();
  let observing = true;
  const observer = (async () => {
    while (observing) {
      try {
        const n = Number((await rpc(anvil.url, 'eth_blockNumber')).result);
        if (!seen.has(n)) seen.set(n, Date.now());
      } catch {
        /* next time */
      }
      await sleep(10);
    }
  })();
  await sleep(1200); // a block or so before counting
  proxy.reset();
  const t0 = Date.now();
  const until = t0 + SECONDS * 1000;
  const per = Array.from({ length: CLIENTS }, () => []);
  await Promise.all(per.map((polls) => client(pool.sock, until, polls)));
  const counts = { ...proxy.counts };
  observing = false;
  await observer;
  // blocks that appeared while the clients polled, with two polls' room at the end
  const blocks = [...seen.entries()].filter(([, t]) => t > t0 && t < until - 2 * POLL_MS);
  const made = [...seen.entries()].filter(([, t]) => t >= t0 && t <= until).length;
  let first = 0;
  let second = 0;
  let later = 0;
  let worst = 0;
  let calls = 0;
  let errors = 0;
  for (const polls of per) {
    calls += polls.length;
    errors += polls.reduce((a, p) => a + p.error, 0);
    // ticks: both calls of one poll share their send time
    const ticks = new Map();
    for (const p of polls) {
      const t = ticks.get(p.sent) || { sent: p.sent, block: -1, got: 0 };
      if (p.block !== null && p.block > t.block) t.block = p.block;
      t.got = Math.max(t.got, p.got);
      ticks.set(p.sent, t);
    }
    const ts = [...ticks.values()].sort((a, b) => a.sent - b.sent);
    for (const [n, at] of blocks) {
      const after = ts.filter((t) => t.sent > at);
      if (!after.length) continue;
      if (after[0].block >= n) first++;
      else if (after.length > 1 && after[1].block >= n) second++;
      else later++;
      const shown = ts.find((t) => t.block >= n);
      if (shown) worst = Math.max(worst, shown.got - at);
    }
  }
  await (async () => {
    try {
      process.kill(-pool.proc.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await proxy.close();
    try {
      anvil.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  })();
  // per block: per distinct head the clients were shown by that method (the
  // blocks made in the window and the one current when it began, which
  // needs its call too); per_block_made divides by the blocks made only
  const perMethod = {};
  for (const m of METHODS) {
    const client = calls / METHODS.length;
    const heads = new Set();
    for (const polls of per) for (const p of polls) if (p.method === m && p.block !== null) heads.add(p.block);
    const n = counts[m] || 0;
    perMethod[m] = { upstream: n, client, heads_shown: heads.size, per_block: heads.size ? n / heads.size : null,
      per_block_made: made ? n / made : null };
  }
  const up = METHODS.reduce((a, m) => a + (counts[m] || 0), 0);
  return { mode, seconds: SECONDS, clients: CLIENTS, poll_ms: POLL_MS, blocks: made,
    client_calls: calls, client_errors: errors, upstream_calls: up, other_upstream: counts,
    saved_percent: calls ? 100 * (1 - up / calls) : 0, per_method: perMethod,
    fresh: { pairs: first + second + later, first_poll: first, second_poll: second, later, worst_lag_ms: worst } };
}

function show(r) {
  const f = r.fresh;
  const pct = (x) => (f.pairs ? (100 * x / f.pairs).toFixed(1) : '-');
  console.log(`cache ${r.mode.padEnd(3)}: ${r.blocks} blocks, ${r.client_calls} client calls ` +
    `(${r.client_errors} errors), ${r.upstream_calls} upstream: ${r.saved_percent.toFixed(2)} % saved`);
  for (const [m, v] of Object.entries(r.per_method)) {
    console.log(`  ${m.padEnd(22)} upstream ${String(v.upstream).padStart(6)}  per block shown ` +
      `${v.per_block === null ? '-' : v.per_block.toFixed(2)} (${v.heads_shown} heads shown; per block made ` +
      `${v.per_block_made === null ? '-' : v.per_block_made.toFixed(2)})`);
  }
  console.log(`  freshness: of ${f.pairs} (client, new block) pairs, ${pct(f.first_poll)} % shown at the ` +
    `first poll sent after the block, ${pct(f.second_poll)} % at the second, ${f.later} later; ` +
    `worst lag ${f.worst_lag_ms} ms`);
}

// The modes next to each other, one column each.
function sideBySide(rs) {
  const col = (x) => String(x).padStart(12);
  const row = (label, f) => console.log(`${label.padEnd(36)}${rs.map((r) => col(f(r))).join('')}`);
  const pct = (r, x) => (r.fresh.pairs ? `${(100 * x / r.fresh.pairs).toFixed(1)} %` : '-');
  const names = { on: 'cache on', ws: 'on+ws_url', off: 'cache off' };
  row('', (r) => names[r.mode] || r.mode);
  row('blocks', (r) => r.blocks);
  for (const m of METHODS) row(`${m} per block shown`, (r) => (r.per_method[m].per_block ?? 0).toFixed(2));
  row('calls saved', (r) => `${r.saved_percent.toFixed(2)} %`);
  row('fresh at the first poll', (r) => pct(r, r.fresh.first_poll));
  row('fresh by the second poll', (r) => pct(r, r.fresh.first_poll + r.fresh.second_poll));
  row('worst lag (ms)', (r) => r.fresh.worst_lag_ms);
}

async function main() {
  const results = [];
  for (const mode of ['on', 'ws', 'off']) {
    const r = await runMode(mode);
    show(r);
    results.push(r);
  }
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  sideBySide(results);
  const [on, a, b] = results; /* the targets are the ws_url mode's */
  const perBlock = (r) => Math.max(...Object.values(r.per_method).map((v) => v.per_block || 0));
  console.log(`(cache on without ws_url: ${perBlock(on).toFixed(2)} calls per method per block, ` +
    `${on.saved_percent.toFixed(2)} % saved, ` +
    `${(100 * on.fresh.first_poll / Math.max(1, on.fresh.pairs)).toFixed(1)} % fresh at the first poll)`);
  const worstPerBlock = Math.max(...Object.values(a.per_method).map((v) => v.per_block || 0));
  console.log(`target: <= 1 upstream call per method per block: ${worstPerBlock <= 1 ? 'PASS' : 'FAIL'} ` +
    `(${worstPerBlock.toFixed(2)}; off: ${Math.max(...Object.values(b.per_method).map((v) => v.per_block || 0)).toFixed(2)})`);
  console.log(`target: >= 95 % of calls saved: ${a.saved_percent >= 95 ? 'PASS' : 'FAIL'} ` +
    `(${a.saved_percent.toFixed(2)} %; off: ${b.saved_percent.toFixed(2)} %)`);
  const within = (r) => (r.fresh.pairs ? (r.fresh.first_poll + r.fresh.second_poll) / r.fresh.pairs : 0);
  console.log(`target: every client sees each new block within one poll (at its first or second poll ` +
    `after the block): ${within(a) === 1 ? 'PASS' : 'FAIL'} (${(100 * within(a)).toFixed(2)} %; at the first ` +
    `poll ${(100 * a.fresh.first_poll / Math.max(1, a.fresh.pairs)).toFixed(1)} % on, ` +
    `${(100 * b.fresh.first_poll / Math.max(1, b.fresh.pairs)).toFixed(1)} % off)`);
  process.exit(0);
}

main().catch((e) => {
  console.error(`cache_poll: ${e.stack || e}`);
  process.exit(1);
});
