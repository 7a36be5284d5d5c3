// All-or-nothing through the CLI, on real namespaces and a real datapath
// (issue "The agent as controllers", done-when 2-4):
//   - a file whose third pod cannot be created (the tiny pod CIDR is full):
//     nothing of it is in force, store and kernel as before, the error
//     names the pod;
//   - a policy whose map cannot be filled for one endpoint (policy maps made
//     small with MEMBRANE_POLICY_MAP_MAX): refused, and every endpoint keeps
//     its previous policy (real traffic says so);
//   - named ports: `toPorts: [{port: http}]` allows exactly the container
//     port named http;
//   - identity list stable across 100 re-applies of one policy; a container
//     killed by a signal reports 128 + its number; a TCP API read without
//     the token is refused.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, requireRoot } from '@membrane/testkit';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PodList {
  items: { metadata: { name: string }; status: { phase: string; podIP?: string; containerStatuses: { state: { terminated?: { exitCode: number } } }[] } }[];
}

function server(name: string, labels: string, ports: number[], extra = ''): string {
  const listeners = ports.map((p) => `python3 -m http.server ${p} --bind 0.0.0.0 & `).join('');
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {${labels}}}
spec:
  containers:
  - name: web
    command: [sh, -c, "${listeners}wait"]
${extra}`;
}

const client = (name: string, labels: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {${labels}}}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
`;

test('a file whose third pod cannot be created changes nothing; the error names the pod', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t, 'pods in network namespaces and BPF programs')) return;
  // A /29 has 5 addresses once the router has its own, 4 for pods beside the cluster DNS server's.
  const a = new CliAgent({ tag: 'atom', podCIDR: '10.203.0.0/29', serviceCIDR: '10.213.0.0/24' });
  t.after(() => a.cleanup());
  a.up();
  writeFileSync(join(a.dir, 'two.yaml'), [1, 2].map((i) => client(`p${i}`, `app: p${i}`)).join('---\n'));
  a.ok('apply', '-f', join(a.dir, 'two.yaml'));
  const before = { endpoints: a.ok('endpoint', 'list', '-o', 'json'), identities: a.ok('identity', 'list', '-o', 'json'), netns: a.netns().sort() };

  const file = [
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: lockdown}
spec:
  endpointSelector: {}
  ingress: [{}]
`,
    client('q1', 'app: q1'),
    client('q2', 'app: q2'),
    client('q3', 'app: q3'),
  ].join('---\n');
  writeFileSync(join(a.dir, 'more.yaml'), file);
  const r = a.run('apply', '-f', join(a.dir, 'more.yaml'));
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^membrane: pod default\/q3: no free address left in the pod CIDR 10\.203\.0\.0\/29 \(5 addresses, all in use\) \[MEMBRANE_E_IP_EXHAUSTED\]$/m);
  assert.equal(a.run('get', 'cnp', 'lockdown').status, 2, 'the policy of the file is not stored');
  const pods = JSON.parse(a.ok('get', 'pods', '-o', 'json')) as PodList;
  assert.deepEqual(pods.items.map((p) => p.metadata.name), ['p1', 'p2']);
  assert.equal(a.ok('endpoint', 'list', '-o', 'json'), before.endpoints, 'the kernel enforces what it enforced before');
  assert.equal(a.ok('identity', 'list', '-o', 'json'), before.identities);
  assert.deepEqual(a.netns().sort(), before.netns, 'the pods plumbed for the file are gone again');

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});

test('regeneration refused for one endpoint keeps every endpoint on its policy; named ports; stable identities; exit codes; the TCP token', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t, 'pods in network namespaces and BPF programs')) return;
  const a = new CliAgent({ tag: 'regen', podCIDR: '10.204.0.0/24', serviceCIDR: '10.214.0.0/24', env: { MEMBRANE_POLICY_MAP_MAX: '48' } });
  t.after(() => a.cleanup());
  a.up();
  const ports = `  containers:
  - name: web
    command: [sh, -c, "python3 -m http.server 8080 --bind 0.0.0.0 & python3 -m http.server 9090 --bind 0.0.0.0 & wait"]
    ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]
`;
  writeFileSync(
    join(a.dir, 'app.yaml'),
    [
      `apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
${ports}`,
      `apiVersion: v1
kind: Pod
metadata: {name: api, labels: {app: api}}
spec:
${ports}`,
      client('client', 'app: client'),
      `apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec: {restartPolicy: Never, containers: [{name: c, command: [sh, -c, "sleep 0.2; kill -SEGV $$"]}]}
