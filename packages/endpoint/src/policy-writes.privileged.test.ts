// policyMapWrites in the kernel: the writes it derives from a MapState —
// covered blocks turned into denies, port ranges as aligned LPM blocks, the
// meta entry that carries each direction's enforcement — installed in
// bpf_lxc.o's policy map as the endpoint manager installs them (endpoint
// flags 0) and judged through BPF_PROG_TEST_RUN. The programs' own lookup
// rules, on entries written by hand, are tested in
// packages/datapath/src/lxc.privileged.test.ts, whose endpoint, peers and
// helpers these tests share (@membrane/datapath/testing).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Direction, DropReason, EndpointFlags, EventType, TC_ACT_OK, TC_ACT_SHOT } from '@membrane/datapath';
import { EP, OTHER, PEER, assertEvent, counter, expectedEvent, leftoverPins, lxcSuite, seedLxc, syn, type LxcHarness } from '@membrane/datapath/testing';
import { DirectionPolicy, type EndpointPolicy, type RuleOrigin } from '@membrane/policy';
import { policyMapWrites } from './policy-writes.js';

const PIN_PREFIX = 'mbr-test-policy-writes-';
const { privileged, open: openLxc } = lxcSuite(PIN_PREFIX);

const { INGRESS, EGRESS } = Direction;
const F = EndpointFlags;

const origin = (section: 'ingress' | 'egress', i: number): RuleOrigin => ({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: `r${i}`, section, index: i });

/** The endpoint's policy; a direction not given is not enforced. */
function endpointPolicy(dirs: { ingress?: DirectionPolicy; egress?: DirectionPolicy }): EndpointPolicy {
  return { identity: EP.identity, ingress: dirs.ingress ?? new DirectionPolicy('ingress'), egress: dirs.egress ?? new DirectionPolicy('egress') };
}

/** The endpoint seeded with these flags and its policy map holding policyMapWrites of the policy. */
function install(h: LxcHarness, policy: EndpointPolicy, flags = 0) {
  const w = policyMapWrites(policy);
  seedLxc(h, flags, w.writes);
  return w.writes;
}

test('a deny covering an L4 allow of the same identity: the writer makes the covered block a deny, and the kernel drops it with 181', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  // The MapState holds an L3 deny and an L4 allow of PEER; the writer turns
  // every block a deny covers into a deny, because a longest-prefix lookup
  // sees only the most specific entry.
  const egress = new DirectionPolicy('egress', true, true);
  egress.add({ identity: PEER.identity, proto: 0, port: 0, endPort: 65535 }, true, origin('egress', 0), undefined);
  egress.add({ identity: PEER.identity, proto: 6, port: 80, endPort: 80 }, false, origin('egress', 1), undefined);
  egress.add({ identity: OTHER.identity, proto: 6, port: 80, endPort: 80 }, false, origin('egress', 2), undefined);
  const writes = install(h, endpointPolicy({ egress }));
  const l4 = writes.find((w) => w.identity === PEER.identity && w.proto === 6)!;
  assert.equal(l4.deny, true, 'the writer made the covered L4 allow a deny');

  const to80 = syn(EP.ip, PEER.ip, 40000, 80);
  const r1 = h.run('from_container', to80);
  assert.equal(r1.retval, TC_ACT_SHOT);
  assertEvent(r1, expectedEvent(to80, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.POLICY_DENY, cookie: l4.cookie }));
  const l3 = writes.find((w) => w.identity === PEER.identity && w.proto === 0)!;
  const udp = { src: EP.ip, dst: PEER.ip, proto: 'udp', sport: 40000, dport: 53 } as const;
  const r2 = h.run('from_container', udp);
  assert.equal(r2.retval, TC_ACT_SHOT);
  assertEvent(r2, expectedEvent(udp, { type: EventType.DROP, direction: EGRESS, peer: PEER.identity, reason: DropReason.POLICY_DENY, cookie: l3.cookie }));
  assert.equal(h.run('from_container', syn(EP.ip, OTHER.ip, 40000, 80)).retval, TC_ACT_OK, 'another peer is not denied');
  assert.equal(h.run('to_container', syn(PEER.ip, EP.ip, 41000, 80)).retval, TC_ACT_OK, 'ingress is not enforced');
  assert.deepEqual([counter(h, DropReason.POLICY_DENY, EGRESS), counter(h, DropReason.POLICY_DENY, INGRESS)], [2n, 0n]);
});

