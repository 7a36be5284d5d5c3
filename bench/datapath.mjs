#!/usr/bin/env node
// bench/datapath: pod-to-pod TCP request/response latency and new-connection
// rate with no program attached versus Membrane's programs enforcing an
// allowing L3/L4 policy (conntrack and events on), measured in one run with
// client and server pinned to the same CPU; and the time from a policy change
// to the first packet the new policy judges, for 1, 100 and 1,000 rules.
// Usage: bench/datapath [--quick]   (root; last line: JSON, see shared/spec/cli.md)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Cleanup, Datapath } from '@membrane/datapath';
import { EndpointRealizer } from '@membrane/endpoint';
import { FIRST_CLUSTER_IDENTITY, FIRST_LOCAL_IDENTITY, SelectorCache, cidrIdentity, endpointIdentityLabels, parsePolicyDocument, reservedIdentities, resolveAll } from '@membrane/policy';
import { POD_CIDR, PodNetwork, findLeaks, installSafetyRoutes, runNames } from '@membrane/testkit';

const quick = process.argv.includes('--quick');
const RR_COUNT = quick ? 3000 : 20000;
const CONN_SECONDS = quick ? 1 : 3;
const ROUNDS = quick ? 2 : 3;
const RULES = [1, 100, 1000];
const TRAFFIC = new URL('./datapath-traffic.mjs', import.meta.url).pathname;
const CPU = '0';

if (process.geteuid?.() !== 0) {
  console.error('bench/datapath needs root (CAP_BPF/CAP_NET_ADMIN): run as root');
  process.exit(1);
}

const log = (s) => process.stderr.write(`datapath: ${s}\n`);
const cleanup = new Cleanup();
const names = runNames();
const children = new Set();

