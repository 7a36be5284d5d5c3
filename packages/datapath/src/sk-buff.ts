/**
 * The struct __sk_buff context of a tc program under BPF_PROG_TEST_RUN.
 * Offsets come from the addon (compiled against <linux/bpf.h>), so nothing
 * here hard-codes the layout. The kernel takes only the fields below as
 * input and rejects a context with any other byte set (EINVAL); an ifindex
 * must name a device in the caller's netns (1 is lo).
 */
import type { SkBuffLayout } from './native.js';

export interface SkBuffInput {
  mark?: number;
  priority?: number;
  ingressIfindex?: number;
  ifindex?: number;
  /** Up to 5 words of the control block skb->cb. */
  cb?: readonly number[];
  tstamp?: bigint;
  wireLen?: number;
  gsoSegs?: number;
  gsoSize?: number;
  hwtstamp?: bigint;
}

export interface SkBuffOutput {
  mark: number;
  priority: number;
  ingressIfindex: number;
  ifindex: number;
  cb: number[];
  tstamp: bigint;
  wireLen: number;
  gsoSegs: number;
  gsoSize: number;
  hwtstamp: bigint;
}

const U32_FIELDS = ['mark', 'priority', 'ingressIfindex', 'ifindex', 'wireLen', 'gsoSegs', 'gsoSize'] as const;
const CB_WORDS = 5;

export function encodeSkBuff(ctx: SkBuffInput, layout: SkBuffLayout): Buffer {
  const buf = Buffer.alloc(layout.size);
  for (const f of U32_FIELDS) {
    const v = ctx[f];
    if (v !== undefined) buf.writeUInt32LE(v, layout.offsets[f]);
  }
  if (ctx.cb) {
    if (ctx.cb.length > CB_WORDS) throw new RangeError(`__sk_buff.cb holds ${CB_WORDS} words, got ${ctx.cb.length}`);
    ctx.cb.forEach((w, i) => buf.writeUInt32LE(w, layout.offsets.cb + i * 4));
  }
  if (ctx.tstamp !== undefined) buf.writeBigUInt64LE(ctx.tstamp, layout.offsets.tstamp);
  if (ctx.hwtstamp !== undefined) buf.writeBigUInt64LE(ctx.hwtstamp, layout.offsets.hwtstamp);
  return buf;
}

export function decodeSkBuff(buf: Uint8Array, layout: SkBuffLayout): SkBuffOutput {
  if (buf.length < layout.size) throw new RangeError(`__sk_buff needs ${layout.size} bytes, got ${buf.length}`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const u32 = (f: (typeof U32_FIELDS)[number]): number => b.readUInt32LE(layout.offsets[f]);
  return {
    mark: u32('mark'),
    priority: u32('priority'),
    ingressIfindex: u32('ingressIfindex'),
    ifindex: u32('ifindex'),
    cb: Array.from({ length: CB_WORDS }, (_, i) => b.readUInt32LE(layout.offsets.cb + i * 4)),
    tstamp: b.readBigUInt64LE(layout.offsets.tstamp),
    wireLen: u32('wireLen'),
    gsoSegs: u32('gsoSegs'),
    gsoSize: u32('gsoSize'),
    hwtstamp: b.readBigUInt64LE(layout.offsets.hwtstamp),
  };
}
