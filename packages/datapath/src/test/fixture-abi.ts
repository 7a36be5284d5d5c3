/**
 * The layouts and constants of bpf/test/fixture.c, the small tc classifier
 * the addon's tests load (compiled to dist/bpf/test/fixture.o).
 */
import { fileURLToPath } from 'node:url';
import { struct } from '../codecs.js';

export const FIXTURE_OBJECT = fileURLToPath(new URL('../bpf/test/fixture.o', import.meta.url));
/** bpf/test/rejected.c: a program the verifier refuses. */
export const REJECTED_OBJECT = fileURLToPath(new URL('../bpf/test/rejected.o', import.meta.url));

export const FX_PROGRAM = 'mbr_fx_classify';
export const FX_MAPS = { count: 'mbr_fx_count', config: 'mbr_fx_config', lpm: 'mbr_fx_lpm', events: 'mbr_fx_events', policy: 'mbr_fx_policy' } as const;

/** Keys of mbr_fx_count (u32 → u64). */
export const FxCounter = { PACKETS: 0, IPV4: 1, TCP: 2, DROPPED: 3, EVENTS_LOST: 4 } as const;
/** mbr_fx_config[0].mode */
export const FxMode = { POLICY: 0, DROP_ALL: 1 } as const;
/** The key of mbr_fx_policy whose inner map lists denied ports. */
export const FX_POLICY_ENDPOINT = 1;
export const FX_EVENT_PACKET = 1;

export type FxEvent = {
  kind: number;
  ifindex: number;
  len: number;
  mark: number;
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
  verdict: number;
  pad: number;
  identity: number;
};
export const fxEventCodec = struct<FxEvent>('fx_event', [
  ['kind', 'u32'],
  ['ifindex', 'u32'],
  ['len', 'u32'],
  ['mark', 'u32'],
  ['saddr', 'be32'],
  ['daddr', 'be32'],
  ['sport', 'be16'],
  ['dport', 'be16'],
  ['proto', 'u8'],
  ['verdict', 'u8'],
  ['pad', 'u16'],
  ['identity', 'u32'],
]);

export type FxLpmKey = { prefixlen: number; addr: number };
export const fxLpmKeyCodec = struct<FxLpmKey>('fx_lpm_key', [
  ['prefixlen', 'u32'],
  ['addr', 'be32'],
]);

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
