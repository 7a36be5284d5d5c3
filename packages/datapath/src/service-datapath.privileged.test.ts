// The socket load balancer against the real kernel, as root. Three backend
// pods and a client pod (PodNetwork, pod CIDR 10.213.0.0/24 of this test's
// own), frontends in a service CIDR of its own (10.217.0.0/24), both railed
// with `unreachable` routes first: a connection the programs do not translate
// fails here (EHOSTUNREACH) instead of leaving the machine. Traffic runs in
// the pods (src/test/service-traffic.ts) and is judged by what the sockets
// saw: which backend greeted, getpeername(), recvfrom()'s source.
//
// The programs attach at the root of the cgroup v2 hierarchy and so run for
// every process of the machine: pin roots of this run only
// (/sys/fs/bpf/mbr-sock-<pid>-a, -b), torn down on the line after they are
// opened, and the last test checks that no program this run attached is
// still attached and no pin, netns or link of its names is left.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Cleanup } from './cleanup.js';
import { cgroup2Mounts, resolveCgroup2 } from './cgroup2.js';
import { Datapath } from './datapath.js';
import { ipJson } from './netlink.js';
import { BPF_CGROUP_INET4_CONNECT, native } from './native.js';
import { PodNetwork, type Pod, type PodNetworkNames } from './pod-network.js';
import { installSafetyRoutes, unreachableRoutes, type SafetyRoutes } from './safety-routes.js';
import { SOCK_OBJECT, SOCK_PROGRAMS, ServiceDatapath } from './service-datapath.js';
import type { Command } from './test/service-traffic.js';
import { IS_ROOT, requireRoot } from './test/privileged.js';
import { lineProcess, runningLineProcesses, stopLineProcesses, type LineProcess } from './test/line-process.js';

const execFileP = promisify(execFile);
const TRAFFIC = fileURLToPath(new URL('./test/service-traffic.js', import.meta.url));
const NAMES: PodNetworkNames = { linkPrefix: `mbr${process.pid.toString(36)}l-`, netnsPrefix: `mbrt${process.pid}l-` };
const POD_CIDR = '10.213.0.0/24';
const SERVICE_CIDR = '10.217.0.0/24';
const PIN_A = `/sys/fs/bpf/mbr-sock-${process.pid}-a`;
const PIN_B = `/sys/fs/bpf/mbr-sock-${process.pid}-b`;
const TCP_PORT = 8080;
const UDP_PORT = 5353;

const WEB = { ip: '10.217.0.10', port: 80, protocol: 'TCP' } as const;
const DNS = { ip: '10.217.0.10', port: 53, protocol: 'UDP' } as const;
const EMPTY_TCP = { ip: '10.217.0.11', port: 80, protocol: 'TCP' } as const;
const EMPTY_UDP = { ip: '10.217.0.11', port: 53, protocol: 'UDP' } as const;
const OTHER_AGENT = { ip: '10.217.0.20', port: 80, protocol: 'TCP' } as const;
const SHARED = { ip: '10.217.0.30', port: 80, protocol: 'TCP' } as const;

// ---- processes in pods, stopped by PID ------------------------------------------------------


/** A traffic process in a pod, or on the host (pod undefined): its stdout line by line. */
const traffic = (pod: Pod | undefined, args: string[], cleanup: Cleanup): LineProcess => lineProcess(pod?.netns, [process.execPath, TRAFFIC, ...args], cleanup, 10_000);

// ---- the run's state ----------------------------------------------------------------------

const root = new Cleanup();
let safety: SafetyRoutes | undefined;
let net: PodNetwork | undefined;
let clientPod: Pod | undefined;
const backends: Pod[] = [];
/** The client in its pod. */
let driver: LineProcess | undefined;
/**
 * A client on the host, where a connect() that routing refuses fails at
 * once with EHOSTUNREACH (from a pod, the answer is an ICMP error, which
 * the kernel rate-limits: a test could see a timeout instead).
 */
