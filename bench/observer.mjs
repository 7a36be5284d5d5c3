#!/usr/bin/env node
// bench/observer: the observer's throughput, measured in one run (root):
//   - kernel_events_per_s: drop events made by the endpoint program itself
//     (BPF_PROG_TEST_RUN of to_container on a SYN its default deny drops,
//     `repeat` times per run), read from the kernel ring buffer and turned
//     into flows in the ring, with events_lost the kernel's count of events
//     its ring buffer could not take meanwhile;
//   - getflows_flows_per_s: the flow ring (full, 65,535 flows) streamed to
//     one client over the Observer gRPC API (GetFlows, number = the ring).
// Usage: bench/observer [--quick]   (root; the last line is JSON)
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Datapath, EndpointFlags, ipv4ToNumber } from '../packages/datapath/dist/index.js';
import { buildPacket } from '../packages/datapath/dist/test/packets.js';
import { Observer } from '../packages/observer/dist/index.js';
import { HubbleServer } from '../packages/agent/dist/observer/hubble-server.js';
import { observer as obs } from '../proto/dist/index.js';

const quick = process.argv.includes('--quick');
const EVENTS = quick ? 200_000 : 2_000_000;
const PER_RUN = 1000;
const log = (s) => process.stderr.write(`observer: ${s}\n`);
if (process.geteuid?.() !== 0) {
  console.error('bench/observer needs root (it loads the BPF programs)');
  process.exit(1);
}

const pinRoot = `/sys/fs/bpf/mbr-bench-obs-${process.pid}`;
const EP = { id: 42, ip: '10.200.0.10', identity: 300 };
const PEER = { ip: '10.200.0.20', identity: 400 };
const context = {
  nodeName: 'bench',
  endpoint: (id) => (id === EP.id ? { id, identity: EP.identity, namespace: 'default', podName: 'server', labels: ['k8s:app=server'] } : undefined),
  endpointByIP: () => undefined,
  identityLabels: (id) => (id === PEER.identity ? ['k8s:app=client'] : undefined),
  names: () => [],
  origins: () => [],
  defaultDenyBy: () => [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'bench' }],
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
  const packet = buildPacket({ src: PEER.ip, dst: EP.ip, proto: 'tcp', sport: 40000, dport: 80, flags: 2 });
  const observer = new Observer({ context, capacity: 65_535 });
  let parsed = 0;
  dp.onEvents((events) => {
    observer.ingestDatapath(events);
    parsed += events.length;
  }, 5);
  const lostBefore = dp.lostEvents();
  const t0 = performance.now();
  let made = 0;
  while (made < EVENTS) {
    dp.nb.progTestRun(dp.progs.toContainer, packet, { repeat: PER_RUN });
    made += PER_RUN;
    // Let the reader drain what the runs put in the ring (it runs on this loop).
    if (made % (PER_RUN * 8) === 0) await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 200 && parsed < made - Number(dp.lostEvents() - lostBefore); i++) {
    dp.drainEvents();
    await new Promise((r) => setTimeout(r, 5));
  }
  const seconds = (performance.now() - t0) / 1000;
  figures.kernel_events = made;
  figures.events_parsed = parsed;
  figures.events_lost = Number(dp.lostEvents() - lostBefore);
  figures.kernel_events_per_s = Math.round(parsed / seconds);
  log(`${made} events made by to_container, ${parsed} parsed into flows, ${figures.events_lost} lost by the kernel ring, ${seconds.toFixed(2)} s`);

  // GetFlows: the whole ring to one client.
  const server = new HubbleServer({ observer: () => observer, nodeName: 'bench', version: 'bench', address: '127.0.0.1', port: 0 });
  await server.start();
  try {
    const client = createClient(obs.Observer, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }));
    const rounds = quick ? 1 : 3;
    let best = 0;
    for (let r = 0; r < rounds; r++) {
      const t1 = performance.now();
      let n = 0;
      for await (const res of client.getFlows(create(obs.GetFlowsRequestSchema, { number: BigInt(observer.ring.size) }))) if (res.responseTypes.case === 'flow') n++;
      const rate = n / ((performance.now() - t1) / 1000);
      best = Math.max(best, rate);
      log(`GetFlows round ${r + 1}: ${n} flows at ${Math.round(rate)}/s`);
    }
    figures.getflows_flows_per_s = Math.round(best);
  } finally {
    await server.stop();
  }
  figures.rr_latency_ratio_observing = null; // not measured yet: see bench/datapath for the datapath's own ratios
} catch (e) {
  console.error(`bench/observer: ${e instanceof Error ? e.stack : String(e)}`);
  exitCode = 1;
} finally {
  dp.close();
  Datapath.unpinAll(pinRoot);
}
console.log(['MEASURE'.padEnd(40), 'VALUE'].join(''));
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(40)}${v}`);
console.log(JSON.stringify({ bench: 'observer', figures, config: { quick, events: EVENTS, per_run: PER_RUN, node: process.version } }));
process.exit(exitCode);
