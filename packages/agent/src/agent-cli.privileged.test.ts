// The agent end to end, driven through the CLI only, as a user would:
// up → apply namespaces, pods and policies → real traffic obeys them →
// endpoint list shows enforcement switching on → exec passes exit codes →
// kill -9 and up again: pods adopted, policy still enforced → down leaves
// nothing behind. Runs on its own pod CIDR, state directory and pin root.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, requireRoot } from '@membrane/testkit';

test('agent through the CLI: apply, enforce, exec, restart, down', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t, 'the agent loads BPF programs and makes network namespaces')) return;
  const a = new CliAgent({ tag: 'cli', podCIDR: '10.201.0.0/16', serviceCIDR: '10.211.0.0/24' });
  t.after(() => a.cleanup());
  const { dir } = a;
  const run = (...args: string[]) => a.run(...args);
  const ok = (...args: string[]) => a.ok(...args);

  // Not running yet: every command says how to start it.
  const down = run('get', 'pods');
  assert.equal(down.status, 2);
  assert.equal(down.stderr, 'membrane: the Membrane agent is not running: start it with `membrane up` (as root) [MEMBRANE_E_AGENT_DOWN]\n');
  assert.equal(run('status').status, 1);

  const up = a.up();
  assert.match(up, /starting BPF datapath/);
  assert.match(up, /membrane is up/);
  assert.match(ok('up', '--api-port', '0'), /already running/);

  writeFileSync(
    join(dir, 'app.yaml'),
    `apiVersion: v1
kind: Namespace
metadata: {name: galaxy, labels: {side: mixed}}
---
apiVersion: v1
kind: Pod
metadata: {name: deathstar, namespace: galaxy, labels: {org: empire, class: deathstar}}
spec:
  containers: [{name: web, command: [python3, -m, http.server, "80"], readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}}]
---
apiVersion: v1
kind: Pod
metadata: {name: tiefighter, namespace: galaxy, labels: {org: empire, class: tiefighter}}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: xwing, namespace: galaxy, labels: {org: alliance, class: xwing}}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: galaxy}
spec: {restartPolicy: Never, containers: [{name: c, command: [no-such-command-here]}]}
`,
  );
  writeFileSync(
    join(dir, 'rule1.yaml'),
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: galaxy}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`,
  );
  assert.match(ok('apply', '-f', join(dir, 'app.yaml')), /pod\/deathstar created/);
  assert.match(ok('apply', '-f', join(dir, 'app.yaml')), /pod\/deathstar unchanged/);
  const pods = JSON.parse(ok('get', 'pods', '-n', 'galaxy', '-o', 'json')) as { kind: string; items: { metadata: { name: string }; status: { phase: string; podIP: string; reason?: string } }[] };
  assert.equal(pods.kind, 'List');
  const ds = pods.items.find((p) => p.metadata.name === 'deathstar')!;
  assert.equal(ds.status.phase, 'Running');
  const broken = pods.items.find((p) => p.metadata.name === 'broken')!;
  assert.equal(broken.status.phase, 'Failed');
  assert.equal(broken.status.reason, 'ContainerCannotRun');
  assert.match(ok('get', 'pods', '-n', 'galaxy', '-o', 'wide'), /broken .*Failed|ContainerCannotRun/);

  // curl from a pod: 200 (allowed) or exit 28 (timeout: dropped).
  const curl = (from: string) => run('exec', from, '-n', 'galaxy', '--', 'curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${ds.status.podIP}/`);
  for (let i = 0; i < 50 && curl('tiefighter').stdout !== '200'; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(curl('tiefighter').stdout, '200');
  assert.equal(curl('xwing').stdout, '200', 'no policy yet: everything allowed');
  const enforcement = () =>
    (JSON.parse(ok('endpoint', 'list', '-o', 'json')) as { pod: string; policyEnforcement: { ingress: boolean } }[]).find((e) => e.pod === 'deathstar')!.policyEnforcement.ingress;
  assert.equal(enforcement(), false);

  assert.match(ok('apply', '-f', join(dir, 'rule1.yaml')), /ciliumnetworkpolicy\/rule1 created/);
  assert.equal(enforcement(), true);
  assert.equal(curl('tiefighter').stdout, '200');
  const x = curl('xwing');
  assert.equal(x.status, 28, `xwing must be dropped (curl timeout), got ${x.status} ${x.stdout}`);
  assert.match(ok('endpoint', 'list'), /ENDPOINT\s+POLICY \(ingress\)/);

  // exec passes exit codes; its own failures use docker's codes.
  assert.equal(run('exec', 'xwing', '-n', 'galaxy', '--', 'sh', '-c', 'exit 7').status, 7);
  assert.equal(run('exec', 'nosuch', '-n', 'galaxy', '--', 'true').status, 125);
  assert.equal(run('exec', 'xwing', '-n', 'galaxy', '--', 'no-such-command-here').status, 127);

  // Bad input changes nothing.
  writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: ok-pod, namespace: galaxy}\nspec: {containers: [{name: c, command: [sleep, infinity]}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: galaxy}\nspec: {containers: []}\n');
  const bad = run('apply', '-f', join(dir, 'bad.yaml'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^membrane: \S+bad\.yaml: document 2 \(Pod galaxy\/bad\): spec.containers: must have at least one container \[MEMBRANE_E_MANIFEST_INVALID\]\n$/);
  assert.equal(run('get', 'pods', 'ok-pod', '-n', 'galaxy').status === 0, false, 'the valid first document must not have been applied');
  const empty = run('apply', '-f', '-');
  assert.equal(empty.status, 2);
  assert.equal(empty.stderr, 'membrane: no objects in - [MEMBRANE_E_USAGE]\n');

  // Deployments keep `replicas` pods, with the template's labels (and so its identity and policy).
  const deploy = (replicas: number) =>
    writeFileSync(
      join(dir, 'deploy.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: shuttles, namespace: galaxy}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {org: empire, class: shuttle}}
  template:
    metadata: {labels: {org: empire, class: shuttle}}
    spec: {containers: [{name: c, command: [sleep, infinity]}]}
`,
    );
  deploy(2);
  assert.match(ok('apply', '-f', join(dir, 'deploy.yaml')), /deployment\/shuttles created/);
  const shuttles = () =>
    (JSON.parse(ok('get', 'pods', '-n', 'galaxy', '-o', 'json')) as { items: { metadata: { name: string }; status: { phase: string } }[] }).items.filter((p) => p.metadata.name.startsWith('shuttles-'));
  assert.equal(shuttles().length, 2);
  assert.ok(shuttles().every((p) => p.status.phase === 'Running'));
  assert.match(ok('get', 'deployments', '-n', 'galaxy'), /shuttles\s+2\/2/);
  const shuttle = shuttles()[0]!.metadata.name;
  assert.equal(run('exec', shuttle, '-n', 'galaxy', '--', 'curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${ds.status.podIP}/`).stdout, '200', 'an empire shuttle may land');
  deploy(3);
  assert.match(ok('apply', '-f', join(dir, 'deploy.yaml')), /deployment\/shuttles configured/);
  assert.equal(shuttles().length, 3);
  assert.match(ok('delete', 'pod', shuttle, '-n', 'galaxy'), /deleted/);
  assert.equal(shuttles().length, 3, 'the Deployment replaces a deleted pod');
  assert.ok(!shuttles().some((p) => p.metadata.name === shuttle));

  // More bad input: an unknown kind, the same object twice, a namespace that does not exist.
  writeFileSync(join(dir, 'kind.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
  const kind = run('apply', '-f', join(dir, 'kind.yaml'));
  assert.equal(kind.status, 2);
  assert.match(kind.stderr, /kind: "ConfigMap" is not a supported kind.*\[MEMBRANE_E_MANIFEST_INVALID\]/);
  writeFileSync(join(dir, 'twice.yaml'), 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: galaxy}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: galaxy}\n');
  const twice = run('apply', '-f', join(dir, 'twice.yaml'));
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /document 2 \(ServiceAccount galaxy\/sa\): metadata.name: the same object appears twice in this apply \[MEMBRANE_E_MANIFEST_INVALID\]/);
  writeFileSync(join(dir, 'nons.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: nowhere}\nspec: {containers: [{name: c, command: [sleep, "1"]}]}\n');
  const nons = run('apply', '-f', join(dir, 'nons.yaml'));
  assert.equal(nons.status, 2);
  assert.match(nons.stderr, /\(Pod nowhere\/p\): namespace "nowhere" not found \(apply a Namespace first\) \[MEMBRANE_E_NOT_FOUND\]/);
  assert.match(ok('describe', 'pod', 'broken', '-n', 'galaxy'), /Reason:\s+ContainerCannotRun/);

  // kill -9 the agent: enforcement continues; up again adopts the pods.
  const pid = (JSON.parse(ok('status', '-o', 'json')) as { agent: { pid: number } }).agent.pid;
  const shuttlesBefore = shuttles().map((p) => p.metadata.name).sort();
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  a.up();
  // The Deployment's pods are adopted as they are: same names, running, nothing skipped.
  assert.deepEqual(shuttles().map((p) => p.metadata.name).sort(), shuttlesBefore);
  assert.ok(shuttles().every((p) => p.status.phase === 'Running'), JSON.stringify(shuttles()));
  assert.deepEqual((JSON.parse(ok('status', '-o', 'json')) as { problems: string[] }).problems, [], 'nothing skipped at start-up');
  assert.equal(curl('tiefighter').stdout, '200');
  assert.equal(curl('xwing').status, 28);
  const after = JSON.parse(ok('get', 'pods', '-n', 'galaxy', '-o', 'json')) as { items: { metadata: { name: string }; status: { phase: string; podIP: string } }[] };
  assert.equal(after.items.find((p) => p.metadata.name === 'deathstar')!.status.podIP, ds.status.podIP);

  // delete, then down: nothing left behind.
  assert.match(ok('delete', 'cnp', 'rule1', '-n', 'galaxy'), /deleted/);
  assert.equal(curl('xwing').stdout, '200');
  const nosuch = run('delete', 'pod', 'nosuch', '-n', 'galaxy');
  assert.equal(nosuch.status, 2);
  assert.equal(nosuch.stderr, 'membrane: not found: Pod galaxy/nosuch [MEMBRANE_E_NOT_FOUND]\n');
  assert.equal(run('delete', 'pod', 'nosuch', '-n', 'galaxy', '--ignore-not-found').status, 0);
  const finished = a.down();
  assert.equal(finished.status, 0, finished.stderr);
  assert.match(finished.stdout, /membrane is down/);
  assert.deepEqual(a.leaks(), [], 'down leaves nothing of this agent behind');
});
