// The seed's kubectl commands as typed, with the machine's kubectl (1.32)
// and a fresh --cache-dir against the agent running the Star Wars demo:
// apply (created, then unchanged), exec with curl through cluster DNS (the
// TIE fighter lands, the X-wing's curl times out and kubectl exits with
// curl's code), get -w printing a row when a pod is deleted, server-side
// apply, an invalid policy refused with an Invalid Status naming the field
// as `membrane apply` names it (nothing changes), describe with the
// agent's Events, logs, wait, delete -f, and exec into the agent's own pod
// running `cilium endpoint list`.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, REPO_ROOT } from './cli-agent.js';
import { inCI, requireRoot } from './privileged.js';

const RULE1 = join(REPO_ROOT, 'examples/starwars/rule1-l3l4.yaml');

test('the seed through kubectl: apply, exec, get -w, server-side apply, invalid policy, describe, logs, wait, delete, cilium endpoint list', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent')) return;
  if (spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0) {
    if (inCI()) throw new Error('kubectl is missing: the machines this runs on have kubectl 1.32');
    t.skip('no kubectl on this machine');
    return;
  }
  const a = new CliAgent({ tag: 'kseed', podCIDR: '10.223.0.0/24', serviceCIDR: '10.233.0.0/24' });
  t.after(() => a.cleanup());
  assert.equal(a.run('demo', 'starwars').status, 0);
  const dir = mkdtempSync(join(tmpdir(), 'mbr-kubectl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, a.ok('kubeconfig'), { mode: 0o600 });
  const base = ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache')];
  const kubectl = (...args: string[]) => spawnSync('kubectl', [...base, ...args], { encoding: 'utf8', timeout: 60_000 });
  const ok = (...args: string[]) => {
    const r = kubectl(...args);
    assert.equal(r.status, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  assert.match(ok('get', 'pods'), /^tiefighter\s+1\/1\s+Running/m);
  assert.equal(ok('apply', '-f', RULE1).trim(), 'ciliumnetworkpolicy.cilium.io/rule1 created');
  assert.equal(ok('apply', '-f', RULE1).trim(), 'ciliumnetworkpolicy.cilium.io/rule1 unchanged');

  // exec: curl in the pods' network namespaces, names from cluster DNS, the policy in force.
  assert.equal(ok('exec', 'tiefighter', '--', 'curl', '-s', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing').trim(), 'Ship landed');
  const xwing = kubectl('exec', 'xwing', '--', 'curl', '-s', '-m', '3', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
  assert.equal(xwing.status, 28, `curl's timeout code through kubectl: ${xwing.stderr}`);
  assert.match(xwing.stderr, /command terminated with exit code 28/);

  // The agent's own pod speaks cilium's commands.
  const agentPod = ok('-n', 'kube-system', 'get', 'pods', '-o', 'name').split('\n').find((l) => l.startsWith('pod/membrane-'))!.slice(4);
  assert.ok(agentPod, 'the agent is a pod in kube-system');
  const eps = ok('-n', 'kube-system', 'exec', agentPod, '--', 'cilium', 'endpoint', 'list');
  assert.match(eps, /ENDPOINT/);
  assert.match(eps, /tiefighter|class=tiefighter/);

  // wait and logs.
  assert.equal(ok('wait', '--for=condition=Ready', 'pod/tiefighter', '--timeout=30s').trim(), 'pod/tiefighter condition met');
  const deathstar = ok('get', 'pods', '-l', 'class=deathstar', '-o', 'name').split('\n')[0]!.slice(4);
  assert.equal(kubectl('logs', deathstar).status, 0);

  // server-side apply over what client-side apply made.
  assert.equal(ok('apply', '--server-side', '--force-conflicts', '-f', RULE1).trim(), 'ciliumnetworkpolicy.cilium.io/rule1 serverside-applied');

  // An invalid policy: the same field and reason as membrane apply, and nothing changes.
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: rule1\nspec:\n  endpointSelector:\n    matchLabels:\n      org: empire\n  ingress:\n  - toPorts:\n    - ports:\n      - port: "99999"\n        protocol: TCP\n');
  const before = ok('get', 'cnp', 'rule1', '-o', 'jsonpath={.metadata.resourceVersion}');
  const refused = kubectl('apply', '-f', bad);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /is invalid/);
  const mine = a.run('apply', '-f', bad);
  assert.notEqual(mine.status, 0);
  const field = /(spec\.ingress\[0\][\w.[\]]*): ([^[\n]*?)(?: \[MEMBRANE_E|$)/m.exec(mine.stderr);
  assert.ok(field, mine.stderr);
  assert.ok(refused.stderr.includes(field[1]!) && refused.stderr.includes(field[2]!.trim()), `kubectl: ${refused.stderr}\nmembrane: ${mine.stderr}`);
  assert.equal(ok('get', 'cnp', 'rule1', '-o', 'jsonpath={.metadata.resourceVersion}'), before, 'nothing changed');
  assert.match(ok('describe', 'cnp', 'rule1'), /PolicyInvalid/);

  // get -A -w prints a row when a pod is deleted.
  const watch = spawn('kubectl', [...base, 'get', 'pods', '-A', '-w'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => watch.kill('SIGKILL'));
  let out = '';
  watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const until = async (f: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end && !f(); ) await new Promise((r) => setTimeout(r, 100));
    return f();
  };
  assert.ok(await until(() => /^default\s+xwing\s/m.test(out), 15_000), out);
  const listed = out.length;
  assert.match(ok('delete', 'pod', 'xwing'), /pod "xwing" deleted/);
  assert.ok(await until(() => /^default\s+xwing\s/m.test(out.slice(listed)), 15_000), `a row for the deleted pod: ${out}`);
  assert.equal(watch.exitCode, null, 'the watch stays open');
  watch.kill('SIGTERM');

  assert.match(ok('delete', '-f', RULE1), /ciliumnetworkpolicy.cilium.io "rule1" deleted/);
  assert.match(kubectl('get', 'cnp', 'rule1').stderr, /NotFound/);

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
