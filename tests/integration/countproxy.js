// countproxy.js - a counting, delaying, failing HTTP JSON-RPC proxy in front
// of a real node (anvil), for the cache and coalescing tests and bench:
// every JSON-RPC call that reaches it is counted by method (a batch counts
// each element), optionally held for delayMs[method] ms, or answered with
// HTTP 500 while failNext[method] > 0, else forwarded to TARGET as it came.
// Loopback only; plain Node.
'use strict';

const http = require('node:http');

// Start a proxy to TARGET (http://127.0.0.1:PORT). Resolves to {url, port,
// counts (method -> calls), total(), reset(), delayMs {}, failNext {},
// arrivals [] ({method, at, port}: at = Date.now() when it arrived, port =
// the pool's local port of that connection), close()}.
function startCountProxy(target) {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const p = {
    counts: {},
    delayMs: {},
    failNext: {},
    arrivals: [],
    total() {
      return Object.values(p.counts).reduce((a, b) => a + b, 0);
    },
    reset() {
      p.counts = {};
      p.arrivals = [];
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let msg;
      try {
        msg = JSON.parse(body.toString('utf8'));
      } catch {
        msg = null;
      }
      const calls = Array.isArray(msg) ? msg : [msg];
      let delay = 0;
      let fail = false;
      for (const c of calls) {
        const m = c && typeof c.method === 'string' ? c.method : '(invalid)';
        p.counts[m] = (p.counts[m] || 0) + 1;
        p.arrivals.push({ method: m, at: Date.now(), port: req.socket.remotePort });
        if (p.delayMs[m] > delay) delay = p.delayMs[m];
        if (p.failNext[m] > 0) {
          p.failNext[m]--;
          fail = true;
        }
      }
      const forward = () => {
        if (fail) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('injected failure');
          return;
        }
        const up = http.request({
          host: t.hostname, port: t.port, path: '/', method: 'POST', agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        }, (ur) => {
          const out = [];
          ur.on('data', (c) => out.push(c));
          ur.on('end', () => {
            const b = Buffer.concat(out);
            res.writeHead(ur.statusCode, { 'content-type': 'application/json', 'content-length': b.length });
            res.end(b);
          });
        });
        up.on('error', (e) => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(String(e.message));
        });
        up.end(body);
      };
      if (delay > 0) setTimeout(forward, delay);
      else forward();
    });
  });
  server.keepAliveTimeout = 60000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      p.port = server.address().port;
      p.url = `http://127.0.0.1:${p.port}`;
      p.close = () => new Promise((r) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => r());
      });
      resolve(p);
    });
  });
}

module.exports = { startCountProxy };