test('port ranges: 8000-8099 as aligned LPM blocks allows both bounds and nothing beside them', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  const egress = new DirectionPolicy('egress', true, true);
  egress.add({ identity: PEER.identity, proto: 6, port: 8000, endPort: 8099 }, false, origin('egress', 0), undefined);
  const blocks = install(h, endpointPolicy({ egress })).filter((w) => w.identity === PEER.identity);
  assert.deepEqual(
    blocks.map((w) => [w.port, w.prefix - 8]),
    [[8000, 10], [8064, 11], [8096, 14]],
    'the range as blocks of 64, 32 and 4 ports',
  );
  const verdict = (port: number, proto: 'tcp' | 'udp' = 'tcp') => h.run('from_container', { src: EP.ip, dst: PEER.ip, proto, sport: 40000 + (port % 1000), dport: port }).retval;
  for (const port of [8000, 8050, 8063, 8064, 8095, 8096, 8099]) assert.equal(verdict(port), TC_ACT_OK, `port ${port}`);
  for (const port of [7999, 8100, 8103, 7936, 8128, 1]) assert.equal(verdict(port), TC_ACT_SHOT, `port ${port}`);
  assert.equal(verdict(8050, 'udp'), TC_ACT_SHOT, 'UDP is another protocol');
  const last = h.run('from_container', syn(EP.ip, PEER.ip, 45000, 8099));
  assert.equal(last.retval, TC_ACT_OK);
  assert.equal(last.events[0]?.cookie, blocks.find((w) => w.port === 8096)!.cookie, 'the /14 block of 8096-8099 decided');
});

test('enforcement carried by the policy map (the meta entry), and endpoint flags that force it on top', (t) => {
  if (!privileged(t)) return;
  const h = openLxc(t);
  // Egress enforced with default deny; ingress enforced by a deny rule alone (no default deny).
  const egress = new DirectionPolicy('egress', true, true);
  egress.add({ identity: PEER.identity, proto: 6, port: 80, endPort: 80 }, false, origin('egress', 0), undefined);
  const ingress = new DirectionPolicy('ingress', true, false);
  ingress.add({ identity: 0, proto: 6, port: 22, endPort: 22 }, true, origin('ingress', 1), undefined);
  const writes = install(h, endpointPolicy({ ingress, egress }));
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40000, 80)).retval, TC_ACT_OK);
  const closed = h.run('from_container', syn(EP.ip, PEER.ip, 40000, 81));
  assert.deepEqual([closed.retval, closed.events[0]?.drop_reason], [TC_ACT_SHOT, DropReason.POLICY]);
  // Ingress enforced without default deny: only the deny entry drops.
  const deny = writes.find((w) => w.direction === 'ingress' && w.deny)!;
  const ssh = h.run('to_container', syn(PEER.ip, EP.ip, 40000, 22));
  assert.deepEqual([ssh.retval, ssh.events[0]?.drop_reason, ssh.events[0]?.cookie], [TC_ACT_SHOT, DropReason.POLICY_DENY, deny.cookie]);
  assert.equal(h.run('to_container', syn(PEER.ip, EP.ip, 40000, 23)).retval, TC_ACT_OK);

  // The map says "not enforced"; the endpoint's flags force default deny (quarantine).
  install(h, endpointPolicy({}), F.INGRESS_ENFORCED | F.INGRESS_DEFAULT_DENY);
  const q = h.run('to_container', syn(PEER.ip, EP.ip, 40001, 23));
  assert.deepEqual([q.retval, q.events[0]?.drop_reason], [TC_ACT_SHOT, DropReason.POLICY]);
  assert.equal(h.run('from_container', syn(EP.ip, PEER.ip, 40001, 81)).retval, TC_ACT_OK);
});

test('leaves no pin root of these tests behind', (t) => {
  if (!privileged(t)) return;
  assert.deepEqual(leftoverPins(PIN_PREFIX), []);
});
