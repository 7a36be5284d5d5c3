/**
 * The agent's side of the L7 proxy's contract (the proxy is a process of
 * its own, packages/proxy):
 *   - the proxy long-polls `GET /v1/proxy/snapshot?after=N` for a snapshot
 *     other than N (revisions start from the clock, so a restarted agent
 *     never repeats one); asking for "after N" says it has put N in force (the
 *     ack), so an apply can wait until the proxy judges by what it applied;
 *   - it posts its L7 events to `POST /v1/proxy/events`, kept here in a
 *     bounded ring for the observer (counted, never silently dropped: what
 *     falls off the ring is counted).
 */
import type { L7Event, ProxySnapshot } from '@membrane/proxy';
import { buildSnapshot, type SnapshotSources } from './proxy-snapshot.js';

export interface ProxyHubStatus {
  revision: number;
  /** The newest revision the proxy said it has in force. */
  applied: number;
  /** Milliseconds since the proxy last asked (undefined: never). */
  lastSeenMs?: number;
  /** lost: events the proxy could not deliver (it says how many); evicted: older events the ring let go. */
  events: { received: number; lost: number; evicted: number };
}

/** How long the proxy counts as connected after its last poll. */
const ALIVE_MS = 35_000;

export class ProxyHub {
  /** Starts from the clock, so a restarted agent's revisions never repeat the previous one's (the proxy it adopts asks by number). */
  private revision = Date.now();
  private content = '';
  private snapshot: ProxySnapshot;
  private applied = 0;
  private lastSeen?: number;
  private polls = new Set<() => void>();
  private ackWaiters = new Set<() => void>();
  /** A circular buffer: `next` is where the next event goes once it is full. */
  private readonly ring: L7Event[] = [];
  private next = 0;
  private received = 0;
  private evicted = 0;
  private lost = 0;
  private readonly subscribers = new Set<(e: L7Event) => void>();

  constructor(
    private readonly sources: SnapshotSources,
    private readonly opts: { ringSize?: number; pollTimeoutMs?: number } = {},
  ) {
    this.snapshot = { revision: 0, policies: [], identities: [], ipcache: [], endpoints: [] };
    this.refresh();
  }

  /** Rebuilds the snapshot from the state in force; a new revision only when something changed. */
  refresh(): number {
    const content = buildSnapshot(this.sources);
    const text = JSON.stringify(content);
    if (text !== this.content) {
      this.content = text;
      this.snapshot = { revision: ++this.revision, ...content };
      for (const wake of [...this.polls]) wake();
    }
    return this.revision;
  }

  current(): ProxySnapshot {
    return this.snapshot;
  }

  /** A proxy asks for a snapshot newer than `after` (which it has in force); waits up to the poll timeout, then answers the current one. */
  async poll(after: number): Promise<ProxySnapshot> {
    this.seen(after);
    if (this.revision !== after) return this.snapshot;
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.polls.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, this.opts.pollTimeoutMs ?? 25_000);
      this.polls.add(wake);
    });
    return this.snapshot;
  }

  private seen(applied: number): void {
    this.lastSeen = Date.now();
    if (applied === this.revision && this.applied !== applied) {
      this.applied = applied;
      for (const w of [...this.ackWaiters]) w();
    }
  }

  /** Whether a proxy asked lately (an apply only waits for a proxy that is there). */
  connected(): boolean {
    return this.lastSeen !== undefined && Date.now() - this.lastSeen < ALIVE_MS;
  }

  /**
   * Refreshes, then waits (at most timeoutMs) until the proxy has the new
   * revision in force. True when it has (or nothing changed, or no proxy is
   * connected: a proxy that starts later fetches it first).
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const rev = this.refresh();
    if (this.applied === rev || !this.connected()) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.ackWaiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (this.applied === rev) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.ackWaiters.add(check);
    });
  }

  /** Events from the proxy. */
  receive(events: readonly L7Event[], lost = 0): void {
    this.lost += lost;
    const size = this.opts.ringSize ?? 4096;
    for (const e of events) {
      this.received++;
      if (this.ring.length < size) this.ring.push(e);
      else {
        this.ring[this.next] = e;
        this.next = (this.next + 1) % size;
        this.evicted++;
      }
      for (const s of this.subscribers) s(e);
    }
  }

  /** The newest events, oldest first. */
  recent(limit = this.ring.length): L7Event[] {
    const ordered = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return ordered.slice(Math.max(0, ordered.length - limit));
  }

  subscribe(fn: (e: L7Event) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  status(): ProxyHubStatus {
    return {
      revision: this.revision,
      applied: this.applied,
      ...(this.lastSeen !== undefined ? { lastSeenMs: Date.now() - this.lastSeen } : {}),
      events: { received: this.received, lost: this.lost, evicted: this.evicted },
    };
  }

  /** Answers every waiting poll (the agent stops). */
  close(): void {
    for (const wake of [...this.polls]) wake();
  }
}
