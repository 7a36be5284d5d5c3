// The pod network against the real kernel, as root: two pods plumbed as
// design.md section 3, TCP between them, an "agent restart" (a second
// PodNetwork.open on the same names) that finds and adopts the pods without
// changing anything — the TCP connection made before carries on — a pod
// removed, the network destroyed, and a final check that nothing of this run
// is left. The safety routes go in before the first pod. Names carry the
// run: links `mbr<pid base 36>-…`, namespaces `mbrt<pid>-…`.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Cleanup } from './cleanup.js';
import { ip, ipJson, linkShow, routeDelete, sysctlGet } from './netlink.js';
import { PodAdoptError, PodNetwork, type Pod, type PodNetworkNames } from './pod-network.js';
import { installSafetyRoutes, unreachableRoutes, type SafetyRoutes } from './safety-routes.js';
import { IS_ROOT, requireRoot } from './test/privileged.js';
import { nodeScript, runningLineProcesses, stopLineProcesses, stopProcess, type LineProcess } from './test/line-process.js';

const NAMES: PodNetworkNames = { linkPrefix: `mbr${process.pid.toString(36)}-`, netnsPrefix: `mbrt${process.pid}-` };
/** This test's own pod CIDR (never the agent's default 10.200.0.0/16). */
const CIDR = '10.208.0.0/16';
/** A second owner's names (refused while NAMES holds the router IP). */
const OTHER: PodNetworkNames = { linkPrefix: `mbr${process.pid.toString(36)}o-`, netnsPrefix: `mbrt${process.pid}o-` };
const PORT = 7070;
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

// ---- processes in pods, started and stopped by PID -------------------------------------------


const SERVER = (host: string) => `
const s = require('node:net').createServer((c) => c.pipe(c));
s.listen(${PORT}, ${JSON.stringify(host)}, () => console.log('ready'));`;

/** One long-lived connection; each stdin line goes out, each echoed line comes back as "echo <line>". */
const CLIENT = (host: string) => `
const c = require('node:net').connect(${PORT}, ${JSON.stringify(host)}, () => console.log('connected ' + c.localPort));
c.setEncoding('utf8');
let buf = '';
c.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { console.log('echo ' + buf.slice(0, i)); buf = buf.slice(i + 1); } });
c.on('error', (e) => { console.log('error ' + e.code); process.exit(3); });
c.on('close', () => { console.log('closed'); process.exit(0); });
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => c.write(l + '\\n'));`;

/** One connection attempt: prints CONNECTED, the error code, or TIMEOUT. */
const CONNECT_ONCE = (host: string) => `
const c = require('node:net').connect(${PORT}, ${JSON.stringify(host)});
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(0); }, 3000);
c.on('connect', () => { console.log('CONNECTED'); process.exit(0); });
c.on('error', (e) => { console.log(e.code); process.exit(0); });`;

// ---- what a pod looks like in the kernel, to show adoption changes nothing ----------------------

async function snapshot(p: Pod): Promise<unknown> {
  const host = await linkShow(p.hostIf);
  const eth0 = (await ipJson<{ ifindex: number; address: string; flags: string[]; addr_info: { local: string; prefixlen: number }[] }[]>(['addr', 'show', 'dev', 'eth0'], 'eth0', p.netns))[0]!;
  return {
    host: host && { ifindex: host.ifindex, address: host.address, flags: host.flags, peer: host.link_index, nsid: host.link_netnsid },
    eth0: { ifindex: eth0.ifindex, address: eth0.address, flags: eth0.flags, addrs: eth0.addr_info.map((a) => `${a.local}/${a.prefixlen}`) },
    podRoutes: (await ip(['route', 'show', 'table', 'all'], 'routes', p.netns)).trim(),
    hostRoute: (await ip(['route', 'show', `${p.ip}/32`], 'host route')).trim(),
    forwarding: await sysctlGet(`net.ipv4.conf.${p.hostIf}.forwarding`),
    ipv6: await sysctlGet(`net.ipv6.conf.${p.hostIf}.disable_ipv6`),
  };
}

async function leftovers(names: PodNetworkNames): Promise<string[]> {
  const found: string[] = [];
  for (const n of await ipJson<{ name: string }[]>(['netns', 'list'], 'netns')) if (n.name.startsWith(names.netnsPrefix)) found.push(`netns ${n.name}`);
  for (const l of await ipJson<{ ifname: string }[]>(['link', 'show'], 'links')) if (l.ifname.startsWith(names.linkPrefix)) found.push(`link ${l.ifname}`);
  for (const l of (await ip(['route', 'show', 'table', 'all'], 'routes')).split('\n')) if (l.includes(`dev ${names.linkPrefix}`)) found.push(`route ${l.trim()}`);
  return found;
}

