/**
 * The observer's flow ring, kept compact: a datapath event is held as the
 * kernel wrote it (its 56 bytes, copied into one typed array) next to the
 * references the agent's context gave for it when it arrived (the endpoint,
 * the peer, the names the DNS proxy saw, the Service) and its wall-clock
 * time. Its Hubble flow is made only when somebody reads it (as a
 * flow.Flow, cached in the slot, or straight into GetFlows' wire bytes):
 * taking an event in costs a copy and a few map lookups, no allocation, so
 * the kernel's ring buffer is drained at its own speed. Flows of the
 * proxies (HTTP, DNS) arrive seldom and are kept made.
 *
 * Insert is O(1) (one slot overwritten); every slot has a sequence number,
 * so a reader the writer overtook learns how many it missed.
 */
import { DATAPATH_EVENT_BYTES, DatapathEventOffsets as O } from '@membrane/api';
import type { flow as pb } from '@membrane/proto';
import type { EndpointInfo, FlowContext, ServiceRef } from './flow-context.js';

const WORDS = DATAPATH_EVENT_BYTES / 4;
export const SLOT_DATAPATH = 1;
export const SLOT_FLOW = 2;

/** What readers of flows need of a ring (the observer's, or a plain FlowRing of made flows). */
export interface FlowSource {
  readonly seen: number;
  readonly oldest: number;
  /** The flow with this sequence number, made when first asked. */
  flow(seq: number): pb.Flow | undefined;
  /** Its time in milliseconds since the epoch (without making it). */
  timeMs(seq: number): number;
  onPush(l: () => void): () => void;
}

/** A datapath event's peer: a local endpoint, or the labels of its identity. */
export type Peer = EndpointInfo | readonly string[] | undefined;

const NONE: readonly string[] = [];

export class EventRing {
  readonly capacity: number;
  /** The sequence number the next slot gets (= slots ever written). */
  private next = 0;
  readonly kind: Uint8Array;
  /** The events' bytes, as the kernel wrote them (DATAPATH_EVENT_BYTES a slot). */
  private readonly bytes: DataView;
  /** Wall-clock time: whole seconds and nanoseconds. */
  readonly secs: Float64Array;
  readonly nanos: Uint32Array;
  readonly self: (EndpointInfo | undefined)[];
  readonly peer: Peer[];
  readonly srcNames: (readonly string[])[];
  readonly dstNames: (readonly string[])[];
  readonly service: (ServiceRef | undefined)[];
  /** Proxy flows, and datapath flows once made. */
  readonly flows: (pb.Flow | undefined)[];
  private readonly listeners = new Set<() => void>();