let hostDriver: LineProcess | undefined;
let sd: ServiceDatapath | undefined;
let cgroupPath = '';
/** Every program id this run attached: none may be attached at the end. */
const ours = new Set<number>();

async function ask<T = Record<string, unknown>>(c: Command, timeoutMs = 20_000, from: LineProcess = driver!): Promise<T> {
  from.child.stdin!.write(`${JSON.stringify(c)}\n`);
  return JSON.parse(await from.line(timeoutMs)) as T;
}

/** What a connect() from the host to host:port ended with. */
async function fromHost(host: string, port: number): Promise<string> {
  return (await ask<{ outcome: string }>({ op: 'connect', host, port }, 20_000, hostDriver!)).outcome;
}

function backendSpecs(pods: readonly Pod[], port = TCP_PORT): { ip: string; port: number }[] {
  return pods.map((p) => ({ ip: p.ip, port }));
}

function attachedIds(hookType: number): number[] {
  return native().cgroupQuery(cgroupPath, hookType);
}

function remember(d: ServiceDatapath): void {
  for (const p of d.programs) ours.add(p.progId);
}

/** Opens a ServiceDatapath whose every pin is removed (and program detached) when the run ends. */
function openService(pinRoot: string): ServiceDatapath {
  root.add(`socket load balancer under ${pinRoot}`, () => void ServiceDatapath.teardown(pinRoot));
  const d = ServiceDatapath.open({ pinRoot });
  root.add(`close the socket load balancer under ${pinRoot}`, () => d.close());
  remember(d);
  return d;
}

before(async () => {
  if (!IS_ROOT) return;
  // The rails go in before any pod or frontend exists.
  safety = await installSafetyRoutes([POD_CIDR, SERVICE_CIDR], { cleanup: root });
  net = await PodNetwork.open({ cidr: POD_CIDR, names: NAMES, cleanup: root });
  clientPod = await net.addPod({ id: 'c', name: 'test/client', ip: '10.213.0.10' }, root);
  for (const n of [1, 2, 3]) backends.push(await net.addPod({ id: `b${n}`, name: `test/backend-${n}`, ip: `10.213.0.1${n}` }, root));
  for (const b of backends) {
    const s = traffic(b, ['server', b.ip, String(TCP_PORT), String(UDP_PORT)], root);
    assert.equal(await s.line(), 'ready');
  }
  driver = traffic(clientPod, ['client'], root);
  assert.deepEqual(JSON.parse(await driver.line()), { ready: true });
  hostDriver = traffic(undefined, ['client'], root);
  assert.deepEqual(JSON.parse(await hostDriver.line()), { ready: true });
  cgroupPath = resolveCgroup2(native()).path;
});
after(async () => {
  await stopLineProcesses();
  await root.run();
});

