#!/usr/bin/env node
// bench/services: Services and cluster DNS through a real agent (its own
// names, pod CIDR 10.224.0.0/24, service CIDR 10.225.0.0/24), measured in
// one run:
//   - TCP request/response latency and new connections per second from a
//     client pod to a server pod, through the Service's ClusterIP versus
//     straight to the pod's IP (client and server on CPU 0, modes alternating);
//   - DNS queries per second the agent answers for a Service name, asked
//     from a pod through the kube-dns ClusterIP, with p50/p99 latency;
//   - the Star Wars demo's time to ready (`membrane demo starwars` from no
//     agent at all, on names of its own).
// Usage: bench/services [--quick]   (root; the last line is JSON)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, firstJSON, inPod, mean, scratchAgent } from './bench-agent.mjs';

const quick = process.argv.includes('--quick');
const RR_COUNT = quick ? 3000 : 20000;
const CONN_SECONDS = quick ? 1 : 3;
const ROUNDS = quick ? 2 : 4;
const DNS_SECONDS = quick ? 2 : 5;
const TRAFFIC = join(ROOT, 'bench/datapath-traffic.mjs');
const DNS_LOAD = join(ROOT, 'bench/dns-load.mjs');
const log = (s) => process.stderr.write(`services: ${s}\n`);

if (process.geteuid?.() !== 0) {
  console.error('bench/services needs root (it runs an agent): run as root');
  process.exit(1);
}

const runJSON = (netns, cpu, script, args) => firstJSON(inPod(netns, cpu, script, args));

const figures = {};
const config = { quick, rr_count: RR_COUNT, conn_seconds: CONN_SECONDS, rounds: ROUNDS, dns_seconds: DNS_SECONDS, node: process.version };
let exitCode = 0;
const a = scratchAgent('bsv', '10.224.0.0/24', '10.225.0.0/24');
try {
  log('membrane up');
  a.run('up', '--api-port', '0');
  writeFileSync(
    join(a.dir, 'bench.yaml'),
    `apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  containers:
  - {name: c, command: [taskset, -c, "0", ${process.execPath}, ${TRAFFIC}, server, "5001"], ports: [{name: echo, containerPort: 5001}], readinessProbe: {tcpSocket: {port: echo}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {name: server}
spec: {selector: {app: server}, ports: [{port: 80, targetPort: echo}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
`,
  );
  a.run('apply', '-f', join(a.dir, 'bench.yaml'));
  a.run('wait', '--for=condition=Ready', 'pod/server', '--timeout', '30s');
  const pod = (n) => JSON.parse(a.run('get', 'pod', n, '-o', 'json')).status.podIP;
  const clientNetns = a.netnsOf('client');
  const clusterIP = JSON.parse(a.run('get', 'svc', 'server', '-o', 'json')).spec.clusterIP;
  for (let i = 0; i < 50; i++) {
    const l = JSON.parse(a.run('service', 'list', '-o', 'json')).find((s) => s.service === 'default/server');
    if (l?.backends.some((b) => b.state === 'active')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const target = { pod: [pod('server'), '5001'], clusterip: [clusterIP, '80'] };
  const res = { pod: { mean: [], p99: [], rate: [] }, clusterip: { mean: [], p99: [], rate: [] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? ['clusterip', 'pod'] : ['pod', 'clusterip']) {
      const rr = await runJSON(clientNetns, '0', TRAFFIC, ['rr', ...target[mode], String(RR_COUNT)]);
      const cr = await runJSON(clientNetns, '0', TRAFFIC, ['connrate', ...target[mode], String(CONN_SECONDS)]);
      res[mode].mean.push(rr.mean_us);
      res[mode].p99.push(rr.p99_us);
      res[mode].rate.push(cr.per_s);
      log(`round ${r + 1}/${ROUNDS} ${mode} (${target[mode].join(':')}): rr mean ${rr.mean_us.toFixed(1)} us, p99 ${rr.p99_us.toFixed(1)} us; ${cr.per_s.toFixed(0)} connections/s`);
    }
  }
  for (const m of ['pod', 'clusterip']) {
    figures[`rr_mean_us_${m}`] = +mean(res[m].mean).toFixed(1);
    figures[`rr_p99_us_${m}`] = +mean(res[m].p99).toFixed(1);
    figures[`conn_rate_per_s_${m}`] = +mean(res[m].rate).toFixed(0);
  }
  figures.clusterip_rr_latency_ratio = +(mean(res.clusterip.mean) / mean(res.pod.mean)).toFixed(3);
  figures.clusterip_conn_rate_ratio = +(mean(res.clusterip.rate) / mean(res.pod.rate)).toFixed(3);

  // DNS: the agent answers the Service's name, asked through the kube-dns ClusterIP.
  const status = JSON.parse(a.run('status', '-o', 'json'));
  const d = await runJSON(clientNetns, '0', DNS_LOAD, [status.services.dns, 'server.default.svc.cluster.local', String(DNS_SECONDS), '32']);
  log(`dns: ${d.qps.toFixed(0)} queries/s answered (${d.answered}, ${d.errors} errors), p50 ${d.p50_ms.toFixed(3)} ms, p99 ${d.p99_ms.toFixed(3)} ms`);
  figures.dns_queries_per_s = Math.round(d.qps);
  figures.dns_p50_ms = +d.p50_ms.toFixed(3);
  figures.dns_p99_ms = +d.p99_ms.toFixed(3);
  figures.dns_errors = d.errors;
} catch (e) {
  console.error(`bench/services: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  a.remove();
}

// The demo, from no agent at all.
const b = scratchAgent('bsw', '10.226.0.0/24', '10.227.0.0/24');
try {
  log('membrane demo starwars');
  const out = b.run('demo', 'starwars');
  figures.demo_ready_s = Number(/demo_ready_s=([\d.]+)/.exec(out)[1]);
} catch (e) {
  console.error(`bench/services: demo: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  b.remove();
}

const rows = [
  ['TCP RR mean (us)', figures.rr_mean_us_pod, figures.rr_mean_us_clusterip, figures.clusterip_rr_latency_ratio],
  ['new connections / s', figures.conn_rate_per_s_pod, figures.conn_rate_per_s_clusterip, figures.clusterip_conn_rate_ratio],
];
console.log(['MEASURE'.padEnd(22), 'POD IP'.padEnd(12), 'CLUSTERIP'.padEnd(12), 'RATIO'].join(''));
for (const r of rows) console.log([String(r[0]).padEnd(22), String(r[1]).padEnd(12), String(r[2]).padEnd(12), String(r[3])].join(''));
console.log(`DNS queries / s answered by the agent: ${figures.dns_queries_per_s} (p50 ${figures.dns_p50_ms} ms, p99 ${figures.dns_p99_ms} ms)`);
console.log(`demo ready after ${figures.demo_ready_s} s`);
console.log(JSON.stringify({ bench: 'services', figures, config }));
process.exit(exitCode);
