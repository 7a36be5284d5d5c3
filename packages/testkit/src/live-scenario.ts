/**
 * A scenario file run live: its endpoints become pods (IPs mapped into the
 * pod CIDR, the simulator judging the same mapped world), the endpoint
 * programs are attached to every pod's veth, each endpoint's MapState is
 * realized into the kernel, and every probe between two pods is made with
 * real TCP, UDP or ICMP traffic. The live verdict sits next to the
 * simulator's for the caller to compare.
 *
 * Outside peers get a test host each (@membrane/datapath TestHosts: a
 * namespace at the peer's documentation address behind a /32 rail).
 *
 * Not executed (reported as skipped, with the reason, never as passed):
 * HTTP and DNS probes and peers known by FQDN (no L7 and DNS proxy yet),
 * the host and the other reserved entities, addresses outside the
 * documentation ranges, a pod probing itself, SCTP, and ICMP types the
 * kernel answers with nothing to observe.
 */
import { Cleanup, Datapath, DropReason, Direction, EventType, TestHosts, numberToIPv4, type DatapathEvent } from '@membrane/datapath';
import { EndpointRealizer } from '@membrane/endpoint';
import { buildWorld, evaluateProbe, parseScenario, type Scenario, type ScenarioProbe, type World, type WorldPeer } from '@membrane/policy';
import { outsideAddress, type LiveOutcome, type LiveProbe, type ServerPorts } from '@membrane/cli/live';
import { mapEndpointIPs } from './pod-ips.js';
import type { Pod, PodNetwork } from './pods.js';
import { runProbeClient, startProbeServer } from './traffic.js';

/** This harness runs the datapath without an agent, so without the L7 proxy: `membrane policy test --live` makes HTTP probes live. */
export const SKIP_L7 = "L7 probes need the agent's proxies: this agent-less harness skips them (membrane policy test --live runs HTTP and DNS)";
export const SKIP_FQDN = "a peer known by its FQDN needs the agent's DNS proxy and toFQDNs cache: this agent-less harness skips it (membrane policy test --live runs it)";
export const SKIP_SELF = 'a pod probing itself never crosses its veth';
export const SKIP_SCTP = 'SCTP is not probed live (Node has no SCTP sockets)';
export const skipIcmpType = (t: number) => `ICMP type ${t} is not probed live: the kernel sends nothing back to observe (only types 8 and 13 are answered)`;

export type Verdict = 'allowed' | 'denied';

export interface LiveProbeResult {
  probe: ScenarioProbe;
  /** "probes[3] default/a → default/b TCP/80" */
  label: string;
  simulated: Verdict;
  /** The live verdict; `error` when the traffic showed neither (refused, unreachable ...). */
  live?: Verdict | 'error';
  skipped?: boolean;
  /** Why it was skipped, or what the traffic showed. */
  reason: string;
  /** Drops the datapath reported for this probe's packets (reason, where). */
  drops?: string[];
  ms?: number;
}

export interface LiveScenarioResult {
  name: string;
  source: string;
  results: LiveProbeResult[];
  pods: number;
  ms: number;
}

export interface LiveRunOptions {
  network: PodNetwork;
  /** Pin root of the scenario's datapath (removed when the scenario ends). */
  pinRoot: string;
  /** Bytes each TCP probe sends and expects echoed (default 32). */
  tcpBytes?: number;
}

function findPeer(world: World, name: string): WorldPeer {
  const p = world.peers.get(name) ?? world.peers.get(`default/${name}`);
  if (!p) throw new Error(`unknown peer ${name}`);
  return p;
}

export function probeLabel(p: ScenarioProbe): string {
  const what = p.protocol === 'ICMP' ? `ICMP type ${p.icmp?.type ?? 8}` : `${p.protocol}/${p.port}`;
  const l7 = p.http ? ` HTTP ${p.http.method ?? 'GET'} ${p.http.path ?? '/'}` : p.dns ? ` DNS ${p.dns.query}` : '';
  return `probes[${p.index}] ${p.from} → ${p.to} ${what}${l7}`;
}

