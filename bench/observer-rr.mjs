// bench/observer, third part: the datapath's TCP request/response latency
// between two pods (client and server pinned to CPU 0, an allowing L3/L4
// policy enforced with conntrack) while a third stream of the client —
// UDP datagrams its egress policy denies, back to back on CPU 1 — makes a
// drop event per datagram; with the observer consuming those events (the
// ring buffer read and every event taken into the flow ring, on CPU 1)
// versus not consuming them (the reader closed: the kernel ring fills and
// the events are counted lost there). Rounds alternate the two modes.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Cleanup, Datapath } from '../packages/datapath/dist/index.js';
import { EndpointRealizer } from '../packages/endpoint/dist/index.js';
import { Observer } from '../packages/observer/dist/index.js';
import { FIRST_CLUSTER_IDENTITY, SelectorCache, endpointIdentityLabels, parsePolicyDocument, reservedIdentities, resolveAll } from '../packages/policy/dist/index.js';
import { POD_CIDR, PodNetwork, installSafetyRoutes, runNames } from '../packages/testkit/dist/index.js';

const TRAFFIC = new URL('./datapath-traffic.mjs', import.meta.url).pathname;

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Returns { rr_mean_us_not_observing, rr_mean_us_observing, rr_latency_ratio_observing, observed_events_per_s }. */
export async function rrObserving({ rounds, count, log }) {
  const cleanup = new Cleanup();
  const names = runNames();
  const children = new Set();
  const inPod = (pod, cpu, args) => {
    const c = spawn('ip', ['netns', 'exec', pod.netns, 'taskset', '-c', cpu, process.execPath, TRAFFIC, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(c);
    c.on('exit', () => children.delete(c));
    return c;
  };
  const firstLine = (c) => new Promise((resolve, reject) => {
    createInterface({ input: c.stdout }).once('line', resolve);
    c.once('exit', (code) => reject(new Error(`traffic process exited (${code})`)));
  });
  // The observer (this process) on CPU 1, away from the round trips.
  spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  try {
    const rails = await installSafetyRoutes([POD_CIDR]);
    cleanup.add('safety routes', () => rails.remove());
    const net = await PodNetwork.create(cleanup, names);
    const client = await net.addPod('bench/client', '10.207.8.1', cleanup);
    const server = await net.addPod('bench/server', '10.207.8.2', cleanup);
    const srv = inPod(server, '0', ['server', '5001']);
    cleanup.add('server', () => srv.kill('SIGKILL'));
    if ((await firstLine(srv)) !== 'ready') throw new Error('server did not start');

    const ids = reservedIdentities();
    const clientId = { id: FIRST_CLUSTER_IDENTITY, labels: endpointIdentityLabels({ namespace: 'bench', podLabels: { app: 'client' } }) };
    const serverId = { id: FIRST_CLUSTER_IDENTITY + 1, labels: endpointIdentityLabels({ namespace: 'bench', podLabels: { app: 'server' } }) };
    ids.push(clientId, serverId);
    const doc = (name, spec) => parsePolicyDocument({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'bench' }, spec }, { source: 'bench', label: name }).rules;
    const rules = [
      ...doc('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '5001', protocol: 'TCP' }] }] }] }),
      ...doc('client-out', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'server' } }], toPorts: [{ ports: [{ port: '5001', protocol: 'TCP' }] }] }] }),
    ];
    const pinRoot = `${names.pinPrefix}-obs`;
    const dp = Datapath.open({ pinRoot });
    cleanup.add('datapath pins', () => Datapath.unpinAll(pinRoot));
    cleanup.add('datapath', () => dp.close());
    const realizer = new EndpointRealizer(dp);
    const selection = { identities: ids };
    const pol = resolveAll(rules, selection, [clientId, serverId], () => ({}), new SelectorCache(selection));
    realizer.realize({ ifindex: client.ifindex, epId: 1, ipv4: client.ip, identity: clientId.id }, pol.get(clientId.id));
    realizer.realize({ ifindex: server.ifindex, epId: 2, ipv4: server.ip, identity: serverId.id }, pol.get(serverId.id));
    dp.attach(client.ifindex, client.hostIf);
    dp.attach(server.ifindex, server.hostIf);
    cleanup.add('detach programs', () => {
      dp.detach(client.ifindex);
      dp.detach(server.ifindex);
    });

    const labels = new Map([[clientId.id, clientId.labels.toStrings()], [serverId.id, serverId.labels.toStrings()]]);
    const observer = new Observer({ context: { nodeName: 'bench', endpoint: () => undefined, endpointAt: () => undefined, identityLabels: (id) => labels.get(id), names: () => [] } });
    const flood = inPod(client, '1', ['udpflood', server.ip, '6001', '3600']);
    cleanup.add('udp flood', () => flood.kill('SIGKILL'));
    await firstLine(flood);

    const res = { off: [], on: [] };
    let observed = 0;
    let observedSeconds = 0;
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
        dp.closeEvents();
        if (mode === 'on') dp.onEventBatches((b) => observer.ingestBatch(b), 20);
        await new Promise((ok) => setTimeout(ok, 200));
        const before = observer.seen;
        const t0 = performance.now();
        const rr = inPod(client, '0', ['rr', server.ip, '5001', String(count)]);
        const got = JSON.parse(await firstLine(rr));
        if (mode === 'on') {
          observed += observer.seen - before;
          observedSeconds += (performance.now() - t0) / 1000;
        }
        res[mode].push(got.mean_us);
        log(`round ${r + 1}/${rounds}, observer ${mode === 'on' ? 'consuming' : 'not consuming'}: ${count} round trips, mean ${got.mean_us.toFixed(1)} µs`);
      }
    }
    dp.closeEvents();
    if (observed === 0) throw new Error('the flood made no events the observer saw');
    return {
      rr_mean_us_not_observing: +mean(res.off).toFixed(1),
      rr_mean_us_observing: +mean(res.on).toFixed(1),
      rr_latency_ratio_observing: +(mean(res.on) / mean(res.off)).toFixed(3),
      observed_events_per_s: Math.round(observed / observedSeconds),
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await cleanup.run();
    spawnSync('taskset', ['-a', '-p', '-c', '0-1023', String(process.pid)], { stdio: 'ignore' });
  }
}
