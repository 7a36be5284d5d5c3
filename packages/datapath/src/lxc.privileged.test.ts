// The endpoint programs of bpf_lxc.c in the kernel, through BPF_PROG_TEST_RUN:
// packets built in TypeScript, maps seeded through the Datapath, and for each
// run the verdict, the event from the ring buffer and the counters. The skb
// of a test run sits on lo, so the endpoint under test is seeded at ifindex 1.
// Every test loads the object afresh with its maps pinned under this run's
// pin root and unpins them when it ends, pass or fail; the last test checks
// that no pin root of these tests is left.
//
// The policy-map entries here are written by hand, one lookup rule at a
// time; the entries policyMapWrites derives from a MapState (deny blocks,
// port ranges, the meta entry) are judged in the kernel by
// packages/endpoint/src/policy-writes.privileged.test.ts.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DropReason, Direction, EndpointFlags, EventType, MARK_TO_PROXY, METRICS_LOST_EVENTS, ctKeyCodec, ctValueCodec, eventCodec, ipv4ToNumber } from './codecs.js';
import type { PolicyMapWrite } from './datapath.js';
import { TC_ACT_OK, TC_ACT_SHOT } from './native.js';
import { EP, OTHER, PEER, WORLD, WORLD_IP, assertEvent, counter, expectedEvent, lxcSuite, seedLxc as seed, syn } from './test/lxc-fixture.js';
import { LO_IFINDEX, leftoverPins } from './test/lxc-harness.js';
import { TCP, buildPacket, replyTo, type PacketSpec } from './test/packets.js';

const PIN_PREFIX = 'mbr-test-lxc-';
const { pinRoot: PIN_ROOT, privileged, open: openLxc } = lxcSuite(PIN_PREFIX);

const { INGRESS, EGRESS } = Direction;
const F = EndpointFlags;

/** One policy-map entry: every protocol unless proto is given, every port of it unless port is given. */
function entry(w: Pick<PolicyMapWrite, 'direction' | 'identity' | 'cookie'> & Partial<PolicyMapWrite>): PolicyMapWrite {
  const proto = w.proto ?? 0;
  return { proto, port: 0, prefix: proto === 0 ? 0 : w.port !== undefined ? 24 : 8, deny: false, l7: 0, proxyPort: 0, ...w };
}

test('new connections allowed by an egress entry and by an ingress entry: TRACE events with the entry, forwarded counters', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, cookie: 7 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 8080, cookie: 8 }),
  ]);

  const out = syn(EP.ip, PEER.ip, 40000, 80);
  const r1 = h.run('from_container', out);
  assert.equal(r1.retval, TC_ACT_OK);
  assertEvent(r1, expectedEvent(out, { type: EventType.TRACE, direction: EGRESS, peer: PEER.identity, cookie: 7 }));

  const inb = syn(PEER.ip, EP.ip, 41000, 8080);
  const r2 = h.run('to_container', inb);
  assert.equal(r2.retval, TC_ACT_OK);
  assertEvent(r2, expectedEvent(inb, { type: EventType.TRACE, direction: INGRESS, peer: PEER.identity, cookie: 8 }));

  assert.deepEqual([counter(h, 0, EGRESS), counter(h, 0, INGRESS)], [1n, 1n]);
  assert.equal(h.dp.metrics().get(0 * 2 + EGRESS)?.bytes, BigInt(buildPacket(out).length));
  // Each opened a connection owned by the endpoint, with the entry that allowed it.
  const ct = h.dp.ctEntries().map((e) => [e.key.direction, e.key.dport, e.value.cookie, e.value.peer_identity, e.key.ep_id]);
  assert.deepEqual(ct.sort(), [
    [INGRESS, 8080, 8, PEER.identity, EP.id],
    [EGRESS, 80, 7, PEER.identity, EP.id],
  ].sort());
});