// ---- the run ------------------------------------------------------------------------------------

const root = new Cleanup();
let safety: SafetyRoutes | undefined;
let ipForwardBefore: string | undefined;
let net1: PodNetwork | undefined;
let net2: PodNetwork | undefined;
let a: Pod | undefined;
let b: Pod | undefined;
let server: LineProcess | undefined;
let client: LineProcess | undefined;
let clientPort = '';

before(async () => {
  if (!IS_ROOT) return;
  ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();
  // The rail goes in before any pod (and any packet) exists.
  safety = await installSafetyRoutes([CIDR], { cleanup: root });
});
after(async () => {
  await stopLineProcesses();
  await root.run();
});

test('open creates the router link; two pods plumbed as design.md section 3 talk TCP', async (t) => {
  if (!requireRoot(t, 'creates network namespaces and links and sends traffic between them')) return;
  assert.ok(safety!.installed.includes('10.208.0.0/16') || safety!.alreadyCovered.includes('10.208.0.0/16'));

  net1 = await PodNetwork.open({ cidr: CIDR, names: NAMES, cleanup: root });
  assert.equal(net1.routerAdopted, false);
  assert.equal(net1.cidr, '10.208.0.0/16');
  assert.equal(net1.routerIP, '10.208.0.1');
  assert.equal(net1.routerIf, `${NAMES.linkPrefix}r`);
  const holders = await ipJson<{ ifname: string }[]>(['addr', 'show', 'to', '10.208.0.1/32'], 'router ip');
  assert.deepEqual(holders.map((h) => h.ifname), [net1.routerIf]);
  assert.equal(await sysctlGet(`net.ipv4.conf.${net1.routerIf}.forwarding`), '1');

  a = await net1.addPod({ name: 'test/a' }, root);
  b = await net1.addPod({ name: 'test/b', ip: '10.208.9.20' }, root);
  // The first address the allocator gives: after the network address and the router.
  assert.deepEqual({ id: a.id, ip: a.ip, netns: a.netns, hostIf: a.hostIf, adopted: a.adopted }, { id: '0', ip: '10.208.0.2', netns: `${NAMES.netnsPrefix}0`, hostIf: `${NAMES.linkPrefix}e0`, adopted: false });
  assert.equal(b.ip, '10.208.9.20');
  assert.equal(b.hostIf, `${NAMES.linkPrefix}e1`);
  assert.ok(a.hostIf.length <= 15 && b.hostIf.length <= 15);
  assert.equal(a.ifindex, (await linkShow(a.hostIf))!.ifindex);
  assert.deepEqual(net1.list().map((p) => p.name), ['test/a', 'test/b']);

  for (const p of [a, b]) {
    assert.equal(await sysctlGet(`net.ipv4.conf.${p.hostIf}.forwarding`), '1');
    const routes = await ipJson<{ dst: string; gateway?: string; dev: string; scope?: string }[]>(['route', 'show'], 'routes', p.netns);
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.208.0.1' && r.dev === 'eth0'), JSON.stringify(routes));
    assert.ok(routes.some((r) => r.dst === '10.208.0.1' && r.scope === 'link'), JSON.stringify(routes));
    assert.match(await ip(['route', 'show', `${p.ip}/32`], 'host route'), new RegExp(`dev ${p.hostIf}`));
    const eth0 = await ipJson<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(['addr', 'show', 'dev', 'eth0'], 'eth0', p.netns);
    assert.deepEqual(eth0[0]!.addr_info.map((x) => `${x.family} ${x.local}/${x.prefixlen}`), [`inet ${p.ip}/32`]);
  }
  assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore, 'the global forwarding switch was touched');

  server = nodeScript(b.netns, SERVER(b.ip), root);
  assert.equal(await server.line(), 'ready');
  client = nodeScript(a.netns, CLIENT(b.ip), root);
  const hello = await client.line();
  assert.match(hello, /^connected \d+$/);
  clientPort = hello.split(' ')[1]!;
  client.send('hello before the restart');
  assert.equal(await client.line(), 'echo hello before the restart');
});

