#!/usr/bin/env node
// bench/hedge.js - `make bench`, hedged reads (issue 19): one of three
// endpoints answers 10 % of its calls after 500 ms. The same load
// (bench/rpcbench over rpcpoold's IPC socket, a plain read) in one run,
// side by side:
//   healthy, hedge off   all three endpoints answer at once (the baseline)
//   healthy, hedge on    the same, hedging on (what hedging costs when all is well)
//   slow, hedge off      the slow endpoint; no hedges (today's tail)
//   slow, hedge on       the slow endpoint; hedge = { quantile = 0.95; budget_percent = 10; }
// Each case: a fresh rpcpoold (cache and coalescing off, round-robin, so the
// slow endpoint gets its third of the calls whatever its latency), a warm-up
// load (the hedge delay is learned from recent latency), the upstreams'
// counters reset, then the measured load. Printed per case: client p50/p99,
// client calls, calls the upstreams saw, the extra ones against the budget,
// hedges sent/won; then the targets: p99 with hedging <= 2x the healthy p99,
// extra upstream calls <= budget_percent of the calls.
//
// Upstreams: tests/upstream/fault.js (Node, loopback), `delay` mode with
// delay_every = 10. Everything started here is stopped by pid at the end.
//
// Environment: RPCPOOL_BUILD [build/bench] (rpcpoold, rpcbench),
// BENCH_HEDGE_DURATION [8] seconds per measured load, BENCH_HEDGE_WARMUP [3],
// BENCH_HEDGE_CONNS [16] connections x 1 in flight, BENCH_WORKERS [2],
// BENCH_OUT [$RPCPOOL_BUILD/bench-results] (hedge.json, hedge.txt).
'use strict';

process.env.RPCPOOL_BUILD = process.env.RPCPOOL_BUILD || 'build/bench';
process.env.RPCPOOL_LIB_NO_TEST = '1'; // lib.js outside the test runner

const fs = require('node:fs');
const path = require('node:path');
const lib = require('../tests/integration/lib.js');

const DUR = Number(process.env.BENCH_HEDGE_DURATION || 8);
const WARM = Number(process.env.BENCH_HEDGE_WARMUP || 3);
const CONNS = Number(process.env.BENCH_HEDGE_CONNS || 16);
const WORKERS = Number(process.env.BENCH_WORKERS || 2);
const OUT = process.env.BENCH_OUT || path.join(lib.BUILD, 'bench-results');
const METHOD = 'web3_clientVersion';
const BUDGET = 10;
const SLOW = { delay_ms: 500, delay_every: 10 };
const NO_LIMIT = { max_requests: 100000000, window_ms: 1000, burst_size: 10000000 };

function say(s) {
  process.stdout.write(`${s}\n`);
}

