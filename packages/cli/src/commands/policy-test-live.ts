/**
 * `membrane policy test --live FILE|DIR...`: the scenarios against the real
 * datapath. Every file is validated first (exit 2, nothing started); then a
 * private agent is started (its own state directory, pin root, name prefix
 * and pod CIDR 10.250.0.0/16: the user's agent, pods and namespaces are never
 * touched) and, per scenario: its namespaces (with their labels), a pod per
 * endpoint running the probe server on every port probed towards it, then
 * its policies; every endpoint-to-endpoint probe is made as a real
 * connection from inside the source pod; then everything of the scenario is
 * deleted before the next one. The private agent is torn down at the end,
 * on failure and on Ctrl-C.
 *
 * One agent for the whole run (objects deleted between scenarios) rather
 * than one per file: starting an agent loads and attaches the BPF programs
 * and its teardown removes them again, which costs more than deleting a
 * scenario's few objects.
 *
 * Outside peers get a test host each (a network namespace of the private
 * agent's at the peer's documentation address, a /32 rail around it, a probe
 * server inside); an outside peer given as the world entity gets one at a
 * documentation address no policy of the scenario names.
 *
 * HTTP probes are real requests, judged by the L7 proxy where a rule sends
 * them there: allowed = the probe server's 200, denied = the proxy's 403 or
 * a drop at L3/L4.
 *
 * DNS probes are real queries to the probe server (which answers the
 * scenario's names), judged by the agent's DNS proxy where a DNS rule sends
 * them there: allowed = the server's answer, denied = REFUSED or a drop. A
 * peer known by FQDN is judged "as if the name had been looked up through
 * the DNS proxy beforehand" (the scenario format): its names and address are
 * put in the agent's toFQDNs cache before the probes (as Cilium's
 * --tofqdns-pre-cache would), and the cache is cleared with the scenario.
 *
 * Not made live, reported as SKIPPED with the reason (never passed):
 * the host and other reserved entities (nothing on one machine
 * has their identity), an outside address outside the documentation
 * ranges, a pod probing itself, SCTP, and ICMP types other than 8 and 13.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MembraneError, type ApiDocument, type EndpointInfo, type ExecTarget } from '@membrane/api';
import { parseScenario, simulate, type ProbeResult, type Scenario, type ScenarioProbe } from '@membrane/policy';
import { readText } from '../files.js';
import { describeProbe, probeL7, probeTarget } from '../printers/probe.js';
import { renderTable } from '../printers/table.js';
import type { Io } from '../io.js';
import { SERVER_READY, type LiveOutcome, type LiveProbe, type ServerPorts } from '../live/probe-protocol.js';
import { PrivateAgent, sleep } from '../live/private-agent.js';
import { outsideAddress } from '../live/outside-peers.js';
import { AGENT_MAIN } from './lifecycle-cmds.js';

const LIVE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../live');
const PROBE_SERVER = resolve(LIVE_DIR, 'probe-server.js');
const PROBE_CLIENT = resolve(LIVE_DIR, 'probe-client.js');

/** The port a pod with no TCP port to serve listens on for its readiness probe. */
const READINESS_PORT = 65431;

export const SKIP_SELF = 'a pod probing itself never crosses its veth';
export const SKIP_SCTP = 'SCTP is not probed live (Node has no SCTP sockets)';
const skipIcmpType = (t: number) => `ICMP type ${t} is not probed live (only types 8 and 13 are answered by the kernel)`;
export type LiveVerdict = 'allowed' | 'denied' | 'skipped' | 'error';

export interface LiveProbeReport extends Omit<ProbeResult, 'verdict'> {
  /** What the real traffic showed; `error` when it showed neither (refused, unreachable ...). */
  verdict: LiveVerdict;
  /** The simulator's verdict for the same probe. */
  simulated: 'allowed' | 'denied';
  /** The rules/reason the simulator gave. */
  simulatedReason: string;
  ok: boolean;
  ms?: number;
}

interface LiveFileReport {
  file: string;
  name?: string;
  error?: string;
  pods?: number;
  ms?: number;
  probes: LiveProbeReport[];
}

