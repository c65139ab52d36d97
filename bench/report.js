// bench/report.js - the comparison table and the targets of `make bench`.
//
//   node bench/report.js OUT_DIR
//
// Reads what bench/run.sh left in OUT_DIR (results.jsonl: one rpcbench JSON
// line per load; hotpath.jsonl: bench/shm_hotpath --json; idle.json;
// machine.json), prints the table, the ratios rpcpoold / nginx and PASS/FAIL
// per target, and writes OUT_DIR/RESULTS.md (the same, as Markdown, with the
// machine described). Exits 0 whatever the targets say.
'use strict';
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
if (!out) {
    console.error('usage: node bench/report.js OUT_DIR');
    process.exit(2);
}
const readLines = (f) =>
    fs.existsSync(f)
        ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
        : [];
const readJson = (f) => (fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null);

const results = readLines(path.join(out, 'results.jsonl'));
const hot = readLines(path.join(out, 'hotpath.jsonl'));
const idle = readJson(path.join(out, 'idle.json'));
const machine = readJson(path.join(out, 'machine.json')) || {};

// The best round (highest ok/s) of each case in each profile.
const best = { throughput: {}, latency: {} };
for (const { profile, run } of results) {
    const have = best[profile][run.label];
    if (!have || (run.ok_rps || 0) > (have.ok_rps || 0)) best[profile][run.label] = run;
}

const CASES = [
    ['direct', 'direct to the upstream (no proxy)'],
    ['nginx-tcp', 'nginx proxy, HTTP on TCP'],
    ['nginx-unix', 'nginx proxy, HTTP on a UNIX socket'],
    ['rpcpoold-ipc', 'rpcpoold, IPC framing on its UNIX socket'],
    ['rpcpoold-http', 'rpcpoold, HTTP on http_listen (TCP)'],
    ['rpcpoold-http-unix', 'rpcpoold, HTTP on its UNIX socket'],
    ['nginx-tls', 'nginx proxy_pass https:// (keep-alive, verified), HTTP on TCP'],
    ['rpcpoold-tls-ipc', 'rpcpoold, https endpoints, IPC framing'],
    ['rpcpoold-tls-http', 'rpcpoold, https endpoints, HTTP on http_listen (TCP)'],
];
const valid = (r) => r && !r.failed && r.ok > 0;
// RSS of the busiest worker: the watched tree less its root (master/supervisor).
const workerRssKib = (r) => {
    if (!r || !r.watch || !r.watch.procs || r.watch.procs.length === 0) return null;
    const kids = r.watch.procs.slice(1);
    const set = kids.length ? kids : r.watch.procs;
    return Math.max(...set.map((p) => p.rss_kib));
};
const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

const lines = [];
const md = [];
const both = (s) => {
    lines.push(s);
};

// ---- throughput table
const thr = best.throughput;
const lat = best.latency;
const directLat = valid(lat.direct) ? lat.direct.latency_us.p50 : null;
both(
    `Throughput profile: ${machine.conns} connections x ${machine.pipeline} in flight, ` +
        `${machine.duration_s} s per load, best of ${machine.rounds} round(s)`
);
const head = [
    pad('case', 20),
    lpad('req/s', 9),
    lpad('p50 us', 8),
    lpad('p90 us', 8),
    lpad('p99 us', 8),
    lpad('max us', 8),
    lpad('CPU us/req', 11),
    lpad('RSS/wkr MiB', 12),
    lpad('errors', 7),
].join(' ');
both(head);
md.push('### Throughput: ' + `${machine.conns} connections × ${machine.pipeline} in flight, ` +
    `${machine.duration_s} s per load (best of ${machine.rounds} rounds)`, '');
