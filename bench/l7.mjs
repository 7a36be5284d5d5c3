#!/usr/bin/env node
// bench/l7: the HTTP L7 proxy against direct traffic, measured in one run
// through a real agent (its own names, pod CIDR 10.229.0.0/24): a server pod
// serving the same HTTP server on 8080 and 8081, a client pod, and a policy
// whose ingress sends 8080 through the proxy (an HTTP rule) and allows 8081
// at L3/L4 only. Rounds alternate proxied and direct (client and server
// pinned to CPU 0, the proxy where the scheduler puts it):
//   - requests per second over 8 keep-alive connections (proxy_rps_ratio),
//     and through the proxy for a request it denies (403: proxy_denied_rps);
//   - requests per second with one request per connection, 8 at a time
//     (proxy_conn_rps_ratio);
//   - p50/p90/p99 latency of one request at a time on one connection, and
//     what the proxy adds to the p90 (proxy_added_p90_ms);
//   - the proxy's resident memory per idle keep-alive connection, from 1000
//     connections held open through it (proxy_kb_per_idle_conn).
// Usage: bench/l7 [--quick]   (root; the last line is JSON)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, firstJSON, inPod as podProcess, mean, scratchAgent } from './bench-agent.mjs';

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 1 : 3;
const ROUNDS = quick ? 2 : 4;
const IDLE = quick ? 200 : 1000;
const LOAD = join(ROOT, 'bench/http-load.mjs');
const log = (s) => process.stderr.write(`l7: ${s}\n`);

if (process.geteuid?.() !== 0) {
  console.error('bench/l7 needs root (it runs an agent): run as root');
  process.exit(1);
}