function endpointKey(s: Scenario, name: string): string | undefined {
  const keys = new Set(s.endpoints.map((e) => `${e.namespace}/${e.name}`));
  if (keys.has(name)) return name;
  if (!s.outside.some((o) => o.name === name) && keys.has(`default/${name}`)) return `default/${name}`;
  return undefined;
}

/** Why a probe cannot be made live yet, or undefined when it can. */
function skipReason(s: Scenario, p: ScenarioProbe): string | undefined {
  for (const side of [p.from, p.to]) {
    if (endpointKey(s, side)) continue;
    const a = outsideAddress(s, side);
    if ('skip' in a) return a.skip;
  }
  if (endpointKey(s, p.from) === endpointKey(s, p.to)) return SKIP_SELF;
  if (p.protocol === 'SCTP') return SKIP_SCTP;
  if (p.protocol === 'ICMP' && ![8, 13].includes(p.icmp?.type ?? 8)) return skipIcmpType(p.icmp?.type ?? 8);
  return undefined;
}

const doc = (source: string, label: string, value: unknown): ApiDocument => ({ source, label, value });

/** Starts `node probe-server.js` in a test host's namespace; resolves once it listens. */
function startProbeServer(netns: string, ports: ServerPorts): Promise<ChildProcess> {
  return new Promise((res, rej) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, PROBE_SERVER, JSON.stringify(ports)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new MembraneError('MEMBRANE_E_INTERNAL', `probe server in test host ${netns} did not start: ${err.trim()}`));
    }, 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.includes(SERVER_READY)) {
        clearTimeout(t);
        res(child);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', (e) => {
      clearTimeout(t);
      rej(e);
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      if (!out.includes(SERVER_READY)) rej(new MembraneError('MEMBRANE_E_INTERNAL', `probe server in test host ${netns} exited ${code}: ${err.trim()}`));
    });
  });
}

/** Runs `node probe-client.js` in the pod's network namespace with its probes on stdin. */
function runProbeClient(netns: string, probes: LiveProbe[]): Promise<LiveOutcome[]> {
  return new Promise((res, rej) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, PROBE_CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', rej);
    child.on('exit', (code) => {
      if (code !== 0) return rej(new MembraneError('MEMBRANE_E_INTERNAL', `probe client in ${netns} exited ${code}: ${err.trim()}`));
      try {
        res(JSON.parse(out) as LiveOutcome[]);
      } catch {
        rej(new MembraneError('MEMBRANE_E_INTERNAL', `probe client in ${netns} printed no result: ${out.trim()} ${err.trim()}`));
      }
    });
    child.stdin.end(JSON.stringify(probes));
  });
}

interface PodState {
  metadata: { name: string; namespace: string };
  status?: { phase?: string; reason?: string; message?: string; conditions?: { type: string; status: string }[] };
}

async function waitReady(agent: PrivateAgent, namespaces: string[], want: Set<string>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = (await Promise.all(namespaces.map((ns) => agent.call<PodState[]>('GET', `/v1/objects/Pod?${new URLSearchParams({ namespace: ns })}`)))).flat();
    const mine = pods.filter((p) => want.has(`${p.metadata.namespace}/${p.metadata.name}`));
    const failed = mine.find((p) => p.status?.phase === 'Failed');
    if (failed) throw new MembraneError('MEMBRANE_E_INTERNAL', `scratch pod ${failed.metadata.namespace}/${failed.metadata.name} failed: ${failed.status?.reason ?? ''} ${failed.status?.message ?? ''}`);
    const ready = mine.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (ready.length === want.size) return;
    if (Date.now() > deadline) {
      const waiting = [...want].filter((k) => !ready.some((p) => `${p.metadata.namespace}/${p.metadata.name}` === k));
      throw new MembraneError('MEMBRANE_E_INTERNAL', `scratch pods not ready within ${timeoutMs / 1000}s: ${waiting.join(', ')}`);
    }
    await sleep(100);
  }
}