md.push('| case | req/s | p50 µs | p90 µs | p99 µs | max µs | CPU µs/req (proxy) | RSS/worker MiB | errors |');
md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [name] of CASES) {
    const r = thr[name];
    if (!valid(r)) {
        both(pad(name, 20) + ' failed (no successful answer)');
        md.push(`| ${name} | failed | | | | | | | |`);
        continue;
    }
    const rss = workerRssKib(r);
    const cpu = r.watch ? r.watch.cpu_us_per_request : null;
    const L = r.latency_us;
    both(
        [
            pad(name, 20),
            lpad(fmt(r.ok_rps, 0), 9),
            lpad(fmt(L.p50), 8),
            lpad(fmt(L.p90), 8),
            lpad(fmt(L.p99), 8),
            lpad(fmt(L.max), 8),
            lpad(fmt(cpu, 2) + (name === 'direct' ? '*' : ''), 11),
            lpad(rss === null ? 'n/a' : fmt(rss / 1024, 1), 12),
            lpad(r.errors, 7),
        ].join(' ')
    );
    md.push(
        `| ${name} | ${fmt(r.ok_rps, 0)} | ${fmt(L.p50)} | ${fmt(L.p90)} | ${fmt(L.p99)} | ` +
            `${fmt(L.max)} | ${fmt(cpu, 2)}${name === 'direct' ? ' (upstream)' : ''} | ` +
            `${rss === null ? 'n/a' : fmt(rss / 1024, 1)} | ${r.errors} |`
    );
}
both('  * direct: the CPU is the upstream\'s own (no proxy on the path)');
both('');

// ---- latency table
both(`Latency profile: 1 connection x 1 in flight, ${machine.lat_duration_s} s per load, ` +
    `best of ${machine.lat_rounds} round(s)`);
both(
    [pad('case', 20), lpad('req/s', 9), lpad('p50 us', 8), lpad('p90 us', 8), lpad('p99 us', 8),
        lpad('added p50', 10), lpad('CPU us/req', 11)].join(' ')
);
md.push('', `### Latency: 1 connection × 1 in flight, ${machine.lat_duration_s} s per load ` +
    `(best of ${machine.lat_rounds} rounds)`, '');
md.push('| case | req/s | p50 µs | p90 µs | p99 µs | added p50 over direct µs | CPU µs/req (proxy) |');
md.push('|---|---:|---:|---:|---:|---:|---:|');
const added = {};
for (const [name] of CASES) {
    const r = lat[name];
    if (!valid(r)) {
        both(pad(name, 20) + ' failed (no successful answer)');
        md.push(`| ${name} | failed | | | | | |`);
        continue;
    }
    const a = name === 'direct' || directLat === null ? null : r.latency_us.p50 - directLat;
    added[name] = a;
    const cpu = r.watch ? r.watch.cpu_us_per_request : null;
    both(
        [pad(name, 20), lpad(fmt(r.ok_rps, 0), 9), lpad(fmt(r.latency_us.p50), 8),
            lpad(fmt(r.latency_us.p90), 8), lpad(fmt(r.latency_us.p99), 8),
            lpad(name === 'direct' ? '-' : fmt(a), 10), lpad(fmt(cpu, 2), 11)].join(' ')
    );
    md.push(
        `| ${name} | ${fmt(r.ok_rps, 0)} | ${fmt(r.latency_us.p50)} | ${fmt(r.latency_us.p90)} | ` +
            `${fmt(r.latency_us.p99)} | ${name === 'direct' ? '–' : fmt(a)} | ${fmt(cpu, 2)} |`
    );
}
both('  (CPU us/req at one request in flight includes the cost of waking idle processes)');
both('');

// ---- shm hot path
both('shm hot path (cpu ns per op; "core" = limiter admit + breaker check + balancer pick)');
md.push('', '### shm hot path (one endpoint row shared by all processes)', '');
md.push('| path | processes | CPU ns/op | Mops/s (all processes) |');
md.push('|---|---:|---:|---:|');
for (const h of hot) {
    both(`  ${pad(h.path, 5)} ${lpad(h.procs, 2)} procs ${lpad(fmt(h.cpu_ns_per_op), 8)} ns/op ` +
        `${lpad(fmt(h.mops, 2), 7)} Mops/s`);
    md.push(`| ${h.path} | ${h.procs} | ${fmt(h.cpu_ns_per_op)} | ${fmt(h.mops, 2)} |`);
}
both('');