/** Why a probe cannot be made live yet, or undefined when it can. */
export function skipReason(world: World, p: ScenarioProbe, s: Scenario): string | undefined {
  if (p.http || p.dns) return SKIP_L7;
  const from = findPeer(world, p.from);
  const to = findPeer(world, p.to);
  for (const peer of [from, to]) {
    if (peer.kind === 'endpoint') continue;
    const a = outsideAddress(s, peer.name);
    if ('skip' in a) return a.skip;
    if (peer === to && s.outside.find((o) => o.name === peer.name)?.fqdns?.length) return SKIP_FQDN;
  }
  if (from === to) return SKIP_SELF;
  if (p.protocol === 'SCTP') return SKIP_SCTP;
  if (p.protocol === 'ICMP' && ![8, 13].includes(p.icmp?.type ?? 8)) return skipIcmpType(p.icmp!.type);
  return undefined;
}

/** Wait for every promise, then throw the first failure (so nothing still runs while cleanup starts). */
async function settleAll<T>(ps: Promise<T>[]): Promise<T[]> {
  const r = await Promise.allSettled(ps);
  const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  return r.map((x) => (x as PromiseFulfilledResult<T>).value);
}

function dropsFor(events: DatapathEvent[], from: string, to: string, p: ScenarioProbe, pods: Map<number, Pod>): string[] {
  const proto = p.protocol === 'TCP' ? 6 : p.protocol === 'UDP' ? 17 : p.protocol === 'ICMP' ? 1 : 132;
  const port = p.protocol === 'ICMP' ? p.icmp?.type ?? 8 : p.port;
  const names = Object.fromEntries(Object.entries(DropReason).map(([k, v]) => [v, k]));
  const seen = new Set<string>();
  for (const e of events) {
    if (e.type !== EventType.DROP || numberToIPv4(e.saddr) !== from || numberToIPv4(e.daddr) !== to || e.proto !== proto || e.dport !== port) continue;
    const where = `${e.direction === Direction.EGRESS ? 'egress of' : 'ingress of'} ${pods.get(e.ifindex)?.name ?? `ifindex ${e.ifindex}`}`;
    seen.add(`${e.drop_reason}${names[e.drop_reason] ? ` ${names[e.drop_reason]}` : ''} at ${where}`);
  }
  return [...seen];
}

