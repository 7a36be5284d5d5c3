#!/usr/bin/env node
// DNS load for bench/services, run inside a pod: UDP queries for one name to
// one server, WINDOW of them outstanding, for SECONDS; prints JSON with the
// answered count, queries per second and latency percentiles (ms).
//   node dns-load.mjs SERVER NAME SECONDS [WINDOW]
import dgram from 'node:dgram';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../packages/agent/package.json', import.meta.url));
const dns = require('dns-packet');
const [server, name, secondsS, windowS] = process.argv.slice(2);
const seconds = Number(secondsS);
const window = Number(windowS ?? 32);
const sock = dgram.createSocket('udp4');
const sent = new Map();
const lat = [];
let id = 0;
let errors = 0;
let stop = false;
const t0 = performance.now();

function send() {
  if (stop) return;
  id = (id + 1) & 0xffff;
  const q = dns.encode({ type: 'query', id, flags: dns.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  sent.set(id, performance.now());
  sock.send(q, 53, server);
}
sock.on('message', (m) => {
  const rid = m.readUInt16BE(0);
  const at = sent.get(rid);
  if (at === undefined) return;
  sent.delete(rid);
  if ((m[3] & 0xf) !== 0 || m.readUInt16BE(6) === 0) errors++;
  lat.push(performance.now() - at);
  send();
});
// Lost queries are resent after a second so the window stays full.
const sweep = setInterval(() => {
  const now = performance.now();
  for (const [k, at] of sent) if (now - at > 1000) { sent.delete(k); errors++; send(); }
}, 200);
for (let i = 0; i < window; i++) send();
setTimeout(() => {
  stop = true;
  clearInterval(sweep);
  const elapsed = (performance.now() - t0) / 1000;
  const s = lat.sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  console.log(JSON.stringify({ answered: s.length, errors, qps: s.length / elapsed, p50_ms: q(0.5), p99_ms: q(0.99) }));
  sock.close();
}, seconds * 1000);