function inPod(pod, args) {
  const c = spawn('ip', ['netns', 'exec', pod.netns, 'taskset', '-c', CPU, process.execPath, TRAFFIC, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

function lines(child) {
  const rl = createInterface({ input: child.stdout });
  const queue = [];
  const waiters = [];
  rl.on('line', (l) => (waiters.length ? waiters.shift()(l) : queue.push(l)));
  return () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    waiters.push(resolve);
    child.once('exit', (code) => reject(new Error(`traffic process exited (${code})`)));
  });
}

async function runJSON(pod, args) {
  const c = inPod(pod, args);
  const next = lines(c);
  return JSON.parse(await next());
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

const figures = {};
let exitCode = 0;
try {
  const rails = await installSafetyRoutes([POD_CIDR]);
  cleanup.add('safety routes', () => rails.remove());
  const net = await PodNetwork.create(cleanup, names);
  const client = await net.addPod('bench/client', '10.207.7.1', cleanup);
  const server = await net.addPod('bench/server', '10.207.7.2', cleanup);
  const srv = inPod(server, ['server', '5001']);
  cleanup.add('server', () => srv.kill('SIGKILL'));
  if ((await lines(srv)()) !== 'ready') throw new Error('server did not start');

  // Identities and an allowing L3/L4 policy on both sides (egress of the client, ingress of the server).
  const ids = reservedIdentities();
  const clientId = { id: FIRST_CLUSTER_IDENTITY, labels: endpointIdentityLabels({ namespace: 'bench', podLabels: { app: 'client' } }) };
  const serverId = { id: FIRST_CLUSTER_IDENTITY + 1, labels: endpointIdentityLabels({ namespace: 'bench', podLabels: { app: 'server' } }) };
  ids.push(clientId, serverId);
  for (let i = 0; i < 250; i++) ids.push(cidrIdentity(FIRST_LOCAL_IDENTITY + i, `203.0.113.${i + 1}`));
  const doc = (name, spec) => parsePolicyDocument({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'bench' }, spec }, { source: 'bench', label: name }).rules;
  const allowRules = [
    ...doc('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '5001', protocol: 'TCP' }] }] }] }),
    ...doc('client-out', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'server' } }], toPorts: [{ ports: [{ port: '5001', protocol: 'TCP' }, { port: '6000', protocol: 'UDP' }] }] }] }),
  ];
  const pinRoot = `${names.pinPrefix}-bench`;
  const dp = Datapath.open({ pinRoot });
  cleanup.add('datapath pins', () => Datapath.unpinAll(pinRoot));
  cleanup.add('datapath', () => dp.close());
  const realizer = new EndpointRealizer(dp);
  const eps = { client: { ifindex: client.ifindex, epId: 1, ipv4: client.ip, identity: clientId.id }, server: { ifindex: server.ifindex, epId: 2, ipv4: server.ip, identity: serverId.id } };
  // Like the agent, keep the selector cache while the identities stay the same.
  const selection = { identities: ids };
  const cache = new SelectorCache(selection);
  const apply = (rules) => {
    const pol = resolveAll(rules, selection, [clientId, serverId], () => ({}), cache);
    realizer.realize(eps.client, pol.get(clientId.id));
    realizer.realize(eps.server, pol.get(serverId.id));
  };
  apply(allowRules);
  let events = 0;
  const firstForwarded = [];
  dp.onEvents((evs) => {
    events += evs.length;
    for (const e of evs) if (e.type === 1 && e.dport === 6000) firstForwarded.push(e.ts_ns);
  }, 20);

  const attach = () => {
    dp.attach(client.ifindex, client.hostIf);
    dp.attach(server.ifindex, server.hostIf);
  };
  const detach = () => {
    dp.detach(client.ifindex);
    dp.detach(server.ifindex);
  };
  cleanup.add('detach programs', () => detach());

  // Latency and connection rate: rounds alternating without and with programs.
  const res = { off: { mean: [], p50: [], p99: [], rate: [] }, on: { mean: [], p50: [], p99: [], rate: [] } };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so neither mode always runs on a machine warmed (or littered with TIME_WAIT) by the other.
    for (const mode of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      if (mode === 'on') attach();
      else detach();
      log(`round ${r + 1}/${ROUNDS}, programs ${mode}: ${RR_COUNT} round trips, ${CONN_SECONDS}s of connections`);
      const rr = await runJSON(client, ['rr', server.ip, '5001', String(RR_COUNT)]);
      const cr = await runJSON(client, ['connrate', server.ip, '5001', String(CONN_SECONDS)]);
      res[mode].mean.push(rr.mean_us);
      res[mode].p50.push(rr.p50_us);
      res[mode].p99.push(rr.p99_us);
      res[mode].rate.push(cr.per_s);
    }
  }
  attach();
  figures.rr_mean_us_without = +mean(res.off.mean).toFixed(1);
  figures.rr_mean_us_with = +mean(res.on.mean).toFixed(1);
  figures.rr_p50_us_without = +mean(res.off.p50).toFixed(1);
  figures.rr_p50_us_with = +mean(res.on.p50).toFixed(1);
  figures.rr_p99_us_without = +mean(res.off.p99).toFixed(1);
  figures.rr_p99_us_with = +mean(res.on.p99).toFixed(1);
  figures.rr_latency_ratio = +(mean(res.on.mean) / mean(res.off.mean)).toFixed(3);
  figures.rr_p99_ratio = +(mean(res.on.p99) / mean(res.off.p99)).toFixed(3);
  figures.conn_rate_per_s_without = +mean(res.off.rate).toFixed(0);
  figures.conn_rate_per_s_with = +mean(res.on.rate).toFixed(0);
  figures.conn_rate_ratio = +(mean(res.on.rate) / mean(res.off.rate)).toFixed(3);

  // Policy change to enforcement: the server's ingress denies UDP 6000 while the
  // client sends to it back to back; then a policy of N rules that allows it is
  // applied, and the first forwarded packet's kernel timestamp ends the clock.
  const REPS = quick ? 3 : 7;
  for (const n of RULES) {
    const filler = [];
    for (let i = 0; i < n - 1; i++) {
      filler.push({ fromCIDR: [`203.0.113.${(i % 250) + 1}/32`], toPorts: [{ ports: [{ port: String(10000 + i), protocol: 'TCP' }] }] });
    }
    // Two policies of n rules each: `closed` leaves UDP 6000 shut, `open` allows it.
    // They are parsed and translated before the clock starts: this measures resolution,
    // the policy-map fill and the swap, not YAML parsing (bench/agent covers the whole stack).
    const policyOf = (ports) => [
      ...doc('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [...filler, { fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports }] }] }),
      allowRules[1],
    ];
    const closed = policyOf([{ port: '5001', protocol: 'TCP' }]);
    const open = policyOf([{ port: '5001', protocol: 'TCP' }, { port: '6000', protocol: 'UDP' }]);
    const flood = inPod(client, ['udpflood', server.ip, '6000', '60']);
    cleanup.add('udp flood', () => flood.kill('SIGKILL'));
    await lines(flood)();
    const samples = [];
    for (let rep = 0; rep < REPS; rep++) {
      apply(closed);
      dp.ctFlush();
      await new Promise((r) => setTimeout(r, 30));
      dp.drainEvents();
      firstForwarded.length = 0;
      const t0 = process.hrtime.bigint();
      apply(open);
      const deadline = Date.now() + 5000;
      while (firstForwarded.length === 0 && Date.now() < deadline) {
        dp.drainEvents();
        await new Promise((r) => setImmediate(r));
      }
      if (firstForwarded.length === 0) throw new Error(`no packet forwarded within 5 s of applying ${n} rules`);
      samples.push(Number(firstForwarded[0] - t0) / 1e6);
    }
    flood.kill('SIGKILL');
    samples.sort((a, b) => a - b);
    const ms = samples[Math.floor(samples.length / 2)];
    figures[`apply_to_enforced_ms_${n}`] = +ms.toFixed(2);
    log(`${n} rule(s): enforced ${ms.toFixed(2)} ms after the change (median of ${REPS}; min ${samples[0].toFixed(2)}, max ${samples[samples.length - 1].toFixed(2)})`);
  }
  figures.events_seen = events;
  figures.events_lost = Number(dp.lostEvents());
} catch (e) {
  console.error(`bench/datapath: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGKILL');
  await cleanup.run().catch((e) => {
    console.error(`bench/datapath: cleanup: ${e.message}`);
    exitCode = 1;
  });
  const leaks = await findLeaks(names);
  if (leaks.length) {
    console.error(`bench/datapath: left behind: ${leaks.join(', ')}`);
    exitCode = 1;
  }
}
if (exitCode === 0) {
  const rows = [
    ['TCP RR mean (us)', figures.rr_mean_us_without, figures.rr_mean_us_with, figures.rr_latency_ratio],
    ['TCP RR p50 (us)', figures.rr_p50_us_without, figures.rr_p50_us_with, +(figures.rr_p50_us_with / figures.rr_p50_us_without).toFixed(3)],
    ['TCP RR p99 (us)', figures.rr_p99_us_without, figures.rr_p99_us_with, figures.rr_p99_ratio],
    ['new connections / s', figures.conn_rate_per_s_without, figures.conn_rate_per_s_with, figures.conn_rate_ratio],
  ];
  console.log(['MEASURE', 'WITHOUT PROGRAMS', 'WITH PROGRAMS', 'RATIO'].map((h, i) => h.padEnd(i === 0 ? 22 : 18)).join(''));
  for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(i === 0 ? 22 : 18)).join(''));
  for (const n of RULES) console.log(`policy change to enforcement, ${n} rule(s): ${figures[`apply_to_enforced_ms_${n}`]} ms`);
  console.log(JSON.stringify({ bench: 'datapath', figures, config: { rr_count: RR_COUNT, conn_seconds: CONN_SECONDS, rounds: ROUNDS, cpu: CPU, quick, node: process.version } }));
}
process.exit(exitCode);
