/**
 * The observer: every datapath event and every L7 event becomes a flow in
 * the ring, and subscribers (the Observer API's followers, later a durable
 * flow store) are told of each batch. Loss is counted where it happens,
 * never silent: events the kernel ring could not take (the datapath counts
 * them), and records the observer could not take in.
 *
 * Datapath events are taken in as the kernel wrote them (ingestBatch: the
 * ring buffer reader's batch, records back to back); their flows are made
 * when read (flow(), writeResponse()).
 */
import { toBinary } from '@bufbuild/protobuf';
import { DATAPATH_EVENT_BYTES, DatapathEventOffsets as O, type DatapathEventRecord } from '@membrane/api';
import { flow as pb } from '@membrane/proto';
import { DatapathFlows } from './datapath-flow.js';
import { EventRing, SLOT_DATAPATH, WallClock, type FlowSource } from './event-ring.js';
import type { FlowContext } from './flow-context.js';
import { FlowMetrics } from './flow-metrics.js';
import { L7Flows, type DnsEventRecord, type HttpEventRecord } from './l7-flow.js';
import type { ProtoWriter } from './proto-writer.js';

export interface ObserverStatus {
  /** Flows made since start. */
  flowsSeen: number;
  /** Flows the ring holds now, and at most. */
  flows: number;
  bufferSize: number;
  /** Lost before they were flows, by where: the kernel ring buffer, the observer (a record it could not take in). */
  lost: { kernel: number; observer: number };
  startedAt: number;
  /** Subscribers of the flow ring now (GetFlows followers). */
  followers: number;
}

/** The batch framing of the ring buffer reader: a little-endian u32 length before each record. */
const RECORD_HEADER_BYTES = 4;
const PROTO_CODE: Record<number, number> = { 6: 1, 17: 2, 132: 3, 1: 4 };

export class Observer implements FlowSource {
  readonly ring: EventRing;
  /** Hubble's metric families, counted from every flow and loss. */
  readonly metrics = new FlowMetrics();
  readonly clock = new WallClock();
  private readonly datapath: DatapathFlows;
  private readonly l7: L7Flows;
  private readonly lost = { kernel: 0, observer: 0 };
  private readonly startedAt = Date.now();
  private readonly problems: (what: string) => void;
  private readonly lostListeners = new Set<(source: pb.LostEventSource, count: number) => void>();
  private readonly prefix = Math.random().toString(16).slice(2, 10);
  private readonly encoded: (Uint8Array | undefined)[];
  private readonly ctx: FlowContext;

  constructor(opts: { context: FlowContext; capacity?: number; problem?: (what: string) => void }) {
    const ctx = (this.ctx = opts.context);
    this.ring = new EventRing(opts.capacity);
    this.encoded = new Array<Uint8Array | undefined>(this.ring.capacity).fill(undefined);
    this.datapath = new DatapathFlows(this.ring, ctx.nodeName, (seq) => this.uuid(seq));
    this.l7 = new L7Flows(ctx, this.datapath);
    this.problems = opts.problem ?? (() => {});
  }

  /** A flow's uuid: this observer's prefix and the flow's sequence number. */
  uuid(seq: number): string {
    return `${this.prefix}-${seq.toString(16).padStart(12, '0')}`;
  }

  get seen(): number {
    return this.ring.seen;
  }

  get oldest(): number {
    return this.ring.oldest;
  }

  onPush(l: () => void): () => void {
    return this.ring.onPush(l);
  }

  timeMs(seq: number): number {
    return this.ring.timeMs(seq);
  }

  /** The flow with this sequence number, if the ring still holds it (made once, then kept with it). */
  flow(seq: number): pb.Flow | undefined {
    if (!this.ring.has(seq)) return undefined;
    const slot = this.ring.slot(seq);
    let f = this.ring.flows[slot];
    if (!f) this.ring.flows[slot] = f = this.datapath.materialize(seq);
    return f;
  }