`,
    ].join('---\n'),
  );
  a.ok('apply', '-f', join(a.dir, 'app.yaml'));
  const ip = (name: string) => (JSON.parse(a.ok('get', 'pod', name, '-o', 'json')) as { status: { podIP: string } }).status.podIP;
  const curl = (to: string, port: number) => a.run('exec', 'client', '--', 'curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${ip(to)}:${port}/`);
  for (let i = 0; i < 50 && curl('web', 8080).stdout !== '200'; i++) await sleep(100);

  // Named ports: `port: http` is 8080 on web, never 9090.
  writeFileSync(
    join(a.dir, 'named.yaml'),
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: named}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress: [{fromEndpoints: [{matchLabels: {app: client}}], toPorts: [{ports: [{port: http}]}]}]
`,
  );
  a.ok('apply', '-f', join(a.dir, 'named.yaml'));
  assert.equal(curl('web', 8080).stdout, '200', 'the port named http');
  assert.equal(curl('web', 9090).status, 28, 'the port named metrics is dropped');
  assert.equal(curl('api', 9090).stdout, '200', 'api is not selected');

  // A policy needing more entries than api's policy map holds: refused, nothing changes.
  // 60 ports (two toPorts of 30: Cilium allows 40 per entry), each one policy-map entry per peer.
  const ports30 = (from: number) => Array.from({ length: 30 }, (_, i) => `{port: "${from + i * 2}", protocol: TCP}`).join(', ');
  // One file, two endpoints changed: web's policy would fit (and would cut the client off), api's
  // cannot (more entries than its map holds). Neither may change.
  writeFileSync(
    join(a.dir, 'big.yaml'),
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-closed}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingressDeny: [{fromEndpoints: [{matchLabels: {app: client}}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: big}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress: [{fromEndpoints: [{matchLabels: {app: client}}], toPorts: [{ports: [${ports30(10000)}]}, {ports: [${ports30(20000)}]}]}]
`,
  );
  const endpointsBefore = a.ok('endpoint', 'list', '-o', 'json');
  const big = a.run('apply', '-f', join(a.dir, 'big.yaml'));
  assert.equal(big.status, 2, big.stderr);
  assert.match(big.stderr, /default\/api: endpoint \d+: \d+ policy entries exceed its policy map's 48 \[MEMBRANE_E_DATAPATH\]/);
  assert.equal(a.run('get', 'cnp', 'big').status, 2);
  assert.equal(a.run('get', 'cnp', 'web-closed').status, 2);
  assert.equal(a.ok('endpoint', 'list', '-o', 'json'), endpointsBefore);
  assert.equal(curl('web', 8080).stdout, '200', 'web still on its previous policy');
  assert.equal(curl('web', 9090).status, 28);
  assert.equal(curl('api', 8080).stdout, '200', 'api still without policy');

  // 100 re-applies of one policy (changed each time) leave the identities as they were.
  const ids = () => (JSON.parse(a.ok('identity', 'list', '-o', 'json')) as { id: number }[]).map((i) => i.id);
  const cidrPolicy = (n: number) =>
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: egress-cidr, labels: {round: "${n}"}}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress: [{toCIDR: [198.51.100.0/24]}, {toEndpoints: [{}]}]
`;
  writeFileSync(join(a.dir, 'cidr.yaml'), cidrPolicy(0));
  a.ok('apply', '-f', join(a.dir, 'cidr.yaml'));
  const first = ids();
  for (let n = 1; n <= 100; n++) {
    writeFileSync(join(a.dir, 'cidr.yaml'), cidrPolicy(n));
    a.ok('apply', '-f', join(a.dir, 'cidr.yaml'));
  }
  assert.deepEqual(ids(), first);

  // A container killed by SIGSEGV reports 139.
  let crashed: PodList['items'][number] | undefined;
  for (let i = 0; i < 50; i++) {
    crashed = (JSON.parse(a.ok('get', 'pod', 'crasher', '-o', 'json')) as PodList['items'][number]);
    if (crashed.status.phase === 'Failed') break;
    await sleep(100);
  }
  assert.equal(crashed!.status.phase, 'Failed');
  assert.equal(crashed!.status.containerStatuses[0]!.state.terminated?.exitCode, 139);

  // Over TCP every read needs the token.
  const port = (JSON.parse(a.ok('status', '-o', 'json')) as { api?: { port: number } }).api?.port;
  assert.ok(port, 'status names the API port');
  const token = readFileSync(join(a.stateDir, 'token'), 'utf8').trim();
  for (const path of ['/v1/objects/Pod', '/v1/endpoints', '/v1/pods/default/web/logs', '/v1/status']) {
    const without = await fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal(without.status, 401, `${path} without the token`);
    const withToken = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(withToken.status, 200, `${path} with the token`);
    await withToken.arrayBuffer();
  }

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