const TAG = 'bl7';
const agent = scratchAgent(TAG, '10.229.0.0/24', '10.230.0.0/24', { MEMBRANE_PROXY_PORT: String(15070 + (process.pid % 20)) });
const { dir, run } = agent;
const inPod = (netns, args, stdin = 'ignore') => podProcess(netns, '0', LOAD, args, stdin);
const firstLine = firstJSON;
const rssKB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const figures = {};
const config = { quick, seconds: SECONDS, rounds: ROUNDS, idle_connections: IDLE, node: process.version };
let exitCode = 0;
try {
  log('membrane up');
  run('up', '--api-port', '0');
  writeFileSync(
    join(dir, 'bench.yaml'),
    `apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  containers:
  - {name: c, command: [taskset, -c, "0", ${process.execPath}, ${LOAD}, server, "8080", "8081"], readinessProbe: {tcpSocket: {port: 8081}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-l7}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules: {http: [{method: GET, path: /bench}]}
    - ports: [{port: "8081", protocol: TCP}]
`,
  );
  run('apply', '-f', join(dir, 'bench.yaml'));
  run('wait', '--for=condition=Ready', 'pod/server', '--timeout', '30s');
  const serverIP = JSON.parse(run('get', 'pod', 'server', '-o', 'json')).status.podIP;
  const clientNetns = agent.netnsOf('client');
  const proxyPid = JSON.parse(run('status', '-o', 'json')).proxy.pid;
  if (!proxyPid) throw new Error('the agent runs no L7 proxy');
  // Idle keep-alive connections held open through the proxy (first: the load rounds leave garbage behind).
  await firstLine(inPod(clientNetns, ['load', serverIP, '8080', '1', '1']));
  const before = rssKB(proxyPid);
  const idle = inPod(clientNetns, ['idle', serverIP, '8080', String(IDLE)], 'pipe');
  await firstLine(idle);
  await new Promise((r) => setTimeout(r, 500));
  const after = rssKB(proxyPid);
  idle.stdin.end();
  await new Promise((r) => idle.once('exit', r));
  figures.proxy_rss_mb_before_idle = +(before / 1024).toFixed(1);
  figures.proxy_kb_per_idle_conn = +((after - before) / IDLE).toFixed(2);
  log(`${IDLE} idle connections through the proxy: RSS ${before} kB -> ${after} kB`);
  const port = { direct: '8081', proxied: '8080' };
  const res = { direct: { rps: [], conn: [], p50: [], p90: [], p99: [] }, proxied: { rps: [], conn: [], p50: [], p90: [], p99: [] } };
  const denied = [];
  const load = async (what, args) => {
    const r = await firstLine(inPod(clientNetns, ['load', serverIP, ...args]));
    if (r.errors) throw new Error(`${what}: ${r.errors} requests failed`);
    return r;
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? ['proxied', 'direct'] : ['direct', 'proxied']) {
      const many = await load(mode, [port[mode], String(SECONDS), '8']);
      const perConn = await load(`${mode}, one request per connection`, [port[mode], String(SECONDS), '8', '/bench', '200', 'close']);
      const one = await load(`${mode}, one at a time`, [port[mode], String(SECONDS), '1']);
      res[mode].rps.push(many.rps);
      res[mode].conn.push(perConn.rps);
      res[mode].p50.push(one.p50_ms);
      res[mode].p90.push(one.p90_ms);
      res[mode].p99.push(one.p99_ms);
      log(`round ${r + 1}/${ROUNDS} ${mode}: ${many.rps.toFixed(0)} requests/s on 8 connections, ${perConn.rps.toFixed(0)}/s one per connection; one at a time p50 ${one.p50_ms.toFixed(3)} ms, p90 ${one.p90_ms.toFixed(3)} ms, p99 ${one.p99_ms.toFixed(3)} ms`);
    }
    const d = await load('denied', [port.proxied, String(SECONDS), '8', '/denied', '403']);
    denied.push(d.rps);
    log(`round ${r + 1}/${ROUNDS} denied (403 from the proxy): ${d.rps.toFixed(0)} requests/s on 8 connections`);
  }
  for (const m of ['direct', 'proxied']) {
    figures[`rps_${m}`] = Math.round(mean(res[m].rps));
    figures[`conn_rps_${m}`] = Math.round(mean(res[m].conn));
    figures[`p50_ms_${m}`] = +mean(res[m].p50).toFixed(3);
    figures[`p90_ms_${m}`] = +mean(res[m].p90).toFixed(3);
    figures[`p99_ms_${m}`] = +mean(res[m].p99).toFixed(3);
  }
  figures.proxy_denied_rps = Math.round(mean(denied));
  figures.proxy_rps_ratio = +(mean(res.proxied.rps) / mean(res.direct.rps)).toFixed(3);
  figures.proxy_conn_rps_ratio = +(mean(res.proxied.conn) / mean(res.direct.conn)).toFixed(3);
  figures.proxy_added_p90_ms = +(mean(res.proxied.p90) - mean(res.direct.p90)).toFixed(3);

} catch (e) {
  console.error(`bench/l7: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  agent.remove();
}

console.log(['MEASURE'.padEnd(34), 'DIRECT'.padEnd(12), 'PROXIED'.padEnd(12), 'RATIO / ADDED'].join(''));
console.log(['requests / s (8 connections)'.padEnd(34), String(figures.rps_direct).padEnd(12), String(figures.rps_proxied).padEnd(12), String(figures.proxy_rps_ratio)].join(''));
console.log(['requests / s (1 per connection)'.padEnd(34), String(figures.conn_rps_direct).padEnd(12), String(figures.conn_rps_proxied).padEnd(12), String(figures.proxy_conn_rps_ratio)].join(''));
console.log(['requests / s denied (403)'.padEnd(34), '-'.padEnd(12), String(figures.proxy_denied_rps).padEnd(12), ''].join(''));
console.log(['p50 one at a time (ms)'.padEnd(34), String(figures.p50_ms_direct).padEnd(12), String(figures.p50_ms_proxied).padEnd(12), ''].join(''));
console.log(['p90 one at a time (ms)'.padEnd(34), String(figures.p90_ms_direct).padEnd(12), String(figures.p90_ms_proxied).padEnd(12), `+${figures.proxy_added_p90_ms}`].join(''));
console.log(['p99 one at a time (ms)'.padEnd(34), String(figures.p99_ms_direct).padEnd(12), String(figures.p99_ms_proxied).padEnd(12), ''].join(''));
console.log(`proxy memory per idle connection: ${figures.proxy_kb_per_idle_conn} kB`);
console.log(JSON.stringify({ bench: 'l7', figures, config }));
process.exit(exitCode);
