// Services and cluster DNS on real pods (issue "Services, cluster DNS ...",
// done-when 2): new connections spread over every backend; a backend
// deleted while a client loops keeps established connections on the others
// and gets no new ones; a Service with no backend refuses at once;
// targetPort by name; a UDP Service whose replies come from the ClusterIP;
// DNS short names from another namespace, NXDOMAIN, and names forwarded to
// an upstream resolver (a test host).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TestHosts } from '@membrane/datapath';
import { CliAgent, MEMBRANE, REPO_ROOT as REPO } from './cli-agent.js';
import { requireRoot } from './privileged.js';

const POD_CIDR = '10.218.0.0/24';
const ROUTER = '10.218.0.1';
const UPSTREAM = '198.51.100.53';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tiny DNS responder for the test host: every A question gets 203.0.113.99 (dns-packet, as the agent). */
const UPSTREAM_DNS = String.raw`
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
const require = createRequire(process.argv[2]);
const dns = require('dns-packet');
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  const q = dns.decode(m);
  const answers = q.questions.filter((x) => x.type === 'A').map((x) => ({ type: 'A', name: x.name, ttl: 30, data: '203.0.113.99' }));
  s.send(dns.encode({ type: 'response', id: q.id, flags: dns.RECURSION_AVAILABLE, questions: q.questions, answers }), r.port, r.address);
});
s.bind(53, '0.0.0.0', () => console.log('UPSTREAM_READY'));
`;

/** A client loop in a pod: persistent connections and new ones to a Service, each request answered with the backend's name. */
const LOOP = String.raw`
import net from 'node:net';
const [ip, seconds] = [process.argv[2], Number(process.argv[3])];
const ask = (sock) => new Promise((resolve, reject) => {
  let buf = '';
  let timer;
  function done(err, value) {
    clearTimeout(timer);
    sock.off('data', on);
    sock.off('close', closed);
    if (err) reject(new Error(err)); else resolve(value);
  }
  function on(d) {
    buf += d;
    const i = buf.indexOf('\r\n\r\n');
    if (i < 0) return;
    const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, i))?.[1] ?? 0);
    if (buf.length < i + 4 + len) return;
    done(undefined, JSON.parse(buf.slice(i + 4, i + 4 + len)).hostname);
  }
  function closed() { done('closed'); }
  if (sock.destroyed) return done('closed');
  timer = setTimeout(() => done('no answer in 2 s'), 2000);
  sock.on('data', on);
  sock.once('close', closed);
  sock.write('GET /v1/ HTTP/1.1\r\nhost: deathstar\r\nconnection: keep-alive\r\n\r\n');
});
const open = () => new Promise((resolve, reject) => { const s = net.connect(80, ip, () => resolve(s)); s.setEncoding('utf8'); s.on('error', (e) => { s.destroy(); reject(e); }); });
const persistent = [];
for (let i = 0; i < 9; i++) { const s = await open(); persistent.push({ s, backend: await ask(s), errors: 0, ok: 0 }); }
console.log('BACKENDS ' + JSON.stringify(persistent.map((p) => p.backend)));
const fresh = [];
const t0 = Date.now();
while (Date.now() - t0 < seconds * 1000) {
  for (const p of persistent) { if (p.closed) continue; try { const b = await ask(p.s); if (b === p.backend) p.ok++; else { p.errors++; p.why = 'answered by ' + b; } } catch (e) { p.errors++; p.why = String(e); p.closed = true; } }
  try { const s = await open(); fresh.push({ at: Date.now() - t0, backend: await ask(s) }); s.destroy(); } catch (e) { fresh.push({ at: Date.now() - t0, error: String(e) }); }
  await new Promise((r) => setTimeout(r, 50));
}
console.log(JSON.stringify({ persistent: persistent.map(({ backend, ok, errors, why }) => ({ backend, ok, errors, why })), fresh }));
process.exit(0);
`;

const UDP_CLIENT = String.raw`
import dgram from 'node:dgram';
const [ip, port] = [process.argv[2], Number(process.argv[3])];
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => { console.log(JSON.stringify({ reply: m.toString(), from: r.address, port: r.port })); process.exit(0); });
s.send('ping', port, ip);
setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, 3000);
`;

