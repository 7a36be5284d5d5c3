// `membrane policy test --live`: scenario files run against the real
// datapath in a private, throw-away agent (pod CIDR 10.250.0.0/16, name
// prefix mbrl<tag>), through bin/membrane as a user runs it. Afterwards
// nothing of the scratch space is left.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { MEMBRANE as membrane, REPO_ROOT as root } from './cli-agent.js';
import { newProcessesInOtherNetns, processSnapshot } from './leaks.js';
import { inCI, requireRoot } from './privileged.js';

/** The shared corpus sits beside the repository (../shared), as on the machines this project is built on. */
const CONFORMANCE = resolve(root, '../shared/conformance/policy');

const run = (...args: string[]) => spawnSync(membrane, args, { encoding: 'utf8', timeout: 300_000 });

const processesBefore = processSnapshot();

function assertNothingLeft(): void {
  assert.doesNotMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, /mbrl[0-9a-z]{4}_/, 'scratch network namespaces left');
  assert.doesNotMatch(spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout, /mbrl[0-9a-z]{4}_/, 'scratch links left');
  assert.doesNotMatch(spawnSync('ip', ['route'], { encoding: 'utf8' }).stdout, /10\.250\./, 'scratch routes left');
  assert.deepEqual(readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('mbr-live-')), [], 'scratch pin roots left');
  assert.deepEqual(newProcessesInOtherNetns(processesBefore), [], 'probe processes left in pods');
  assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('membrane-live-')), [], 'scratch state directories left');
}

const countsLine = /^\d+ scenario file\(s\) live, (\d+) probes: (\d+) as expected, (\d+) mismatched, (\d+) skipped$/m;

test('policy test --live: conformance files and an example pass, skipped probes are named', { timeout: 300_000 }, (t) => {
  if (!requireRoot(t, 'a private agent with BPF programs')) return;
  const files = [join(root, 'examples/policy/icmp-rules.yaml')];
  if (existsSync(CONFORMANCE)) files.push(...['starwars-l3l4.yaml', 'l4-ports.yaml', 'icmp.yaml'].map((f) => join(CONFORMANCE, f)));
  else if (inCI()) assert.fail(`${CONFORMANCE} is missing`);
  else t.diagnostic(`SKIPPED the conformance files: ${CONFORMANCE} is absent`);

  const r = run('policy', 'test', '--live', ...files);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const m = countsLine.exec(r.stdout);
  assert.ok(m, `no counts line in:\n${r.stdout}`);
  const [total, ok, mismatched, skipped] = m.slice(1).map(Number) as [number, number, number, number];
  assert.equal(mismatched, 0);
  assert.ok(ok > 0, 'some probes were made live');
  assert.equal(ok + skipped, total);
  // Outside peers are test hosts now: no probe is skipped for them.
  assert.doesNotMatch(r.stdout, /SKIPPED .*(outside|test host|landmark|ext ->)/);
  // HTTP probes are live (through the L7 proxy where a rule sends them there): nothing here is skipped.
  assert.equal(skipped, 0, r.stdout);
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('SKIPPED ')).length, skipped, 'every skipped probe is named');
  assertNothingLeft();
});