test('cgroup programs: attached after those there, queried, detached one by one', (t) => {
  if (!requireRoot(t, 'loads BPF programs and attaches them to the cgroup v2 root')) return;
  const nb = native();
  const c = new Cleanup();
  t.after(() => c.run());
  // An object of its own, maps pinned under a directory of its own.
  const pins = `${PIN_A}-raw`;
  c.add(`remove ${pins}`, () => void ServiceDatapath.teardown(pins));
  const obj = nb.openObject(SOCK_OBJECT, { pinRoot: pins });
  c.add('close the object', () => nb.closeObject(obj));
  nb.ensureBpffs();
  mkdirSync(pins, { recursive: true });
  nb.loadObject(obj, {});
  const progs = nb.objectPrograms(obj);
  assert.deepEqual(progs.map((p) => [p.name, p.section]), SOCK_PROGRAMS.map((p) => [p.program, `cgroup/${p.hook}`]));
  const fd = progs[0]!.fd;
  const other = progs[1]!.fd; // sendmsg4's program: attachable at connect4 too (same program type)
  const id = nb.progInfo(fd).id;
  const otherId = nb.progInfo(other).id;
  assert.equal(nb.attachTypes['cgroup_inet4_connect'], BPF_CGROUP_INET4_CONNECT);

  const before = attachedIds(BPF_CGROUP_INET4_CONNECT);
  nb.cgroupAttach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT);
  c.add('detach connect4', () => void nb.cgroupDetach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT));
  // The same program twice at one hook: the kernel refuses (EINVAL), the list is unchanged.
  assert.throws(() => nb.cgroupAttach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT), {
    code: 'EINVAL',
    message: `attach program sock4_connect (id ${id}) to cgroup ${cgroupPath} at cgroup_inet4_connect (flags 0x2): EINVAL`,
  });
  assert.deepEqual(attachedIds(BPF_CGROUP_INET4_CONNECT), [...before, id]);
  // Not attached at the expected attach type it was loaded for: the kernel refuses.
  assert.throws(() => nb.cgroupAttach(other, cgroupPath, BPF_CGROUP_INET4_CONNECT), { code: 'EINVAL' });
  assert.ok(!attachedIds(BPF_CGROUP_INET4_CONNECT).includes(otherId));
  assert.ok(nb.cgroupQuery(cgroupPath, BPF_CGROUP_INET4_CONNECT, { effective: true }).includes(id));

  assert.equal(nb.cgroupDetach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT), true);
  assert.equal(nb.cgroupDetach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT), false);
  assert.deepEqual(attachedIds(BPF_CGROUP_INET4_CONNECT), before);
  assert.throws(() => nb.cgroupAttach(fd, '/nonexistent-mbr', BPF_CGROUP_INET4_CONNECT), { code: 'ENOENT', message: 'attach: open cgroup /nonexistent-mbr: ENOENT' });
  assert.equal(nb.isCgroup2(cgroupPath), true);
  assert.equal(nb.isCgroup2('/proc'), false);
});

test('mountCgroup2 mounts the cgroup v2 hierarchy where there is none, once; it is the same hierarchy', async (t) => {
  if (!requireRoot(t, 'mounts a filesystem')) return;
  const nb = native();
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = join(tmpdir(), `mbr-test-${process.pid}-cgroup2`, 'mnt');
  c.add(`remove ${dir}`, () => rmSync(join(dir, '..'), { recursive: true, force: true }));
  assert.equal(nb.isCgroup2(dir), false);
  assert.deepEqual(nb.mountCgroup2(dir), { path: dir, mounted: true });
  c.add(`unmount ${dir}`, async () => void (await execFileP('umount', [dir])));
  assert.equal(nb.isCgroup2(dir), true);
  assert.deepEqual(nb.mountCgroup2(dir), { path: dir, mounted: false });
  assert.ok(cgroup2Mounts(readFileSync('/proc/self/mounts', 'utf8')).includes(dir));
  // The same root: what is attached at one mount is attached at the other (asked again
  // when another run attached or detached something between the two questions).
  for (const p of SOCK_PROGRAMS) {
    let same = false;
    for (let i = 0; i < 5 && !same; i++) same = JSON.stringify(nb.cgroupQuery(dir, p.attachType)) === JSON.stringify(attachedIds(p.attachType));
    assert.ok(same, `${p.hook}: ${dir} and ${cgroupPath} list different programs`);
  }
});

test('open attaches the four programs at the root of the cgroup v2 hierarchy and pins each', (t) => {
  if (!requireRoot(t, 'attaches BPF programs to the cgroup v2 root')) return;
  sd = openService(PIN_A);
  assert.deepEqual(sd.cgroup, { path: cgroupPath, mounted: false });
  t.diagnostic(`attached at ${cgroupPath}`);
  assert.deepEqual(sd.repairs, []);
  assert.deepEqual(sd.programs.map((p) => [p.hook, p.pin, p.replaced]), SOCK_PROGRAMS.map((p) => [p.hook, `${PIN_A}/${p.pin}`, []]));
  for (const p of sd.programs) assert.ok(attachedIds(p.attachType).includes(p.progId), `${p.hook} ${p.progId} is not attached`);
  assert.deepEqual(
    ServiceDatapath.pinnedPrograms(PIN_A).map((p) => [p.hook, p.progId]),
    sd.programs.map((p) => [p.hook, p.progId]),
  );
  for (const m of ['mbr_lb4_svc', 'mbr_lb4_backend', 'mbr_lb4_rev_sk']) assert.ok(existsSync(`${PIN_A}/${m}`), m);
});

