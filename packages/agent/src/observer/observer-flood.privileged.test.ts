// Loss counted exactly, never silent: the endpoint program makes more drop
// events than the kernel ring buffer holds while nobody reads it, then more
// than the flow ring holds while a GetFlows follower (an independent
// grpc-js client over the repository's .proto files) is slower than they
// come. What was made, what arrived and what was lost add up, and the loss
// is told the same in-band (LostEvent, by source) and in the metrics
// (hubble_lost_events_total{source}).
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Datapath, EndpointFlags, ipv4ToNumber } from '@membrane/datapath';
import { buildPacket, requireRoot } from '@membrane/datapath/testing';
import { Observer, type EndpointInfo, type FlowContext } from '@membrane/observer';
import { REPO_ROOT } from '@membrane/testkit';
import { HubbleServer } from './hubble-server.js';
import { KernelLossWatch } from './kernel-loss.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const EP = { id: 42, ip: '10.200.0.10', identity: 300 };
const PEER = { ip: '10.200.0.20', identity: 400 };
const SERVER: EndpointInfo = { id: EP.id, identity: EP.identity, namespace: 'default', podName: 'server', labels: ['k8s:app=server'] };
const context: FlowContext = { nodeName: 'flood', endpoint: (id) => (id === EP.id ? SERVER : undefined), endpointAt: () => undefined, identityLabels: () => undefined, names: () => [] };
const FLOW_RING = 4096;

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a flood of the kernel ring and of the flow ring: made = arrived + lost, told in-band and in the metrics alike', { timeout: 120_000 }, async (t) => {
  if (!requireRoot(t, 'loads the BPF programs and runs them with BPF_PROG_TEST_RUN')) return;
  const pinRoot = `/sys/fs/bpf/mbr-flood-${process.pid}`;
  const dp = Datapath.open({ pinRoot });
  t.after(() => {
    dp.close();
    Datapath.unpinAll(pinRoot);
  });
  // An endpoint on lo (a test run's packet arrives there) in ingress default deny: every SYN to it is one drop event.
  dp.setEndpoint(1, { ep_id: EP.id, ipv4: ipv4ToNumber(EP.ip), identity: EP.identity, flags: EndpointFlags.INGRESS_ENFORCED | EndpointFlags.INGRESS_DEFAULT_DENY });
  dp.ipcacheUpsert(`${EP.ip}/32`, EP.identity, EP.id);
  dp.ipcacheUpsert(`${PEER.ip}/32`, PEER.identity);
  dp.replacePolicy(EP.id, []);
  const packet = buildPacket({ src: PEER.ip, dst: EP.ip, proto: 'tcp', sport: 40000, dport: 80, flags: 2 });
  const make = (n: number) => {
    for (let made = 0; made < n; made += 1000) dp.nb.progTestRun(dp.progs.toContainer, packet, { repeat: Math.min(1000, n - made) });
  };

  const observer = new Observer({ context, capacity: FLOW_RING });
  const loss = new KernelLossWatch(() => dp.lostEvents(), () => observer);
  const server = new HubbleServer({ observer: () => observer, nodeName: 'flood', version: 'test', address: '127.0.0.1', port: 0 });
  await server.start();
  t.after(() => server.stop());
  const def = protoLoader.loadSync(['observer/observer.proto'], { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.observer.Observer(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  t.after(() => client.close());

  // A follower, subscribed before the flood; it stops reading (its HTTP/2 window fills) until told to read on.
  const got = { flows: 0, lost: new Map<string, number>() };
  const call = client.GetFlows({ follow: true });
  call.on('data', (r: any) => {
    if (r.flow) got.flows++;
    else if (r.lost_events) got.lost.set(r.lost_events.source, (got.lost.get(r.lost_events.source) ?? 0) + Number(r.lost_events.num_events_lost));
  });
  const ended = new Promise<void>((res) => {
    call.on('error', () => res());
    call.on('end', () => res());
  });
  t.after(() => call.cancel());
  // Flows until one reaches the follower (its stream is open and subscribed), then all it will get of them.
  dp.onEventBatches((b) => observer.ingestBatch(b), 5);
  await until('the follower to see a first flow', () => {
    if (got.flows === 0) make(1);
    return got.flows > 0;
  });
  await new Promise((r) => setTimeout(r, 300));
  const base = got.flows;
  const before = observer.seen;
  call.pause();

  // 1. Nobody reads the kernel ring (the reader is closed): 150,000 events into a ring that holds 65,536.
  const MADE = 150_000;
  dp.closeEvents();
  const lostBefore = dp.lostEvents();
  make(MADE);
  const kernelLost = Number(dp.lostEvents() - lostBefore);
  assert.ok(kernelLost > 0 && kernelLost < MADE, `the kernel ring lost some (${kernelLost} of ${MADE})`);
  // 2. Read again: what the kernel ring held arrives, all at once, far more than the flow ring (4,096) holds.
  const seenBefore = observer.seen;
  dp.onEventBatches((b) => observer.ingestBatch(b), 5);
  await until('the held events to arrive', () => observer.seen - seenBefore === MADE - kernelLost);
  loss.poll();
  const arrived = observer.seen - seenBefore;
  assert.equal(arrived + kernelLost, MADE, 'made = arrived + lost by the kernel ring');
  assert.equal(observer.status().lost.kernel, kernelLost);

  // 3. The follower reads on: every flow after the first is either delivered or told lost by the flow ring.
  call.resume();
  await until('the follower to account for every flow', () => got.flows - base + (got.lost.get('HUBBLE_RING_BUFFER') ?? 0) === arrived && got.lost.has('PERF_EVENT_RING_BUFFER'));
  const ringLost = got.lost.get('HUBBLE_RING_BUFFER') ?? 0;
  assert.ok(ringLost > 0 && got.flows - base < arrived, `the flow ring (${FLOW_RING}) overtook the follower (${ringLost} lost of ${arrived})`);
  assert.equal(got.lost.get('PERF_EVENT_RING_BUFFER'), kernelLost, 'in-band: exactly what the kernel ring lost');

  // The metrics say the same.
  const text = await observer.metrics.text();
  const metric = (source: string) => Number(new RegExp(`hubble_lost_events_total\\{source="${source}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.equal(metric('PERF_EVENT_RING_BUFFER'), kernelLost);
  assert.equal(metric('HUBBLE_RING_BUFFER'), ringLost);
  assert.equal(Number(/hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} (\d+)/.exec(text)?.[1]), before + arrived, 'every event that arrived is counted');
  assert.equal(observer.seen, before + arrived);
  call.cancel();
  await ended;
});
