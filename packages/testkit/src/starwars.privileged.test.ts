// The seed's walkthrough, as a user types it (issue "Services, cluster DNS
// ... and membrane demo starwars", done-when 1): `membrane demo starwars`,
// both ships land through the Service's DNS name, rule1 (L3/L4) makes the
// X-wing's request time out while the TIE fighter still lands, the Death
// Star pods show ingress enforcement, both of them serve requests, the
// exhaust port still explodes; then rule1 at L7 (issue "L7: the HTTP proxy"):
// the TIE fighter's PUT /v1/exhaust-port is answered "Access denied" by the
// proxy while its landing still lands, and that holds across a kill -9 of
// the proxy (restarted) and of the agent (the proxy adopted).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, REPO_ROOT } from './cli-agent.js';
import { requireRoot } from './privileged.js';

const LAND = ['curl', '-s', '-m', '5', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing'];

test('the Star Wars walkthrough through the CLI: demo, DNS, ClusterIP, rule1 (L3/L4), rule1 (L7)', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods')) return;
  const a = new CliAgent({ tag: 'sw', podCIDR: '10.216.0.0/24', serviceCIDR: '10.226.0.0/24' });
  t.after(() => a.cleanup());

  const demo = a.run('demo', 'starwars');
  assert.equal(demo.status, 0, demo.stderr + demo.stdout);
  assert.match(demo.stdout, /membrane is up/);
  assert.match(demo.stdout, /The Star Wars demo is ready \(\d+\.\d+s\)/);
  const readyS = Number(/demo_ready_s=([\d.]+)/.exec(demo.stdout)![1]);
  t.diagnostic(`demo_ready_s ${readyS}`);
  assert.ok(readyS < 30, `demo ready in ${readyS}s`);
  assert.match(a.run('demo', 'starwars').stdout, /deployment\/deathstar unchanged/, 'a second run changes nothing');

  // Services as kubectl and cilium show them.
  const svc = a.ok('get', 'svc');
  assert.match(svc, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/m);
  assert.match(svc, /^deathstar\s+ClusterIP\s+10\.226\.0\.\d+\s+<none>\s+80\/TCP\s+\d+s$/m);
  const list = JSON.parse(a.ok('service', 'list', '-o', 'json')) as { service: string; frontend: string; backends: { state: string }[] }[];
  const ds = list.find((s) => s.service === 'default/deathstar')!;
  assert.match(ds.frontend, /^10\.226\.0\.\d+:80\/TCP$/);
  assert.deepEqual(ds.backends.map((b) => b.state), ['active', 'active']);
  assert.ok(list.some((s) => s.service === 'kube-system/kube-dns' && s.frontend === '10.226.0.10:53/UDP'));

  // Before rule1 both ships land.
  for (const ship of ['tiefighter', 'xwing']) {
    const r = a.run('exec', ship, '--', ...LAND);
    assert.equal(r.status, 0, `${ship}: ${r.stderr}`);
    assert.equal(r.stdout, 'Ship landed\n', ship);
  }
  const explode = a.run('exec', 'tiefighter', '--', 'curl', '-s', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port');
  assert.match(explode.stdout, /^Panic: deathstar exploded\n\ngoroutine 1 \[running\]:\nmain\.HandleGarbage/);

  // rule1 (L3/L4): the X-wing's request times out, the TIE fighter still lands.
  assert.match(a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l3l4.yaml')), /ciliumnetworkpolicy\/rule1 created/);
  const x = a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '3', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
  assert.equal(x.status, 28, `the X-wing must time out (curl 28), got ${x.status}: ${x.stdout}${x.stderr}`);
  assert.equal(a.ok('exec', 'tiefighter', '--', ...LAND), 'Ship landed\n');
  assert.match(a.ok('exec', 'tiefighter', '--', 'curl', '-s', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port'), /^Panic: deathstar exploded/, 'no L7 rule yet: the exhaust port still explodes');

  // Ingress enforcement is on for both Death Star pods, and only them.
  const eps = JSON.parse(a.ok('endpoint', 'list', '-o', 'json')) as { pod: string; policyEnforcement: { ingress: boolean; egress: boolean } }[];
  const deathstars = eps.filter((e) => e.pod.startsWith('deathstar-'));
  assert.equal(deathstars.length, 2);
  for (const e of deathstars) assert.deepEqual(e.policyEnforcement, { ingress: true, egress: false }, e.pod);
  for (const e of eps.filter((x) => !x.pod.startsWith('deathstar-'))) assert.equal(e.policyEnforcement.ingress, false, e.pod);
  assert.match(a.ok('endpoint', 'list'), /Enabled/);

  // Both Death Star pods served landings (each request is a line of its log).
  for (let i = 0; i < 20; i++) a.ok('exec', 'tiefighter', '--', ...LAND);
  for (const e of deathstars) {
    const landed = a.ok('logs', e.pod).split('\n').filter((l) => l.includes('POST /v1/request-landing 200')).length;
    t.diagnostic(`${e.pod} served ${landed} landings`);
    assert.ok(landed > 0, `${e.pod} served no request`);
  }

  const putsBefore = deathstars.map((e) => a.ok('logs', e.pod).split('\n').filter((l) => l.includes('PUT /v1/exhaust-port')).length).reduce((x, y) => x + y, 0);
  // rule1 at L7: the proxy answers the exhaust port, the landing still lands, the X-wing still times out.
  assert.match(a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l7.yaml')), /ciliumnetworkpolicy\/rule1 configured/);
  const denied = a.run('exec', 'tiefighter', '--', 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port');
  assert.equal(denied.stdout, 'Access denied\r\n\n403', denied.stderr);
  assert.equal(a.ok('exec', 'tiefighter', '--', ...LAND), 'Ship landed\n');
  // One keep-alive connection: a denied request does not poison the next.
  const both = a.ok('exec', 'tiefighter', '--', 'curl', '-s', '-m', '5', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port', '--next', '-s', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
  assert.equal(both, 'Access denied\r\nShip landed\n');
  assert.equal(a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '3', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing').status, 28, 'the X-wing is still dropped at L3/L4');
  const puts = () => deathstars.map((e) => a.ok('logs', e.pod).split('\n').filter((l) => l.includes('PUT /v1/exhaust-port')).length).reduce((x, y) => x + y, 0);
  assert.equal(puts(), putsBefore, 'the Death Star never saw a denied request');
  const status = a.json<{ proxy: { state: string; pid: number; events: { received: number } } }>('status');
  assert.equal(status.proxy.state, 'running');
  assert.ok(status.proxy.events.received >= 4, `the proxy's events reach the agent (${status.proxy.events.received})`);

  // kill -9 the proxy: refused (never let through) until the agent has restarted it, well within 2 s.
  process.kill(status.proxy.pid, 'SIGKILL');
  const t0 = Date.now();
  let answer = '';
  while (Date.now() - t0 < 10_000) {
    answer = a.run('exec', 'tiefighter', '--', 'curl', '-s', '-m', '2', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port').stdout;
    if (answer !== '') break;
  }
  const gapMs = Date.now() - t0;
  t.diagnostic(`proxy_restart_ms ${gapMs}`);
  assert.equal(answer, 'Access denied\r\n');
  assert.ok(gapMs < 2000, `the L7 port was served again after ${gapMs} ms`);
  const restarted = a.noteProxy();
  assert.notEqual(restarted, status.proxy.pid);

  // kill -9 the agent: the proxy keeps serving by the policy it has, and the next agent adopts it.
  // Without an agent there is no `membrane exec` and no cluster DNS: into the pod's namespace, to the ClusterIP.
  const target = JSON.parse(execFileSync('curl', ['-s', '--unix-socket', join(a.stateDir, 'agent.sock'), 'http://agent/v1/pods/default/tiefighter/exec'], { encoding: 'utf8' })) as { netns: string };
  const clusterIP = /^10\.226\.0\.\d+/.exec(ds.frontend)![0];
  process.kill(a.json<{ agent: { pid: number } }>('status').agent.pid, 'SIGKILL');
  const alone = execFileSync('ip', ['netns', 'exec', target.netns, 'curl', '-s', '-m', '5', '-XPUT', `${clusterIP}/v1/exhaust-port`], { encoding: 'utf8' });
  assert.equal(alone, 'Access denied\r\n', 'no agent: still judged by the proxy');
  a.up();
  const adopted = a.json<{ proxy: { pid: number; origin: string } }>('status').proxy;
  assert.deepEqual([adopted.pid, adopted.origin], [restarted, 'adopted']);
  assert.equal(a.ok('exec', 'tiefighter', '--', ...LAND), 'Ship landed\n');

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