test('new TCP connections to a frontend spread over all three backends; getpeername shows the frontend', async (t) => {
  if (!requireRoot(t, 'sends traffic between network namespaces')) return;
  sd!.upsertService({ id: 1, frontend: WEB, backends: backendSpecs(backends) });
  assert.deepEqual(sd!.listServices(), [
    { id: 1, frontend: WEB, flags: 0, backends: backends.map((b, i) => ({ ip: b.ip, port: TCP_PORT, backendId: i + 1, slot: i + 1 })) },
  ]);
  const r = await ask<{ counts: Record<string, number>; peers: Record<string, number> }>({ op: 'spread', host: WEB.ip, port: WEB.port, n: 90 });
  t.diagnostic(`90 connections to ${WEB.ip}:${WEB.port}: ${JSON.stringify(r.counts)}`);
  assert.deepEqual(Object.keys(r.counts).sort(), backends.map((b) => b.ip));
  for (const [ip, n] of Object.entries(r.counts)) assert.ok(n >= 10, `${ip} got only ${n} of 90`);
  // Every socket shows the frontend as its peer, though it talks to a backend.
  assert.deepEqual(r.peers, { [`${WEB.ip}:${WEB.port}`]: 90 });
});

test('UDP to a frontend: the reply comes from the frontend address, unconnected (sendto) and connected', async (t) => {
  if (!requireRoot(t, 'sends traffic between network namespaces')) return;
  sd!.upsertService({ id: 2, frontend: DNS, backends: backendSpecs(backends, UDP_PORT) });
  type Udp = { replies: { text: string; from: string; fromPort: number }[]; error?: string; peer?: { address: string; port: number } };
  const u = await ask<Udp>({ op: 'udp', host: DNS.ip, port: DNS.port, n: 24 });
  assert.equal(u.error, undefined);
  assert.equal(u.replies.length, 24);
  for (const [i, r] of u.replies.entries()) {
    assert.deepEqual({ from: r.from, fromPort: r.fromPort }, { from: DNS.ip, fromPort: DNS.port }, `reply ${i}: ${r.text}`);
    assert.match(r.text, new RegExp(`^10\\.213\\.0\\.1[123] ping ${i}$`));
  }
  // Each datagram of an unconnected socket picks a backend: replies from several are all translated back.
  const used = new Set(u.replies.map((r) => r.text.split(' ')[0]));
  t.diagnostic(`24 datagrams answered by ${[...used].join(', ')}`);
  assert.ok(used.size >= 2, `only ${[...used].join(', ')} answered`);

  const c = await ask<Udp>({ op: 'udp', host: DNS.ip, port: DNS.port, n: 5, connected: true });
  assert.equal(c.error, undefined);
  assert.deepEqual(c.peer, { address: DNS.ip, family: 'IPv4', port: DNS.port });
  assert.deepEqual(new Set(c.replies.map((r) => `${r.from}:${r.fromPort}`)), new Set([`${DNS.ip}:${DNS.port}`]));
  // A connected socket keeps the backend connect() chose.
  assert.equal(new Set(c.replies.map((r) => r.text.split(' ')[0])).size, 1);
});

