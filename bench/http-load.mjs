#!/usr/bin/env node
// The traffic of bench/l7, run inside pods (one JSON line on stdout each):
//   server PORT...                 an HTTP/1.1 server answering every request 200 "ok" (keep-alive)
//   load IP PORT SECONDS CONNS [PATH [STATUS [close]]]
//                                  CONNS keep-alive connections, one request (GET PATH, default
//                                  /bench) in flight on each, for SECONDS; a response with STATUS
//                                  (default 200) counts, any other is an error; with `close`, every
//                                  request on a connection of its own:
//                                  {"rps", "p50_ms", "p90_ms", "p99_ms", "errors"}
//   idle IP PORT COUNT             COUNT connections, one request answered on each, then held open:
//                                  prints {"open"} and keeps them until stdin closes
import { createServer } from 'node:http';
import { connect } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const REQ = (ip, port, path = '/bench', close = false) => `GET ${path} HTTP/1.1\r\nhost: ${ip}:${port}\r\n${close ? 'connection: close\r\n' : ''}\r\n`;

function client(ip, port, onResponse, onError) {
  const s = connect({ host: ip, port: Number(port) });
  s.setNoDelay(true);
  let buf = '';
  s.setEncoding('latin1');
  s.on('data', (d) => {
    buf += d;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      const status = buf.slice(9, 12);
      buf = buf.slice(end + 4 + len);
      onResponse(status);
    }
  });
  s.on('error', onError);
  return s;
}

if (mode === 'server') {
  for (const port of args) {
    const srv = createServer({ keepAliveTimeout: 600_000 }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
      });
    });
    srv.listen(Number(port), '0.0.0.0');
  }
  console.log(JSON.stringify({ listening: args }));
} else if (mode === 'load') {
  const [ip, port, seconds, conns, path = '/bench', want = '200', how] = args;
  const close = how === 'close';
  const lat = [];
  let errors = 0;
  let done = false;
  const t0 = performance.now();
  const end = t0 + Number(seconds) * 1000;
  let open = Number(conns);
  const finish = () => {
    if (--open > 0) return;
    const el = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
    console.log(JSON.stringify({ rps: lat.length / el, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), errors, requests: lat.length }));
    process.exit(0);
  };
  for (let i = 0; i < Number(conns); i++) {
    let sent = 0;
    let s;
    const open1 = () => {
      s = client(ip, port, (status) => {
        if (status === want) lat.push(performance.now() - sent);
        else errors++;
        if (close) {
          s.destroy();
          return performance.now() > end ? finish() : open1();
        }
        next();
      }, () => {
        errors++;
        finish();
      });
      s.on('connect', next);
      if (close) sent = performance.now();
    };
    const next = () => {
      if (performance.now() > end) {
        s.destroy();
        return finish();
      }
      // One request per connection: the clock started at connect.
      if (!close) sent = performance.now();
      s.write(REQ(ip, port, path, close));
    };
    open1();
  }
  setTimeout(() => {
    if (done) return;
    console.error(`load: ${open} of ${conns} connections never finished (${lat.length} requests answered, ${errors} errors)`);
    process.exit(3);
  }, Number(seconds) * 1000 + 10_000).unref();
} else if (mode === 'idle') {
  const [ip, port, count] = args;
  let answered = 0;
  const sockets = [];
  for (let i = 0; i < Number(count); i++) {
    const s = client(ip, port, () => {
      if (++answered === Number(count)) console.log(JSON.stringify({ open: answered }));
    }, (e) => {
      console.error(`idle: ${e.message}`);
      process.exit(1);
    });
    s.on('connect', () => s.write(REQ(ip, port)));
    sockets.push(s);
  }
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  console.error('usage: http-load.mjs server PORT... | load IP PORT SECONDS CONNS | idle IP PORT COUNT');
  process.exit(2);
}