test('no allowing entry under default deny: dropped with 133, a DROP event and its counter; without default deny: allowed', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, cookie: 1 }),
  ]);

  for (const p of [syn(EP.ip, PEER.ip, 40000, 81), syn(EP.ip, OTHER.ip, 40000, 80), syn(EP.ip, WORLD_IP, 40000, 80)]) {
    const r = h.run('from_container', p);
    assert.equal(r.retval, TC_ACT_SHOT, `${p.dst}:${p.dport}`);
    const peer = p.dst === PEER.ip ? PEER.identity : p.dst === OTHER.ip ? OTHER.identity : WORLD;
    assertEvent(r, expectedEvent(p, { type: EventType.DROP, direction: EGRESS, peer, reason: DropReason.POLICY }));
  }
  const inb = syn(PEER.ip, EP.ip, 41000, 80);
  const r = h.run('to_container', inb);
  assert.equal(r.retval, TC_ACT_SHOT);
  assertEvent(r, expectedEvent(inb, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  assert.deepEqual([counter(h, DropReason.POLICY, EGRESS), counter(h, DropReason.POLICY, INGRESS), counter(h, 0, EGRESS)], [3n, 1n, 0n]);
  assert.deepEqual(h.dp.ctEntries(), [], 'a dropped packet opens no connection');

  // Enforced without default deny (only deny rules select it): what no entry matches passes.
  seed(h, F.EGRESS_ENFORCED | F.INGRESS_ENFORCED);
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40001, 81)).retval, TC_ACT_OK);
  assert.equal(h.run('to_container', syn(PEER.ip, EP.ip, 41001, 80)).retval, TC_ACT_OK);
});

test('a deny for every identity (0), found by the second lookup, beats the peer\'s own allow: 181', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 22, cookie: 11 }),
    entry({ direction: 'ingress', identity: OTHER.identity, proto: 6, port: 22, cookie: 12 }),
    entry({ direction: 'ingress', identity: 0, proto: 6, port: 22, deny: true, cookie: 13 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 23, cookie: 14 }),
  ]);
  for (const peer of [PEER, OTHER]) {
    const p = syn(peer.ip, EP.ip, 41000, 22);
    const r = h.run('to_container', p);
    assert.equal(r.retval, TC_ACT_SHOT);
    assertEvent(r, expectedEvent(p, { type: EventType.DROP, direction: INGRESS, peer: peer.identity, reason: DropReason.POLICY_DENY, cookie: 13 }));
  }
  assert.equal(h.run('to_container', syn(PEER.ip, EP.ip, 41000, 23)).retval, TC_ACT_OK);
  assert.deepEqual([counter(h, DropReason.POLICY_DENY, EGRESS), counter(h, DropReason.POLICY_DENY, INGRESS)], [0n, 2n]);
});

test('enforcement off: allowed without any policy map; the enforced direction still judges', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, 0);
  assert.equal(h.dp.hasPolicy(EP.id), false);
  const out = syn(EP.ip, PEER.ip, 40000, 9999);
  const r = h.run('from_container', out);
  assert.equal(r.retval, TC_ACT_OK);
  assertEvent(r, expectedEvent(out, { type: EventType.TRACE, direction: EGRESS, peer: PEER.identity }));
  assert.equal(h.run('to_container', syn(WORLD_IP, EP.ip, 41000, 22)).retval, TC_ACT_OK);

  // Ingress enforced (default deny, empty map), egress not.
  seed(h, F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, []);
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40001, 9999)).retval, TC_ACT_OK);
  assert.equal(h.run('to_container', syn(WORLD_IP, EP.ip, 41001, 22)).retval, TC_ACT_SHOT);
});