test('an established connection keeps its backend while the service changes; a removed backend gets no new ones', async (t) => {
  if (!requireRoot(t, 'sends traffic between network namespaces')) return;
  // Long-lived connections until every backend holds at least one.
  const held = new Map<string, string>();
  for (let i = 0; held.size < 8 || new Set(held.values()).size < 3; i++) {
    assert.ok(i < 60, `60 connections did not reach all three backends: ${JSON.stringify([...held])}`);
    const o = await ask<{ backend: string; peer: string }>({ op: 'open', tag: `c${i}`, host: WEB.ip, port: WEB.port });
    assert.equal(o.peer, WEB.ip);
    held.set(`c${i}`, o.backend);
  }
  const removed = backends[2]!.ip;
  // b3 leaves, and a backend on another port of b1 comes: both at once.
  sd!.upsertService({ id: 1, frontend: WEB, backends: [...backendSpecs(backends.slice(0, 2)), { ip: backends[0]!.ip, port: 8081 }] });
  assert.deepEqual(sd!.listServices().find((s) => s.frontend.port === WEB.port)!.backends.map((b) => `${b.ip}:${b.port}@${b.slot}`), [`${backends[0]!.ip}:8080@1`, `${backends[1]!.ip}:8080@2`, `${backends[0]!.ip}:8081@3`]);
  sd!.upsertService({ id: 1, frontend: WEB, backends: backendSpecs(backends.slice(0, 2)) });
  for (const [tag, backend] of held) {
    const r = await ask<{ reply: string }>({ op: 'say', tag, text: 'still there?' });
    assert.equal(r.reply, `${backend} still there?`, `${tag} (opened to ${backend})`);
  }
  t.diagnostic(`${held.size} established connections kept their backends (${[...held.values()].filter((b) => b === removed).length} on the removed ${removed})`);
  const r = await ask<{ counts: Record<string, number> }>({ op: 'spread', host: WEB.ip, port: WEB.port, n: 60 });
  assert.equal(r.counts[removed], undefined, `${removed} was removed but got ${r.counts[removed]} new connections`);
  assert.deepEqual(Object.keys(r.counts).sort(), [backends[0]!.ip, backends[1]!.ip]);
  for (const tag of held.keys()) await ask({ op: 'close', tag });
  sd!.upsertService({ id: 1, frontend: WEB, backends: backendSpecs(backends) });
});

test('a frontend without backends refuses at once with ECONNREFUSED, TCP and UDP', async (t) => {
  if (!requireRoot(t, 'sends traffic between network namespaces')) return;
  sd!.upsertService({ id: 3, frontend: EMPTY_TCP, backends: [] });
  sd!.upsertService({ id: 4, frontend: EMPTY_UDP, backends: [] });
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await ask<{ outcome: string; ms: number }>({ op: 'connect', host: EMPTY_TCP.ip, port: EMPTY_TCP.port });
    assert.equal(r.outcome, 'ECONNREFUSED');
    times.push(r.ms);
  }
  t.diagnostic(`connect() to ${EMPTY_TCP.ip}:${EMPTY_TCP.port} refused in ${times.map((m) => m.toFixed(2)).join(', ')} ms`);
  assert.ok(Math.max(...times) < 50, `refusal took ${Math.max(...times)} ms`);
  const u = await ask<{ error?: string; replies: unknown[] }>({ op: 'udp', host: EMPTY_UDP.ip, port: EMPTY_UDP.port, n: 1 });
  assert.equal(u.error, 'ECONNREFUSED');

  // A service shrunk to nothing refuses too, and takes connections again once it has a backend.
  sd!.upsertService({ id: 1, frontend: WEB, backends: [] });
  assert.equal((await ask<{ outcome: string }>({ op: 'connect', host: WEB.ip, port: WEB.port })).outcome, 'ECONNREFUSED');
  sd!.upsertService({ id: 1, frontend: WEB, backends: backendSpecs(backends) });
  assert.equal((await ask<{ outcome: string }>({ op: 'connect', host: WEB.ip, port: WEB.port })).outcome, 'connected');
});