  constructor(capacity = 65_535) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow ring capacity ${capacity}: a positive integer`);
    this.capacity = capacity;
    this.kind = new Uint8Array(capacity);
    this.bytes = new DataView(new ArrayBuffer(capacity * DATAPATH_EVENT_BYTES));
    this.secs = new Float64Array(capacity);
    this.nanos = new Uint32Array(capacity);
    this.self = new Array<EndpointInfo | undefined>(capacity).fill(undefined);
    this.peer = new Array<Peer>(capacity).fill(undefined);
    this.srcNames = new Array<readonly string[]>(capacity).fill(NONE);
    this.dstNames = new Array<readonly string[]>(capacity).fill(NONE);
    this.service = new Array<ServiceRef | undefined>(capacity).fill(undefined);
    this.flows = new Array<pb.Flow | undefined>(capacity).fill(undefined);
  }

  get seen(): number {
    return this.next;
  }

  get size(): number {
    return Math.min(this.next, this.capacity);
  }

  get oldest(): number {
    return this.next - this.size;
  }

  has(seq: number): boolean {
    return seq >= this.oldest && seq < this.next;
  }

  slot(seq: number): number {
    return seq % this.capacity;
  }

  /**
   * Takes one datapath event in: `src` holds its record at byte `at`
   * (`src` a view of the whole batch). Returns its sequence number.
   */
  pushEvent(src: DataView, at: number, ctx: FlowContext, clock: WallClock): number {
    const seq = this.next++;
    const slot = seq % this.capacity;
    const b = this.bytes;
    const off = slot * DATAPATH_EVENT_BYTES;
    for (let i = 0; i < WORDS; i++) b.setUint32(off + i * 4, src.getUint32(at + i * 4, true), true);
    this.kind[slot] = SLOT_DATAPATH;
    this.flows[slot] = undefined;
    clock.wall(b.getUint32(off, true), b.getUint32(off + 4, true), this, slot);
    const egress = b.getUint8(off + O.direction) === 1;
    const saddr = b.getUint32(off + O.saddr, false);
    const daddr = b.getUint32(off + O.daddr, false);
    this.self[slot] = ctx.endpoint(b.getUint32(off + O.ep_id, true));
    const peerAddr = egress ? daddr : saddr;
    const local = ctx.endpointAt(peerAddr);
    this.peer[slot] = local ?? ctx.identityLabels(b.getUint32(off + (egress ? O.dst_identity : O.src_identity), true)) ?? NONE;
    this.srcNames[slot] = ctx.names(saddr);
    this.dstNames[slot] = ctx.names(daddr);
    this.service[slot] = ctx.service?.(daddr, b.getUint16(off + O.dport, false));
    return seq;
  }

  /** Takes a made flow in (the proxies'), with its time. */
  pushFlow(f: pb.Flow): number {
    const seq = this.next++;
    const slot = seq % this.capacity;
    this.kind[slot] = SLOT_FLOW;
    this.flows[slot] = f;
    this.secs[slot] = Number(f.time?.seconds ?? 0n);
    this.nanos[slot] = f.time?.nanos ?? 0;
    this.self[slot] = undefined;
    this.peer[slot] = undefined;
    this.srcNames[slot] = NONE;
    this.dstNames[slot] = NONE;
    this.service[slot] = undefined;
    return seq;
  }

  /** Tells the readers that slots were written (once per batch). */
  notify(): void {
    for (const l of this.listeners) l();
  }

  /** How many are told of pushes now. */
  get subscribers(): number {
    return this.listeners.size;
  }

  onPush(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  timeMs(seq: number): number {
    const s = seq % this.capacity;
    return this.secs[s]! * 1000 + Math.floor(this.nanos[s]! / 1e6);
  }

  /** One byte, u16 or u32 field of a datapath slot (host-order fields; addresses and ports use the be readers). */
  u8(slot: number, field: number): number {
    return this.bytes.getUint8(slot * DATAPATH_EVENT_BYTES + field);
  }

  u16(slot: number, field: number): number {
    return this.bytes.getUint16(slot * DATAPATH_EVENT_BYTES + field, true);
  }

  u32(slot: number, field: number): number {
    return this.bytes.getUint32(slot * DATAPATH_EVENT_BYTES + field, true);
  }

  be16(slot: number, field: number): number {
    return this.bytes.getUint16(slot * DATAPATH_EVENT_BYTES + field, false);
  }

  be32(slot: number, field: number): number {
    return this.bytes.getUint32(slot * DATAPATH_EVENT_BYTES + field, false);
  }
}

/**
 * The kernel's monotonic clock (bpf_ktime_get_ns, which process.hrtime
 * shares) turned into wall-clock time, exactly to the nanosecond.
 */
export class WallClock {
  private offSec = 0;
  private offNanos = 0;

  constructor() {
    this.resync();
  }

  /** Re-reads the clocks' offset (the wall clock may be stepped). */
  resync(): void {
    const off = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    const sec = off / 1_000_000_000n;
    let nanos = off - sec * 1_000_000_000n;
    let s = sec;
    if (nanos < 0n) {
      nanos += 1_000_000_000n;
      s -= 1n;
    }
    this.offSec = Number(s);
    this.offNanos = Number(nanos);
  }

  /** Fixes the offset: monotonic 0 is this wall-clock time (tests). */
  pin(wallNs: bigint): void {
    this.offSec = Number(wallNs / 1_000_000_000n);
    this.offNanos = Number(wallNs % 1_000_000_000n);
  }

  /** Writes the wall-clock time of monotonic nanoseconds (lo, hi words) into the ring's slot. */
  wall(lo: number, hi: number, into: { secs: Float64Array; nanos: Uint32Array }, slot: number): void {
    let sec: number;
    let nanos: number;
    if (hi < 0x200000) {
      const ns = hi * 4294967296 + lo; // exact below 2^53
      sec = Math.floor(ns / 1e9);
      nanos = ns - sec * 1e9;
      if (nanos < 0) {
        sec -= 1;
        nanos += 1e9;
      } else if (nanos >= 1e9) {
        sec += 1;
        nanos -= 1e9;
      }
    } else {
      const ns = (BigInt(hi) << 32n) | BigInt(lo);
      sec = Number(ns / 1_000_000_000n);
      nanos = Number(ns % 1_000_000_000n);
    }
    sec += this.offSec;
    nanos += this.offNanos;
    if (nanos >= 1e9) {
      sec += 1;
      nanos -= 1e9;
    }
    into.secs[slot] = sec;
    into.nanos[slot] = nanos;
  }
}
