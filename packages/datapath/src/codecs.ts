/**
 * One codec per struct of bpf/lib/abi.h and bpf/lib/abi_lb.h: the single
 * TypeScript definition of each layout. Offsets follow C's natural alignment;
 * codecs.test.ts compiles both headers and checks every size and offset
 * against these.
 */
import type { DatapathEventRecord } from '@membrane/api';

/** `mac`: a __u8[6] Ethernet address, its value the 48-bit number it reads as in network order. */
type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' | 'mac';

const SIZE: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4, mac: 6 };
/** C's alignment of each type (a byte array aligns as a byte). */
const ALIGN: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4, mac: 1 };

export interface Codec<T> {
  readonly name: string;
  readonly size: number;
  readonly offsets: Readonly<Record<keyof T & string, number>>;
  encode(v: T, into?: Buffer, at?: number): Buffer;
  decode(b: Buffer, at?: number): T;
}

/** Fields in declaration order; values are numbers (u64 as bigint). */
export function struct<T extends Record<string, number | bigint>>(name: string, fields: readonly [keyof T & string, FieldType][]): Codec<T> {
  let off = 0;
  let align = 1;
  const offsets = {} as Record<keyof T & string, number>;
  for (const [f, t] of fields) {
    const a = ALIGN[t];
    off = Math.ceil(off / a) * a;
    offsets[f] = off;
    off += SIZE[t];
    align = Math.max(align, a);
  }
  const size = Math.ceil(off / align) * align;
  return {
    name,
    size,
    offsets,
    encode(v, into, at = 0) {
      const b = into ?? Buffer.alloc(size);
      for (const [f, t] of fields) {
        const o = at + offsets[f];
        const x = v[f] ?? 0;
        switch (t) {
          case 'u8': b.writeUInt8(Number(x), o); break;
          case 'u16': b.writeUInt16LE(Number(x), o); break;
          case 'u32': b.writeUInt32LE(Number(x) >>> 0, o); break;
          case 'u64': b.writeBigUInt64LE(BigInt(x), o); break;
          case 'be16': b.writeUInt16BE(Number(x), o); break;
          case 'be32': b.writeUInt32BE(Number(x) >>> 0, o); break;
          case 'mac': b.writeUIntBE(Number(x), o, 6); break;
        }
      }
      return b;
    },
    decode(b, at = 0) {
      const v = {} as Record<string, number | bigint>;
      for (const [f, t] of fields) {
        const o = at + offsets[f];
        switch (t) {
          case 'u8': v[f] = b.readUInt8(o); break;
          case 'u16': v[f] = b.readUInt16LE(o); break;
          case 'u32': v[f] = b.readUInt32LE(o); break;
          case 'u64': v[f] = b.readBigUInt64LE(o); break;
          case 'be16': v[f] = b.readUInt16BE(o); break;
          case 'be32': v[f] = b.readUInt32BE(o); break;
          case 'mac': v[f] = b.readUIntBE(o, 6); break;
        }
      }
      return v as T;
    },
  };
}

