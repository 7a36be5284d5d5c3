// The L7 redirect of bpf_lxc.c (bpf/lib/proxy.h) in the kernel, through
// BPF_PROG_TEST_RUN: for an L7 entry in each direction the verdict, the
// mark, the rewritten bytes and the event; the proxy's own packets
// (MBR_MARK_FROM_PROXY) never redirected, their entries flagged
// PROXY_UPSTREAM and the replies marked; from_hairpin; and the reset that
// refuses a connection no proxy listens for. Real traffic through all of it:
// proxy-redirect.privileged.test.ts.
//
// A test run is not at tc ingress, so bpf_sk_assign refuses there: a run
// that finds the listener reports PROXY_SET_FAILED (179) where real traffic
// is assigned; one that finds none reports PROXY_LOOKUP_FAILED (178).
import { strict as assert } from 'node:assert';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CTFlags, Direction, DropReason, EndpointFlags, EventType, MARK_FROM_PROXY, MARK_TO_PROXY, ipv4ToNumber, proxyMark } from './codecs.js';
import type { PolicyMapWrite, ProxyConfig } from './datapath.js';
import { TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT } from './native.js';
import { createSocket } from 'node:dgram';
import { listenTransparent } from './proxy-sockets.js';
import { EP, OTHER, PEER, assertEvent, counter, expectedEvent, lxcSuite, seedLxc as seed, syn } from './test/lxc-fixture.js';
import type { LxcHarness } from './test/lxc-harness.js';
import { LO_IFINDEX, leftoverPins } from './test/lxc-harness.js';
import { TCP, buildPacket, checksum, pseudo, replyTo, type PacketSpec } from './test/packets.js';

const PIN_PREFIX = 'mbr-test-lxcp-';
const { privileged, open: openLxc } = lxcSuite(PIN_PREFIX);
const { INGRESS, EGRESS } = Direction;
const F = EndpointFlags;
const ENFORCED = F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY;

/** A port nothing listens on (the proxy is down). */
const DOWN = 15901;
const ROUTER: ProxyConfig = { routerIfindex: 4242, routerMac: '02:00:00:00:0a:01', listenerIP: '127.0.0.1' };
/** MSS 1460, SACK permitted, timestamps, NOP, window scale 7: what Linux puts on a SYN. */
const SYN_OPTIONS = Buffer.from('020405b40402080a0000000100000000' + '01030307', 'hex');

function entry(w: Pick<PolicyMapWrite, 'direction' | 'identity' | 'cookie'> & Partial<PolicyMapWrite>): PolicyMapWrite {
  const proto = w.proto ?? 0;
  return { proto, port: 0, prefix: proto === 0 ? 0 : w.port !== undefined ? 24 : 8, deny: false, l7: 0, proxyPort: 0, ...w };
}

/** Egress 80 and ingress 8080 through the proxy on `port`; egress 81 and ingress 8081 L3/L4 only; UDP 53 both ways to the DNS proxy. */
function l7Policy(port: number): PolicyMapWrite[] {
  return [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, l7: 1, proxyPort: port, cookie: 1 }),
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 81, cookie: 2 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 8080, l7: 1, proxyPort: port, cookie: 3 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 8081, cookie: 4 }),
    entry({ direction: 'egress', identity: PEER.identity, proto: 17, port: 53, l7: 2, proxyPort: port, cookie: 5 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 17, port: 53, l7: 2, proxyPort: port, cookie: 6 }),
  ];
}