// ---- idle clients
let idleKib = null;
let idleCallKib = null;
if (idle && idle.ok) {
    idleKib = (idle.rss_kib_connected - idle.rss_kib_before) / idle.idle;
    idleCallKib = (idle.rss_kib_after_one_call - idle.rss_kib_before) / idle.idle;
}
const idleLine = idle
    ? `idle clients: ${idle.idle} connections; rpcpoold RSS ${idle.rss_kib_before} -> ` +
      `${idle.rss_kib_connected} KiB held (${fmt(idleKib, 2)} KiB each), ` +
      `${idle.rss_kib_after_one_call} KiB after one call on each (${fmt(idleCallKib, 2)} KiB each); ` +
      `fds ${idle.fds_before} -> ${idle.fds_connected}; answered ${idle.answered}`
    : 'idle clients: not measured';
both(idleLine);
both('');
md.push('', '### Idle client connections', '', idleLine.replace(/^idle clients: /, ''), '');

// ---- ratios and targets
const ratio = (a, b) => (a === null || b === null || a === undefined || b === undefined || b === 0
    ? null : a / b);
const pairs = [
    ['rpcpoold-ipc', 'nginx-tcp'],
    ['rpcpoold-http', 'nginx-tcp'],
    ['rpcpoold-ipc', 'nginx-unix'],
    ['rpcpoold-http-unix', 'nginx-unix'],
    ['rpcpoold-tls-ipc', 'nginx-tls'],
    ['rpcpoold-tls-http', 'nginx-tls'],
];
both('Ratios rpcpoold / nginx (throughput profile; added p50 from the latency profile)');
md.push('### Ratios rpcpoold / nginx', '');
md.push('| pair | req/s | CPU µs/req | added p50 | RSS/worker |');
md.push('|---|---:|---:|---:|---:|');
const R = {};
for (const [a, b] of pairs) {
    const ra = thr[a];
    const rb = thr[b];
    const rr = {
        rps: valid(ra) && valid(rb) ? ratio(ra.ok_rps, rb.ok_rps) : null,
        cpu: valid(ra) && valid(rb) ? ratio(ra.watch.cpu_us_per_request, rb.watch.cpu_us_per_request)
            : null,
        p50: ratio(added[a] === undefined ? null : added[a], added[b] === undefined ? null : added[b]),
        rss: valid(ra) && valid(rb) ? ratio(workerRssKib(ra), workerRssKib(rb)) : null,
    };
    R[a + '/' + b] = rr;
    both(`  ${pad(a + ' / ' + b, 34)} req/s x${fmt(rr.rps, 2)}  CPU/req x${fmt(rr.cpu, 2)}  ` +
        `added p50 x${fmt(rr.p50, 2)}  RSS/worker x${fmt(rr.rss, 2)}`);
    md.push(`| ${a} / ${b} | ${fmt(rr.rps, 2)} | ${fmt(rr.cpu, 2)} | ${fmt(rr.p50, 2)} | ${fmt(rr.rss, 2)} |`);
}
both('');

