#!/usr/bin/env node
// fault.js - a fault-injecting Ethereum JSON-RPC upstream for rpcpool's
// integration tests. Plain Node (http module), no dependencies, loopback only.
//
//   node tests/upstream/fault.js [--port P] [--mode MODE] [--chain-id N] [--block N]
//        [--delay-ms N] [--delay-every N] [--fail-delay-ms N] [--retry-after S] [--drip-ms N]
//        [--big-bytes N] [--status N] [--times N] [--control-port Q] [--also-listen ADDR]
//        [--exit-with-stdin]
//        [--tls-cert FILE --tls-key FILE]
//
// Listens on 127.0.0.1:P (P = 0 picks a free port; with --also-listen, on
// ADDR:P too, for a network namespace's veth) and prints one JSON line
// {"port":P[,"control_port":Q]} on stdout once it is listening. With
// --tls-cert/--tls-key the upstream port speaks HTTPS (HTTP/1.1 over TLS,
// keep-alive) with that certificate chain (PEM); the control port, when
// given, stays plain HTTP.
//
// Modes (what happens to every JSON-RPC POST and to GET /health):
//   ok         answer like a node: eth_blockNumber -> head block, eth_chainId ->
//              chain id, net_version -> chain id (decimal), anything else ->
//              the method name as result; batches answered as arrays;
//              notifications are not answered (204 when nothing is left)
//   delay      wait delay_ms, then as ok; with delay_every = N > 0 only every
//              Nth request in this mode waits (the others are answered at once)
//   http500    HTTP `status` (default 500) with a text body, fail_delay_ms
//              (default 0) after the request
//   429        HTTP 429 with `Retry-After: retry_after` (seconds, default 1)
//   reset      read the request, then reset the connection without answering
//   hang       read the request and never answer
//   garbage    200 application/json with a body that is not JSON
//   wrong_id   a valid response whose id is not the request's
//   truncated  Content-Length larger than the body sent, then close
//   drip       the ok body, one byte every drip_ms (default 50)
//   big        a result string of big_bytes bytes (default 1 MiB)
//   rpc_error  200 with a JSON-RPC error object (code 3, "execution reverted"):
//              an answer, not a failure
//   batch_missing  a batch answered without its last element, plus an element
//              with an id nobody asked for
//   extra      the ok answer, followed at once on the same connection by a
//              second response nobody asked for (id 1, result "crossed")
//   unsolicited  the ok answer; delay_ms later that second response is sent on
//              the then idle keep-alive connection
// With `times` = N > 0 a mode applies to the next N JSON-RPC/health requests
// only, after which the upstream goes back to ok.
//
// Control (on the same port, and on --control-port when given; never counted):
//   GET  /_control/state  -> {"mode":..,"params":{..},"block":N,"chain_id":N,
//                             "requests":N,"http_requests":N,"health_requests":N,
//                             "by_method":{..},"connections_open":N,
//                             "connections_total":N,"last_headers":{..}}
//   POST /_control/mode   {"mode":"http500", ...params}  switch at run time
//                         (params not given fall back to the defaults)
//   POST /_control/reset  zero every counter (connections_open is a gauge: kept)
//   POST /_control/block  {"block":N} set the head block
//   POST /_control/tls    {"cert":FILE,"key":FILE} serve new TLS connections with
//                         this certificate (connections open keep theirs)
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');

const MODES = new Set([
  'ok', 'delay', 'http500', '429', 'reset', 'hang', 'garbage', 'wrong_id',
  'truncated', 'drip', 'big', 'rpc_error', 'batch_missing', 'extra', 'unsolicited',
]);
const DEFAULTS = {
  delay_ms: 1000,
  retry_after: 1,
  drip_ms: 50,
  big_bytes: 1 << 20,
  status: 500,
  times: 0,
  delay_every: 0,
  fail_delay_ms: 0,
};
const PARAM_FLAGS = {
  '--delay-ms': 'delay_ms',
  '--retry-after': 'retry_after',
  '--drip-ms': 'drip_ms',
  '--big-bytes': 'big_bytes',
  '--status': 'status',
  '--times': 'times',
  '--delay-every': 'delay_every',
  '--fail-delay-ms': 'fail_delay_ms',
};

function usage(msg) {
  process.stderr.write(`fault.js: ${msg}\n`);
  process.exit(2);
}