test('Services: spread, backend churn, no backend, targetPort by name, UDP; cluster DNS: short names, NXDOMAIN, forwarding', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods and a test host')) return;
  const a = new CliAgent({ tag: 'svc', podCIDR: POD_CIDR, serviceCIDR: '10.228.0.0/24', env: { MEMBRANE_DNS_UPSTREAM: UPSTREAM } });
  t.after(() => a.cleanup());
  a.up();

  // The upstream resolver: a test host (its /32 rail first), reached from the agent through the host's routing.
  const hosts = new TestHosts({ linkPrefix: `${a.prefix}x`, netnsPrefix: `${a.prefix}_host_x` }, ROUTER);
  t.after(() => hosts.removeAll());
  const h = await hosts.add(UPSTREAM, 'upstream-dns');
  writeFileSync(join(a.dir, 'upstream.mjs'), UPSTREAM_DNS);
  const upstream = spawn('ip', ['netns', 'exec', h.netns, process.execPath, join(a.dir, 'upstream.mjs'), join(REPO, 'packages/agent/package.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => upstream.kill('SIGKILL'));
  await new Promise<void>((resolve) => upstream.stdout.on('data', (d: Buffer) => d.toString().includes('UPSTREAM_READY') && resolve()));

  writeFileSync(
    join(a.dir, 'app.yaml'),
    `apiVersion: v1
kind: Namespace
metadata: {name: galaxy}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: deathstar}
spec:
  replicas: 3
  selector: {matchLabels: {app: deathstar}}
  template:
    metadata: {labels: {app: deathstar}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        command: [membrane, demo, deathstar-server, --port, "8080"]
        ports: [{name: web, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /v1/healthz, port: web}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: deathstar}
spec: {selector: {app: deathstar}, ports: [{port: 80, targetPort: web}]}
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec: {selector: {app: none}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec: {containers: [{name: c, command: [python3, -c, "import socket\\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\\ns.bind(('0.0.0.0',7000))\\nwhile True:\\n  d,a=s.recvfrom(100)\\n  s.sendto(b'pong:'+d,a)"], ports: [{name: echo, containerPort: 7000, protocol: UDP}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec: {selector: {app: echo}, ports: [{port: 53, protocol: UDP, targetPort: echo}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: visitor, namespace: galaxy}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
`,
  );
  a.ok('apply', '-f', join(a.dir, 'app.yaml'));
  const svcIP = (name: string) => (JSON.parse(a.ok('get', 'svc', name, '-o', 'json')) as { spec: { clusterIP: string } }).spec.clusterIP;
  const ds = svcIP('deathstar');
  for (let i = 0; i < 100; i++) {
    const l = JSON.parse(a.ok('service', 'list', '-o', 'json')) as { service: string; backends: { state: string }[] }[];
    if (l.find((s) => s.service === 'default/deathstar')?.backends.filter((b) => b.state === 'active').length === 3) break;
    await sleep(100);
  }

  // New connections spread over all three backends.
  const names = new Set<string>();
  for (let i = 0; i < 40 && names.size < 3; i++) {
    const body = a.ok('exec', 'client', '--', 'curl', '-s', '-m', '3', `http://${ds}/v1/`);
    names.add((JSON.parse(body) as { hostname: string }).hostname);
  }
  assert.equal(names.size, 3, `backends reached: ${[...names].join(', ')}`);

  // No backend: refused at once, never a hang.
  const t0 = Date.now();
  const refused = a.run('exec', 'client', '--', 'curl', '-s', '-m', '5', `http://${svcIP('nobody')}/`);
  assert.equal(refused.status, 7, `curl's "connection refused", got ${refused.status}`);
  assert.ok(Date.now() - t0 < 2000, `refused after ${Date.now() - t0} ms`);

  // UDP through the ClusterIP, the reply seen from the ClusterIP.
  writeFileSync(join(a.dir, 'udp.mjs'), UDP_CLIENT);
  const echoIP = svcIP('echo');
  const udp = JSON.parse(a.ok('exec', 'client', '--', process.execPath, join(a.dir, 'udp.mjs'), echoIP, '53')) as { reply?: string; from?: string; port?: number };
  assert.deepEqual(udp, { reply: 'pong:ping', from: echoIP, port: 53 });

  // Cluster DNS: full, short and cross-namespace names; NXDOMAIN; names forwarded upstream.
  const resolve = (pod: string, name: string, ns = 'default') => a.run('exec', pod, '-n', ns, '--', 'getent', 'ahostsv4', name);
  const first = (r: ReturnType<typeof resolve>) => r.stdout.split(/\s+/)[0];
  assert.equal(first(resolve('client', 'deathstar.default.svc.cluster.local')), ds);
  assert.equal(first(resolve('client', 'deathstar')), ds, 'the short name through the search path');
  assert.equal(first(resolve('visitor', 'deathstar.default', 'galaxy')), ds, 'name.namespace from another namespace');
  // A bare name is looked up in the pod's own namespace first: from galaxy, deathstar is not the Service
  // (every cluster candidate is NXDOMAIN; the absolute name then goes upstream, whose test host answers anything).
  assert.equal(first(resolve('visitor', 'deathstar', 'galaxy')), '203.0.113.99');
  assert.equal(resolve('client', 'nothere.default.svc.cluster.local').status, 2);
  const clientIP = (JSON.parse(a.ok('get', 'pod', 'client', '-o', 'json')) as { status: { podIP: string } }).status.podIP;
  assert.equal(first(resolve('client', `${clientIP.replaceAll('.', '-')}.default.pod.cluster.local`)), clientIP);
  assert.equal(first(resolve('client', 'www.example.com')), '203.0.113.99', 'forwarded to the upstream resolver');

  // A backend deleted while a client loops: established connections on the others carry on, no new one goes to it.
  writeFileSync(join(a.dir, 'loop.mjs'), LOOP);
  const loop = spawn(MEMBRANE, ['exec', 'client', '--', process.execPath, join(a.dir, 'loop.mjs'), ds, '8'], { env: a.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  loop.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((r) => loop.on('exit', () => r()));
  for (let i = 0; i < 100 && !out.includes('BACKENDS '); i++) await sleep(50);
  const seen = JSON.parse(/BACKENDS (.*)/.exec(out)![1]!) as string[];
  const loopStart = Date.now();
  await sleep(1000);
  // The victim: a backend some of the established connections are on, while others are elsewhere.
  const victim = seen.find((b) => seen.some((o) => o !== b)) ?? seen[0]!;
  const deletedAt = Date.now();
  a.ok('delete', 'pod', victim);
  const deleteMs = Date.now() - deletedAt;
  await done;
  const res = JSON.parse(out.split('\n').filter((l) => l.startsWith('{')).pop()!) as { persistent: { backend: string; ok: number; errors: number }[]; fresh: { at: number; backend?: string; error?: string }[] };
  const others = res.persistent.filter((p) => p.backend !== victim);
  assert.ok(others.length > 0 && res.persistent.length > others.length, `connections on the victim and on others: ${JSON.stringify(res.persistent)}`);
  t.diagnostic(JSON.stringify(res.persistent));
  t.diagnostic(JSON.stringify(res.fresh.map((f) => [f.at, f.backend ?? f.error])));
  t.diagnostic(`victim ${victim}, delete took ${deleteMs} ms`);
  for (const p of others) assert.equal(p.errors, 0, `an established connection to ${p.backend} broke: ${JSON.stringify(p)}`);
  // After the delete returned (the pod is gone), no new connection reaches it.
  const goneAt = deletedAt + deleteMs - loopStart;
  const afterDelete = res.fresh.filter((f) => f.at > goneAt + 200);
  assert.ok(afterDelete.length > 5, `new connections after the delete: ${afterDelete.length}`);
  assert.deepEqual(afterDelete.filter((f) => f.backend === victim || f.error), [], 'no new connection to the deleted backend, none failed');

  upstream.kill('SIGKILL');
  await hosts.removeAll();
  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
