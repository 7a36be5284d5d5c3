// The DNS proxy and toFQDNs through the CLI (issue "L7: ... the DNS proxy,
// toFQDNs", done-when tests): a DNS server and two web servers on test hosts
// at documentation addresses; a pod whose egress allows DNS to that server
// only for *.example.com and TCP 443 only to what www.example.com resolved
// to. Checked from inside the pod with real queries and connections:
// refused names get REFUSED and never reach the server; before the lookup
// the web server is closed; the first connection right after the lookup is
// allowed; another allowed name's address stays closed; after the answer's
// TTL a new connection is closed again; toFQDNs without a DNS rule (the
// lookup not seen by the proxy) allows nothing; UDP and TCP queries alike;
// the cluster resolver (kube-dns's ClusterIP) is judged the same way.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent } from './cli-agent.js';
import { requireRoot } from './privileged.js';

const DNS_PACKET = createRequire(import.meta.url).resolve('dns-packet');
const DNS = '203.0.113.53';
const WWW = '203.0.113.11';
const OTHER = '203.0.113.12';
const TTL = 2;

/** The test host's DNS server: www → WWW (TTL 2 s), other → OTHER; every query it sees is printed. */
const DNS_SERVER = `
const dnsPacket = require(${JSON.stringify(DNS_PACKET)});
const names = { 'www.example.com': ['${WWW}', ${TTL}], 'other.example.com': ['${OTHER}', 60] };
const answer = (msg) => {
  const q = dnsPacket.decode(msg);
  const name = q.questions[0].name.toLowerCase();
  console.log(JSON.stringify({ seen: name }));
  const hit = names[name];
  return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | (hit ? 0 : 3), questions: q.questions, answers: hit ? [{ type: 'A', name, ttl: hit[1], data: hit[0] }] : [] });
};
const udp = require('node:dgram').createSocket('udp4');
udp.on('message', (m, r) => udp.send(answer(m), r.port, r.address));
udp.bind(53, '${DNS}');
require('node:net').createServer((c) => {
  let buf = Buffer.alloc(0);
  c.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
    const a = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    const len = Buffer.alloc(2); len.writeUInt16BE(a.length);
    c.end(Buffer.concat([len, a]));
  });
  c.on('error', () => {});
}).listen(53, '${DNS}', () => console.log('ready'));`;

const WEB_SERVER = (ip: string) => `
require('node:net').createServer((c) => { c.on('error', () => {}); c.end('hello from ${ip}\\n'); }).listen(443, '${ip}', () => console.log('ready'));`;

/** In the pod: `lookup NAME udp|tcp` prints {rcode, ips}; `connect IP` prints {outcome}. */
const CLIENT = `
const dnsPacket = require(${JSON.stringify(DNS_PACKET)});
const [, , what, arg, proto, server = '${DNS}'] = process.argv;
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => done({ outcome: 'timeout' }), 2500);
if (what === 'lookup') {
  const q = dnsPacket.encode({ type: 'query', id: 4321, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: arg }] });
  const read = (m) => { const a = dnsPacket.decode(m); done({ rcode: a.rcode, ips: (a.answers || []).filter((x) => x.type === 'A').map((x) => x.data) }); };
  if (proto === 'tcp') {
    const c = require('node:net').connect(53, server, () => { const len = Buffer.alloc(2); len.writeUInt16BE(q.length); c.write(Buffer.concat([len, q])); });
    let buf = Buffer.alloc(0);
    c.on('data', (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) read(buf.subarray(2, 2 + buf.readUInt16BE(0))); });
    c.on('error', (e) => done({ outcome: e.code }));
  } else {
    const s = require('node:dgram').createSocket('udp4');
    s.on('message', read);
    s.send(q, 53, server);
  }
} else {
  const c = require('node:net').connect(443, arg);
  c.on('data', (d) => done({ outcome: 'connected', reply: String(d).trim() }));
  c.on('error', (e) => done({ outcome: e.code }));
}`;

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: crawler-dns, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: crawler}}
  egress:
  - toCIDR: [${DNS}/32]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.example.com"}]
  - toFQDNs: [{matchName: www.example.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: blind-fqdn, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: blind}}
  egress:
  - toCIDR: [${DNS}/32]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]
  - toFQDNs: [{matchName: www.example.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cluster-dns, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: cluster}}
  egress:
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.*.svc.cluster.local"}]
`;

const pod = (name: string, app: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: default, labels: {app: ${app}}}
spec:
  containers: [{name: main, command: [sleep, infinity]}]
`;