/** The RST|ACK the programs make of a SYN: every field and both checksums. */
function assertReset(out: Buffer, synPacket: PacketSpec, o: { macSwapped: boolean; input?: Buffer }): void {
  const inPkt = o.input ?? buildPacket(synPacket);
  assert.equal(out.length, 54, 'Ethernet, IPv4 and TCP headers, no options');
  const mac = (b: Buffer, at: number) => b.subarray(at, at + 6).toString('hex');
  if (o.macSwapped) assert.deepEqual([mac(out, 0), mac(out, 6)], [mac(inPkt, 6), mac(inPkt, 0)], 'MACs swapped');
  else assert.deepEqual([mac(out, 0), mac(out, 6)], [mac(inPkt, 0), mac(inPkt, 6)], 'MACs as they were');
  const ip = out.subarray(14, 34);
  const th = out.subarray(34, 54);
  assert.equal(ip.readUInt16BE(2), 40, 'IP total length');
  assert.equal(ip[8], 64, 'a fresh TTL');
  assert.deepEqual([ip.readUInt32BE(12), ip.readUInt32BE(16)], [ipv4ToNumber(synPacket.dst), ipv4ToNumber(synPacket.src)], 'addresses swapped');
  assert.equal(checksum(ip), 0, 'IP header checksum');
  assert.deepEqual([th.readUInt16BE(0), th.readUInt16BE(2)], [synPacket.dport, synPacket.sport], 'ports swapped');
  assert.equal(th.readUInt32BE(4), 0, 'seq 0');
  assert.equal(th.readUInt32BE(8), 1001, "ack = the SYN's seq (1000) + 1");
  assert.deepEqual([th[12]! >> 4, th[13]], [5, TCP.RST | TCP.ACK]);
  assert.equal(checksum(th, pseudo(ipv4ToNumber(synPacket.dst), ipv4ToNumber(synPacket.src), 6, 20)), 0, 'TCP checksum');
}

function withProxy(h: LxcHarness, port: number, config: ProxyConfig = ROUTER): void {
  seed(h, ENFORCED, l7Policy(port));
  h.dp.setProxyConfig(config);
}

test('the proxy config: set, read back, kept by setConfig, cleared; bad values refused before anything is written', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  assert.equal(h.dp.proxyConfig(), undefined, 'a fresh datapath only marks');
  h.dp.setProxyConfig(ROUTER);
  assert.deepEqual(h.dp.proxyConfig(), ROUTER);
  h.dp.setConfig({ flags: 0, wakeup_bytes: 4096 });
  assert.deepEqual(h.dp.proxyConfig(), ROUTER, 'setConfig leaves the proxy config alone');
  assert.equal(h.dp.config().wakeup_bytes, 4096);
  for (const bad of [{ ...ROUTER, routerIfindex: 0 }, { ...ROUTER, routerMac: '02:00:00:00:0a' }, { ...ROUTER, listenerIP: '127.0.0' }, { ...ROUTER, listenerIP: '0.0.0.0' }]) {
    assert.throws(() => h.dp.setProxyConfig(bad), (e: Error & { code?: string }) => e.code === 'MEMBRANE_E_USAGE' && /the proxy config/.test(e.message), JSON.stringify(bad));
  }
  assert.deepEqual(h.dp.proxyConfig(), ROUTER);
  h.dp.clearProxyConfig();
  assert.equal(h.dp.proxyConfig(), undefined);
  assert.equal(h.dp.config().wakeup_bytes, 4096);
});

test('egress L7, the proxy down: the SYN is turned into a reset back to the pod (TC_ACT_REDIRECT), a drop 178; later packets are only marked', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  for (const [i, tcpOptions] of [undefined, SYN_OPTIONS].entries()) {
    const p: PacketSpec = { ...syn(EP.ip, PEER.ip, 40000 + i, 80), ...(tcpOptions ? { tcpOptions } : {}) };
    const r = h.run('from_container', p, { ctx: { mark: 0 } });
    assert.equal(r.retval, TC_ACT_REDIRECT, 'out again through the pod\'s own veth');
    assert.equal(r.mark, 0);
    assertReset(r.dataOut, p, { macSwapped: true });
    assertEvent(r, expectedEvent(p, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.PROXY_LOOKUP_FAILED, cookie: 1, l7: 1, proxyPort: DOWN }));
    // The connection is known, so the reset passes to_container as its reply.
    const ct = h.dp.ctEntries().find((e) => e.key.sport === 40000 + i)!;
    assert.deepEqual([ct.value.l7, ct.value.proxy_port, ct.value.flags & CTFlags.PROXY_UPSTREAM], [1, DOWN, 0]);
    const rst: PacketSpec = { ...replyTo(p, TCP.RST | TCP.ACK) };
    delete rst.tcpOptions;
    assert.equal(h.run('to_container', rst).retval, TC_ACT_OK);
  }
  assert.equal(counter(h, DropReason.PROXY_LOOKUP_FAILED, EGRESS), 2n);
  // A later packet of a known L7 connection: marked, nothing else (TCP finds the proxy's socket).
  const ack = h.run('from_container', { ...syn(EP.ip, PEER.ip, 40000, 80), flags: TCP.ACK }, { ctx: { mark: 0 } });
  assert.deepEqual([ack.retval, ack.mark, ack.events], [TC_ACT_OK, proxyMark(DOWN), []]);
  // L3/L4 only: untouched.
  const plain = h.run('from_container', syn(EP.ip, PEER.ip, 40002, 81), { ctx: { mark: 0 } });
  assert.deepEqual([plain.retval, plain.mark, plain.events[0]?.type], [TC_ACT_OK, 0, EventType.TRACE]);
});