test('a reply is recognised through conntrack and allowed where a new connection would be denied', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  // Egress may open 80 to PEER; ingress is default deny with no entry at all.
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, cookie: 5 }),
  ]);
  const out = syn(EP.ip, PEER.ip, 40000, 80);
  assert.equal(h.run('from_container', out).retval, TC_ACT_OK);

  const synAck = replyTo(out);
  const reply = h.run('to_container', synAck);
  assert.equal(reply.retval, TC_ACT_OK);
  assert.deepEqual(reply.events, [], 'a reply emits no event');
  // The same packet as a new connection would be denied.
  const fresh = h.run('to_container', { ...synAck, sport: 81 });
  assert.equal(fresh.retval, TC_ACT_SHOT);
  assert.equal(fresh.events[0]?.drop_reason, DropReason.POLICY);
  // The conversation goes on both ways.
  assert.equal(h.run('from_container', { ...out, flags: TCP.ACK }).retval, TC_ACT_OK);
  assert.equal(h.run('to_container', replyTo(out, TCP.ACK | TCP.PSH)).retval, TC_ACT_OK);

  const entries = h.dp.ctEntries();
  assert.equal(entries.length, 1);
  assert.deepEqual(entries[0]!.key, {
    saddr: ipv4ToNumber(EP.ip),
    daddr: ipv4ToNumber(PEER.ip),
    sport: 40000,
    dport: 80,
    proto: 6,
    direction: EGRESS,
    pad: 0,
    ep_id: EP.id,
  });
  const v = entries[0]!.value;
  assert.deepEqual(
    { packets_fwd: v.packets_fwd, packets_rev: v.packets_rev, flags: v.flags, cookie: v.cookie, peer: v.peer_identity },
    { packets_fwd: 2, packets_rev: 2, flags: 1 /* MBR_CT_F_SEEN_REPLY */, cookie: 5, peer: PEER.identity },
  );
  // Established: the lifetime is hours, not the SYN's minute.
  const now = process.hrtime.bigint();
  assert.ok(v.expires_ns - now > 3600n * 1_000_000_000n, `expires in ${(v.expires_ns - now) / 1_000_000_000n} s`);
  assert.deepEqual([counter(h, 0, EGRESS), counter(h, 0, INGRESS), counter(h, DropReason.POLICY, INGRESS)], [2n, 2n, 1n]);

  // The other way round: a connection the pod accepted answers out through an egress that denies everything new.
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'ingress', identity: OTHER.identity, proto: 6, port: 8443, cookie: 9 }),
  ]);
  const inbound = syn(OTHER.ip, EP.ip, 50000, 8443);
  assert.equal(h.run('to_container', inbound).retval, TC_ACT_OK);
  const answer = h.run('from_container', replyTo(inbound));
  assert.deepEqual([answer.retval, answer.events], [TC_ACT_OK, []]);
  assert.equal(h.run('from_container', { ...replyTo(inbound), dport: 50001 }).retval, TC_ACT_SHOT, 'not the reply of anything');
  const accepted = h.dp.ctEntries().find((e) => e.key.direction === INGRESS)!;
  assert.deepEqual([accepted.key.saddr, accepted.key.dport, accepted.value.packets_fwd, accepted.value.packets_rev, accepted.value.cookie], [ipv4ToNumber(OTHER.ip), 8443, 1, 1, 9]);
});

test('a crafted ACK (no SYN, no connection) is judged as new: dropped on a port the policy closes', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 80, cookie: 3 }),
  ]);
  const ack: PacketSpec = { src: PEER.ip, dst: EP.ip, proto: 'tcp', sport: 40000, dport: 22, flags: TCP.ACK };
  const r = h.run('to_container', ack);
  assert.equal(r.retval, TC_ACT_SHOT);
  assertEvent(r, expectedEvent(ack, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  // Out of the pod the same: an ACK "answering" nothing is no reply.
  const out: PacketSpec = { src: EP.ip, dst: PEER.ip, proto: 'tcp', sport: 22, dport: 40000, flags: TCP.ACK | TCP.PSH };
  const r2 = h.run('from_container', out);
  assert.equal(r2.retval, TC_ACT_SHOT);
  assertEvent(r2, expectedEvent(out, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  // On the open port the ACK is judged like a SYN and passes.
  assert.equal(h.run('to_container', { ...ack, dport: 80 }).retval, TC_ACT_OK);
  assert.deepEqual(h.dp.ctEntries().map((e) => e.key.dport), [80]);
});

test('a spoofed source address is dropped with 132, with or without enforcement', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  for (const flags of [0, F.EGRESS_ENFORCED]) {
    seed(h, flags, [entry({ direction: 'egress', identity: 0, cookie: 1 })]);
    const spoofed = syn('10.200.0.99', PEER.ip, 40000, 80);
    const r = h.run('from_container', spoofed);
    assert.equal(r.retval, TC_ACT_SHOT);
    assertEvent(r, expectedEvent(spoofed, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.INVALID_SIP }));
    // Another endpoint's address is no better.
    assert.equal(h.run('from_container', syn(OTHER.ip, PEER.ip, 40000, 80)).retval, TC_ACT_SHOT);
  }
  assert.equal(counter(h, DropReason.INVALID_SIP, EGRESS), 4n);
  assert.deepEqual(h.dp.ctEntries(), []);
  // Towards the pod any source is fine (policy decides).
  assert.equal(h.run('to_container', syn('10.200.0.99', EP.ip, 40000, 80)).retval, TC_ACT_OK);
});