/** IPv4 address text ↔ the number a be32 field holds. */
export function ipv4ToNumber(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`${ip} is not an IPv4 address`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function numberToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export type Endpoint = { ep_id: number; ipv4: number; identity: number; flags: number };
export const endpointCodec = struct<Endpoint>('mbr_endpoint', [
  ['ep_id', 'u32'],
  ['ipv4', 'be32'],
  ['identity', 'u32'],
  ['flags', 'u32'],
]);

export const EndpointFlags = { INGRESS_ENFORCED: 1, EGRESS_ENFORCED: 2, INGRESS_DEFAULT_DENY: 4, EGRESS_DEFAULT_DENY: 8 } as const;

export type IPCacheKey = { prefixlen: number; addr: number };
export const ipcacheKeyCodec = struct<IPCacheKey>('mbr_ipcache_key', [
  ['prefixlen', 'u32'],
  ['addr', 'be32'],
]);

export type IPCacheValue = { identity: number; ep_id: number };
export const ipcacheValueCodec = struct<IPCacheValue>('mbr_ipcache_value', [
  ['identity', 'u32'],
  ['ep_id', 'u32'],
]);

export type PolicyKey = { prefixlen: number; identity: number; direction: number; proto: number; dport: number };
export const policyKeyCodec = struct<PolicyKey>('mbr_policy_key', [
  ['prefixlen', 'u32'],
  ['identity', 'be32'],
  ['direction', 'u8'],
  ['proto', 'u8'],
  ['dport', 'be16'],
]);
export const POLICY_FIXED_BITS = 40;

export type PolicyValue = { deny: number; l7: number; proxy_port: number; cookie: number };
export const policyValueCodec = struct<PolicyValue>('mbr_policy_value', [
  ['deny', 'u8'],
  ['l7', 'u8'],
  ['proxy_port', 'u16'],
  ['cookie', 'u32'],
]);

export type CTKey = { saddr: number; daddr: number; sport: number; dport: number; proto: number; direction: number; pad: number; ep_id: number };
export const ctKeyCodec = struct<CTKey>('mbr_ct_key', [
  ['saddr', 'be32'],
  ['daddr', 'be32'],
  ['sport', 'be16'],
  ['dport', 'be16'],
  ['proto', 'u8'],
  ['direction', 'u8'],
  ['pad', 'u16'],
  ['ep_id', 'u32'],
]);

export type CTValue = {
  created_ns: bigint;
  expires_ns: bigint;
  peer_identity: number;
  cookie: number;
  packets_fwd: number;
  packets_rev: number;
  proxy_port: number;
  l7: number;
  flags: number;
};
export const ctValueCodec = struct<CTValue>('mbr_ct_value', [
  ['created_ns', 'u64'],
  ['expires_ns', 'u64'],
  ['peer_identity', 'u32'],
  ['cookie', 'u32'],
  ['packets_fwd', 'u32'],
  ['packets_rev', 'u32'],
  ['proxy_port', 'u16'],
  ['l7', 'u8'],
  ['flags', 'u8'],
]);

/** One event record of the ring buffer (the shape lives in @membrane/api: the observer reads it too). */
export type DatapathEvent = DatapathEventRecord;
export const eventCodec = struct<DatapathEvent>('mbr_event', [
  ['ts_ns', 'u64'],
  ['type', 'u8'],
  ['direction', 'u8'],
  ['proto', 'u8'],
  ['tcp_flags', 'u8'],
  ['verdict', 'u8'],
  ['is_reply', 'u8'],
  ['l7', 'u8'],
  ['pad', 'u8'],
  ['drop_reason', 'u16'],
  ['proxy_port', 'u16'],
  ['ep_id', 'u32'],
  ['src_identity', 'u32'],
  ['dst_identity', 'u32'],
  ['saddr', 'be32'],
  ['daddr', 'be32'],
  ['sport', 'be16'],
  ['dport', 'be16'],
  ['ifindex', 'u32'],
  ['cookie', 'u32'],
  ['len', 'u32'],
]);

export const EventType = { TRACE: 1, DROP: 2 } as const;
export const Verdict = { FORWARDED: 1, DROPPED: 2 } as const;
export const Direction = { INGRESS: 0, EGRESS: 1 } as const;

export type MetricsValue = { packets: bigint; bytes: bigint };
export const metricsValueCodec = struct<MetricsValue>('mbr_metrics_value', [
  ['packets', 'u64'],
  ['bytes', 'u64'],
]);
export const METRICS_ENTRIES = 512;
export const METRICS_LOST_EVENTS = 255 * 2;

export type Config = {
  flags: number;
  wakeup_bytes: number;
  /** The L7 redirect's hairpin (0: none; ingress L7 connections are only marked). */
  router_ifindex: number;
  /** The router link's MAC as a 48-bit number (macToNumber). */
  router_mac: number;
  pad: number;
  /** The proxy's listener address (0: no proxy configured; L7 connections are only marked). */
  proxy_listener: number;
};
export const configCodec = struct<Config>('mbr_config', [
  ['flags', 'u32'],
  ['wakeup_bytes', 'u32'],
  ['router_ifindex', 'u32'],
  ['router_mac', 'mac'],
  ['pad', 'u16'],
  ['proxy_listener', 'be32'],
]);

/** An Ethernet address "02:ab:…" ↔ the number a `mac` field holds. */
export function macToNumber(mac: string): number {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new Error(`${mac} is not an Ethernet address (six hex bytes separated by ":")`);
  return parseInt(mac.replace(/:/g, ''), 16);
}

export function numberToMac(n: number): string {
  return n.toString(16).padStart(12, '0').match(/../g)!.join(':');
}

// ---- bpf/lib/abi_lb.h: the socket load balancer (bpf_sock.c) ----

/** mbr_lb4_svc key: slot 0 is the frontend's master entry, slots 1..count name its backends. */
export type LB4Key = { address: number; dport: number; backend_slot: number; proto: number; pad1: number; pad2: number };
export const lb4KeyCodec = struct<LB4Key>('mbr_lb4_key', [
  ['address', 'be32'],
  ['dport', 'be16'],
  ['backend_slot', 'u16'],
  ['proto', 'u8'],
  ['pad1', 'u8'],
  ['pad2', 'u16'],
]);

/** mbr_lb4_svc value: the master holds count, service_id and flags; a slot its backend_id. */
export type LB4Service = { backend_id: number; service_id: number; count: number; flags: number; pad: number };
export const lb4ServiceCodec = struct<LB4Service>('mbr_lb4_service', [
  ['backend_id', 'u32'],
  ['service_id', 'u32'],
  ['count', 'u16'],
  ['flags', 'u8'],
  ['pad', 'u8'],
]);

/** mbr_lb4_backend value (the key is the backend id, a host-order u32). */
export type LB4Backend = { address: number; port: number; proto: number; flags: number };
export const lb4BackendCodec = struct<LB4Backend>('mbr_lb4_backend', [
  ['address', 'be32'],
  ['port', 'be16'],
  ['proto', 'u8'],
  ['flags', 'u8'],
]);

/** mbr_lb4_rev_sk key: a socket (its cookie) and the backend it was sent to. */
export type LB4RevNatKey = { cookie: bigint; address: number; port: number; pad: number };
export const lb4RevNatKeyCodec = struct<LB4RevNatKey>('mbr_lb4_revnat_key', [
  ['cookie', 'u64'],
  ['address', 'be32'],
  ['port', 'be16'],
  ['pad', 'u16'],
]);

/** mbr_lb4_rev_sk value: the frontend that socket asked for. */
export type LB4RevNatValue = { address: number; port: number; pad: number; service_id: number };
export const lb4RevNatValueCodec = struct<LB4RevNatValue>('mbr_lb4_revnat_value', [
  ['address', 'be32'],
  ['port', 'be16'],
  ['pad', 'u16'],
  ['service_id', 'u32'],
]);

/** The most backends one frontend can have (MBR_LB_MAX_BACKENDS). */
export const LB_MAX_BACKENDS = 1024;
/** IP protocol numbers the frontends carry. */
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const ALL_CODECS: Codec<Record<string, number | bigint>>[] = [
  endpointCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  policyKeyCodec,
  policyValueCodec,
  ctKeyCodec,
  ctValueCodec,
  eventCodec,
  metricsValueCodec,
  configCodec,
  lb4KeyCodec,
  lb4ServiceCodec,
  lb4BackendCodec,
  lb4RevNatKeyCodec,
  lb4RevNatValueCodec,
] as unknown as Codec<Record<string, number | bigint>>[];

/** Drop reasons (Cilium's numbers) the programs use. */
export const DropReason = { INVALID_SIP: 132, POLICY: 133, INVALID_PACKET: 134, UNSUPPORTED_L3: 139, PROXY_LOOKUP_FAILED: 178, PROXY_SET_FAILED: 179, POLICY_DENY: 181 } as const;

/**
 * skb->mark (abi.h): the low 16 bits say who the packet is for or from
 * (MARK_MASK), the high 16 bits of a TO_PROXY mark hold the proxy port.
 */
export const MARK_TO_PROXY = 0x0a00;
/** The mark the proxy sets (SO_MARK) on its upstream sockets: never redirected again. */
export const MARK_FROM_PROXY = 0x0b00;
export const MARK_MASK = 0xffff;

/** The mark of a packet steered to the proxy listening on port (0: a reply to the proxy's upstream). */
export function proxyMark(port: number): number {
  return ((port << 16) | MARK_TO_PROXY) >>> 0;
}

/** mbr_ct_value.flags (MBR_CT_F_*). */
export const CTFlags = { SEEN_REPLY: 1, CLOSING: 2, PROXY_UPSTREAM: 4, PEER_L7: 8 } as const;