test('egress L7 with a listener: it is found (179 here, where bpf_sk_assign cannot run; traffic is assigned); without a proxy config only marked', async (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  const server = createServer();
  t.after(() => server.close());
  await listenTransparent(server, { address: '127.0.0.1', port: 0 });
  const port = (server.address() as AddressInfo).port;
  seed(h, ENFORCED, l7Policy(port));
  // Not configured yet: marked only, as before there was a proxy.
  const before = h.run('from_container', syn(EP.ip, PEER.ip, 40000, 80), { ctx: { mark: 0 } });
  assert.deepEqual([before.retval, before.mark, before.events[0]?.type], [TC_ACT_OK, proxyMark(port), EventType.TRACE]);
  h.clearConntrack();

  h.dp.setProxyConfig(ROUTER);
  const p = syn(EP.ip, PEER.ip, 40001, 80);
  const r = h.run('from_container', p, { ctx: { mark: 0 } });
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.equal(r.events[0]?.drop_reason, DropReason.PROXY_SET_FAILED, 'the listener was found');
  assertReset(r.dataOut, p, { macSwapped: true });
  // A listener on another address is not the proxy's.
  h.dp.setProxyConfig({ ...ROUTER, listenerIP: '127.0.0.2' });
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40002, 80), { ctx: { mark: 0 } }).events[0]?.drop_reason, DropReason.PROXY_LOOKUP_FAILED);
});

test('ingress L7: marked, the destination MAC rewritten to the router link\'s and redirected to its ingress (every packet of the connection)', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  const p = syn(PEER.ip, EP.ip, 41000, 8080);
  const r = h.run('to_container', p, { ctx: { mark: 0 } });
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.equal(r.mark, proxyMark(DOWN));
  const inPkt = buildPacket(p);
  assert.equal(r.dataOut.subarray(0, 6).toString('hex'), ROUTER.routerMac.replace(/:/g, ''));
  assert.deepEqual(r.dataOut.subarray(6), inPkt.subarray(6), 'nothing else changed');
  assertEvent(r, expectedEvent(p, { type: EventType.TRACE, direction: INGRESS, peer: PEER.identity, cookie: 3, l7: 1, proxyPort: DOWN }));
  const [ct] = h.dp.ctEntries();
  assert.deepEqual([ct?.key.direction, ct?.value.peer_identity, ct?.value.cookie, ct?.value.l7, ct?.value.proxy_port], [INGRESS, PEER.identity, 3, 1, DOWN]);
  const ack = h.run('to_container', { ...p, flags: TCP.ACK }, { ctx: { mark: 0 } });
  assert.deepEqual([ack.retval, ack.mark, ack.events], [TC_ACT_REDIRECT, proxyMark(DOWN), []]);
  // L3/L4 only: delivered to the pod as before.
  const plain = h.run('to_container', syn(PEER.ip, EP.ip, 41001, 8081), { ctx: { mark: 0 } });
  assert.deepEqual([plain.retval, plain.mark], [TC_ACT_OK, 0]);
});

