// The Kubernetes API subset, as the machine's kubectl (1.32) meets it: over
// HTTPS with the agent's CA and a bearer token from `membrane kubeconfig`,
// `kubectl version` reports server minor 32, `kubectl api-resources` lists
// the resources with their short names (aggregated discovery), and `kubectl
// get` prints the demo's pods, Service and rule1 as the apiserver's Tables
// (label selectors, -A -o wide, NotFound as the apiserver says it). Without
// the token every request is 401; the key and token files are root-only.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, REPO_ROOT } from './cli-agent.js';
import { inCI, requireRoot } from './privileged.js';

function get(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

test('kubectl against the agent: version, discovery with short names; 401 without the token; root-only key and token', { timeout: 120_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent')) return;
  if (spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0) {
    if (inCI()) throw new Error('kubectl is missing: the machines this runs on have kubectl 1.32');
    t.skip('no kubectl on this machine');
    return;
  }
  const a = new CliAgent({ tag: 'kube', podCIDR: '10.222.0.0/24', serviceCIDR: '10.232.0.0/24' });
  t.after(() => a.cleanup());
  assert.equal(a.run('demo', 'starwars').status, 0);
  a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l3l4.yaml'));
  const dir = mkdtempSync(join(tmpdir(), 'mbr-kubectl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, a.ok('kubeconfig'), { mode: 0o600 });
  const kubectl = (...args: string[]) => spawnSync('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { encoding: 'utf8', timeout: 30_000 });

  const v = kubectl('version', '-o', 'json');
  assert.equal(v.status, 0, v.stderr);
  const server = (JSON.parse(v.stdout) as { serverVersion: { major: string; minor: string } }).serverVersion;
  assert.deepEqual([server.major, server.minor], ['1', '32']);
  const r = kubectl('api-resources');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ciliumnetworkpolicies\s+cnp,ciliumnp\s+cilium\.io\/v2\s+true\s+CiliumNetworkPolicy$/m);
  assert.match(r.stdout, /^pods\s+po\s+v1\s+true\s+Pod$/m);
  assert.match(r.stdout, /^networkpolicies\s+netpol\s+networking\.k8s\.io\/v1\s+true\s+NetworkPolicy$/m);

  // get: the demo as a Table with the apiserver's columns and server-rendered ages.
  const pods = kubectl('get', 'pods');
  assert.equal(pods.status, 0, pods.stderr);
  assert.match(pods.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/m);
  for (const p of ['tiefighter', 'xwing', 'deathstar-']) assert.match(pods.stdout, new RegExp(`^${p}\\S*\\s+1/1\\s+Running\\s+0\\s+\\d+[smh]`, 'm'), p);
  assert.match(kubectl('get', 'pods', '-A', '-o', 'wide').stdout, /^default\s+xwing\s+1\/1\s+Running\s+0\s+\S+\s+10\.222\.0\.\d+\s+membrane\s+<none>\s+<none>$/m);
  assert.deepEqual(kubectl('get', 'pods', '-l', 'class=xwing', '-o', 'name').stdout.trim().split('\n'), ['pod/xwing']);
  assert.match(kubectl('get', 'cnp').stdout, /^NAME\s+AGE\s+VALID\nrule1\s+\S+\s+True$/m);
  assert.match(kubectl('get', 'svc', 'deathstar').stdout, /^deathstar\s+ClusterIP\s+10\.232\.0\.\d+\s+<none>\s+80\/TCP/m);
  const missing = kubectl('get', 'pod', 'nope');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /Error from server \(NotFound\): pods "nope" not found/);
  const cnp = JSON.parse(kubectl('get', 'cnp', 'rule1', '-o', 'json').stdout) as { apiVersion: string; kind: string; metadata: { uid: string; resourceVersion: string } };
  assert.deepEqual([cnp.apiVersion, cnp.kind], ['cilium.io/v2', 'CiliumNetworkPolicy']);
  assert.match(cnp.metadata.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-/);

  // describe: the seed's shape (kubectl's generic describer over the object, then its events).
  const described = kubectl('describe', 'cnp', 'rule1');
  assert.equal(described.status, 0, described.stderr);
  for (const line of [/^Name:\s+rule1$/m, /^Namespace:\s+default$/m, /^API Version:\s+cilium\.io\/v2$/m, /^Kind:\s+CiliumNetworkPolicy$/m, /^Spec:$/m, /^\s+Description:\s+L3-L4 policy/m, /^\s+Endpoint Selector:$/m, /^\s+Ingress:$/m, /^Events:\s+<none>$/m]) assert.match(described.stdout, line);

  const access = await a.call<{ server: string; caCert: string; token: string }>('GET', '/v1/kube/access');
  const none = await get(`${access.server}/api/v1/namespaces/default/pods`, access.caCert);
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.body).reason, 'Unauthorized');
  assert.equal((await get(`${access.server}/version`, access.caCert, { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await get(`${access.server}/version`, access.caCert, { authorization: `Bearer ${access.token}` })).status, 200);
  for (const f of ['kube/ca.key', 'kube/apiserver.key', 'kube/token']) assert.equal(statSync(join(a.stateDir, f)).mode & 0o777, 0o600, f);
  assert.equal(statSync(join(a.stateDir, 'kube')).mode & 0o777, 0o700);

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
