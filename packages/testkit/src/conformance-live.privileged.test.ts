// Every pod-to-pod probe of every scenario file — the shared conformance
// corpus and the repository's own examples — made with real TCP, UDP and ICMP
// traffic between real network namespaces through the endpoint programs, and
// the live verdict compared with the simulator's. Probes that cannot run live
// yet (HTTP/DNS, outside peers, the host) are counted and named as skipped,
// never as passed. Before the first packet the safety routes are installed;
// the last test removes everything and checks that nothing of this run is left.
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Cleanup, ip } from '@membrane/datapath';
import { findLeaks } from './leaks.js';
import { runScenarioLive, SKIP_L7, type LiveProbeResult, type LiveScenarioResult } from './live-scenario.js';
import { PodNetwork, runNames } from './pods.js';
import { IS_ROOT, inCI, requireRoot } from './privileged.js';
import { POD_CIDR, installSafetyRoutes, type SafetyRoutes } from './safety.js';
import { runProbeClient } from './traffic.js';

const NAMES = runNames();
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const FOLDERS = [
  { label: 'shared conformance corpus', dir: join(repoRoot, '../shared/conformance/policy'), optional: true },
  { label: 'examples/policy', dir: join(repoRoot, 'examples/policy'), optional: false },
];

const root = new Cleanup();
let safety: SafetyRoutes | undefined;
let network: PodNetwork | undefined;
let scenarioRuns = 0;
/** The global forwarding switch is never touched: per-interface forwarding routes between pods. */
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
let ipForwardBefore: string | undefined;
const totals = { executed: 0, matched: 0, skipped: new Map<string, string[]>(), verdicts: new Map<string, number>() };

before(async () => {
  if (!IS_ROOT) return;
  ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();
  // The rail goes in before any pod (and any packet) exists.
  safety = await installSafetyRoutes([POD_CIDR]);
  root.add('safety routes', () => safety!.remove());
  network = await PodNetwork.create(root, NAMES);
});
after(() => root.run());

function pinRoot(): string {
  return `${NAMES.pinPrefix}-${scenarioRuns++}`;
}

function describe(r: LiveProbeResult): string {
  return `${r.label}: simulator ${r.simulated}, live ${r.live} (${r.reason})${r.drops ? `; dropped: ${r.drops.join(', ')}` : ''}`;
}

function report(t: TestContext, run: LiveScenarioResult): void {
  const executed = run.results.filter((r) => !r.skipped);
  const skipped = run.results.filter((r) => r.skipped);
  const matched = executed.filter((r) => r.live === r.simulated);
  totals.executed += executed.length;
  totals.matched += matched.length;
  for (const r of skipped) totals.skipped.set(r.reason, [...(totals.skipped.get(r.reason) ?? []), `${run.source} ${r.label}`]);
  for (const r of executed) {
    const k = `${r.probe.protocol} ${r.live}`;
    totals.verdicts.set(k, (totals.verdicts.get(k) ?? 0) + 1);
  }
  t.diagnostic(`${run.source}: ${run.pods} pods, ${executed.length} probes executed (${matched.length} as simulated), ${skipped.length} skipped, ${run.ms} ms`);
  for (const r of executed) t.diagnostic(`  ${r.live === r.simulated ? 'ok' : 'MISMATCH'} ${r.label}: ${r.live} (${r.reason})`);
  for (const r of skipped) t.diagnostic(`  SKIPPED ${r.label}: ${r.reason}`);
}

