#!/usr/bin/env node
// bench/observer: the observer's throughput, measured in one run (root):
//   - kernel_events_per_s: drop events made by the endpoint program itself
//     (BPF_PROG_TEST_RUN of to_container on a SYN its default deny drops,
//     `repeat` times per run, in another process: observer-producer.mjs),
//     read from the kernel ring buffer and taken into the flow ring as the
//     agent takes them, with events_lost the kernel's count of events its
//     ring buffer could not take meanwhile; the rate is over the time from
//     the producer's start until the last event was in the ring;
//   - getflows_flows_per_s: the flow ring (full, 65,535 flows) streamed to
//     one client over the Observer gRPC API (GetFlows, number = the ring;
//     the client in its own process: observer-client.mjs);
//   - rr_latency_ratio_observing: pod-to-pod request/response latency under
//     a flood of drop events, with the observer consuming them versus not
//     (observer-rr.mjs).
// Usage: bench/observer [--quick]   (root; the last line is JSON)
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Datapath, EndpointFlags, ipv4ToNumber } from '../packages/datapath/dist/index.js';
import { Observer } from '../packages/observer/dist/index.js';
import { HubbleServer } from '../packages/agent/dist/observer/hubble-server.js';
import { rrObserving } from './observer-rr.mjs';

const quick = process.argv.includes('--quick');
const EVENTS = quick ? 200_000 : 2_000_000;
const here = new URL('.', import.meta.url).pathname;
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill();
});
const log = (s) => process.stderr.write(`observer: ${s}\n`);
if (process.geteuid?.() !== 0) {
  console.error('bench/observer needs root (it loads the BPF programs)');
  process.exit(1);
}

const pinRoot = `/sys/fs/bpf/mbr-bench-obs-${process.pid}`;
const EP = { id: 42, ip: '10.200.0.10', identity: 300 };
const PEER = { ip: '10.200.0.20', identity: 400 };
// As the agent's context answers: one object per endpoint, kept until something changes.
const DENY_BY = [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'bench' }];
const SERVER = { id: EP.id, identity: EP.identity, namespace: 'default', podName: 'server', labels: ['k8s:app=server'], policy: { origins: () => [], matchType: () => 0, defaultDenyBy: () => DENY_BY } };
const CLIENT_LABELS = ['k8s:app=client'];
const NONE = [];
const context = {
  nodeName: 'bench',
  endpoint: (id) => (id === EP.id ? SERVER : undefined),
  endpointAt: () => undefined,
  identityLabels: (id) => (id === PEER.identity ? CLIENT_LABELS : undefined),
  names: () => NONE,
};

const figures = {};
let exitCode = 0;
const dp = Datapath.open({ pinRoot });
try {
  // The endpoint on lo (a test run's skb is on lo) under ingress default deny: every SYN to it is a drop event.
  dp.setEndpoint(1, { ep_id: EP.id, ipv4: ipv4ToNumber(EP.ip), identity: EP.identity, flags: EndpointFlags.INGRESS_ENFORCED | EndpointFlags.INGRESS_DEFAULT_DENY });
  dp.ipcacheUpsert(`${EP.ip}/32`, EP.identity, EP.id);
  dp.ipcacheUpsert(`${PEER.ip}/32`, PEER.identity);
  dp.replacePolicy(EP.id, []);
  const observer = new Observer({ context, capacity: 65_535 });
  let parsed = 0;
  let firstAt = 0;
  let lastAt = 0;
  dp.onEventBatches((batch) => {
    if (!firstAt) firstAt = performance.now();
    const before = observer.seen;
    observer.ingestBatch(batch);
    parsed += observer.seen - before;
    lastAt = performance.now();
  }, 5);
  const lostBefore = dp.lostEvents();
  const producer = spawn(process.execPath, [join(here, 'observer-producer.mjs'), pinRoot, String(EVENTS), PEER.ip, EP.ip], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(producer);
  let out = '';
  producer.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => producer.once('exit', r));
  children.delete(producer);
  if (code !== 0) throw new Error(`the producer exited with ${code}`);
  const made = JSON.parse(out).made;
  for (let i = 0; i < 400 && parsed < made - Number(dp.lostEvents() - lostBefore); i++) {
    dp.drainEvents();
    await new Promise((r) => setTimeout(r, 5));
  }
  // From the first batch to the last event in the ring (the producer's start-up is no part of it).
  const seconds = (lastAt - firstAt) / 1000;
  figures.kernel_events = made;
  figures.events_parsed = parsed;
  figures.events_lost = Number(dp.lostEvents() - lostBefore);
  figures.kernel_events_per_s = Math.round(parsed / seconds);
  figures.producer_events_per_s = Math.round(made / JSON.parse(out).seconds);
  log(`${made} events made by to_container (${figures.producer_events_per_s}/s in the producer), ${parsed} taken into the ring, ${figures.events_lost} lost by the kernel ring, ${seconds.toFixed(2)} s`);
  // Every event became a flow that says what it was.
  const last = observer.flow(observer.seen - 1);
  if (!last || last.verdict !== 2 || last.destination?.podName !== 'server') throw new Error('the last event did not become the drop flow it should be');

  // GetFlows: the whole ring to one client.
  const server = new HubbleServer({ observer: () => observer, nodeName: 'bench', version: 'bench', address: '127.0.0.1', port: 0 });
  await server.start();
  try {
    const rounds = quick ? 1 : 3;
    let best = 0;
    for (let r = 0; r < rounds; r++) {
      const c = spawn(process.execPath, [join(here, 'observer-client.mjs'), `127.0.0.1:${server.port}`, String(observer.ring.size)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(c);
      let text = '';
      c.stdout.on('data', (d) => (text += d));
      const code = await new Promise((res) => c.once('exit', res));
      children.delete(c);
      if (code !== 0) throw new Error(`the GetFlows client exited with ${code}`);
      const got = JSON.parse(text);
      if (got.flows !== observer.ring.size || got.status !== '0') throw new Error(`GetFlows gave ${got.flows} of ${observer.ring.size} flows, grpc-status ${got.status}`);
      const rate = got.flows / got.seconds;
      best = Math.max(best, rate);
      log(`GetFlows round ${r + 1}: ${got.flows} flows at ${Math.round(rate)}/s (${got.checked} decoded and checked)`);
    }
    figures.getflows_flows_per_s = Math.round(best);
  } finally {
    await server.stop();
  }
  Object.assign(figures, await rrObserving({ rounds: quick ? 2 : 4, count: quick ? 3000 : 20000, log }));
} catch (e) {
  console.error(`bench/observer: ${e instanceof Error ? e.stack : String(e)}`);
  exitCode = 1;
} finally {
  dp.close();
  Datapath.unpinAll(pinRoot);
}
console.log(['MEASURE'.padEnd(40), 'VALUE'].join(''));
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(40)}${v}`);
console.log(JSON.stringify({ bench: 'observer', figures, config: { quick, events: EVENTS, node: process.version } }));
process.exit(exitCode);
