// The L7 redirect with real traffic, as root: two pods of a pod network of
// this run's own (10.233.0.0/24, railed), the endpoint programs on their
// veths, from_hairpin on the router link, policy routing in a table of this
// run's own, and a tiny transparent proxy in this process (Node, on the
// addon's sockets). A (client) connects to B (server, port 80) through the
// proxy, first by B's ingress L7 entry, then by A's egress L7 entry; the
// proxy sees the original destination as its local address and A as the
// client, connects upstream from A's address, and B sees A. With the proxy
// stopped, a new connection is reset at once and never reaches B. Port 81
// (L3/L4 only) goes straight through all along. Everything is removed at the
// end and checked for.
import { strict as assert } from 'node:assert';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Cleanup } from './cleanup.js';
import { CTFlags, Direction, EndpointFlags, ipv4ToNumber } from './codecs.js';
import { Datapath, type PolicyMapWrite } from './datapath.js';
import { ip, ipJson, linkShow, sysctlGet } from './netlink.js';
import { PodNetwork, type Pod, type PodNetworkNames } from './pod-network.js';
import { findProxyRouting, installProxyRouting } from './proxy-routing.js';
import { connectTransparent, listenTransparent } from './proxy-sockets.js';
import { TransparentUdpSocket, sendUdpFrom, transparentUpstream } from './transparent-udp.js';
import { installSafetyRoutes, unreachableRoutes } from './safety-routes.js';
import { leftoverPins } from './test/lxc-harness.js';
import { requireRoot } from './test/privileged.js';
import { nodeScript, stopLineProcesses, type LineProcess } from './test/line-process.js';

const NAMES: PodNetworkNames = { linkPrefix: `mbr${process.pid.toString(36)}l-`, netnsPrefix: `mbrt${process.pid}l-` };
const CIDR = '10.233.0.0/24';
const PIN_PREFIX = 'mbr-test-l7-';
const PIN_ROOT = `/sys/fs/bpf/${PIN_PREFIX}${process.pid}`;
/** A table and a priority of this run's own. */
const TABLE = 30000 + (process.pid % 10000);
const PRIORITY = 20000 + (process.pid % 10000);
const A_ID = { ep: 1, identity: 1000 };
const B_ID = { ep: 2, identity: 1001 };

const root = new Cleanup();
after(async () => {
  await stopLineProcesses();
  await root.run();
});

// ---- processes in the pods ------------------------------------------------------------------------

const readRpFilter = (link: string) => sysctlGet(`net.ipv4.conf.${link}.rp_filter`);


/** B: on 80 and 81, each connection printed as accepted, and its first line answered with what B saw. */
const SERVER = (host: string) => `
const net = require('node:net');
let up = 0;
for (const port of [80, 81]) {
  net.createServer((c) => {
    console.log(JSON.stringify({ accept: port, from: c.remoteAddress, fromPort: c.remotePort }));
    c.on('error', () => {});
    c.setEncoding('utf8');
    let buf = '';
    c.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\\n');
      if (i >= 0) c.end('B:' + port + ' saw ' + c.remoteAddress + ':' + c.remotePort + ' say ' + buf.slice(0, i) + '\\n');
    });
  }).listen(port, ${JSON.stringify(host)}, () => { if (++up === 3) console.log('ready'); });
}
const udp = require('node:dgram').createSocket('udp4');
udp.on('message', (m, r) => udp.send('B:53 saw ' + r.address + ':' + r.port + ' say ' + m, r.port, r.address));
udp.bind(53, ${JSON.stringify(host)}, () => { if (++up === 3) console.log('ready'); });`;

/** A: one JSON command per line ({ host, port, text }): connect, say text, print the answer line (or the error) and the time. */
const CLIENT = `
const net = require('node:net');
const dgram = require('node:dgram');
function datagram(host, port, text) {
  const t0 = process.hrtime.bigint();
  const s = dgram.createSocket('udp4');
  const finish = (o) => {
    clearTimeout(timer);
    console.log(JSON.stringify({ ...o, localPort: s.address().port, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    s.close();
  };
  const timer = setTimeout(() => finish({ outcome: 'TIMEOUT' }), 1500);
  s.on('message', (m, r) => finish({ outcome: 'ok', reply: String(m), from: r.address + ':' + r.port }));
  s.bind(0, () => s.send(text, port, host));
}
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const { host, port, text, udp } = JSON.parse(l);
  if (udp) return datagram(host, port, text);
  const t0 = process.hrtime.bigint();
  const c = net.connect(port, host);
  let buf = '', done = false, localPort;
  const finish = (o) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    c.destroy();
    console.log(JSON.stringify({ ...o, localPort, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  };
  const timer = setTimeout(() => finish({ outcome: 'TIMEOUT' }), 3000);
  c.setEncoding('utf8');
  c.on('connect', () => { localPort = c.localPort; c.write(text + '\\n'); });
  c.on('data', (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) finish({ outcome: 'ok', reply: buf.slice(0, i) }); });
  c.on('error', (e) => finish({ outcome: e.code }));
  c.on('end', () => finish({ outcome: 'ended', reply: buf }));
});
console.log('ready');`;

