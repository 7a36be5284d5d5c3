#!/usr/bin/env node
// bench/services-sock: what the socket load balancer (bpf_sock.c) costs.
// TCP request/response latency over one connection and new connections per
// second, client and server pinned to the same CPU, in three modes measured
// in one run, rounds alternating their order:
//   off       no programs attached, straight to the backend pod's IP;
//   direct    programs attached, straight to the backend pod's IP (what every
//             other process of the machine pays: one map lookup per connect);
//   frontend  programs attached, to a ClusterIP frontend translated at connect().
// Ratios: frontend/direct (the goal: latency <= 1.03, connection rate >= 0.95)
// and direct/off.
// Usage: node bench/services-sock.mjs [--quick]   (root; last line: JSON)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Cleanup, PodNetwork, ServiceDatapath, installSafetyRoutes } from '@membrane/datapath';

const quick = process.argv.includes('--quick');
const RR_COUNT = quick ? 3000 : 20000;
const CONN_SECONDS = quick ? 1 : 3;
const ROUNDS = quick ? 2 : 4;
const TRAFFIC = new URL('./datapath-traffic.mjs', import.meta.url).pathname;
const CPU = '0';
const POD_CIDR = '10.214.0.0/24';
const SERVICE_CIDR = '10.218.0.0/24';
const FRONTEND = { ip: '10.218.0.10', port: 80, protocol: 'TCP' };
const PIN_ROOT = `/sys/fs/bpf/mbr-bench-sock-${process.pid}`;

if (process.geteuid?.() !== 0) {
  console.error('bench/services-sock needs root (CAP_BPF/CAP_NET_ADMIN): run as root');
  process.exit(1);
}

const log = (s) => process.stderr.write(`services-sock: ${s}\n`);
const cleanup = new Cleanup();
const children = new Set();

function inPod(pod, args) {
  const c = spawn('ip', ['netns', 'exec', pod.netns, 'taskset', '-c', CPU, process.execPath, TRAFFIC, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

function firstLine(child) {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`traffic process exited (${code})`)));
  });
}

const runJSON = async (pod, args) => JSON.parse(await firstLine(inPod(pod, args)));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

let sd;
const programsOn = () => {
  sd ??= ServiceDatapath.open({ pinRoot: PIN_ROOT });
  sd.upsertService({ id: 1, frontend: FRONTEND, backends: [{ ip: server.ip, port: 5001 }] });
};
const programsOff = () => {
  sd?.close();
  sd = undefined;
  ServiceDatapath.teardown(PIN_ROOT);
};

const figures = {};
let exitCode = 0;
let server;
try {
  const rails = await installSafetyRoutes([POD_CIDR, SERVICE_CIDR]);
  cleanup.add('safety routes', () => rails.remove());
  const names = { linkPrefix: `mbr${process.pid.toString(36)}k-`, netnsPrefix: `mbrb${process.pid}k-` };
  const net = await PodNetwork.open({ cidr: POD_CIDR, names, cleanup });
  const client = await net.addPod({ id: 'c', name: 'bench/client' }, cleanup);
  server = await net.addPod({ id: 's', name: 'bench/server' }, cleanup);
  const srv = inPod(server, ['server', '5001']);
  cleanup.add('server', () => srv.kill('SIGKILL'));
  if ((await firstLine(srv)) !== 'ready') throw new Error('server did not start');
  cleanup.add('socket load balancer', () => programsOff());

  const target = { off: [server.ip, '5001'], direct: [server.ip, '5001'], frontend: [FRONTEND.ip, String(FRONTEND.port)] };
  const res = Object.fromEntries(Object.keys(target).map((m) => [m, { mean: [], p50: [], p99: [], rate: [] }]));
  const orders = [['off', 'direct', 'frontend'], ['frontend', 'direct', 'off']];
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of orders[r % 2]) {
      if (mode === 'off') programsOff();
      else programsOn();
      log(`round ${r + 1}/${ROUNDS}, ${mode}: ${RR_COUNT} round trips, ${CONN_SECONDS}s of connections to ${target[mode].join(':')}`);
      const rr = await runJSON(client, ['rr', ...target[mode], String(RR_COUNT)]);
      const cr = await runJSON(client, ['connrate', ...target[mode], String(CONN_SECONDS)]);
      res[mode].mean.push(rr.mean_us);
      res[mode].p50.push(rr.p50_us);
      res[mode].p99.push(rr.p99_us);
      res[mode].rate.push(cr.per_s);
      log(`  ${mode}: rr mean ${rr.mean_us.toFixed(1)} us, p99 ${rr.p99_us.toFixed(1)} us; ${cr.per_s.toFixed(0)} connections/s`);
    }
  }
  for (const mode of Object.keys(target)) {
    figures[`rr_mean_us_${mode}`] = +mean(res[mode].mean).toFixed(1);
    figures[`rr_p99_us_${mode}`] = +mean(res[mode].p99).toFixed(1);
    figures[`conn_rate_per_s_${mode}`] = +mean(res[mode].rate).toFixed(0);
  }
  figures.rr_latency_ratio_frontend_vs_direct = +(mean(res.frontend.mean) / mean(res.direct.mean)).toFixed(3);
  figures.conn_rate_ratio_frontend_vs_direct = +(mean(res.frontend.rate) / mean(res.direct.rate)).toFixed(3);
  figures.rr_latency_ratio_direct_vs_off = +(mean(res.direct.mean) / mean(res.off.mean)).toFixed(3);
  figures.conn_rate_ratio_direct_vs_off = +(mean(res.direct.rate) / mean(res.off.rate)).toFixed(3);
} catch (e) {
  console.error(`bench/services-sock: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGKILL');
  await cleanup.run().catch((e) => {
    console.error(`bench/services-sock: cleanup: ${e.message}`);
    exitCode = 1;
  });
}
console.log(JSON.stringify(figures));
process.exit(exitCode);