// One rpcbench load against SOCKET for SECONDS; resolves to its JSON result.
async function rpcbench(socket, seconds, label) {
  const bin = path.join(lib.BUILD, 'rpcbench');
  const r = await lib.run(bin, ['--ipc', socket, '-c', String(CONNS), '-p', '1', '-d', String(seconds),
    '-n', '5000000', '-m', METHOD, '-t', '10000', '--json', '--label', label],
  { timeout: (seconds + 60) * 1000 });
  if (r.code !== 0) throw new Error(`rpcbench ${label}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// Calls of METHOD the upstreams saw, and connections they accepted.
async function upstreamCalls(faults) {
  let n = 0;
  let conns = 0;
  for (const f of faults) {
    const st = await f.state();
    n += st.by_method[METHOD] || 0;
    conns += st.connections_total || 0;
  }
  return { n, conns };
}

async function hedgeCounts(pool) {
  const st = await pool.ctl('status', { timeout: 10000 });
  return st.hedges || { sent: 0, won: 0, lost: 0, calls: 0 };
}

async function runCase(faults, { label, slow, budget }) {
  for (const f of faults) await f.setMode('ok');
  const pool = await lib.startPool({
    workers: WORKERS,
    endpoints: faults.map((f, i) => ({ name: `ep${i}`, url: f.url })),
    server: { log_level: 'warn' },
    settings: {
      balance: 'round_robin',
      health_check_interval_ms: 600000,
      rate_limit: NO_LIMIT,
      max_connections: 64,
      cache: { max_bytes: 0 },
      coalesce: false,
      hedge: { quantile: 0.95, budget_percent: budget },
    },
  });
  try {
    await lib.waitFor(async () => {
      for (const f of faults) if (((await f.state()).by_method.eth_chainId || 0) < 1) return false;
      return true;
    }, { timeout: 10000, message: "the prober's first round" });
    if (slow) await faults[2].setMode('delay', SLOW);
    await rpcbench(pool.socket, WARM, `${label} (warm-up)`);
    const h0 = await hedgeCounts(pool);
    for (const f of faults) await f.resetCounters();
    const r = await rpcbench(pool.socket, DUR, label);
    const up = await upstreamCalls(faults);
    const h1 = await hedgeCounts(pool);
    const res = {
      label, slow, budget,
      p50_ms: r.latency_us.p50 / 1000, p99_ms: r.latency_us.p99 / 1000, max_ms: r.latency_us.max / 1000,
      calls: r.sent, ok: r.ok, errors: r.errors, rps: r.ok_rps,
      upstream: up.n, extra: up.n - r.sent, conns: up.conns,
      hedges_sent: h1.sent - h0.sent, hedges_won: h1.won - h0.won,
    };
    await pool.stop();
    return res;
  } catch (e) {
    await pool.stop().catch(() => {});
    throw e;
  }
}

async function main() {
  if (!fs.existsSync(path.join(lib.BUILD, 'rpcbench'))) {
    throw new Error(`${lib.BUILD}/rpcbench is missing: make BUILD=${lib.BUILD} ${lib.BUILD}/rpcbench`);
  }
  const faults = [];
  try {
    for (let i = 0; i < 3; i++) faults.push(await lib.startFault({}));
    const cases = [
      { label: 'healthy, hedge off', slow: false, budget: 0 },
      { label: 'healthy, hedge on', slow: false, budget: BUDGET },
      { label: 'slow, hedge off', slow: true, budget: 0 },
      { label: 'slow, hedge on', slow: true, budget: BUDGET },
    ];
    say(`hedged reads: 3 endpoints (fault.js), one answers 1 call in ${SLOW.delay_every} after ` +
      `${SLOW.delay_ms} ms; ${CONNS} connections x 1 in flight, ${DUR} s measured after ${WARM} s ` +
      `warm-up; ${WORKERS} workers; hedge quantile 0.95, budget ${BUDGET} %`);
    const rows = [];
    for (const c of cases) rows.push(await runCase(faults, c));
    const lines = [];
    lines.push(`${'case'.padEnd(20)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ` +
      `${'calls'.padStart(8)} ${'errors'.padStart(6)} ${'upstream'.padStart(9)} ${'extra'.padStart(7)} ` +
      `${'budget'.padStart(7)} ${'hedges sent/won'.padStart(16)} ${'conns'.padStart(6)}`);
    for (const r of rows) {
      const budget = r.budget ? String(Math.floor((r.calls * r.budget) / 100)) : '-';
      lines.push(`${r.label.padEnd(20)} ${r.p50_ms.toFixed(2).padStart(8)} ${r.p99_ms.toFixed(2).padStart(8)} ` +
        `${r.max_ms.toFixed(1).padStart(8)} ${String(r.calls).padStart(8)} ${String(r.errors).padStart(6)} ` +
        `${String(r.upstream).padStart(9)} ${String(r.extra).padStart(7)} ${budget.padStart(7)} ` +
        `${`${r.hedges_sent}/${r.hedges_won}`.padStart(16)} ${String(r.conns).padStart(6)}`);
    }
    const healthy = rows[0];
    const off = rows[2];
    const on = rows[3];
    const p99ok = on.p99_ms <= 2 * healthy.p99_ms;
    const budgetOk = on.extra * 100 <= BUDGET * on.calls;
    lines.push(`target: p99 with hedging ${on.p99_ms.toFixed(2)} ms <= 2 x healthy p99 ` +
      `${healthy.p99_ms.toFixed(2)} ms (without hedging ${off.p99_ms.toFixed(2)} ms): ${p99ok ? 'PASS' : 'FAIL'}`);
    lines.push(`target: extra upstream calls ${on.extra} <= budget ${BUDGET} % of ${on.calls} calls ` +
      `(${Math.floor((on.calls * BUDGET) / 100)}): ${budgetOk ? 'PASS' : 'FAIL'}`);
    for (const l of lines) say(l);
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, 'hedge.json'), JSON.stringify({ rows, p99ok, budgetOk }, null, 1) + '\n');
    fs.writeFileSync(path.join(OUT, 'hedge.txt'), lines.join('\n') + '\n');
  } finally {
    for (const f of faults) await f.stop().catch(() => {});
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bench/hedge.js: ${e.stack || e}\n`);
  process.exit(1);
});