test('a denied TCP connection times out, an allowed one carries data both ways', async (t) => {
  if (!requireRoot(t, 'creates network namespaces, loads BPF programs and sends traffic between pods')) return;
  const scenario = `
name: tcp-timeout-and-data
endpoints:
  - {name: server, labels: {app: server}, ip: 10.207.77.10}
  - {name: client, labels: {app: client}, ip: 10.207.77.11}
  - {name: admin,  labels: {app: admin},  ip: 10.207.77.12}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: server-ingress, namespace: default}
    spec:
      endpointSelector: {matchLabels: {app: server}}
      ingress:
      - fromEndpoints: [{matchLabels: {app: client}}]
        toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
      - fromEndpoints: [{matchLabels: {app: admin}}]
probes:
  - {from: default/client, to: default/server, port: 8080, expect: allowed}
  - {from: default/client, to: default/server, port: 9090, expect: denied}
  - {from: default/admin,  to: default/server, port: 9090, expect: allowed}
`;
  const run = await runScenarioLive(scenario, 'tcp-timeout-and-data', { network: network!, pinRoot: pinRoot(), tcpBytes: 256 * 1024 });
  const [allowed, denied, control] = run.results;
  for (const r of run.results) t.diagnostic(describe(r));
  // 256 KiB each way: many segments, the server's echo coming back through conntrack.
  assert.equal(allowed!.live, 'allowed', describe(allowed!));
  assert.equal(allowed!.reason, `connected; ${256 * 1024} bytes sent and echoed`);
  // The SYN is dropped (no RST, no ICMP error): the client sees nothing until its timeout.
  assert.equal(denied!.live, 'denied', describe(denied!));
  assert.equal(denied!.reason, 'no connection within 1500 ms');
  assert.ok(denied!.ms! >= 1400, `the denied attempt ended after ${denied!.ms} ms, before its timeout`);
  assert.deepEqual(denied!.drops, ['133 POLICY at ingress of default/server']);
  // The same port answers a peer the policy allows: the timeout is the policy's doing.
  assert.equal(control!.live, 'allowed', describe(control!));
  for (const r of run.results) assert.equal(r.live, r.simulated);
});

test('safety routes: an address with no pod fails on this machine', async (t) => {
  if (!requireRoot(t, 'installs routes and creates network namespaces')) return;
  const s = safety!;
  t.diagnostic(`safety routes added by this run: ${s.installed.join(', ') || 'none'}; already present: ${s.alreadyCovered.join(', ') || 'none'}`);
  for (const k of s.skipped) {
    t.diagnostic(`NOT COVERED ${k.prefix}: ${k.reason}`);
    console.error(`safety: NOT COVERED ${k.prefix}: ${k.reason}`);
  }
  assert.ok([...s.installed, ...s.alreadyCovered].includes(POD_CIDR), `the pod CIDR ${POD_CIDR} has no unreachable route`);

  // From the root namespace: the kernel refuses at once, nothing is sent.
  const covered = [...s.installed, ...s.alreadyCovered];
  for (const prefix of covered) {
    const target = prefix.replace(/\.0\/\d+$/, '.253');
    await assert.rejects(
      () => ip(['route', 'get', target], `route to ${target}`),
      (e: Error) => /No route to host|unreachable/i.test(e.message),
    );
    const code = await new Promise<string>((resolve) => {
      const sock = connect({ host: target, port: 80 });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve('TIMEOUT');
      }, 1000);
      sock.on('connect', () => resolve('CONNECTED'));
      sock.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(e.code ?? e.message);
      });
    });
    const udpCode = await new Promise<string>((resolve) => {
      const sock = createSocket('udp4');
      sock.send('x', 53, target, (e) => {
        sock.close();
        resolve(e ? ((e as NodeJS.ErrnoException).code ?? e.message) : 'SENT');
      });
    });
    assert.ok(['EHOSTUNREACH', 'ENETUNREACH'].includes(udpCode), `UDP to ${target}:53 from the root namespace: ${udpCode}`);
    assert.ok(['EHOSTUNREACH', 'ENETUNREACH'].includes(code), `connect to ${target}:80 from the root namespace: ${code}`);
  }

  // From a pod: the host answers with an ICMP host-unreachable error. TCP and
  // ping report it; a UDP socket ignores it (host unreachable is a soft error
  // for UDP without IP_RECVERR, which Node cannot set), so UDP was checked
  // above from the root namespace.
  const c = new Cleanup();
  try {
    const pod = await network!.addPod('safety/prober', '10.207.78.10', c);
    const outcomes = await runProbeClient(
      pod,
      [
        { id: 1, protocol: 'TCP', ip: '10.207.78.99', port: 80 },
        { id: 2, protocol: 'ICMP', ip: '10.207.78.99', icmpType: 8 },
      ],
      c,
    );
    for (const o of outcomes) t.diagnostic(`probe ${o.id}: ${o.verdict} ${o.code ?? ''} ${o.detail} (${o.ms} ms)`);
    for (const o of outcomes) {
      assert.equal(o.verdict, 'error', `probe ${o.id} to an unused pod IP: ${o.detail}`);
      assert.ok(['EHOSTUNREACH', 'ENETUNREACH'].includes(o.code ?? ''), `probe ${o.id}: ${o.code} ${o.detail}`);
    }
  } finally {
    await c.run();
  }
});