test('UDP: the request allowed by an entry, the reply through conntrack', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 17, port: 53, cookie: 4 }),
  ]);
  const query: PacketSpec = { src: EP.ip, dst: PEER.ip, proto: 'udp', sport: 53535, dport: 53, payload: Buffer.from('query') };
  const r = h.run('from_container', query);
  assert.equal(r.retval, TC_ACT_OK);
  assertEvent(r, expectedEvent(query, { type: EventType.TRACE, direction: EGRESS, peer: PEER.identity, cookie: 4 }));
  const answer = h.run('to_container', { ...replyTo(query), payload: Buffer.from('answer') });
  assert.equal(answer.retval, TC_ACT_OK);
  assert.deepEqual(answer.events, []);
  // From the same peer and port, to another port of the pod: a new flow, denied.
  const stray: PacketSpec = { src: PEER.ip, dst: EP.ip, proto: 'udp', sport: 53, dport: 53536 };
  const s = h.run('to_container', stray);
  assert.equal(s.retval, TC_ACT_SHOT);
  assertEvent(s, expectedEvent(stray, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  assert.equal(h.run('from_container', { ...query, proto: 'tcp', flags: TCP.SYN }).retval, TC_ACT_SHOT, 'TCP to 53 is not allowed');
  const [ct] = h.dp.ctEntries();
  assert.deepEqual([ct?.key.proto, ct?.value.packets_fwd, ct?.value.packets_rev], [17, 1, 1]);
});

test('ICMP: an echo request allowed by a type entry, its reply through conntrack, type 13 denied', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    // For ICMP the port of the key is the type.
    entry({ direction: 'egress', identity: PEER.identity, proto: 1, port: 8, cookie: 6 }),
  ]);
  const echo: PacketSpec = { src: EP.ip, dst: PEER.ip, proto: 'icmp', icmpType: 8, icmpId: 0x1234 };
  const r = h.run('from_container', echo);
  assert.equal(r.retval, TC_ACT_OK);
  assertEvent(r, expectedEvent(echo, { type: EventType.TRACE, direction: EGRESS, peer: PEER.identity, cookie: 6 }));
  const reply = h.run('to_container', replyTo(echo));
  assert.equal(reply.retval, TC_ACT_OK);
  assert.deepEqual(reply.events, []);
  // A reply with another id answers nothing: judged as new (type 0) and denied.
  const other = h.run('to_container', { ...replyTo(echo), icmpId: 0x4321 });
  assert.equal(other.retval, TC_ACT_SHOT);
  assert.equal(other.events[0]?.dport, 0);

  const timestamp: PacketSpec = { src: EP.ip, dst: PEER.ip, proto: 'icmp', icmpType: 13 };
  const ts = h.run('from_container', timestamp);
  assert.equal(ts.retval, TC_ACT_SHOT);
  assertEvent(ts, expectedEvent(timestamp, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  assert.equal(h.run('from_container', { ...echo, dst: OTHER.ip }).retval, TC_ACT_SHOT, 'another peer');

  const [ct] = h.dp.ctEntries();
  assert.deepEqual(
    [ct?.key.proto, ct?.key.sport, ct?.key.dport, ct?.value.packets_fwd, ct?.value.packets_rev, ct?.value.cookie],
    [1, 0x1234, 0, 1, 1, 6],
  );
});