  /** Writes the gRPC frame of GetFlowsResponse{flow, node_name, time} of this flow (false: no longer held). */
  writeResponse(seq: number, w: ProtoWriter, nodeName: string): boolean {
    if (!this.ring.has(seq)) return false;
    const slot = this.ring.slot(seq);
    const frame = w.beginFrame();
    if (this.ring.kind[slot] === SLOT_DATAPATH) {
      w.begin(1);
      this.datapath.write(seq, w);
      w.end();
    } else {
      let bytes = this.encoded[slot];
      if (!bytes) this.encoded[slot] = bytes = toBinary(pb.FlowSchema, this.ring.flows[slot]!);
      w.bytesField(1, bytes);
    }
    w.string(1000, nodeName);
    w.timestamp(1001, this.ring.secs[slot]!, this.ring.nanos[slot]!);
    w.endFrame(frame);
    return true;
  }

  /** The namespaces of the endpoints in the flows held. */
  namespaces(): Set<string> {
    const out = new Set<string>();
    const r = this.ring;
    for (let seq = r.oldest; seq < r.seen; seq++) {
      const s = r.slot(seq);
      if (r.kind[s] === SLOT_DATAPATH) {
        const self = r.self[s];
        const peer = r.peer[s];
        if (self?.namespace) out.add(self.namespace);
        if (peer && !Array.isArray(peer) && (peer as { namespace?: string }).namespace) out.add((peer as { namespace: string }).namespace);
      } else {
        const f = r.flows[s];
        for (const e of [f?.source, f?.destination]) if (e?.namespace) out.add(e.namespace);
      }
    }
    return out;
  }

  /**
   * Takes in one batch of the kernel ring buffer's reader: records back to
   * back, each after its u32 length. A record of another size than an
   * event is counted lost by the observer, never guessed at.
   */
  ingestBatch(batch: Uint8Array): void {
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    const end = batch.byteLength;
    let at = 0;
    let n = 0;
    while (at < end) {
      if (end - at < RECORD_HEADER_BYTES) {
        this.unparsed(`a batch ends with ${end - at} stray byte(s)`);
        break;
      }
      const len = view.getUint32(at, true);
      const start = at + RECORD_HEADER_BYTES;
      at = start + len;
      if (at > end) {
        this.unparsed(`a record claims ${len} bytes, ${end - start} remain in its batch`);
        break;
      }
      if (len !== DATAPATH_EVENT_BYTES) {
        this.unparsed(`a record of ${len} bytes (an event is ${DATAPATH_EVENT_BYTES})`);
        continue;
      }
      this.take(view, start);
      n++;
    }
    if (n) this.ring.notify();
  }

  private take(view: DataView, at: number): void {
    const seq = this.ring.pushEvent(view, at, this.ctx, this.clock);
    this.encoded[this.ring.slot(seq)] = undefined;
    // The metrics' key: every field their labels depend on.
    const drop = view.getUint8(at + O.type) === 2 ? 1 : 0;
    const reason = view.getUint16(at + O.drop_reason, true);
    const redirected = !drop && view.getUint8(at + O.l7) !== 0 && view.getUint16(at + O.proxy_port, true) !== 0 ? 1 : 0;
    const proto = PROTO_CODE[view.getUint8(at + O.proto)] ?? 0;
    const flags = view.getUint8(at + O.tcp_flags);
    const dport = view.getUint16(at + O.dport, false);
    const reply = view.getUint8(at + O.is_reply) !== 0 ? 1 : 0;
    const egress = view.getUint8(at + O.direction) === 1 ? 1 : 0;
    const self = this.ring.self[this.ring.slot(seq)];
    const cookie = view.getUint32(at + O.cookie, true);
    const match = drop || !self?.policy || cookie === 0 ? 0 : this.datapath.matchType(self, cookie);
    const key = ((((((((drop * 65536 + reason) * 2 + redirected) * 8 + proto) * 256 + flags) * 65536 + dport) * 2 + reply) * 2 + egress) * 8 + match);
    this.metrics.tally(key, () => this.flow(seq)!);
  }

  /** Takes in decoded events (replays and tests): each is laid out as the kernel lays it out, then taken in. */
  ingestDatapath(events: readonly DatapathEventRecord[]): void {
    if (events.length === 0) return;
    this.ingestBatch(eventBatch(events));
  }