async function runScenario(agent: PrivateAgent, file: string, s: Scenario): Promise<LiveFileReport> {
  const started = performance.now();
  const sim = simulate(s);
  const plan = s.probes.map((p) => ({ p, skip: skipReason(s, p) }));
  const live = plan.filter((x) => !x.skip);

  // The ports each pod (or test host) serves, and the probes each makes.
  const serverPorts = new Map<string, ServerPorts>(s.endpoints.map((e) => [`${e.namespace}/${e.name}`, { tcp: [], udp: [] }]));
  const hosts = new Map<string, string>();
  for (const { p } of live) {
    for (const side of [p.from, p.to]) {
      if (endpointKey(s, side)) continue;
      hosts.set(side, (outsideAddress(s, side) as { ip: string }).ip);
      if (!serverPorts.has(side)) serverPorts.set(side, { tcp: [], udp: [] });
    }
  }
  const peerKey = (name: string) => endpointKey(s, name) ?? name;
  // What the scenario's names resolve to: its DNS servers answer them, and the toFQDNs cache holds them.
  const names: Record<string, string[]> = {};
  for (const o of s.outside) for (const n of o.ip ? (o.fqdns ?? []) : []) (names[n.toLowerCase().replace(/\.$/, '')] ??= []).push(o.ip!);
  for (const { p } of live) {
    const ports = serverPorts.get(peerKey(p.to))!;
    if (p.protocol === 'TCP' && !ports.tcp.includes(p.port!)) ports.tcp.push(p.port!);
    if (p.protocol === 'UDP' && !ports.udp.includes(p.port!)) ports.udp.push(p.port!);
    if (p.dns && !(ports.dns ??= []).includes(p.port!)) ports.dns.push(p.port!);
    if (p.dns) ports.names = names;
  }

  const namespaces = new Map<string, Record<string, string>>([['default', {}], ['kube-system', {}]]);
  for (const e of s.endpoints) namespaces.set(e.namespace, {});
  for (const pol of s.policies) if (pol.ref.namespace) namespaces.set(pol.ref.namespace, {});
  for (const [ns, v] of Object.entries(s.namespaces)) namespaces.set(ns, v.labels);
  const serviceAccounts = new Set(s.endpoints.filter((e) => e.serviceAccount && e.serviceAccount !== 'default').map((e) => `${e.namespace}/${e.serviceAccount}`));

  const world: ApiDocument[] = [
    ...[...namespaces].map(([name, labels]) => doc(file, `namespace ${name}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } })),
    ...[...serviceAccounts].map((k) => {
      const [namespace, name] = k.split('/') as [string, string];
      return doc(file, `serviceaccount ${k}`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
    }),
    ...s.endpoints.map((e) => {
      const ports = serverPorts.get(`${e.namespace}/${e.name}`)!;
      const ready = ports.tcp[0] ?? READINESS_PORT;
      const served = ports.tcp.length ? ports : { ...ports, tcp: [READINESS_PORT] };
      return doc(file, `endpoint ${e.namespace}/${e.name}`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: e.name, namespace: e.namespace, labels: e.labels },
        spec: {
          ...(e.serviceAccount ? { serviceAccountName: e.serviceAccount } : {}),
          restartPolicy: 'Never',
          containers: [
            {
              name: 'probe',
              command: [process.execPath, PROBE_SERVER, JSON.stringify(served)],
              readinessProbe: { tcpSocket: { port: ready }, periodSeconds: 1 },
              // The scenario's named ports, as a pod's containers declare them.
              ...(e.ports?.length ? { ports: e.ports.map((n) => ({ name: n.name, containerPort: n.port, protocol: n.proto === 17 ? 'UDP' : n.proto === 132 ? 'SCTP' : 'TCP' })) } : {}),
            },
          ],
        },
      });
    }),
  ];
  const policyDocs = s.policies.map((pol, i) => doc(file, `policies[${i}]`, pol.manifest));

  const outcomes = new Map<number, LiveOutcome>();
  const hostServers: ChildProcess[] = [];
  try {
    await agent.call('POST', '/v1/apply', { documents: world });
    const ips = new Map<string, string>();
    const netns = new Map<string, string>();
    // Test hosts (each behind its /32 rail, added by the agent first), each with its probe server.
    for (const [name, ip] of hosts) {
      const h = await agent.call<{ netns: string }>('POST', '/v1/testhosts', { name, ip });
      ips.set(name, ip);
      netns.set(name, h.netns);
      hostServers.push(await startProbeServer(h.netns, serverPorts.get(name)!));
    }
    await waitReady(agent, [...new Set(s.endpoints.map((e) => e.namespace))], new Set(s.endpoints.map((e) => `${e.namespace}/${e.name}`)));
    if (policyDocs.length) await agent.call('POST', '/v1/apply', { documents: policyDocs });
    const preload = Object.entries(names).map(([name, ips]) => ({ name, ips, ttl: 3600 }));
    if (preload.length) await agent.call('POST', '/v1/fqdn/cache', { entries: preload });

    await Promise.all(
      s.endpoints.map(async (e) => {
        const t = await agent.call<ExecTarget>('GET', `/v1/pods/${encodeURIComponent(e.namespace)}/${encodeURIComponent(e.name)}/exec`);
        ips.set(`${e.namespace}/${e.name}`, t.ip);
        netns.set(`${e.namespace}/${e.name}`, t.netns);
      }),
    );
    const byClient = new Map<string, LiveProbe[]>();
    for (const { p } of live) {
      const from = peerKey(p.from);
      const list = byClient.get(from) ?? [];
      byClient.set(from, list);
      list.push({ id: p.index, protocol: p.protocol as LiveProbe['protocol'], ip: ips.get(peerKey(p.to))!, ...(p.protocol === 'ICMP' ? { icmpType: p.icmp?.type ?? 8 } : { port: p.port! }), ...(p.http ? { http: { method: p.http.method ?? 'GET', path: p.http.path ?? '/', ...(p.http.host ? { host: p.http.host } : {}), ...(p.http.headers ? { headers: p.http.headers } : {}) } } : {}), ...(p.dns ? { dns: { query: p.dns.query } } : {}) });
    }
    const results = await Promise.all([...byClient].map(([from, probes]) => runProbeClient(netns.get(from)!, probes)));
    for (const o of results.flat()) outcomes.set(o.id, o);
  } finally {
    for (const c of hostServers) c.kill('SIGTERM');
    await Promise.all(hostServers.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    if (hosts.size) await agent.call('DELETE', '/v1/testhosts');
    await agent.call('DELETE', '/v1/fqdn/cache');
    await cleanScenario(agent, s, namespaces, serviceAccounts);
  }

  const probes: LiveProbeReport[] = plan.map(({ p, skip }) => {
    const r = sim[p.index]!;
    const base = { ...r, simulated: r.verdict, simulatedReason: r.reason };
    if (skip) return { ...base, verdict: 'skipped' as const, reason: skip, ok: true };
    const o = outcomes.get(p.index)!;
    return { ...base, verdict: o.verdict, reason: o.detail, ok: p.expect === undefined ? o.verdict !== 'error' : o.verdict === p.expect, ms: o.ms };
  });
  return { file, name: s.name, pods: s.endpoints.length, ms: Math.round(performance.now() - started), probes };
}

/** Deletes what a scenario applied: policies, then pods and service accounts, then namespaces. */
async function cleanScenario(agent: PrivateAgent, s: Scenario, namespaces: Map<string, Record<string, string>>, serviceAccounts: Set<string>): Promise<void> {
  const del = (refs: { kind: string; namespace?: string; name: string }[]) => (refs.length ? agent.call('POST', '/v1/delete', { refs, ignoreNotFound: true }) : Promise.resolve());
  await del(s.policies.map((p) => ({ kind: p.ref.kind, ...(p.ref.namespace ? { namespace: p.ref.namespace } : {}), name: p.ref.name })));
  await del([
    ...s.endpoints.map((e) => ({ kind: 'Pod', namespace: e.namespace, name: e.name })),
    ...[...serviceAccounts].map((k) => ({ kind: 'ServiceAccount', namespace: k.split('/')[0]!, name: k.split('/')[1]! })),
  ]);
  await del([...namespaces.keys()].filter((n) => n !== 'default' && n !== 'kube-system').map((name) => ({ kind: 'Namespace', name })));
  // The next scenario starts from an empty scratch space.
  const left = (await agent.call<EndpointInfo[]>('GET', '/v1/endpoints')).length;
  if (left > 0) throw new MembraneError('MEMBRANE_E_INTERNAL', `${left} scratch endpoint(s) left after deleting the scenario's pods`);
}

export async function runLive(files: string[], fmt: 'summary' | 'table' | 'json', io: Io): Promise<number> {
  // 1. Validate everything before starting anything.
  const parsed: { file: string; s?: Scenario; error?: string }[] = files.map((file) => {
    try {
      return { file, s: parseScenario(readText(file), file) };
    } catch (e) {
      if (e instanceof MembraneError) return { file, error: e.toLine() };
      throw e;
    }
  });
  const invalid = parsed.filter((x) => x.error);
  if (invalid.length) {
    if (fmt === 'json') io.out(JSON.stringify(parsed.map((x) => ({ file: x.file, ...(x.error ? { error: x.error } : {}), probes: [] })), null, 2) + '\n');
    else {
      for (const x of invalid) io.err(`INVALID ${x.error}\n`);
      io.out(`${invalid.length} invalid file(s): nothing was run live\n`);
    }
    return 2;
  }
  if (process.geteuid?.() !== 0) throw new MembraneError('MEMBRANE_E_NOT_ROOT', 'policy test --live needs root (it runs a private agent: CAP_BPF/CAP_NET_ADMIN): run as root');

  // 2. The private agent, torn down whatever happens.
  const agent = PrivateAgent.create();
  const onSignal = (sig: NodeJS.Signals) => {
    io.err(`membrane: ${sig}: removing the scratch space (${agent.namePrefix})...\n`);
    void agent.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const reports: LiveFileReport[] = [];
  try {
    await agent.start({ agentMain: AGENT_MAIN });
    for (const { file, s } of parsed) {
      const r = await runScenario(agent, file, s!);
      reports.push(r);
      if (fmt !== 'json') printFile(r, fmt, io);
    }
  } finally {
    await agent.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const all = reports.flatMap((r) => r.probes);
  const skipped = all.filter((x) => x.verdict === 'skipped');
  const mismatched = all.filter((x) => !x.ok);
  if (fmt === 'json') io.out(JSON.stringify(reports, null, 2) + '\n');
  else {
    const ok = all.length - mismatched.length - skipped.length;
    io.out(`${fmt === 'table' ? '\n' : ''}${reports.length} scenario file(s) live, ${all.length} probes: ${ok} as expected, ${mismatched.length} mismatched, ${skipped.length} skipped\n`);
  }
  // A live run that checked nothing did not pass.
  if (all.length > 0 && skipped.length === all.length) {
    io.err(`membrane: every probe was skipped (${skipped.length}): nothing was checked live [MEMBRANE_E_USAGE]\n`);
    return 1;
  }
  return mismatched.length > 0 ? 1 : 0;
}

function printFile(r: LiveFileReport, fmt: 'summary' | 'table', io: Io): void {
  const ran = r.probes.filter((x) => x.verdict !== 'skipped').length;
  io.out(`LIVE ${r.file} (${r.name}): ${r.pods} pod(s), ${ran} probe(s) made, ${r.probes.length - ran} skipped, ${((r.ms ?? 0) / 1000).toFixed(1)}s\n`);
  if (fmt === 'table') {
    io.out(
      renderTable(
        ['#', 'FROM', 'TO', 'PORT', 'L7', 'EXPECT', 'LIVE', 'SIMULATED', '', 'REASON'],
        r.probes.map((x, i) => [
          String(i),
          x.from,
          x.to,
          probeTarget(x),
          probeL7(x) || '-',
          x.expect ?? '-',
          x.verdict === 'skipped' ? 'SKIPPED' : x.verdict,
          x.simulated,
          x.verdict === 'skipped' ? '' : x.ok ? 'ok' : 'MISMATCH',
          x.reason,
        ]),
      ),
    );
  }
  r.probes.forEach((x, i) => {
    const desc = describeProbe(x as unknown as ProbeResult);
    if (x.verdict === 'skipped') {
      if (fmt === 'summary') io.out(`SKIPPED ${r.file}: probes[${i}] ${desc}: ${x.reason}\n`);
    } else if (!x.ok) {
      io.out(`MISMATCH ${r.file}: probes[${i}] ${desc}: expected ${x.expect ?? 'allowed or denied'}, got ${x.verdict} live (${x.reason}); simulated ${x.simulated}\n`);
    }
  });
}