test('a pod whose plumbing fails half-way is taken down again at once', async (t) => {
  if (!requireRoot(t, 'creates network namespaces and links')) return;
  // A route to the address exists already (not the pod's): the pod's own route cannot be added.
  await ip(['route', 'add', '10.208.66.6/32', 'dev', net1!.routerIf], 'add a clashing route');
  const routerIf = net1!.routerIf;
  // Gone with the router link when destroy ran first.
  root.add('clashing route', async () => void ((await linkShow(routerIf)) && (await routeDelete(['10.208.66.6/32', 'dev', routerIf]))));
  const c = new Cleanup();
  await assert.rejects(() => net1!.addPod({ id: 'zz', name: 'test/clash', ip: '10.208.66.6' }, c), /route 10\.208\.66\.6\/32 dev .*File exists/);
  assert.equal(await linkShow(`${NAMES.linkPrefix}ezz`), undefined);
  assert.ok(!(await ipJson<{ name: string }[]>(['netns', 'list'], 'netns')).some((n) => n.name === `${NAMES.netnsPrefix}zz`));
  assert.equal(net1!.allocator.isInUse('10.208.66.6'), false);
  assert.deepEqual(net1!.list().map((p) => p.name), ['test/a', 'test/b']);
  // What the caller's registry holds for it is a no-op now.
  await c.run();
  // Bad requests fail before anything is made.
  await assert.rejects(() => net1!.addPod({ ip: '10.208.9.20' }), /10\.208\.9\.20 is already the IP of pod test\/b/);
  await assert.rejects(() => net1!.addPod({ ip: '10.208.0.1' }), /is the router IP/);
  await assert.rejects(() => net1!.addPod({ ip: '10.209.0.9' }), /outside the pod CIDR/);
  await assert.rejects(() => net1!.addPod({ id: '0' }), /id 0 is already the id of pod test\/a/);
  await assert.rejects(() => net1!.addPod({ id: 'much-too-long-id' }), /longer than \d+ characters/);
  await assert.rejects(() => net1!.addPod({ id: 'Bad/Id' }), /lowercase letters/);
});

test('another owner of the router IP is refused', async (t) => {
  if (!requireRoot(t, 'reads the addresses of the root namespace')) return;
  await assert.rejects(
    () => PodNetwork.open({ cidr: CIDR, names: OTHER }),
    { message: `the router IP 10.208.0.1 is already configured on ${net1!.routerIf}: another agent or test run owns the pod network` },
  );
  assert.deepEqual(await leftovers(OTHER), []);
  await assert.rejects(() => PodNetwork.open({ names: { linkPrefix: 'eth', netnsPrefix: 'mbrx' } }), /must start with "mbr"/);
  await assert.rejects(() => PodNetwork.open({ names: { linkPrefix: 'mbr0123456789ab', netnsPrefix: 'mbrx' } }), /too long/);
});

test('after a restart, open on the same names adopts the router and finds the pods without touching them', async (t) => {
  if (!requireRoot(t, 'inspects network namespaces and links and sends traffic between them')) return;
  const before = { a: await snapshot(a!), b: await snapshot(b!), router: await linkShow(net1!.routerIf) };

  net2 = await PodNetwork.open({ cidr: CIDR, names: NAMES });
  assert.equal(net2.routerAdopted, true);
  assert.deepEqual(net2.routerRepairs, []);
  assert.deepEqual(net2.list(), []);
  const found = await net2.discover();
  assert.deepEqual(
    found.map((d) => ({ id: d.id, ip: d.ip, ifindex: d.ifindex, problems: d.problems })),
    [
      { id: a!.id, ip: a!.ip, ifindex: a!.ifindex, problems: [] },
      { id: b!.id, ip: b!.ip, ifindex: b!.ifindex, problems: [] },
    ],
  );
  // Their addresses are in use from open on.
  assert.deepEqual(net2.allocator.inUse(), [a!.ip, b!.ip]);

  await assert.rejects(() => net2!.adoptPod(b!.id, { ip: '10.208.9.21' }), (e: Error) => e instanceof PodAdoptError && /its address is 10\.208\.9\.20, not 10\.208\.9\.21/.test(e.message));
  const a2 = await net2.adoptPod(a!.id, { name: 'test/a', ip: a!.ip });
  const b2 = await net2.adoptPod(b!.id, { name: 'test/b' });
  assert.deepEqual(a2, { ...a!, adopted: true });
  assert.deepEqual(b2, { ...b!, adopted: true });
  assert.equal(await net2.adoptPod(a!.id), a2, 'adopting twice returns the same pod');
  assert.deepEqual(net2.list().map((p) => p.name), ['test/a', 'test/b']);

  // Nothing changed in the kernel ...
  assert.deepEqual({ a: await snapshot(a!), b: await snapshot(b!), router: await linkShow(net1!.routerIf) }, before);
  // ... and the connection made before the restart carries on.
  client!.send('hello after the restart');
  assert.equal(await client!.line(), 'echo hello after the restart');
  assert.equal(client!.child.exitCode, null);
  t.diagnostic(`the connection from ${a!.ip}:${clientPort} to ${b!.ip}:${PORT} survived the restart`);

  // A new pod never gets an address in use.
  const c = await net2.addPod({ name: 'test/c' });
  assert.equal(c.id, '2', 'automatic ids skip the pods found in place');
  assert.equal(c.ip, '10.208.0.3');

  // A pod with broken plumbing is found with its problems and not adopted; it can be removed by name.
  await ip(['route', 'delete', `${c.ip}/32`, 'dev', c.hostIf], 'break pod c');
  const net3 = await PodNetwork.open({ cidr: CIDR, names: NAMES });
  const broken = (await net3.discover()).find((d) => d.id === c.id)!;
  assert.deepEqual(broken.problems, [`no route ${c.ip}/32 dev ${c.hostIf} in the root namespace`]);
  await assert.rejects(() => net3.adoptPod(c.id), PodAdoptError);
  await net3.removePod(c.id);
  assert.equal(await linkShow(c.hostIf), undefined);
  assert.equal(net3.allocator.isInUse(c.ip), false);
  // net2 still counts c as its own: removing it there finds nothing left to do.
  await net2.removePod(c);
  assert.deepEqual(net2.list().map((p) => p.name), ['test/a', 'test/b']);
});