function lineOf(child: ChildProcess, want: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`no "${want}" within ${timeoutMs} ms: ${out}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(want)) {
        clearTimeout(t);
        res();
      }
    });
  });
}

test('the DNS proxy and toFQDNs: REFUSED names, allowed after the lookup, another name or no DNS rule denied, expiry after the TTL', { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods and test hosts')) return;
  const a = new CliAgent({ tag: 'dns', podCIDR: '10.217.0.0/24', serviceCIDR: '10.227.0.0/24', env: { MEMBRANE_TOFQDNS_MIN_TTL: '0' } });
  const dir = mkdtempSync(join(tmpdir(), 'mbr-dns-test-'));
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL');
    a.cleanup();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(a.leaks(), []);
  });
  a.up();
  const hosts: Record<string, { netns: string }> = {};
  for (const [name, ip] of [['dns', DNS], ['www', WWW], ['other', OTHER]] as const) hosts[name] = await a.call<{ netns: string }>('POST', '/v1/testhosts', { name, ip });
  const serve = async (netns: string, script: string) => {
    const c = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    await lineOf(c, 'ready');
    return c;
  };
  const dnsServer = await serve(hosts['dns']!.netns, DNS_SERVER);
  const seen: string[] = [];
  dnsServer.stdout!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n').filter((x) => x.startsWith('{'))) seen.push((JSON.parse(l) as { seen: string }).seen);
  });
  await serve(hosts['www']!.netns, WEB_SERVER(WWW));
  await serve(hosts['other']!.netns, WEB_SERVER(OTHER));

  writeFileSync(join(dir, 'world.yaml'), pod('crawler', 'crawler') + '---' + pod('blind', 'blind') + '---' + pod('cluster', 'cluster') + '---' + POLICY);
  writeFileSync(join(dir, 'client.js'), CLIENT);
  a.ok('apply', '-f', join(dir, 'world.yaml'));
  const run = <T>(from: string, ...args: string[]) => JSON.parse(a.ok('exec', from, '--', process.execPath, join(dir, 'client.js'), ...args)) as T;
  const lookup = (from: string, name: string, proto = 'udp', server?: string) => run<{ rcode?: string; ips?: string[]; outcome?: string }>(from, 'lookup', name, proto, ...(server ? [server] : []));
  const connect = (from: string, ip: string) => run<{ outcome: string; reply?: string }>(from, 'connect', ip).outcome;

  // The cluster resolver (kube-dns's ClusterIP, the agent's DNS server behind it) through the DNS proxy too.
  const kubeDns = a.json<{ service: string; frontend: string }[]>('service', 'list').find((s) => s.service === 'kube-system/kube-dns')!.frontend.split(':')[0]!;
  for (const proto of ['udp', 'tcp']) {
    assert.deepEqual(lookup('cluster', 'kube-dns.kube-system.svc.cluster.local', proto, kubeDns), { rcode: 'NOERROR', ips: [kubeDns] }, `${proto}: an allowed cluster name`);
    assert.deepEqual(lookup('cluster', 'www.example.com', proto, kubeDns), { rcode: 'REFUSED', ips: [] }, `${proto}: a name no DNS rule of the pod allows`);
  }
  const clusterQueries = a.json<{ dnsProxy: { queries: { refused: number; forwarded: number } } }>('status').dnsProxy.queries;
  assert.deepEqual([clusterQueries.refused, clusterQueries.forwarded], [2, 2]);

  // Before any lookup: closed.
  assert.equal(connect('crawler', WWW), 'timeout', 'toFQDNs selects nothing before the lookup');
  // A name no DNS rule allows: REFUSED by the proxy, the server never asked.
  for (const proto of ['udp', 'tcp']) assert.deepEqual(lookup('crawler', 'evil.test', proto), { rcode: 'REFUSED', ips: [] }, proto);
  assert.deepEqual(lookup('crawler', 'example.com'), { rcode: 'REFUSED', ips: [] }, '"*.example.com" does not match the apex');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, [], 'refused queries never reach the server');

  // Another allowed name: answered, but its address is not www.example.com's.
  assert.deepEqual(lookup('crawler', 'other.example.com', 'tcp'), { rcode: 'NOERROR', ips: [OTHER] });
  assert.equal(connect('crawler', OTHER), 'timeout', 'toFQDNs www.example.com does not open other.example.com');

  // The lookup, then at once the connection: allowed.
  assert.deepEqual(lookup('crawler', 'www.example.com'), { rcode: 'NOERROR', ips: [WWW] });
  assert.equal(connect('crawler', WWW), 'connected', 'the first connection after the lookup');
  // The server's lines are read by the event loop, which the synchronous exec calls held up.
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, ['other.example.com', 'www.example.com']);
  const cache = a.json<{ name: string; ip: string }[]>('fqdn', 'cache', 'list');
  assert.deepEqual(cache.map((e) => `${e.name} ${e.ip}`).sort(), [`other.example.com ${OTHER}`, `www.example.com ${WWW}`]);
  const status = a.json<{ dnsProxy: { state: string; queries: { refused: number; forwarded: number } } }>('status');
  assert.equal(status.dnsProxy.state, 'running');
  assert.deepEqual([status.dnsProxy.queries.refused, status.dnsProxy.queries.forwarded], [5, 4]);

  // After the TTL: a new connection is closed again, the pair gone from the cache.
  await new Promise((r) => setTimeout(r, TTL * 1000 + 1000));
  assert.equal(connect('crawler', WWW), 'timeout', 'expired with its TTL');
  assert.deepEqual(a.json<{ name: string }[]>('fqdn', 'cache', 'list').map((e) => e.name), ['other.example.com']);

  // toFQDNs without a DNS rule: the lookup passes at L3/L4, unseen by the proxy, and opens nothing.
  assert.deepEqual(lookup('blind', 'www.example.com'), { rcode: 'NOERROR', ips: [WWW] });
  assert.equal(connect('blind', WWW), 'timeout', 'toFQDNs without a DNS rule allowing the lookup allows nothing');
  assert.equal(a.json<{ name: string }[]>('fqdn', 'cache', 'list').some((e) => e.name === 'www.example.com'), false);
});