export async function runScenarioLive(text: string, source: string, opts: LiveRunOptions): Promise<LiveScenarioResult> {
  const started = performance.now();
  const mapped = mapEndpointIPs(parseScenario(text, source));
  const scenario = mapped.scenario;
  const world = buildWorld(scenario);

  const plan = scenario.probes.map((probe) => ({
    probe,
    simulated: evaluateProbe(world, probe).result.verdict,
    skip: skipReason(world, probe, scenario),
  }));
  const live = plan.filter((x) => !x.skip);
  const endpoints = [...world.peers.values()].filter((p) => p.kind === 'endpoint');

  const c = new Cleanup();
  const outcomes = new Map<number, LiveOutcome>();
  const events: DatapathEvent[] = [];
  const byIfindex = new Map<number, Pod>();
  try {
    const pods = new Map<string, Pod>();
    await settleAll(endpoints.map(async (e) => pods.set(e.name, await opts.network.addPod(e.name, e.ip!, c))));
    for (const pod of pods.values()) byIfindex.set(pod.ifindex, pod);
    // A test host per outside peer a probe uses, each behind its /32 rail.
    const hosts = new TestHosts({ linkPrefix: opts.network.names.linkPrefix, netnsPrefix: `${opts.network.names.netnsPrefix}host` }, opts.network.net.routerIP);
    c.add('test hosts', () => hosts.removeAll());
    const outsideIPs = new Map<string, string>();
    for (const { probe } of live) {
      for (const side of [probe.from, probe.to]) {
        const peer = findPeer(world, side);
        if (peer.kind !== 'outside' || outsideIPs.has(peer.name)) continue;
        const ip = (outsideAddress(scenario, peer.name) as { ip: string }).ip;
        outsideIPs.set(peer.name, ip);
        const h = await hosts.add(ip, peer.name);
        pods.set(peer.name, { id: `host-${peer.name}`, name: peer.name, netns: h.netns, hostIf: h.hostIf, ifindex: 0, ip, adopted: false });
      }
    }

    c.add(`pins under ${opts.pinRoot}`, () => Datapath.unpinAll(opts.pinRoot));
    const dp = Datapath.open({ pinRoot: opts.pinRoot });
    c.add(`datapath handles (${opts.pinRoot})`, () => dp.close());
    dp.onEvents((batch) => events.push(...batch), 20);

    // Every address is known before any endpoint enforces a policy.
    const epIds = new Map<string, number>();
    endpoints.forEach((e, i) => {
      epIds.set(e.name, i + 1);
      dp.ipcacheUpsert(`${e.ip}/32`, e.identity.id, i + 1);
    });
    for (const o of world.peers.values()) if (o.kind === 'outside' && o.ip && !o.ip.includes(':')) dp.ipcacheUpsert(`${o.ip}/32`, o.identity.id);

    const realizer = new EndpointRealizer(dp);
    for (const e of endpoints) {
      const pod = pods.get(e.name)!;
      const policy = world.endpointPolicies.get(e.name) ?? world.policies.get(e.identity.id);
      if (!policy) throw new Error(`${source}: the simulator computed no policy for ${e.name} (identity ${e.identity.id})`);
      realizer.realize({ ifindex: pod.ifindex, epId: epIds.get(e.name)!, ipv4: e.ip!, identity: e.identity.id }, policy);
      dp.attach(pod.ifindex, pod.hostIf);
      c.add(`endpoint programs on ${pod.hostIf}`, () => {
        try {
          dp.detach(pod.ifindex);
        } catch {
          // The link is gone already: its filters went with it.
        }
      });
    }

    const serverPorts = new Map<string, ServerPorts>();
    const clientProbes = new Map<string, LiveProbe[]>();
    for (const { probe } of live) {
      const from = findPeer(world, probe.from);
      const to = findPeer(world, probe.to);
      const ports = serverPorts.get(to.name) ?? { tcp: [], udp: [] };
      serverPorts.set(to.name, ports);
      if (probe.protocol === 'TCP' && !ports.tcp.includes(probe.port!)) ports.tcp.push(probe.port!);
      if (probe.protocol === 'UDP' && !ports.udp.includes(probe.port!)) ports.udp.push(probe.port!);
      const list = clientProbes.get(from.name) ?? [];
      clientProbes.set(from.name, list);
      list.push({
        id: probe.index,
        protocol: probe.protocol as LiveProbe['protocol'],
        ip: pods.get(to.name)!.ip,
        ...(probe.protocol === 'ICMP' ? { icmpType: probe.icmp?.type ?? 8 } : { port: probe.port! }),
        ...(probe.protocol === 'TCP' && opts.tcpBytes ? { bytes: opts.tcpBytes } : {}),
      });
    }
    await settleAll([...serverPorts].map(([name, ports]) => startProbeServer(pods.get(name)!, ports, c)));
    const results = await settleAll([...clientProbes].map(([name, probes]) => runProbeClient(pods.get(name)!, probes, c)));
    for (const o of results.flat()) outcomes.set(o.id, o);
    dp.drainEvents();
  } finally {
    await c.run();
  }

  const results: LiveProbeResult[] = plan.map(({ probe, simulated, skip }) => {
    const label = probeLabel(probe);
    if (skip) return { probe, label, simulated, skipped: true, reason: skip };
    const o = outcomes.get(probe.index)!;
    const from = findPeer(world, probe.from).ip ?? '';
    const to = findPeer(world, probe.to).ip ?? '';
    const drops = dropsFor(events, from, to, probe, byIfindex);
    return { probe, label, simulated, live: o.verdict, reason: o.detail, ...(drops.length ? { drops } : {}), ms: o.ms };
  });
  return { name: scenario.name, source, results, pods: endpoints.length, ms: Math.round(performance.now() - started) };
}
