/**
 * The observer: every datapath event and every L7 event becomes a flow in
 * the ring, and subscribers (the Observer API's followers, later a durable
 * flow store) are told of each. Loss is counted where it happens, never
 * silent: events the kernel ring could not take (the datapath counts them),
 * and events the observer could not turn into a flow.
 */
import { flow as pb } from '@membrane/proto';
import { FlowParser, type DatapathEventRecord, type DnsEventRecord, type FlowContext, type HttpEventRecord } from './flow-parser.js';
import { FlowMetrics } from './flow-metrics.js';
import { FlowRing } from './flow-ring.js';

export interface ObserverStatus {
  /** Flows made since start. */
  flowsSeen: number;
  /** Flows the ring holds now, and at most. */
  flows: number;
  bufferSize: number;
  /** Lost before they were flows, by where: the kernel ring buffer, the observer (an event it could not parse). */
  lost: { kernel: number; observer: number };
  startedAt: number;
}

export class Observer {
  readonly ring: FlowRing<pb.Flow>;
  readonly parser: FlowParser;
  /** Hubble's metric families, counted from every flow and loss. */
  readonly metrics = new FlowMetrics();
  private readonly lost = { kernel: 0, observer: 0 };
  private readonly startedAt = Date.now();
  private readonly problems: (what: string) => void;
  private readonly lostListeners = new Set<(source: pb.LostEventSource, count: number) => void>();

  constructor(opts: { context: FlowContext; capacity?: number; problem?: (what: string) => void }) {
    this.ring = new FlowRing<pb.Flow>(opts.capacity);
    this.parser = new FlowParser(opts.context);
    this.problems = opts.problem ?? (() => {});
  }

  ingestDatapath(events: readonly DatapathEventRecord[]): void {
    for (const e of events) {
      try {
        this.add(this.parser.fromDatapath(e));
      } catch (err) {
        this.unparsed(err);
      }
    }
  }

  ingestL7(e: HttpEventRecord | DnsEventRecord): void {
    try {
      this.add('kind' in e && e.kind === 'dns' ? this.parser.fromDns(e) : this.parser.fromHttp(e as HttpEventRecord));
    } catch (err) {
      this.unparsed(err);
    }
  }

  private add(f: pb.Flow): void {
    this.ring.push(f);
    this.metrics.observe(f);
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
    return { flowsSeen: this.ring.seen, flows: this.ring.size, bufferSize: this.ring.capacity, lost: { ...this.lost }, startedAt: this.startedAt };
  }

  private unparsed(err: unknown): void {
    this.metrics.lostEvents(pb.LostEventSource.OBSERVER_EVENTS_QUEUE, 1);
    for (const l of this.lostListeners) l(pb.LostEventSource.OBSERVER_EVENTS_QUEUE, 1);
    if (this.lost.observer++ === 0) this.problems(`observer: an event it could not turn into a flow: ${err instanceof Error ? err.message : String(err)}`);
  }
}