test('the L7 redirect mark: proxy_port << 16 | 0x0a00 when the allowing entry has L7 and a proxy port; none otherwise', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  const PROXY = 15001;
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, l7: 1, proxyPort: PROXY, cookie: 1 }),
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 81, cookie: 2 }),
    // L7 but the proxy does not listen yet: no redirect.
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 82, l7: 1, proxyPort: 0, cookie: 3 }),
    // L7 for this peer, L7-free for any peer: the free entry wins.
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 83, l7: 1, proxyPort: PROXY, cookie: 4 }),
    entry({ direction: 'egress', identity: 0, proto: 6, port: 83, cookie: 5 }),
    entry({ direction: 'ingress', identity: PEER.identity, proto: 6, port: 8080, l7: 1, proxyPort: PROXY, cookie: 6 }),
  ]);
  const mark = (PROXY << 16) | MARK_TO_PROXY;

  const http = syn(EP.ip, PEER.ip, 40000, 80);
  const r = h.run('from_container', http, { ctx: { mark: 0 } });
  assert.equal(r.retval, TC_ACT_OK);
  assert.equal(r.mark, mark, `mark 0x${r.mark?.toString(16)}`);
  assertEvent(r, expectedEvent(http, { type: EventType.TRACE, direction: EGRESS, peer: PEER.identity, cookie: 1, l7: 1, proxyPort: PROXY }));
  // The rest of the connection is steered too (the decision is kept in conntrack).
  assert.equal(h.run('from_container', { ...http, flags: TCP.ACK }, { ctx: {} }).mark, mark);
  const [ct] = h.dp.ctEntries();
  assert.deepEqual([ct?.value.l7, ct?.value.proxy_port], [1, PROXY]);

  for (const [port, cookie] of [[81, 2], [82, 3], [83, 5]] as const) {
    const p = h.run('from_container', syn(EP.ip, PEER.ip, 40000, port), { ctx: { mark: 0 } });
    assert.equal(p.retval, TC_ACT_OK, `port ${port}`);
    assert.equal(p.mark, 0, `port ${port}: no mark`);
    assert.equal(p.events[0]?.cookie, cookie, `port ${port}: the deciding entry`);
  }
  // A mark the packet already had is left alone when there is no redirect.
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40001, 81), { ctx: { mark: 0x42 } }).mark, 0x42);

  const inbound = h.run('to_container', syn(PEER.ip, EP.ip, 41000, 8080), { ctx: { mark: 0 } });
  assert.equal(inbound.retval, TC_ACT_OK);
  assert.equal(inbound.mark, mark);
});

test('conntrack expiry: an entry whose expires_ns is past is not used, and ctGc removes it', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY | F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY, [
    entry({ direction: 'egress', identity: PEER.identity, proto: 6, port: 80, cookie: 1 }),
  ]);
  // Written straight into the pinned map, as another agent process would find it.
  const nb = h.dp.nb;
  const ctFd = nb.objGet(`${PIN_ROOT}/mbr_ct`);
  t.after(() => nb.closeFd(ctFd));
  const now = process.hrtime.bigint();
  const SECOND = 1_000_000_000n;
  const conn = (sport: number, dport: number, expires: bigint) => {
    const key = { saddr: ipv4ToNumber(EP.ip), daddr: ipv4ToNumber(PEER.ip), sport, dport, proto: 6, direction: EGRESS, pad: 0, ep_id: EP.id };
    nb.mapUpdate(
      ctFd,
      ctKeyCodec.encode(key),
      ctValueCodec.encode({ created_ns: now - 120n * SECOND, expires_ns: expires, peer_identity: PEER.identity, cookie: 1, packets_fwd: 3, packets_rev: 2, proxy_port: 0, l7: 0, flags: 1 }),
    );
    return key;
  };
  const expired = conn(40100, 80, now - SECOND);
  const live = conn(40101, 80, now + 600n * SECOND);
  const expiredClosed = conn(40102, 22, now - SECOND);
  assert.equal(h.dp.ctEntries().length, 3);

  // The reply of the expired connection is a new inbound one, which ingress denies.
  const late = replyTo(syn(EP.ip, PEER.ip, 40100, 80), TCP.ACK);
  const r = h.run('to_container', late);
  assert.equal(r.retval, TC_ACT_SHOT);
  assertEvent(r, expectedEvent(late, { type: EventType.DROP, direction: INGRESS, peer: PEER.identity, reason: DropReason.POLICY }));
  assert.equal(h.run('to_container', replyTo(syn(EP.ip, PEER.ip, 40101, 80), TCP.ACK)).retval, TC_ACT_OK, 'the live one still answers');
  // Going on with an expired connection to a closed port: judged anew and denied.
  assert.equal(h.run('from_container', { ...syn(EP.ip, PEER.ip, 40102, 22), flags: TCP.ACK }).retval, TC_ACT_SHOT);

  assert.equal(h.dp.ctGc(), 2);
  const left = h.dp.ctEntries();
  assert.deepEqual(left.map((e) => e.key), [live]);
  assert.equal(left[0]!.value.packets_rev, 3);
  assert.equal(nb.mapLookup(ctFd, ctKeyCodec.encode(expired)), null);
  assert.equal(nb.mapLookup(ctFd, ctKeyCodec.encode(expiredClosed)), null);
  assert.equal(h.dp.ctGc(), 0);
});

