/**
 * Live flows from the agent (server-sent events), kept in memory for the
 * map and the table, with the state of the connection: live, the agent
 * away (the page keeps what it has and reconnects, resuming after the last
 * flow it got), or the session stale (a new link is needed).
 */
import { createRegistry, fromJson, type JsonValue } from '@bufbuild/protobuf';
import { flow as pb, membranev1 } from '@membrane/proto';

export type FeedState = 'connecting' | 'live' | 'agent-down' | 'stale';
const registry = createRegistry(membranev1.FlowExtensionSchema);

export class FlowFeed {
  flows: pb.Flow[] = [];
  /** Bumped on every change (views compare it). */
  version = 0;
  state: FeedState = 'connecting';
  lost = 0;
  private lastSeq: string | undefined;
  private source?: EventSource;
  private readonly listeners = new Set<() => void>();
  private scheduled = false;
  private retry?: ReturnType<typeof setTimeout>;
  private readonly seen = new Set<string>();

  constructor(private readonly max = 20_000) {}

  start(): void {
    this.open();
  }

  stop(): void {
    this.source?.close();
    if (this.retry) clearTimeout(this.retry);
  }

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Flows that arrived as JSON elsewhere (tests, imports) join the feed. */
  add(f: pb.Flow): void {
    if (f.uuid && this.seen.has(f.uuid)) return;
    if (f.uuid) this.seen.add(f.uuid);
    this.flows.push(f);
    if (this.flows.length > this.max * 1.25) {
      for (const old of this.flows.splice(0, this.flows.length - this.max)) this.seen.delete(old.uuid);
    }
    this.changed();
  }

  private changed(): void {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    };
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(run);
    else setTimeout(run, 16);
  }

  private setState(s: FeedState): void {
    if (this.state === s) return;
    this.state = s;
    this.changed();
  }

  private open(): void {
    const q = this.lastSeq !== undefined ? `after=${this.lastSeq}` : 'number=5000';
    const es = new EventSource(`/api/v1/flows/stream?${q}`);
    this.source = es;
    es.addEventListener('open', () => this.setState('live'));
    es.addEventListener('flow', (ev) => {
      const m = ev as MessageEvent<string>;
      if (m.lastEventId) this.lastSeq = m.lastEventId;
      if (this.flows.length === 0 && typeof performance.mark === 'function') performance.mark('membrane:first-flow');
      try {
        this.add(fromJson(pb.FlowSchema, JSON.parse(m.data) as JsonValue, { registry, ignoreUnknownFields: true }));
      } catch {
        this.lost++;
      }
    });
    es.addEventListener('lost', (ev) => {
      try {
        this.lost += Number((JSON.parse((ev as MessageEvent<string>).data) as { count: number }).count) || 0;
        this.changed();
      } catch {
        // a malformed notice: nothing to count
      }
    });
    es.addEventListener('error', () => {
      es.close();
      void this.diagnose();
    });
  }

  /** Why the stream broke: the session (401) or the agent (no answer); reconnect when it may help. */
  private async diagnose(): Promise<void> {
    try {
      const r = await fetch('/api/v1/status', { credentials: 'same-origin' });
      if (r.status === 401) return this.setState('stale');
      this.setState(r.ok ? 'connecting' : 'agent-down');
    } catch {
      this.setState('agent-down');
    }
    this.retry = setTimeout(() => this.open(), 1000);
  }
}