test('an address that is not a frontend is untouched', async (t) => {
  if (!requireRoot(t, 'sends traffic between network namespaces')) return;
  type Connect = { outcome: string; peer?: string; peerPort?: number; backend?: string };
  // A backend's own address reaches that backend, and getpeername says so.
  const direct = await ask<Connect>({ op: 'connect', host: backends[1]!.ip, port: TCP_PORT });
  assert.deepEqual(direct, { ...direct, outcome: 'connected', peer: backends[1]!.ip, peerPort: TCP_PORT, backend: backends[1]!.ip });
  const fromTheHost = await ask<Connect>({ op: 'connect', host: backends[0]!.ip, port: TCP_PORT }, 20_000, hostDriver!);
  assert.deepEqual([fromTheHost.outcome, fromTheHost.peer, fromTheHost.backend], ['connected', backends[0]!.ip, backends[0]!.ip]);
  // The frontend from the host: translated like from a pod (the programs run for every process).
  assert.equal(await fromHost(WEB.ip, WEB.port), 'connected');
  // Another port of a frontend's address, an address of the service CIDR without a frontend,
  // and the UDP frontend's address and port over TCP: routing decides (the rail: unreachable).
  for (const [host, port] of [[WEB.ip, 81], ['10.217.0.99', 80], [DNS.ip, DNS.port]] as const) {
    assert.equal(await fromHost(host, port), 'EHOSTUNREACH', `${host}:${port}`);
  }
  // A deleted frontend is no frontend.
  sd!.upsertService({ id: 5, frontend: { ip: '10.217.0.12', port: 80, protocol: 'TCP' }, backends: backendSpecs(backends) });
  assert.equal((await ask<Connect>({ op: 'connect', host: '10.217.0.12', port: 80 })).outcome, 'connected');
  assert.equal(sd!.deleteService({ ip: '10.217.0.12', port: 80, protocol: 'TCP' }), true);
  assert.equal(sd!.deleteService({ ip: '10.217.0.12', port: 80, protocol: 'TCP' }), false);
  assert.equal(await fromHost('10.217.0.12', 80), 'EHOSTUNREACH');
});

test('a restarted ServiceDatapath keeps translating without a gap and leaves exactly one set of programs attached', async (t) => {
  if (!requireRoot(t, 'attaches BPF programs to the cgroup v2 root and sends traffic')) return;
  const services = sd!.listServices();
  const oldIds = sd!.programs.map((p) => p.progId);
  // Connections back to back from the client while the agent restarts twice.
  const hammering = ask<{ ok: number; failures: Record<string, number> }>({ op: 'hammer', host: WEB.ip, port: WEB.port, ms: 2500 }, 30_000);
  await new Promise((r) => setTimeout(r, 400));
  sd!.close();
  assert.throws(() => sd!.listServices(), { code: 'MEMBRANE_E_USAGE' });
  const t0 = process.hrtime.bigint();
  const second = ServiceDatapath.open({ pinRoot: PIN_A });
  const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
  remember(second);
  await new Promise((r) => setTimeout(r, 400));
  const third = ServiceDatapath.open({ pinRoot: PIN_A });
  remember(third);
  second.close();
  const h = await hammering;
  t.diagnostic(`during two restarts (open took ${openMs.toFixed(1)} ms): ${h.ok} connections made, failures ${JSON.stringify(h.failures)}`);
  assert.deepEqual(h.failures, {});
  assert.ok(h.ok > 100, `only ${h.ok} connections in 2.5 s`);

  assert.deepEqual(second.programs.map((p) => p.replaced), oldIds.map((id) => [id]));
  assert.deepEqual(third.programs.map((p) => p.replaced), second.programs.map((p) => [p.progId]));
  for (const p of third.programs) {
    const attached = attachedIds(p.attachType).filter((id) => ours.has(id));
    assert.deepEqual(attached, [p.progId], `${p.hook}: exactly the newest program of this pin root is attached`);
  }
  assert.deepEqual(ServiceDatapath.pinnedPrograms(PIN_A).map((p) => p.progId), third.programs.map((p) => p.progId));
  assert.deepEqual(third.repairs, []);
  assert.deepEqual(third.listServices(), services);
  // The new instance carries on where the old one stopped: same ids for the same backends.
  third.upsertService({ id: 1, frontend: WEB, backends: backendSpecs(backends) });
  assert.deepEqual(third.listServices(), services);
  sd = third;
  root.add('close the restarted socket load balancer', () => third.close());
});