test('UDP L7 (DNS) on egress: every datagram goes to the proxy\'s UDP socket; none there is a drop 178 (never let through); ingress is only marked', async (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  const q = { src: EP.ip, dst: PEER.ip, proto: 'udp', sport: 5353, dport: 53 } as const;
  for (let i = 0; i < 2; i++) {
    const out = h.run('from_container', q, { ctx: { mark: 0 } });
    assert.equal(out.retval, TC_ACT_SHOT, `datagram ${i + 1}`);
    assertEvent(out, expectedEvent(q, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.PROXY_LOOKUP_FAILED, cookie: 5, l7: 2, proxyPort: DOWN }));
  }
  const inb = h.run('to_container', { src: PEER.ip, dst: EP.ip, proto: 'udp', sport: 5353, dport: 53 }, { ctx: { mark: 0 } });
  assert.deepEqual([inb.retval, inb.mark], [TC_ACT_OK, proxyMark(DOWN)]);

  // A UDP socket on the proxy's address and port is found (179 here, where bpf_sk_assign cannot run).
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  seed(h, ENFORCED, l7Policy(sock.address().port));
  const found = h.run('from_container', { ...q, sport: 5354 }, { ctx: { mark: 0 } });
  assert.deepEqual([found.retval, found.events[0]?.drop_reason], [TC_ACT_SHOT, DropReason.PROXY_SET_FAILED]);
});

test('the proxy\'s own packets (FROM_PROXY) are judged by policy, never redirected; their entries flagged PROXY_UPSTREAM, replies marked TO_PROXY', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  // The proxy's upstream to the pod's L7 port, from the client's address.
  const up = syn(PEER.ip, EP.ip, 45000, 8080);
  const r = h.run('to_container', up, { ctx: { mark: MARK_FROM_PROXY } });
  assert.deepEqual([r.retval, r.mark], [TC_ACT_OK, MARK_FROM_PROXY], 'delivered to the pod, not hairpinned');
  assertEvent(r, expectedEvent(up, { type: EventType.TRACE, direction: INGRESS, peer: PEER.identity, cookie: 3, l7: 1, proxyPort: DOWN }));
  const entry = h.dp.ctEntries().find((e) => e.key.sport === 45000)!;
  assert.equal(entry.value.flags & CTFlags.PROXY_UPSTREAM, CTFlags.PROXY_UPSTREAM);
  // Its reply leaves the pod marked for local delivery (to the proxy's socket bound to the client's address).
  const reply = h.run('from_container', replyTo(up), { ctx: { mark: 0 } });
  assert.deepEqual([reply.retval, reply.mark, reply.events], [TC_ACT_OK, MARK_TO_PROXY, []]);
  const later = h.run('to_container', { ...up, flags: TCP.ACK }, { ctx: { mark: MARK_FROM_PROXY } });
  assert.deepEqual([later.retval, later.mark], [TC_ACT_OK, MARK_FROM_PROXY]);
  // The reply of an ordinary connection is not marked.
  assert.equal(h.run('to_container', syn(PEER.ip, EP.ip, 45001, 8081), { ctx: { mark: 0 } }).retval, TC_ACT_OK);
  assert.equal(h.run('from_container', replyTo(syn(PEER.ip, EP.ip, 45001, 8081)), { ctx: { mark: 0 } }).mark, 0);
  // Still judged: a port the policy closes is closed to the proxy too.
  const closed = syn(PEER.ip, EP.ip, 45002, 9999);
  const d = h.run('to_container', closed, { ctx: { mark: MARK_FROM_PROXY } });
  assert.equal(d.retval, TC_ACT_SHOT);
  assertEvent(d, expectedEvent(closed, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  // The other program alike: from_container never redirects FROM_PROXY either.
  const outUp = h.run('from_container', syn(EP.ip, PEER.ip, 46000, 80), { ctx: { mark: MARK_FROM_PROXY } });
  assert.deepEqual([outUp.retval, outUp.mark], [TC_ACT_OK, MARK_FROM_PROXY]);
  assert.equal(h.dp.ctEntries().find((e) => e.key.sport === 46000)!.value.flags & CTFlags.PROXY_UPSTREAM, CTFlags.PROXY_UPSTREAM);
});

test('the proxy\'s upstream on the tuple of the connection it took over (its port reused): the entry is flagged, replies go to the proxy', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  const p = syn(PEER.ip, EP.ip, 47000, 8080);
  assert.equal(h.run('to_container', p, { ctx: { mark: 0 } }).retval, TC_ACT_REDIRECT);
  const up = h.run('to_container', p, { ctx: { mark: MARK_FROM_PROXY } });
  assert.deepEqual([up.retval, up.mark], [TC_ACT_OK, MARK_FROM_PROXY]);
  assert.equal(h.dp.ctEntries()[0]!.value.flags & CTFlags.PROXY_UPSTREAM, CTFlags.PROXY_UPSTREAM);
  assert.equal(h.run('from_container', replyTo(p), { ctx: { mark: 0 } }).mark, MARK_TO_PROXY);
});