for (const folder of FOLDERS) {
  test(`live verdict = simulator verdict: ${folder.label}`, async (t) => {
    if (!requireRoot(t, 'creates network namespaces, loads BPF programs and sends traffic between pods')) return;
    if (!existsSync(folder.dir)) {
      if (!folder.optional || inCI()) assert.fail(`the scenario folder is missing at ${folder.dir}`);
      const reason = `no scenario folder at ${folder.dir}`;
      t.diagnostic(`SKIPPED: ${reason}`);
      console.error(`SKIPPED: ${t.name}: ${reason}`);
      t.skip(reason);
      return;
    }
    const files = readdirSync(folder.dir).filter((f) => f.endsWith('.yaml')).sort();
    assert.ok(files.length > 0, `no scenario files in ${folder.dir}`);
    for (const file of files) {
      await t.test(file, async (st) => {
        const run = await runScenarioLive(readFileSync(join(folder.dir, file), 'utf8'), `${file}`, { network: network!, pinRoot: pinRoot() });
        report(st, run);
        const executed = run.results.filter((r) => !r.skipped);
        const wrong = executed.filter((r) => r.live !== r.simulated);
        assert.deepEqual(wrong.map(describe), [], `${file}: live verdicts differ from the simulator's`);
        for (const r of run.results.filter((x) => x.skipped)) assert.ok(r.reason.length > 0);
        // A skipped L7 probe is never counted as passed.
        assert.equal(run.results.filter((r) => r.skipped && r.reason === SKIP_L7 && r.live !== undefined).length, 0);
      });
    }
  });
}

test('live probe totals', (t) => {
  if (!requireRoot(t, 'counts the live runs')) return;
  const skipped = [...totals.skipped].reduce((n, [, v]) => n + v.length, 0);
  const verdicts = [...totals.verdicts].sort().map(([k, n]) => `${k} ${n}`).join(', ');
  const lines = [`live probes: ${totals.executed} executed, ${totals.matched} as simulated (${verdicts}), ${skipped} skipped`];
  for (const [reason, probes] of totals.skipped) lines.push(`  skipped ${probes.length}: ${reason}`, ...probes.map((p) => `    ${p}`));
  for (const l of lines) t.diagnostic(l);
  console.log([lines[0], ...[...totals.skipped].map(([reason, probes]) => `  skipped ${probes.length}: ${reason}`)].join('\n'));
  assert.equal(totals.matched, totals.executed);
  // Not vacuous: a run where every probe was skipped fails, and each protocol was seen both allowed and denied by real traffic.
  assert.ok(totals.executed > 0, 'every probe was skipped: nothing was checked live');
  for (const proto of ['TCP', 'UDP', 'ICMP']) {
    for (const v of ['allowed', 'denied']) assert.ok((totals.verdicts.get(`${proto} ${v}`) ?? 0) > 0, `no ${proto} probe was ${v} live`);
  }
});

test('leaves nothing with this run’s names behind (netns, links, routes, pins, processes, safety routes)', async (t) => {
  if (!requireRoot(t, 'inspects network namespaces, links, routes and pins')) return;
  const ours = safety?.installed ?? [];
  await root.run();
  const leaks = await findLeaks(NAMES, ours);
  assert.deepEqual(leaks, []);
  t.diagnostic(`net.ipv4.ip_forward = ${ipForwardBefore} before and after the run`);
  assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore);
});