test('lost events are counted: a one-page ring buffer overflows and the count says by how much', (t) => {
  if (!privileged(t)) return;
  const PAGE = 4096;
  const h = openLxc(t, { maxEntries: { mbr_events: PAGE } });
  assert.equal(h.dp.nb.mapInfo(h.dp.maps.events).maxEntries, PAGE);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY, []);
  const RUNS = 200;
  const run = h.dp.nb.progTestRun(h.dp.progs.fromContainer, buildPacket(syn(EP.ip, PEER.ip, 40000, 80)), { repeat: RUNS });
  assert.equal(run.retval, TC_ACT_SHOT);
  const delivered = h.drain();
  const lost = h.dp.lostEvents();
  // A ring record is an 8-byte header and the event (8-aligned), and the
  // kernel never lets the records fill the ring to the last byte.
  const perPage = Math.floor((PAGE - 1) / (8 + eventCodec.size));
  assert.equal(delivered.length, perPage);
  assert.equal(lost, BigInt(RUNS - perPage), `${lost} lost of ${RUNS}`);
  assert.ok(delivered.every((e) => e.drop_reason === DropReason.POLICY));
  assert.equal(counter(h, DropReason.POLICY, EGRESS), BigInt(RUNS), 'drops are counted even when their events are lost');
  // Drained, the ring takes events again.
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40000, 80)).events.length, 1);
  assert.equal(h.dp.metrics().get(METRICS_LOST_EVENTS)?.packets, lost);
});

test('packets the policy does not judge: ARP passes, IPv6 is dropped (139), a truncated or malformed header is dropped (134)', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  seed(h, F.EGRESS_ENFORCED | F.EGRESS_DEFAULT_DENY, []);
  const eth = (type: number, body: number) => {
    const b = Buffer.alloc(14 + body);
    b.writeUInt16BE(type, 12);
    return b;
  };
  const arp = h.run('from_container', eth(0x0806, 28));
  assert.deepEqual([arp.retval, arp.events], [TC_ACT_OK, []]);
  const v6 = h.run('from_container', eth(0x86dd, 40));
  assert.deepEqual([v6.retval, v6.events], [TC_ACT_SHOT, []]);
  assert.equal(counter(h, DropReason.UNSUPPORTED_L3, EGRESS), 1n);
  // (The kernel's test run itself refuses an IPv4 packet shorter than its header.)
  const full = buildPacket(syn(EP.ip, PEER.ip, 40000, 80));
  const shortIhl = Buffer.from(full);
  shortIhl[14] = 0x44; // IHL 4: 16 bytes, less than an IPv4 header
  for (const bad of [full.subarray(0, 14 + 20 + 6), shortIhl]) {
    const r = h.run('from_container', bad);
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.deepEqual([r.events.length, r.events[0]?.drop_reason, r.events[0]?.type, r.events[0]?.len], [1, DropReason.INVALID_PACKET, EventType.DROP, bad.length]);
  }
  assert.equal(counter(h, DropReason.INVALID_PACKET, EGRESS), 2n);
  // Not an endpoint's interface: the programs stay out of the way.
  h.dp.deleteEndpoint(LO_IFINDEX);
  assert.deepEqual([h.run('from_container', syn(EP.ip, PEER.ip, 40000, 80)).retval, h.run('to_container', eth(0x86dd, 40)).retval], [TC_ACT_OK, TC_ACT_OK]);
});

test('leaves no pin root of these tests behind', (t) => {
  if (!privileged(t)) return;
  assert.deepEqual(leftoverPins(PIN_PREFIX), []);
});