test('from_hairpin: unmarked and later packets pass as they are; a SYN nobody listens for becomes a reset to the client, a drop 178 of the destination', async (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  const run = (p: PacketSpec | Buffer, mark: number) => {
    h.drain();
    const data = Buffer.isBuffer(p) ? p : buildPacket(p);
    const layout = h.dp.nb.skBuffLayout;
    const ctxIn = Buffer.alloc(layout.size);
    ctxIn.writeUInt32LE(mark, layout.offsets.mark);
    ctxIn.writeUInt32LE(LO_IFINDEX, layout.offsets.ifindex);
    const r = h.dp.nb.progTestRun(h.dp.progs.fromHairpin, data, { ctxIn });
    return { retval: r.retval, dataOut: r.dataOut, mark: r.ctxOut!.readUInt32LE(layout.offsets.mark), events: h.drain() };
  };
  // The SYN as to_container hairpinned it: its entry (cookie 3) recorded there.
  const p = syn(PEER.ip, EP.ip, 41000, 8080);
  const sent = h.run('to_container', p, { ctx: { mark: 0 } });
  assert.equal(sent.retval, TC_ACT_REDIRECT);

  const unmarked = run(p, 0);
  assert.deepEqual([unmarked.retval, unmarked.mark, unmarked.events, unmarked.dataOut.equals(buildPacket(p))], [TC_ACT_OK, 0, [], true]);
  const ack = run({ ...p, flags: TCP.ACK }, proxyMark(DOWN));
  assert.deepEqual([ack.retval, ack.mark, ack.events], [TC_ACT_OK, proxyMark(DOWN), []]);

  const r = run(sent.dataOut, proxyMark(DOWN));
  assert.equal(r.retval, TC_ACT_OK, 'the host forwards the reset');
  assert.equal(r.mark, 0, 'unmarked: routed like any packet between pods');
  assertReset(r.dataOut, p, { macSwapped: false, input: sent.dataOut });
  assert.equal(r.events.length, 1);
  const { ts_ns: _ts, ...ev } = r.events[0]!;
  assert.deepEqual(ev, { ...expectedEvent(p, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.PROXY_LOOKUP_FAILED, cookie: 3, l7: 1, proxyPort: DOWN }), ifindex: LO_IFINDEX });
  assert.equal(counter(h, DropReason.PROXY_LOOKUP_FAILED, INGRESS), 1n);

  // With a listener: found (179 under a test run, assigned with real traffic).
  const server = createServer();
  t.after(() => server.close());
  await listenTransparent(server, { address: '127.0.0.1', port: 0 });
  const port = (server.address() as AddressInfo).port;
  assert.equal(run(p, proxyMark(port)).events[0]?.drop_reason, DropReason.PROXY_SET_FAILED);
  // No proxy configured any more: a marked SYN is refused all the same.
  h.dp.clearProxyConfig();
  assert.equal(run(p, proxyMark(port)).events[0]?.drop_reason, DropReason.PROXY_LOOKUP_FAILED);
});