  ingestL7(e: HttpEventRecord | DnsEventRecord): void {
    let f: pb.Flow;
    try {
      f = 'kind' in e && e.kind === 'dns' ? this.l7.fromDns(e) : this.l7.fromHttp(e as HttpEventRecord);
    } catch (err) {
      this.unparsed(err instanceof Error ? err.message : String(err));
      return;
    }
    f.uuid = this.uuid(this.ring.seen);
    const seq = this.ring.pushFlow(f);
    this.encoded[this.ring.slot(seq)] = undefined;
    this.metrics.observe(f);
    this.ring.notify();
  }

  /** A follower of the ring was overtaken and missed n flows (counted in hubble_lost_events_total). */
  readerLost(n: number): void {
    if (n > 0) this.metrics.lostEvents(pb.LostEventSource.HUBBLE_RING_BUFFER, n);
  }

  /** The kernel reports more events it could not put in its ring buffer. */
  kernelLost(n: number): void {
    if (n <= 0) return;
    this.lost.kernel += n;
    this.metrics.lostEvents(pb.LostEventSource.PERF_EVENT_RING_BUFFER, n);
    for (const l of this.lostListeners) l(pb.LostEventSource.PERF_EVENT_RING_BUFFER, n);
  }

  /** Told of every loss as it is counted (GetFlows followers pass it on in-band). */
  onLost(l: (source: pb.LostEventSource, count: number) => void): () => void {
    this.lostListeners.add(l);
    return () => this.lostListeners.delete(l);
  }

  status(): ObserverStatus {
    return { flowsSeen: this.ring.seen, flows: this.ring.size, bufferSize: this.ring.capacity, lost: { ...this.lost }, startedAt: this.startedAt, followers: this.ring.subscribers };
  }

  private unparsed(what: string): void {
    this.metrics.lostEvents(pb.LostEventSource.OBSERVER_EVENTS_QUEUE, 1);
    for (const l of this.lostListeners) l(pb.LostEventSource.OBSERVER_EVENTS_QUEUE, 1);
    if (this.lost.observer++ === 0) this.problems(`observer: a record it could not take in: ${what}`);
  }
}

/** Events laid out as the kernel ring buffer's reader delivers them (a batch). */
export function eventBatch(events: readonly DatapathEventRecord[]): Uint8Array {
  const size = RECORD_HEADER_BYTES + DATAPATH_EVENT_BYTES;
  const b = new DataView(new ArrayBuffer(events.length * size));
  events.forEach((e, i) => {
    const at = i * size;
    b.setUint32(at, DATAPATH_EVENT_BYTES, true);
    const r = at + RECORD_HEADER_BYTES;
    b.setBigUint64(r + O.ts_ns, e.ts_ns, true);
    b.setUint8(r + O.type, e.type);
    b.setUint8(r + O.direction, e.direction);
    b.setUint8(r + O.proto, e.proto);
    b.setUint8(r + O.tcp_flags, e.tcp_flags);
    b.setUint8(r + O.verdict, e.verdict);
    b.setUint8(r + O.is_reply, e.is_reply);
    b.setUint8(r + O.l7, e.l7);
    b.setUint8(r + O.pad, e.pad);
    b.setUint16(r + O.drop_reason, e.drop_reason, true);
    b.setUint16(r + O.proxy_port, e.proxy_port, true);
    b.setUint32(r + O.ep_id, e.ep_id, true);
    b.setUint32(r + O.src_identity, e.src_identity, true);
    b.setUint32(r + O.dst_identity, e.dst_identity, true);
    b.setUint32(r + O.saddr, e.saddr >>> 0, false);
    b.setUint32(r + O.daddr, e.daddr >>> 0, false);
    b.setUint16(r + O.sport, e.sport, false);
    b.setUint16(r + O.dport, e.dport, false);
    b.setUint32(r + O.ifindex, e.ifindex, true);
    b.setUint32(r + O.cookie, e.cookie, true);
    b.setUint32(r + O.len, e.len, true);
  });
  return new Uint8Array(b.buffer);
}