test('a swap cut short after its attach (a crash) is finished by the next open: one program per hook again', (t) => {
  if (!requireRoot(t, 'attaches BPF programs to the cgroup v2 root')) return;
  const nb = native();
  // What a crash between step 2 (attach) and step 4 (rename) leaves: a second program of ours, pinned at _next.
  const obj = nb.openObject(SOCK_OBJECT, { pinRoot: PIN_A });
  let crashed: number;
  try {
    nb.loadObject(obj, {});
    const fd = nb.objectPrograms(obj).find((p) => p.name === 'sock4_connect')!.fd;
    crashed = nb.progInfo(fd).id;
    nb.objPin(fd, `${PIN_A}/mbr_sock_connect4_next`);
    nb.cgroupAttach(fd, cgroupPath, BPF_CGROUP_INET4_CONNECT);
    ours.add(crashed);
  } finally {
    nb.closeObject(obj);
  }
  const before = sd!.programs.find((p) => p.hook === 'connect4')!.progId;
  assert.deepEqual(attachedIds(BPF_CGROUP_INET4_CONNECT).filter((id) => ours.has(id)), [before, crashed]);

  const next = ServiceDatapath.open({ pinRoot: PIN_A });
  remember(next);
  root.add('close the socket load balancer opened after the crash', () => next.close());
  sd!.close();
  sd = next;
  const connect4 = next.programs.find((p) => p.hook === 'connect4')!;
  assert.deepEqual([...connect4.replaced].sort((a, b) => a - b), [before, crashed].sort((a, b) => a - b));
  for (const p of next.programs) assert.deepEqual(attachedIds(p.attachType).filter((id) => ours.has(id)), [p.progId], p.hook);
  assert.deepEqual(ServiceDatapath.pinnedPrograms(PIN_A).map((p) => p.pin), SOCK_PROGRAMS.map((p) => `${PIN_A}/${p.pin}`));
});

test('several agents: each translates its own frontends; tearing one down leaves the other in force', async (t) => {
  if (!requireRoot(t, 'attaches BPF programs to the cgroup v2 root and sends traffic')) return;
  const b = openService(PIN_B);
  b.upsertService({ id: 1, frontend: OTHER_AGENT, backends: backendSpecs([backends[1]!]) });
  assert.deepEqual(b.listServices().map((s) => s.frontend), [OTHER_AGENT]);
  for (const p of SOCK_PROGRAMS) assert.equal(attachedIds(p.attachType).filter((id) => ours.has(id)).length, 2, `${p.hook}: both agents' programs`);

  const toB = await ask<{ outcome: string; backend: string; peer: string }>({ op: 'connect', host: OTHER_AGENT.ip, port: OTHER_AGENT.port });
  assert.deepEqual([toB.outcome, toB.backend, toB.peer], ['connected', backends[1]!.ip, OTHER_AGENT.ip]);
  const toA = await ask<{ counts: Record<string, number> }>({ op: 'spread', host: WEB.ip, port: WEB.port, n: 30 });
  assert.equal(Object.keys(toA.counts).length, 3);

  // The same frontend in both: whichever program runs first translates, the other sees a backend.
  sd!.upsertService({ id: 9, frontend: SHARED, backends: backendSpecs([backends[0]!]) });
  b.upsertService({ id: 9, frontend: SHARED, backends: backendSpecs([backends[2]!]) });
  const shared = await ask<{ counts: Record<string, number>; peers: Record<string, number> }>({ op: 'spread', host: SHARED.ip, port: SHARED.port, n: 10 });
  assert.deepEqual(shared.counts, { [backends[0]!.ip]: 10 }, 'the first agent attached runs first');
  assert.deepEqual(shared.peers, { [`${SHARED.ip}:${SHARED.port}`]: 10 });
  sd!.deleteService(SHARED);

  b.close();
  const report = ServiceDatapath.teardown(PIN_B);
  assert.equal(report.detached.length, 4);
  assert.equal(existsSync(PIN_B), false);
  for (const p of SOCK_PROGRAMS) assert.deepEqual(attachedIds(p.attachType).filter((id) => ours.has(id)), sd!.programs.filter((q) => q.hook === p.hook).map((q) => q.progId));
  assert.equal(await fromHost(OTHER_AGENT.ip, OTHER_AGENT.port), 'EHOSTUNREACH');
  assert.equal((await ask<{ outcome: string }>({ op: 'connect', host: WEB.ip, port: WEB.port })).outcome, 'connected');
});