test("a local destination's ingress L7 entry: the client's veth takes the connection (from_container), its egress entry flagged PEER_L7 with the destination's parser and port", (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN, ROUTER);
  h.dp.replacePolicy(EP.id, [...l7Policy(DOWN), entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 9090, cookie: 7 }), entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 9091, cookie: 8 })]);
  // PEER is a local endpoint now: its ingress sends 9090 from EP through the proxy, 9091 at L3/L4.
  h.dp.ipcacheUpsert(`${PEER.ip}/32`, PEER.identity, 43);
  h.dp.replacePolicy(43, [
    entry({ direction: 'ingress', identity: EP.identity, proto: 6, port: 9090, l7: 1, proxyPort: DOWN, cookie: 30 }),
    entry({ direction: 'ingress', identity: EP.identity, proto: 6, port: 9091, cookie: 31 }),
  ]);
  const p = syn(EP.ip, PEER.ip, 42000, 9090);
  const r = h.run('from_container', p, { ctx: { mark: 0 } });
  assert.equal(r.retval, TC_ACT_REDIRECT, 'no proxy listens: the reset goes back to the client');
  assertReset(r.dataOut, p, { macSwapped: true });
  assertEvent(r, expectedEvent(p, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.PROXY_LOOKUP_FAILED, cookie: 7, l7: 1, proxyPort: DOWN }));
  const ct = h.dp.ctEntries().find((e) => e.key.sport === 42000)!;
  assert.deepEqual([ct.key.direction, ct.value.cookie, ct.value.l7, ct.value.proxy_port, ct.value.flags & CTFlags.PEER_L7], [EGRESS, 7, 1, DOWN, CTFlags.PEER_L7]);
  const ack = h.run('from_container', { ...p, flags: TCP.ACK }, { ctx: { mark: 0 } });
  assert.deepEqual([ack.retval, ack.mark], [TC_ACT_OK, proxyMark(DOWN)], 'later packets marked for local delivery');
  // The destination's L3/L4 entry: nothing for the proxy, to_container judges.
  const plain = h.run('from_container', syn(EP.ip, PEER.ip, 42001, 9091), { ctx: { mark: 0 } });
  assert.deepEqual([plain.retval, plain.mark], [TC_ACT_OK, 0]);
  const pc = h.dp.ctEntries().find((e) => e.key.sport === 42001)!;
  assert.deepEqual([pc.value.l7, pc.value.flags & CTFlags.PEER_L7], [0, 0]);
  // The proxy's own upstream to the same port is never taken again.
  const up = h.run('from_container', syn(EP.ip, PEER.ip, 42002, 9090), { ctx: { mark: MARK_FROM_PROXY } });
  assert.deepEqual([up.retval, up.mark], [TC_ACT_OK, MARK_FROM_PROXY]);
  // A destination that denies: not redirected (to_container drops it).
  h.dp.replacePolicy(43, [entry({ direction: 'ingress', identity: EP.identity, proto: 6, port: 9090, deny: true, cookie: 32 })]);
  const denied = h.run('from_container', syn(EP.ip, PEER.ip, 42003, 9090), { ctx: { mark: 0 } });
  assert.deepEqual([denied.retval, denied.mark], [TC_ACT_OK, 0]);
});

test('from_outside: a SYN from outside to an ingress L7 port is taken to the proxy (refused with a reset while none listens), later packets marked; everything else left to to_container', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  withProxy(h, DOWN);
  const p = syn(PEER.ip, EP.ip, 43000, 8080);
  const r = h.run('from_outside', p, { ctx: { mark: 0 } });
  assert.equal(r.retval, TC_ACT_REDIRECT, 'the reset goes back out to the outside host');
  assertReset(r.dataOut, p, { macSwapped: true });
  assertEvent(r, expectedEvent(p, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.PROXY_LOOKUP_FAILED, cookie: 3, l7: 1, proxyPort: DOWN }));
  const ct = h.dp.ctEntries().find((e) => e.key.sport === 43000)!;
  assert.deepEqual([ct.key.direction, ct.key.ep_id, ct.value.cookie, ct.value.l7, ct.value.proxy_port], [INGRESS, EP.id, 3, 1, DOWN]);
  const ack = h.run('from_outside', { ...p, flags: TCP.ACK }, { ctx: { mark: 0 } });
  assert.deepEqual([ack.retval, ack.mark, ack.events], [TC_ACT_OK, proxyMark(DOWN), []]);
  assert.equal(h.dp.ctEntries().find((e) => e.key.sport === 43000)!.value.packets_fwd, 2, 'accounted here: to_container never sees it');
  for (const other of [syn(PEER.ip, EP.ip, 43001, 8081), { ...syn(PEER.ip, EP.ip, 43002, 8081), flags: TCP.ACK }, syn(PEER.ip, OTHER.ip, 43003, 8080), { ...syn(PEER.ip, EP.ip, 43004, 53), proto: 'udp' as const }]) {
    const o = h.run('from_outside', other, { ctx: { mark: 0 } });
    assert.deepEqual([o.retval, o.mark, o.events], [TC_ACT_OK, 0, []], JSON.stringify(other));
  }
  assert.equal(h.dp.ctEntries().filter((e) => e.key.sport !== 43000).length, 0, 'no entry made for what to_container judges');
});

test('leaves no pin root of these tests behind', (t) => {
  if (!privileged(t)) return;
  assert.deepEqual(leftoverPins(PIN_PREFIX), []);
});
