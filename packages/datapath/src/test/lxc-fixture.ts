/**
 * What the kernel tests of bpf_lxc.o share (this package's, and the policy
 * writes' in @membrane/endpoint): the endpoint under test at LO_IFINDEX and
 * the peers the ipcache knows, a fresh LxcHarness per test, the seeding of
 * the maps, and the event a packet must produce.
 */
import { strict as assert } from 'node:assert';
import { after, type TestContext } from 'node:test';
import { Cleanup } from '../cleanup.js';
import { Direction, EventType, Verdict, ipv4ToNumber, type DatapathEvent } from '../codecs.js';
import { Datapath, type DatapathOptions, type PolicyMapWrite } from '../datapath.js';
import { LO_IFINDEX, LxcHarness, type LxcRun } from './lxc-harness.js';
import { TCP, buildPacket, type PacketSpec } from './packets.js';
import { requireRoot } from './privileged.js';

/** The endpoint under test, and peers the ipcache knows. */
export const EP = { id: 42, ip: '10.200.0.10', identity: 300 } as const;
export const PEER = { ip: '10.200.0.20', identity: 400 } as const;
export const OTHER = { ip: '10.200.0.30', identity: 500 } as const;
/** Not in the ipcache: the programs see it as world (2). */
export const WORLD_IP = '203.0.113.7';
export const WORLD = 2;

export interface LxcSuite {
  /** /sys/fs/bpf/<prefix><pid>: every test's maps are pinned here, and removed when it ends. */
  readonly pinRoot: string;
  /** The root gate of each test (skips loudly when not root). */
  privileged(t: TestContext): boolean;
  /** bpf_lxc.o loaded with fresh maps; closed and unpinned when the test ends, pass or fail. */
  open(t: TestContext, opts?: Omit<DatapathOptions, 'pinRoot'>): LxcHarness;
}

/**
 * What a test file of bpf_lxc.o needs, for pin roots named prefix + pid (its
 * leak check looks for the prefix). Call at the top level: it also registers
 * an after() hook that unpins whatever a failed test's cleanup left.
 */
export function lxcSuite(prefix: string): LxcSuite {
  const pinRoot = `/sys/fs/bpf/${prefix}${process.pid}`;
  after(() => Datapath.unpinAll(pinRoot));
  return {
    pinRoot,
    privileged: (t) => requireRoot(t, `loads bpf_lxc.o and pins its maps under ${pinRoot}`),
    open(t, opts = {}) {
      const c = new Cleanup();
      t.after(() => c.run());
      c.add(`unpin ${pinRoot}`, () => Datapath.unpinAll(pinRoot));
      const h = LxcHarness.open({ ...opts, pinRoot });
      c.add('close the datapath', () => h.dp.close());
      return h;
    },
  };
}

/** The endpoint at LO_IFINDEX with these flags, the peers in the ipcache, and its policy map when writes are given. */
export function seedLxc(h: LxcHarness, flags: number, writes?: PolicyMapWrite[]): void {
  h.dp.setEndpoint(LO_IFINDEX, { ep_id: EP.id, ipv4: ipv4ToNumber(EP.ip), identity: EP.identity, flags });
  h.dp.ipcacheUpsert(`${EP.ip}/32`, EP.identity, EP.id);
  h.dp.ipcacheUpsert(`${PEER.ip}/32`, PEER.identity);
  h.dp.ipcacheUpsert(`${OTHER.ip}/32`, OTHER.identity);
  if (writes) h.dp.replacePolicy(EP.id, writes);
}

export const syn = (src: string, dst: string, sport: number, dport: number): PacketSpec => ({ src, dst, proto: 'tcp', sport, dport, flags: TCP.SYN });

/** The event a run of this packet must emit (all fields but the timestamp). */
export function expectedEvent(
  p: PacketSpec,
  o: { type: number; direction: number; peer: number; reason?: number; cookie?: number; l7?: number; proxyPort?: number },
): Omit<DatapathEvent, 'ts_ns'> {
  const icmpType = p.icmpType ?? 8;
  return {
    type: o.type,
    direction: o.direction,
    proto: { tcp: 6, udp: 17, icmp: 1, sctp: 132 }[p.proto],
    tcp_flags: p.proto === 'tcp' ? p.flags ?? TCP.SYN : 0,
    verdict: o.type === EventType.DROP ? Verdict.DROPPED : Verdict.FORWARDED,
    is_reply: 0,
    l7: o.l7 ?? 0,
    pad: 0,
    drop_reason: o.reason ?? 0,
    proxy_port: o.proxyPort ?? 0,
    ep_id: EP.id,
    src_identity: o.direction === Direction.EGRESS ? EP.identity : o.peer,
    dst_identity: o.direction === Direction.EGRESS ? o.peer : EP.identity,
    saddr: ipv4ToNumber(p.src),
    daddr: ipv4ToNumber(p.dst),
    // ICMP: the echo id stands in the source port of a request; the event's port is the type.
    sport: p.proto === 'icmp' ? (icmpType === 8 ? p.icmpId ?? 7 : 0) : p.sport!,
    dport: p.proto === 'icmp' ? icmpType : p.dport!,
    ifindex: LO_IFINDEX,
    cookie: o.cookie ?? 0,
    len: buildPacket(p).length,
  };
}

/** The run emitted exactly this one event. */
export function assertEvent(r: LxcRun, want: Omit<DatapathEvent, 'ts_ns'>): void {
  assert.equal(r.events.length, 1, `one event expected, got ${JSON.stringify(r.events, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  const { ts_ns, ...rest } = r.events[0]!;
  assert.ok(ts_ns > 0n && ts_ns <= process.hrtime.bigint(), `event time ${ts_ns} is CLOCK_MONOTONIC`);
  assert.deepEqual(rest, want);
}

/** Packets counted for this reason (0: forwarded) and direction. */
export function counter(h: LxcHarness, reason: number, dir: number): bigint {
  return h.dp.metrics().get(reason * 2 + dir)?.packets ?? 0n;
}