// Parse argv into {port, controlPort, mode, params, chainId, block}.
function parseArgs(argv) {
  const o = {
    port: 0, controlPort: null, mode: 'ok', params: {}, chainId: 31337, block: 1, exitWithStdin: false,
    tlsCert: null, tlsKey: null, alsoListen: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = () => {
      if (v === undefined || !/^\d+$/.test(v)) usage(`${a} needs a non-negative integer`);
      i++;
      return Number(v);
    };
    if (a === '--port') o.port = num();
    else if (a === '--control-port') o.controlPort = num();
    else if (a === '--also-listen') {
      if (v === undefined) usage(`${a} needs an address`);
      o.alsoListen = v;
      i++;
    }
    else if (a === '--chain-id') o.chainId = num();
    else if (a === '--block') o.block = num();
    else if (a === '--exit-with-stdin') o.exitWithStdin = true;
    else if (a === '--tls-cert' || a === '--tls-key') {
      if (v === undefined) usage(`${a} needs a file`);
      if (a === '--tls-cert') o.tlsCert = v;
      else o.tlsKey = v;
      i++;
    }
    else if (a === '--mode') {
      if (!MODES.has(v)) usage(`unknown mode ${v}`);
      o.mode = v;
      i++;
    } else if (PARAM_FLAGS[a]) o.params[PARAM_FLAGS[a]] = num();
    else if (a === '-h' || a === '--help') {
      process.stdout.write('see the comment at the top of tests/upstream/fault.js\n');
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  return o;
}

const args = parseArgs(process.argv.slice(2));

const st = {
  mode: args.mode,
  params: { ...DEFAULTS, ...args.params },
  remaining: 0, // requests left in a `times`-limited mode
  chainId: args.chainId,
  block: args.block,
  requests: 0,
  httpRequests: 0,
  healthRequests: 0,
  byMethod: {},
  connectionsOpen: 0,
  connectionsTotal: 0,
  lastHeaders: {},
};
st.remaining = st.params.times;

const sockets = new Set();

// Set the mode and its parameters (missing ones take the defaults).
function setMode(mode, params) {
  const p = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) {
    if (params[k] !== undefined) {
      const n = Number(params[k]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${k} must be a non-negative integer`);
      p[k] = n;
    }
  }
  if (!MODES.has(mode)) throw new Error(`unknown mode ${mode}`);
  st.mode = mode;
  st.params = p;
  st.remaining = p.times;
}

// The mode and parameters that apply to the request arriving now, as
// {mode, params}; consumes one use of a `times`-limited mode.
function takeMode() {
  const cur = { mode: st.mode, params: st.params };
  if (st.mode !== 'ok' && st.params.times > 0) {
    st.remaining--;
    if (st.remaining <= 0) {
      st.mode = 'ok';
      st.params = { ...DEFAULTS };
      st.remaining = 0;
    }
  }
  return cur;
}

function hex(n) {
  return '0x' + BigInt(n).toString(16);
}

function snapshot() {
  return {
    mode: st.mode,
    params: st.params,
    remaining: st.remaining,
    block: st.block,
    chain_id: st.chainId,
    requests: st.requests,
    http_requests: st.httpRequests,
    health_requests: st.healthRequests,
    by_method: st.byMethod,
    connections_open: st.connectionsOpen,
    connections_total: st.connectionsTotal,
    last_headers: st.lastHeaders,
    tls_errors: st.tlsErrors || 0,
  };
}

// Count the JSON-RPC calls in a parsed body: every element of a batch, and
// a single request once. Non-object elements count under "(invalid)".
function countCalls(msg) {
  const calls = Array.isArray(msg) ? msg : [msg];
  for (const c of calls) {
    const m = c && typeof c === 'object' && typeof c.method === 'string' ? c.method : '(invalid)';
    st.requests++;
    st.byMethod[m] = (st.byMethod[m] || 0) + 1;
  }
}

// The answer to one call as a node would give it, or null for a notification.
function answerCall(c, m) {
  const mode = m.mode;
  if (!c || typeof c !== 'object' || Array.isArray(c) || c.jsonrpc !== '2.0' ||
      typeof c.method !== 'string') {
    return { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } };
  }
  if (!('id' in c)) return null;
  let id = c.id;
  if (mode === 'wrong_id') {
    if (typeof id === 'number') id = id + 1000003;
    else if (typeof id === 'string') id = id + '-wrong';
    else id = 999999937;
  }
  if (mode === 'rpc_error') {
    return { jsonrpc: '2.0', id, error: { code: 3, message: 'execution reverted', data: '0x' } };
  }
  let result;
  if (mode === 'big') result = 'a'.repeat(m.params.big_bytes);
  else if (c.method === 'eth_blockNumber') result = hex(st.block);
  else if (c.method === 'eth_chainId') result = hex(st.chainId);
  else if (c.method === 'net_version') result = String(st.chainId);
  else result = c.method;
  return { jsonrpc: '2.0', id, result };
}

// Build the ok-style HTTP answer {status, headers, body} for a POST body.
function answerBody(raw, m) {
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    countCalls(undefined);
    return json200({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  }
  countCalls(msg);
  if (Array.isArray(msg)) {
    if (msg.length === 0) {
      return json200({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } });
    }
    let out = msg.map((c) => answerCall(c, m)).filter((r) => r !== null);
    if (m.mode === 'batch_missing') {
      out = out.slice(0, -1);
      out.push({ jsonrpc: '2.0', id: 'nobody-asked', result: 'extra' });
    }
    if (out.length === 0) return { status: 204, headers: {}, body: Buffer.alloc(0) };
    return json200(out);
  }
  const r = answerCall(msg, m);
  if (r === null) return { status: 204, headers: {}, body: Buffer.alloc(0) };
  return json200(r);
}

function json200(v) {
  return {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: Buffer.from(JSON.stringify(v)),
  };
}

function send(res, a) {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(a.status, { ...a.headers, 'Content-Length': a.body.length });
  res.end(a.body);
}

// Deliver the answer A to RES the way mode M ({mode, params}) says.
function deliver(req, res, a, m) {
  const sock = req.socket;
  const mode = m.mode;
  const p = m.params;
  switch (mode) {
    case 'ok':
    case 'wrong_id':
    case 'big':
    case 'rpc_error':
    case 'batch_missing':
      send(res, a);
      return;
    case 'extra':
    case 'unsolicited': {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: 'crossed' });
      const stray = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      send(res, a);
      const later = () => {
        if (!sock.destroyed) sock.write(stray);
      };
      if (mode === 'extra') res.once('finish', later);
      else {
        const t = setTimeout(later, p.delay_ms);
        sock.once('close', () => clearTimeout(t));
      }
      return;
    }
    case 'delay': {
      st.delayed = (st.delayed || 0) + 1;
      if (p.delay_every > 0 && st.delayed % p.delay_every !== 0) {
        send(res, a);
        return;
      }
      const t = setTimeout(() => send(res, a), p.delay_ms);
      sock.once('close', () => clearTimeout(t));
      return;
    }
    case 'http500': {
      const a500 = {
        status: p.status,
        headers: { 'Content-Type': 'text/plain' },
        body: Buffer.from('Internal Server Error\n'),
      };
      if (!p.fail_delay_ms) {
        send(res, a500);
        return;
      }
      const t = setTimeout(() => send(res, a500), p.fail_delay_ms);
      sock.once('close', () => clearTimeout(t));
      return;
    }
    case '429':
      send(res, {
        status: 429,
        headers: { 'Content-Type': 'application/json', 'Retry-After': String(p.retry_after) },
        body: Buffer.from(JSON.stringify({
          jsonrpc: '2.0', id: null,
          error: { code: -32005, message: 'Too Many Requests' },
        })),
      });
      return;
    case 'reset': {
      // over TLS the TCP socket under the TLS one is the one to reset
      const raw = sock.encrypted && sock._parent ? sock._parent : sock;
      if (typeof raw.resetAndDestroy === 'function') raw.resetAndDestroy();
      if (!sock.destroyed) sock.destroy();
      return;
    }
    case 'hang':
      return; // the socket stays open until the client or stop() closes it
    case 'garbage':
      send(res, {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
        body: Buffer.from('<html><body>502 Bad Gateway, not JSON {"jsonrpc":</body></html>\n'),
      });
      return;
    case 'truncated': {
      // Raw bytes: a Content-Length the body never reaches, then FIN.
      const body = a.body.length > 1 ? a.body.subarray(0, Math.ceil(a.body.length / 2)) : a.body;
      const head = `HTTP/1.1 ${a.status} OK\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${a.body.length + 100}\r\nConnection: close\r\n\r\n`;
      sock.write(Buffer.concat([Buffer.from(head), body]), () => sock.end());
      const t = setTimeout(() => sock.destroy(), 2000);
      sock.once('close', () => clearTimeout(t));
      return;
    }
    case 'drip': {
      res.writeHead(a.status, { ...a.headers, 'Content-Length': a.body.length });
      res.flushHeaders();
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed || i >= a.body.length) {
          clearInterval(t);
          return;
        }
        res.write(a.body.subarray(i, i + 1));
        i++;
        if (i >= a.body.length) {
          clearInterval(t);
          res.end();
        }
      }, Math.max(1, p.drip_ms));
      sock.once('close', () => clearInterval(t));
      return;
    }
    default:
      send(res, a);
  }
}

function readBody(req, cb) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => cb(Buffer.concat(chunks).toString('utf8')));
}

function control(req, res, path) {
  const reply = (code, v) => {
    const b = Buffer.from(JSON.stringify(v) + '\n');
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': b.length });
    res.end(b);
  };
  readBody(req, (raw) => {
    let body = {};
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        reply(400, { ok: false, error: 'body is not JSON' });
        return;
      }
    }
    try {
      if (req.method === 'GET' && path === '/_control/state') {
        reply(200, snapshot());
      } else if (req.method === 'POST' && path === '/_control/mode') {
        const { mode, ...params } = body;
        setMode(mode, params);
        reply(200, { ok: true, ...snapshot() });
      } else if (req.method === 'POST' && path === '/_control/reset') {
        st.requests = 0;
        st.delayed = 0;
        st.httpRequests = 0;
        st.healthRequests = 0;
        st.byMethod = {};
        st.connectionsTotal = 0;
        st.lastHeaders = {};
        reply(200, { ok: true, ...snapshot() });
      } else if (req.method === 'POST' && path === '/_control/tls') {
        if (!args.tlsCert) throw new Error('not a TLS upstream');
        servers[0].setSecureContext({ cert: fs.readFileSync(body.cert), key: fs.readFileSync(body.key) });
        reply(200, { ok: true, ...snapshot() });
      } else if (req.method === 'POST' && path === '/_control/block') {
        const n = Number(body.block);
        if (!Number.isInteger(n) || n < 0) throw new Error('block must be a non-negative integer');
        st.block = n;
        reply(200, { ok: true, ...snapshot() });
      } else {
        reply(404, { ok: false, error: `no control route ${req.method} ${path}` });
      }
    } catch (e) {
      reply(400, { ok: false, error: e.message });
    }
  });
}

// A connection whose first request is a control request is not an upstream
// connection: take it back out of the connection counters.
function uncount(sock) {
  if (sock._faultCounted) {
    sock._faultCounted = false;
    st.connectionsOpen--;
    st.connectionsTotal--;
  }
}

function handle(req, res, controlOnly) {
  const path = (req.url || '/').split('?')[0];
  const sock = req.socket;
  const first = !sock._faultUsed;
  sock._faultUsed = true;
  if (path.startsWith('/_control/')) {
    if (first) uncount(sock);
    control(req, res, path);
    return;
  }
  if (controlOnly) {
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
    return;
  }
  st.httpRequests++;
  if (req.method === 'GET' && path === '/health') {
    st.healthRequests++;
    readBody(req, () => {
      const m = takeMode();
      const a = json200({ status: 'ok', block: st.block });
      if (m.mode === 'big') {
        a.body = Buffer.from(JSON.stringify({ status: 'ok', pad: 'a'.repeat(m.params.big_bytes) }));
      }
      deliver(req, res, a, m);
    });
    return;
  }
  if (req.method !== 'POST') {
    readBody(req, () => {
      res.writeHead(405, { 'Content-Length': 0, Allow: 'POST' });
      res.end();
    });
    return;
  }
  st.lastHeaders = req.headers;
  readBody(req, (raw) => {
    const m = takeMode();
    deliver(req, res, answerBody(raw, m), m);
  });
}

function makeServer(controlOnly) {
  const handler = (req, res) => handle(req, res, controlOnly);
  const tls = !controlOnly && args.tlsCert;
  const srv = tls
    ? https.createServer({ keepAlive: true, cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) },
      handler)
    : http.createServer({ keepAlive: true }, handler);
  // Keep idle upstream connections open for as long as a pool may hold them,
  // and let `hang` hang: no server-side request deadline.
  srv.keepAliveTimeout = 600000;
  srv.headersTimeout = 0;
  srv.requestTimeout = 0;
  srv.timeout = 0;
  srv.on(tls ? 'secureConnection' : 'connection', (sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    if (!controlOnly) {
      sock._faultCounted = true;
      st.connectionsOpen++;
      st.connectionsTotal++;
    }
    sock.on('close', () => {
      sockets.delete(sock);
      if (sock._faultCounted) st.connectionsOpen--;
    });
  });
  if (tls) {
    // a handshake the client gave up (it refused our certificate)
    srv.on('tlsClientError', () => { st.tlsErrors = (st.tlsErrors || 0) + 1; });
  }
  srv.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else sock.destroy();
  });
  return srv;
}

function listen(srv, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve(srv.address().port));
  });
}

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  for (const srv of servers) srv.close();
  for (const s of sockets) s.destroy();
  setImmediate(() => process.exit(0));
}

const servers = [makeServer(false)];
if (args.controlPort !== null) servers.push(makeServer(true));

(async () => {
  try {
    const port = await listen(servers[0], args.port);
    const out = { port };
    if (servers[1]) out.control_port = await listen(servers[1], args.controlPort);
    if (args.alsoListen) {
      const also = makeServer(false);
      servers.push(also);
      await listen(also, port, args.alsoListen);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (e) {
    process.stderr.write(`fault.js: listen: ${e.message}\n`);
    process.exit(1);
  }
})();

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// With --exit-with-stdin (the harness): when our stdin closes, the parent is
// gone, and so are we.
if (args.exitWithStdin) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