test('Datapath.unpinAll of a pin root holding the socket load balancer detaches its programs first', (t) => {
  if (!requireRoot(t, 'attaches and detaches BPF programs at the cgroup v2 root')) return;
  const pinRoot = `${PIN_B}-unpin`;
  const c = openService(pinRoot);
  c.close();
  for (const p of c.programs) assert.ok(attachedIds(p.attachType).includes(p.progId));
  Datapath.unpinAll(pinRoot);
  assert.equal(existsSync(pinRoot), false);
  for (const p of c.programs) assert.ok(!attachedIds(p.attachType).includes(p.progId), `${p.hook} ${p.progId} is still attached`);
});

test('teardown detaches every program of the pin root and removes its pins; again, it finds nothing', (t) => {
  if (!requireRoot(t, 'detaches BPF programs from the cgroup v2 root')) return;
  sd!.close();
  const report = ServiceDatapath.teardown(PIN_A);
  assert.deepEqual(report.detached.sort(), sd!.programs.map((p) => p.progId).sort());
  assert.equal(report.unpinned.length, 7);
  assert.equal(existsSync(PIN_A), false);
  assert.deepEqual(ServiceDatapath.teardown(PIN_A), { cgroup: { path: cgroupPath, mounted: false }, detached: [], unpinned: [] });
});

test('leaves nothing of this run behind: programs, pins, netns, links, rails, processes', async (t) => {
  if (!requireRoot(t, 'inspects cgroup programs, pins, network namespaces and links')) return;
  await stopLineProcesses();
  await root.run();
  const leaks: string[] = [];
  for (const p of SOCK_PROGRAMS) for (const id of attachedIds(p.attachType)) if (ours.has(id)) leaks.push(`program ${id} at ${p.hook}`);
  for (const pin of [PIN_A, PIN_B, `${PIN_A}-raw`, `${PIN_B}-unpin`]) if (existsSync(pin)) leaks.push(`pin root ${pin}`);
  for (const n of await ipJson<{ name: string }[]>(['netns', 'list'], 'netns')) if (n.name.startsWith(NAMES.netnsPrefix)) leaks.push(`netns ${n.name}`);
  for (const l of await ipJson<{ ifname: string }[]>(['link', 'show'], 'links')) if (l.ifname.startsWith(NAMES.linkPrefix)) leaks.push(`link ${l.ifname}`);
  for (const r of await unreachableRoutes(safety!.installed)) leaks.push(`safety route unreachable ${r}`);
  for (const pid of runningLineProcesses()) leaks.push(`process ${pid}`);
  for (const m of readFileSync('/proc/self/mounts', 'utf8').split('\n')) if (m.includes(`mbr-test-${process.pid}`)) leaks.push(`mount ${m}`);
  assert.deepEqual(leaks, []);
  t.diagnostic(`${ours.size} programs attached and detached by this run`);
});