test('policy test --live -o json and -o table: per-probe verdicts, SKIPPED rows with the reason', { timeout: 120_000 }, (t) => {
  if (!requireRoot(t, 'a private agent with BPF programs')) return;
  const file = join(root, 'examples/policy/starwars-demo.yaml');
  const j = run('policy', 'test', '--live', '-o', 'json', file);
  assert.equal(j.status, 0, j.stderr);
  const [report] = JSON.parse(j.stdout) as { probes: { verdict: string; reason: string; simulated: string; expect?: string }[] }[];
  assert.ok(report!.probes.length > 0);
  for (const p of report!.probes) {
    assert.ok(['allowed', 'denied', 'skipped'].includes(p.verdict), `verdict ${p.verdict}`);
    assert.ok(p.reason, 'every probe has a reason');
    if (p.verdict !== 'skipped' && p.expect) assert.equal(p.verdict, p.expect);
  }
  assert.ok(!report!.probes.some((p) => p.verdict === 'skipped'), 'HTTP probes are live');
  assert.ok(report!.probes.some((p) => p.verdict === 'denied' && /403 Access denied \(the L7 proxy\)/.test(p.reason)), 'the proxy denied a request');
  // DNS probes are live: the DNS proxy's REFUSED is a denial, the server's answer an allow; FQDN peers are live too.
  const tbl = run('policy', 'test', '--live', '-o', 'table', join(root, 'examples/policy/dns-and-fqdn.yaml'));
  assert.equal(tbl.status, 0, tbl.stderr + tbl.stdout);
  assert.match(tbl.stdout, /DNS cdn\.vendor\.test\s+denied\s+denied\s+denied\s+ok\s+cdn\.vendor\.test: REFUSED \(the DNS proxy\)/);
  assert.match(tbl.stdout, /DNS api\.vendor\.test\s+allowed\s+allowed\s+allowed\s+ok\s+api\.vendor\.test: NOERROR from the server/);
  assert.match(tbl.stdout, /vendor-api\s+443\/TCP\s+-\s+allowed\s+allowed\s+allowed\s+ok/);
  assert.match(tbl.stdout, /17 probes: 17 as expected, 0 mismatched, 0 skipped/);
  // What cannot be played on one machine (the host entity) is a SKIPPED row with the reason.
  const dir = mkdtempSync(join(tmpdir(), 'mbr-live-skip-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'skip.yaml'),
    `name: skip-host
endpoints:
  - {name: a, labels: {app: a}}
  - {name: b, labels: {app: b}}
outside:
  - {name: node, entity: host}
policies: []
probes:
  - {from: default/a, to: default/b, port: 80, expect: allowed}
  - {from: default/a, to: node, port: 80, expect: allowed}
`,
  );
  const skip = run('policy', 'test', '--live', '-o', 'table', join(dir, 'skip.yaml'));
  assert.equal(skip.status, 0, skip.stderr + skip.stdout);
  assert.match(skip.stdout, /node\s+80\/TCP\s+-\s+allowed\s+SKIPPED\s+allowed\s+the host entity is not probed live/);
  // A probe to an outside peer is a live verdict in the table (a test host answered or the policy dropped it).
  const icmp = run('policy', 'test', '--live', '-o', 'table', join(root, 'examples/policy/icmp-rules.yaml'));
  assert.equal(icmp.status, 0, icmp.stderr + icmp.stdout);
  assert.match(icmp.stdout, /landmark\s+ICMP type 8\s+-\s+allowed\s+allowed\s+allowed\s+ok\s+echo reply received/);
  assertNothingLeft();
});

test('policy test --live: a wrong expect is a MISMATCH (exit 1); an invalid file exits 2 before anything starts', { timeout: 120_000 }, (t) => {
  if (!requireRoot(t, 'a private agent with BPF programs')) return;
  const dir = mkdtempSync(join(tmpdir(), 'mbr-live-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'wrong.yaml'),
    `name: wrong-expect
namespaces:
  galaxy: {labels: {side: empire}}
endpoints:
  - {name: deathstar, namespace: galaxy, labels: {class: deathstar}}
  - {name: tiefighter, namespace: galaxy, labels: {class: tiefighter}}
  - {name: xwing, namespace: galaxy, labels: {class: xwing}, serviceAccount: rebels}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: rule1, namespace: galaxy}
    spec:
      endpointSelector: {matchLabels: {class: deathstar}}
      ingress:
      - fromEndpoints: [{matchLabels: {class: tiefighter}}]
        toPorts: [{ports: [{port: "80", protocol: TCP}]}]
probes:
  - {from: galaxy/tiefighter, to: galaxy/deathstar, port: 80, expect: allowed}
  - {from: galaxy/xwing, to: galaxy/deathstar, port: 80, expect: allowed}
  - {from: galaxy/xwing, to: galaxy/deathstar, port: 80, http: {method: GET, path: /}, expect: denied}
`,
  );
  const r = run('policy', 'test', '--live', join(dir, 'wrong.yaml'));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^MISMATCH \S+wrong\.yaml: probes\[1\] galaxy\/xwing -> galaxy\/deathstar 80\/TCP: expected allowed, got denied live \(no connection within 1500 ms\); simulated denied$/m);
  assert.match(r.stdout, /1 scenario file\(s\) live, 3 probes: 2 as expected, 1 mismatched, 0 skipped/);
  assertNothingLeft();

  writeFileSync(join(dir, 'invalid.yaml'), 'name: bad\nendpoints: []\npolicies: []\nprobes: [{from: x, to: y}]\n');
  const bad = run('policy', 'test', '--live', join(dir, 'wrong.yaml'), join(dir, 'invalid.yaml'));
  assert.equal(bad.status, 2, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /INVALID \S+invalid\.yaml: scenario: probes\[0\]\.from/);
  assert.doesNotMatch(bad.stdout, /LIVE /, 'nothing was run');
});