const targets = [];
const target = (name, ok, detail) => targets.push({ name, ok, detail });
for (const a of ['rpcpoold-ipc', 'rpcpoold-http']) {
    const n = 'nginx-tcp';
    const ra = thr[a];
    const rb = thr[n];
    const okBoth = valid(ra) && valid(rb);
    target(`${a}: CPU per request <= nginx's`, okBoth && ra.watch.cpu_us_per_request <= rb.watch.cpu_us_per_request,
        okBoth ? `${fmt(ra.watch.cpu_us_per_request, 2)} vs ${fmt(rb.watch.cpu_us_per_request, 2)} us` : 'not measured');
    target(`${a}: throughput >= nginx's`, okBoth && ra.ok_rps >= rb.ok_rps,
        okBoth ? `${fmt(ra.ok_rps, 0)} vs ${fmt(rb.ok_rps, 0)} req/s` : 'not measured');
    const aa = added[a];
    const ab = added[n];
    const okLat = aa !== undefined && ab !== undefined && aa !== null && ab !== null;
    target(`${a}: added p50 over direct <= nginx's`, okLat && aa <= ab,
        okLat ? `${fmt(aa)} vs ${fmt(ab)} us` : 'not measured');
}
// the https path (issue 13): <= 0.8x nginx's CPU per request, >= 1.2x its throughput
for (const a of ['rpcpoold-tls-ipc', 'rpcpoold-tls-http']) {
    const n = 'nginx-tls';
    const ra = thr[a];
    const rb = thr[n];
    const okBoth = valid(ra) && valid(rb);
    const c = okBoth ? ra.watch.cpu_us_per_request / rb.watch.cpu_us_per_request : null;
    const t = okBoth ? ra.ok_rps / rb.ok_rps : null;
    target(`${a}: CPU per request <= 0.8x nginx-tls's`, okBoth && c <= 0.8,
        okBoth ? `${fmt(ra.watch.cpu_us_per_request, 2)} vs ${fmt(rb.watch.cpu_us_per_request, 2)} us (x${fmt(c, 2)})`
            : 'not measured');
    target(`${a}: throughput >= 1.2x nginx-tls's`, okBoth && t >= 1.2,
        okBoth ? `${fmt(ra.ok_rps, 0)} vs ${fmt(rb.ok_rps, 0)} req/s (x${fmt(t, 2)})` : 'not measured');
}
const hot8 = hot.find((h) => h.path === 'core' && h.procs === 8);
target('shm hot path <= 200 ns/op with 8 processes', !!hot8 && hot8.cpu_ns_per_op <= 200,
    hot8 ? `${fmt(hot8.cpu_ns_per_op)} ns/op (full path: ` +
        `${fmt((hot.find((h) => h.path === 'full' && h.procs === 8) || {}).cpu_ns_per_op)} ns/op)`
        : 'not measured');
let rssMax = null;
for (const name of ['rpcpoold-ipc', 'rpcpoold-http', 'rpcpoold-http-unix', 'rpcpoold-tls-ipc',
    'rpcpoold-tls-http'])
    for (const prof of ['throughput', 'latency']) {
        const v = valid(best[prof][name]) ? workerRssKib(best[prof][name]) : null;
        if (v !== null && (rssMax === null || v > rssMax)) rssMax = v;
    }
target('RSS <= 16 MiB per worker', rssMax !== null && rssMax <= 16 * 1024,
    rssMax !== null ? `${fmt(rssMax / 1024, 1)} MiB (largest worker)` : 'not measured');
target('<= 4 KiB per idle client connection', idleKib !== null && idleKib <= 4,
    idleKib !== null ? `${fmt(idleKib, 2)} KiB held idle` : 'not measured');
target('<= 4 KiB per idle connection after one call', idleCallKib !== null && idleCallKib <= 4,
    idleCallKib !== null ? `${fmt(idleCallKib, 2)} KiB` : 'not measured');

both('Targets');
md.push('', '### Targets', '');
md.push('| target | result | measured |');
md.push('|---|---|---|');
for (const t of targets) {
    both(`  ${t.ok ? 'PASS' : 'FAIL'}  ${pad(t.name, 52)} ${t.detail}`);
    md.push(`| ${t.name} | ${t.ok ? 'PASS' : '**FAIL**'} | ${t.detail} |`);
}
console.log(lines.join('\n'));