test('removePod takes the pod down; its address then fails on this machine', async (t) => {
  if (!requireRoot(t, 'deletes network namespaces and links and sends traffic between them')) return;
  // The pod's processes go first (the agent stops workloads before their pod).
  await stopProcess(server!.child);
  assert.match(await client!.line(), /^(closed|error ECONNRESET)$/);
  await net2!.removePod(b!.id);
  assert.equal(await linkShow(b!.hostIf), undefined);
  assert.ok(!(await ipJson<{ name: string }[]>(['netns', 'list'], 'netns')).some((n) => n.name === b!.netns));
  assert.equal((await ip(['route', 'show', `${b!.ip}/32`], 'route')).trim(), '');
  assert.equal(net2!.allocator.isInUse(b!.ip), false);
  assert.deepEqual(net2!.list().map((p) => p.name), ['test/a']);
  // Removing again is not an error.
  await net2!.removePod(b!.id);

  // From pod a, the address of the removed pod is unreachable (the safety route), not a timeout.
  const probe = nodeScript(a!.netns, CONNECT_ONCE(b!.ip), root);
  const outcome = await probe.line();
  assert.ok(['EHOSTUNREACH', 'ENETUNREACH'].includes(outcome), `connect to ${b!.ip}:${PORT} from pod a: ${outcome}`);
});

test('destroy takes down everything under the names: pods and router', async (t) => {
  if (!requireRoot(t, 'deletes network namespaces and links')) return;
  await stopProcess(client!.child);
  // A pod made by the first network but never adopted by the second: destroy takes it too.
  const d = await net1!.addPod({ id: 'x', name: 'test/x' }, root);
  await net2!.destroy();
  assert.deepEqual(await leftovers(NAMES), []);
  assert.equal(await linkShow(d.hostIf), undefined);
  assert.deepEqual(await ipJson<unknown[]>(['addr', 'show', 'to', '10.208.0.1/32'], 'router ip'), []);
  await assert.rejects(() => net2!.addPod({}), /has been destroyed/);
  await net2!.destroy();

  // `membrane down` without opening: everything under the names goes, whoever holds the router IP.
  const net4 = await PodNetwork.open({ cidr: CIDR, names: NAMES, cleanup: root });
  assert.equal(net4.routerAdopted, false);
  await net4.addPod({ name: 'test/y' }, root);
  await PodNetwork.teardown({ names: NAMES });
  assert.deepEqual(await leftovers(NAMES), []);
  await PodNetwork.teardown({ names: NAMES });
});

test('leaves nothing with this run’s names behind (netns, links, routes, safety routes, processes)', async (t) => {
  if (!requireRoot(t, 'inspects network namespaces, links and routes')) return;
  await stopLineProcesses();
  await root.run();
  const leaks = [...(await leftovers(NAMES)), ...(await leftovers(OTHER))];
  for (const r of await unreachableRoutes(safety!.installed)) leaks.push(`safety route unreachable ${r}`);
  for (const pid of runningLineProcesses()) leaks.push(`process ${pid}`);
  assert.deepEqual(leaks, []);
  assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore);
});