interface Attempt {
  outcome: string;
  reply?: string;
  /** UDP: where the answer came from. */
  from?: string;
  localPort?: number;
  ms: number;
}

// ---- the proxy ---------------------------------------------------------------------------------------

interface Proxied {
  /** The accepted socket's local address: the original destination. */
  local: string;
  /** Its remote address: the client. */
  remote: string;
  /** The upstream socket's local address (the client's IP, a port of its own). */
  upstream?: string;
}

/** Accepts what the datapath assigns it, and relays it upstream from the client's address, marking the request line. */
async function startProxy(cleanup: Cleanup): Promise<{ server: Server; udp: TransparentUdpSocket; port: number; proxied: Proxied[] }> {
  const proxied: Proxied[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const seen: Proxied = { local: `${c.localAddress}:${c.localPort}`, remote: `${c.remoteAddress}:${c.remotePort}` };
    proxied.push(seen);
    const up = connectTransparent({ source: c.remoteAddress!, host: c.localAddress!, port: c.localPort! });
    for (const s of [c, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    up.on('connect', () => (seen.upstream = `${up.localAddress}:${up.localPort}`));
    c.setEncoding('utf8');
    let buf = '';
    const onData = (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      c.off('data', onData);
      up.write(`${buf.slice(0, i)} (via proxy)${buf.slice(i)}`);
      up.pipe(c);
    };
    c.on('data', onData);
  });
  // Closing the server alone would leave its accepted connections (and the test) running.
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await listenTransparent(server, { address: '127.0.0.1', port: 0 });
  cleanup.add('the proxy', () => new Promise<void>((r) => (server.listening ? server.close(() => r()) : r())));
  // UDP: each datagram relayed from the client's address, the answer sent back from the address the client asked.
  const udp = new TransparentUdpSocket({ address: '127.0.0.1', port: 0 }, (d) => {
    const seen: Proxied = { local: `${d.destAddress}:${d.destPort}`, remote: `${d.address}:${d.port}` };
    proxied.push(seen);
    const up = transparentUpstream(d.address, (answer) => {
      up.close();
      sendUdpFrom({ address: d.destAddress, port: d.destPort }, { address: d.address, port: d.port }, answer.data);
    });
    seen.upstream = `${d.address}:${up.port}`;
    up.send(Buffer.from(`${d.data} (via proxy)`), d.destAddress, d.destPort);
  });
  cleanup.add('the UDP proxy', () => udp.close());
  return { server, udp, port: (server.address() as AddressInfo).port, proxied };
}

// ---- the run -----------------------------------------------------------------------------------------

function entry(w: Pick<PolicyMapWrite, 'direction' | 'identity' | 'port' | 'cookie'> & Partial<PolicyMapWrite>): PolicyMapWrite {
  return { proto: 6, prefix: 24, deny: false, l7: 0, proxyPort: 0, ...w };
}

interface World {
  dp: Datapath;
  a: Pod;
  b: Pod;
  server: LineProcess;
  client: LineProcess;
  proxy: { server: Server; udp: TransparentUdpSocket; port: number; proxied: Proxied[] };
  routerIfindex: number;
}
let world: World | undefined;
const accepted: { accept: number; from: string; fromPort: number }[] = [];

async function attempt(port: number, text: string, udp = false): Promise<Attempt> {
  world!.client.send(JSON.stringify({ host: world!.b.ip, port, text, udp }));
  return JSON.parse(await world!.client.line(5000)) as Attempt;
}

/** B's ingress sends 80 through the proxy; A's egress is open. */
function ingressL7(w: World): void {
  w.dp.setEndpoint(w.a.ifindex, { ep_id: A_ID.ep, ipv4: ipv4ToNumber(w.a.ip), identity: A_ID.identity, flags: 0 });
  w.dp.setEndpoint(w.b.ifindex, { ep_id: B_ID.ep, ipv4: ipv4ToNumber(w.b.ip), identity: B_ID.identity, flags: EndpointFlags.INGRESS_ENFORCED | EndpointFlags.INGRESS_DEFAULT_DENY });
  w.dp.replacePolicy(B_ID.ep, [
    entry({ direction: 'ingress', identity: A_ID.identity, port: 80, l7: 1, proxyPort: w.proxy.port, cookie: 10 }),
    entry({ direction: 'ingress', identity: A_ID.identity, port: 81, cookie: 11 }),
  ]);
  w.dp.removePolicy(A_ID.ep);
}

/** A's egress sends 80 through the proxy; B's ingress allows 80 and 81 at L3/L4. */
function egressL7(w: World): void {
  w.dp.setEndpoint(w.a.ifindex, { ep_id: A_ID.ep, ipv4: ipv4ToNumber(w.a.ip), identity: A_ID.identity, flags: EndpointFlags.EGRESS_ENFORCED | EndpointFlags.EGRESS_DEFAULT_DENY });
  w.dp.replacePolicy(A_ID.ep, [
    entry({ direction: 'egress', identity: B_ID.identity, port: 80, l7: 1, proxyPort: w.proxy.port, cookie: 20 }),
    entry({ direction: 'egress', identity: B_ID.identity, port: 81, cookie: 21 }),
  ]);
  w.dp.replacePolicy(B_ID.ep, [entry({ direction: 'ingress', identity: A_ID.identity, port: 80, cookie: 22 }), entry({ direction: 'ingress', identity: A_ID.identity, port: 81, cookie: 23 })]);
}

async function nextAccept(): Promise<{ accept: number; from: string; fromPort: number }> {
  const a = JSON.parse(await world!.server.line()) as { accept: number; from: string; fromPort: number };
  accepted.push(a);
  return a;
}

async function assertDirect(label: string): Promise<void> {
  const direct = await attempt(81, label);
  assert.equal(direct.outcome, 'ok', JSON.stringify(direct));
  assert.equal(direct.reply, `B:81 saw ${world!.a.ip}:${direct.localPort} say ${label}`, 'port 81 goes straight to B, from A');
  assert.deepEqual(await nextAccept(), { accept: 81, from: world!.a.ip, fromPort: direct.localPort });
}

test('setup: a pod network of its own, the programs, from_hairpin, policy routing of its own, a transparent proxy', async (t) => {
  if (!requireRoot(t, 'creates network namespaces, links, tc filters, routing rules and BPF pins, and sends traffic between them')) return;
  await installSafetyRoutes([CIDR], { cleanup: root });
  const net = await PodNetwork.open({ cidr: CIDR, names: NAMES, cleanup: root });
  const a = await net.addPod({ name: 'l7/a' }, root);
  const b = await net.addPod({ name: 'l7/b' }, root);
  const router = (await linkShow(net.routerIf))!;

  root.add(`unpin ${PIN_ROOT}`, () => Datapath.unpinAll(PIN_ROOT));
  const dp = Datapath.open({ pinRoot: PIN_ROOT });
  root.add('close the datapath', () => dp.close());
  for (const p of [a, b]) {
    dp.ipcacheUpsert(`${p.ip}/32`, p === a ? A_ID.identity : B_ID.identity, p === a ? A_ID.ep : B_ID.ep);
    dp.attach(p.ifindex, p.hostIf);
    root.add(`detach from ${p.hostIf}`, () => dp.detach(p.ifindex));
  }
  dp.attachHairpin(router.ifindex, net.routerIf);
  root.add(`detach from_hairpin from ${net.routerIf}`, () => dp.detachHairpin(router.ifindex));
  assert.ok(dp.nb.tcQuery(router.ifindex, 'ingress', { handle: 1, priority: 1 }));

  const routing = await installProxyRouting({ table: TABLE, priority: PRIORITY, routerIf: net.routerIf, cleanup: root });
  assert.deepEqual([routing.rule, routing.route, routing.warnings], ['added', 'added', []]);
  assert.equal(await readRpFilter(net.routerIf), '0');
  assert.deepEqual((await installProxyRouting({ table: TABLE, priority: PRIORITY })).rule, 'present', 'idempotent');
  assert.deepEqual(await findProxyRouting().then((r) => r.filter((x) => x.table === TABLE)), [{ table: TABLE, priority: PRIORITY }]);

  const proxy = await startProxy(root);
  dp.setProxyConfig({ routerIfindex: router.ifindex, routerMac: router.address!, listenerIP: '127.0.0.1' });

  const server = nodeScript(b.netns, SERVER(b.ip), root);
  assert.equal(await server.line(), 'ready');
  const client = nodeScript(a.netns, CLIENT, root);
  assert.equal(await client.line(), 'ready');
  world = { dp, a, b, server, client, proxy, routerIfindex: router.ifindex };
});

test("B's ingress L7 entry: A's veth takes the connection to the proxy, which sees B:80 as its local address and A as the client; B sees A", async (t) => {
  if (!requireRoot(t, 'sends traffic through the proxy')) return;
  assert.ok(world, 'the setup test failed: nothing to send through');
  const w = world;
  ingressL7(w);
  const r = await attempt(80, 'hello');
  assert.equal(r.outcome, 'ok', JSON.stringify(r));
  assert.equal(w.proxy.proxied.length, 1);
  const seen = w.proxy.proxied[0]!;
  assert.equal(seen.local, `${w.b.ip}:80`, 'the original destination');
  assert.equal(seen.remote, `${w.a.ip}:${r.localPort}`, 'the client');
  const upPort = Number(seen.upstream!.split(':')[1]);
  assert.equal(seen.upstream, `${w.a.ip}:${upPort}`, "the upstream leaves from A's address");
  assert.equal(r.reply, `B:80 saw ${w.a.ip}:${upPort} say hello (via proxy)`);
  assert.deepEqual(await nextAccept(), { accept: 80, from: w.a.ip, fromPort: upPort });

  // A's egress entry carries B's L7 rule (the proxy took the connection at A's veth); B's conntrack holds only the proxy's upstream (flagged).
  const ofA = w.dp.ctEntries().find((e) => e.key.ep_id === A_ID.ep && e.key.direction === Direction.EGRESS && e.key.sport === r.localPort)!;
  assert.deepEqual([ofA.value.l7, ofA.value.proxy_port, ofA.value.cookie, ofA.value.flags & CTFlags.PEER_L7], [1, w.proxy.port, 0, CTFlags.PEER_L7]);
  const ofB = w.dp.ctEntries().filter((e) => e.key.ep_id === B_ID.ep && e.key.direction === Direction.INGRESS && e.key.dport === 80);
  const upstream = ofB.find((e) => e.key.sport === upPort)!;
  assert.deepEqual([upstream.value.cookie, upstream.value.flags & CTFlags.PROXY_UPSTREAM], [10, CTFlags.PROXY_UPSTREAM]);
  assert.equal(ofB.length, 1, "B's to_container saw only the proxy's upstream");
  await assertDirect('plain');
});

test("A's egress L7 entry: the SYN is assigned to the proxy straight from A's veth; the rest as before", async (t) => {
  if (!requireRoot(t, 'sends traffic through the proxy')) return;
  assert.ok(world, 'the setup test failed: nothing to send through');
  const w = world;
  egressL7(w);
  const r = await attempt(80, 'hello again');
  assert.equal(r.outcome, 'ok', JSON.stringify(r));
  assert.equal(w.proxy.proxied.length, 2);
  const seen = w.proxy.proxied[1]!;
  assert.deepEqual([seen.local, seen.remote], [`${w.b.ip}:80`, `${w.a.ip}:${r.localPort}`]);
  const upPort = Number(seen.upstream!.split(':')[1]);
  assert.equal(r.reply, `B:80 saw ${w.a.ip}:${upPort} say hello again (via proxy)`);
  assert.deepEqual(await nextAccept(), { accept: 80, from: w.a.ip, fromPort: upPort });
  const ofA = w.dp.ctEntries().find((e) => e.key.ep_id === A_ID.ep && e.key.direction === Direction.EGRESS && e.key.sport === r.localPort)!;
  assert.deepEqual([ofA.value.l7, ofA.value.proxy_port, ofA.value.cookie], [1, w.proxy.port, 20]);
  await assertDirect('plain again');
});

/** A's egress sends UDP 53 through the proxy (a DNS rule's entry); B's ingress allows it at L3/L4. */
function egressUdpL7(w: World): void {
  egressL7(w);
  w.dp.replacePolicy(A_ID.ep, [
    entry({ direction: 'egress', identity: B_ID.identity, proto: 17, port: 53, l7: 2, proxyPort: w.proxy.udp.port, cookie: 30 }),
    entry({ direction: 'egress', identity: B_ID.identity, port: 81, cookie: 31 }),
  ]);
  w.dp.replacePolicy(B_ID.ep, [entry({ direction: 'ingress', identity: A_ID.identity, proto: 17, port: 53, cookie: 32 }), entry({ direction: 'ingress', identity: A_ID.identity, port: 81, cookie: 33 })]);
}

test("A's egress UDP L7 entry: each datagram is assigned to the proxy's UDP socket, which reads B:53 as the destination, relays from A's address and answers from B:53", async (t) => {
  if (!requireRoot(t, 'sends traffic through the proxy')) return;
  assert.ok(world, 'the setup test failed: nothing to send through');
  const w = world;
  egressUdpL7(w);
  for (const text of ['query one', 'query two']) {
    const before = w.proxy.proxied.length;
    const r = await attempt(53, text, true);
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(w.proxy.proxied.length, before + 1);
    const seen = w.proxy.proxied[before]!;
    assert.deepEqual([seen.local, seen.remote], [`${w.b.ip}:53`, `${w.a.ip}:${r.localPort}`]);
    assert.equal(r.from, `${w.b.ip}:53`, 'the answer comes from the address A asked');
    assert.equal(r.reply, `B:53 saw ${seen.upstream} say ${text} (via proxy)`, "B saw A's address (the proxy's upstream port)");
  }
  const ofA = w.dp.ctEntries().find((e) => e.key.ep_id === A_ID.ep && e.key.direction === Direction.EGRESS && e.key.dport === 53)!;
  assert.deepEqual([ofA.value.l7, ofA.value.proxy_port, ofA.value.cookie], [2, w.proxy.udp.port, 30]);
  await assertDirect('plain udp');
});

test('the proxy stopped: a new connection is reset at once (ECONNREFUSED) and never reaches B, by either entry; port 81 is unaffected', async (t) => {
  if (!requireRoot(t, 'sends traffic through the datapath')) return;
  assert.ok(world, 'the setup test failed: nothing to send through');
  const w = world;
  await new Promise<void>((r) => w.proxy.server.close(() => r()));
  w.proxy.udp.close();
  egressUdpL7(w);
  const dropped = await attempt(53, 'unchecked?', true);
  assert.equal(dropped.outcome, 'TIMEOUT', `a UDP datagram with no proxy socket to take it is dropped: ${JSON.stringify(dropped)}`);
  for (const [label, policy] of [['egress', egressL7], ['ingress', ingressL7]] as const) {
    policy(w);
    const r = await attempt(80, `hello ${label}`);
    assert.equal(r.outcome, 'ECONNREFUSED', `${label}: ${JSON.stringify(r)}`);
    assert.ok(r.ms < 500, `${label}: refused after ${r.ms} ms`);
    await assertDirect(`plain ${label}`);
  }
  assert.equal(w.proxy.proxied.length, 4, 'the proxy took nothing more');
  assert.deepEqual(accepted.map((a) => a.accept), [80, 81, 80, 81, 81, 81, 81], 'B accepted nothing on 80 after the proxy stopped');
});

test('everything is removed: no namespace, link, pin, routing rule or route of this run is left', async (t) => {
  if (!requireRoot(t, 'checks for leftovers')) return;
  await stopLineProcesses();
  await root.run();
  const found: string[] = [];
  for (const n of await ipJson<{ name: string }[]>(['netns', 'list'], 'netns')) if (n.name.startsWith(NAMES.netnsPrefix)) found.push(`netns ${n.name}`);
  for (const l of await ipJson<{ ifname: string }[]>(['link', 'show'], 'links')) if (l.ifname.startsWith(NAMES.linkPrefix)) found.push(`link ${l.ifname}`);
  for (const r of await findProxyRouting()) if (r.table === TABLE || r.priority === PRIORITY) found.push(`rule ${JSON.stringify(r)}`);
  const table = await ip(['route', 'show', 'table', String(TABLE)], 'table').catch(() => '');
  if (table.trim()) found.push(`table ${TABLE}: ${table.trim()}`);
  for (const r of await unreachableRoutes([CIDR])) found.push(`rail ${r}`);
  for (const p of leftoverPins(PIN_PREFIX)) found.push(`pin /sys/fs/bpf/${p}`);
  assert.deepEqual(found, []);
});