// ---- RESULTS.md
const doc = [
    'Produced by `make bench` (bench/run.sh, bench/report.js); the tables below are from the run',
    `of ${machine.date || 'unknown date'}.`,
    '',
    '## Machine',
    '',
    `- CPUs: ${machine.nproc} × ${machine.cpu}`,
    `- kernel: ${machine.kernel}`,
    `- load average (1 min) at the start / end of the run: ${machine.loadavg_start} / ` +
        `${machine.loadavg_end} (other work on the machine skews req/s and latency, not CPU µs/req)`,
    `- nginx: ${machine.nginx} (Debian), njs for the upstream`,
    `- rpcpoold: ${machine.workers} workers, the nginx proxy: ${machine.workers} workers, ` +
        `the upstream nginx: ${machine.upstream_workers} worker(s)`,
    '',
    '## Setup',
    '',
    '- Upstream: Debian\'s nginx with njs (`bench/nginx-upstream.conf`, `bench/echo.js`), answering',
    '  every POST with `{"jsonrpc":"2.0","id":<the request\'s id>,"result":"0x1"}`, HTTP/1.1',
    '  keep-alive, on two loopback ports: rpcpoold and the nginx proxy both see two endpoints.',
    '  (The id is echoed because rpcpoold rejects an answer whose id is not the request\'s.)',
    '- nginx proxy: `bench/nginx-proxy.conf`, `proxy_pass` to both upstream ports with',
    '  `keepalive 256`, HTTP/1.1 to the upstream, the same worker count as rpcpoold.',
    '- rpcpoold: the same two endpoints, `max_connections = 256`, rate limits that never bind.',
    '- https rows: the same upstream nginx also listens with TLS on two more ports (a',
    '  certificate for `localhost`, EC P-256, from a CA made for the run with the openssl CLI);',
    '  `nginx-tls` is the nginx proxy with `proxy_pass https://`, `keepalive 256`,',
    '  `proxy_ssl_verify on`, session reuse and TLS 1.3 to the upstream (as rpcpoold; nginx 1.22',
    '  would stop at TLS 1.2, whose records cost OpenSSL 3.0 less); `rpcpoold-tls-*` is a second rpcpoold whose two',
    '  endpoints are `https://localhost:PORT/` with `tls_ca_file` (native TLS client, c-ares).',
    '- Load: `bench/rpcbench` (one thread, epoll), on the same machine; latency is from the write of',
    '  a request to the parse of its answer; CPU µs/req is utime+stime of every process of the',
    '  proxy (master/supervisor and workers, from /proc/PID/stat) over the measured interval,',
    '  divided by the answers; RSS is VmRSS of the largest worker at the end of the load.',
    '- All of rpcbench, the proxy and the upstream share the machine\'s CPUs, so req/s is',
    '  bounded by the whole pipeline; CPU µs/req is the proxy\'s own cost.',
    '',
    '## Results',
    '',
    ...md,
    '',
    '## Reproduce',
    '',
    '```',
    'make bench                      # builds into build/bench, installs nginx + njs if missing',
    'BENCH_UPDATE_RESULTS=1 make bench   # and rewrites this file',
    '```',
    '',
    'Knobs (environment): BENCH_DURATION, BENCH_REQUESTS, BENCH_CONNS, BENCH_PIPELINE,',
    'BENCH_LAT_DURATION, BENCH_ROUNDS, BENCH_WORKERS, BENCH_UPSTREAM_WORKERS, BENCH_IDLE',
    '(see bench/run.sh). Raw results: `build/bench/bench-results/` (results.jsonl, one rpcbench',
    'JSON line per load; hotpath.jsonl; idle.json).',
    '',
];
fs.writeFileSync(path.join(out, 'RESULTS.md'), '# rpcpool benchmark results\n\n' + doc.join('\n'));

// With BENCH_UPDATE_RESULTS=1, bench/RESULTS.md gets the new run: only the part
// between the markers when it has them (the notes around it are kept).
if (process.env.BENCH_UPDATE_RESULTS === '1') {
    const target = path.join(__dirname, 'RESULTS.md');
    const BEGIN = '<!-- bench:begin (written by bench/report.js) -->';
    const END = '<!-- bench:end -->';
    const body = doc.join('\n');
    let text = '# rpcpool benchmark results\n\n' + BEGIN + '\n' + body + '\n' + END + '\n';
    if (fs.existsSync(target)) {
        const old = fs.readFileSync(target, 'utf8');
        const b = old.indexOf(BEGIN);
        const e = old.indexOf(END);
        if (b >= 0 && e > b)
            text = old.slice(0, b) + BEGIN + '\n' + body + '\n' + END + '\n' +
                old.slice(e + END.length + 1);
    }
    fs.writeFileSync(target, text);
    console.error('bench: bench/RESULTS.md updated');
}
