/**
 * GetFlows' semantics over the flow ring, shared by the Observer API and the
 * agent's REST route:
 *   - `number` N: the last N matching flows (the first N with `first`);
 *   - `since`/`until`: the matching flows of that window (`number` then
 *     bounds how many); nothing of these: every flow the ring holds, unless
 *     `follow` alone asks only for what comes next;
 *   - `follow`: after that, every new matching flow as it comes — also after
 *     a `since` window (cilium/hubble#363), until the caller stops.
 * A follower that the writer overtakes, and events the kernel or the
 * observer lost meanwhile, are told in-band as lost-event notices with the
 * exact count, never skipped silently.
 */
import { flow as pb } from '@membrane/proto';
import type { FlowSource } from './event-ring.js';
import { matchesAll, type FlowPredicate } from './flow-filter.js';
import type { FlowRing } from './flow-ring.js';

export interface FlowQuery {
  number?: number;
  first?: boolean;
  follow?: boolean;
  /** Milliseconds since the epoch. */
  since?: number;
  until?: number;
  predicate: FlowPredicate;
  /** Every flow from this sequence number on, then (follow) what comes: a reader resuming where it was (one beyond the ring's end: a new ring, read from its start). */
  fromSeq?: number;
  /** Yield `{ idle: true }` before waiting for new flows (a writer that batches flushes then). */
  idleMarks?: boolean;
}

/** A flow (by its sequence number in the source: `source.flow(seq)` makes it) or a lost-events notice. */
export type FlowItem = { seq: number } | { lost: { source: pb.LostEventSource; count: number } } | { idle: true };

/** Where lost events are announced (Observer.onLost). */
export interface LostFeed {
  onLost(l: (source: pb.LostEventSource, count: number) => void): () => void;
}

export class QueryError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0);

/** A ring of made flows as a FlowSource (offline mode, tests). */
export function ringSource(ring: FlowRing<pb.Flow>): FlowSource {
  return {
    get seen() {
      return ring.seen;
    },
    get oldest() {
      return ring.oldest;
    },
    flow: (seq) => ring.at(seq),
    timeMs: (seq) => ms(ring.at(seq)?.time),
    onPush: (l) => ring.onPush(l),
  };
}

export function checkQuery(q: FlowQuery): void {
  if (q.first && q.follow) throw new QueryError('first', 'first and follow cannot be combined');
  if (q.until !== undefined && q.follow) throw new QueryError('until', 'until and follow cannot be combined');
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) throw new QueryError('since', 'since is after until');
  if (q.number !== undefined && (!Number.isInteger(q.number) || q.number < 0)) throw new QueryError('number', `${q.number} is not a count`);
}

/** Up to this many flows are taken from the ring between two yields to the event loop of a follower. */
const READ_BATCH = 1024;

/**
 * The flows a query asks for, then (follow) what comes, until `signal`
 * aborts. Flows are made only where a filter must look at them.
 */
export async function* queryFlows(src: FlowSource, lost: LostFeed, q: FlowQuery, signal?: AbortSignal): AsyncGenerator<FlowItem> {
  checkQuery(q);
  const all = matchesAll(q.predicate);
  const since = q.since;
  const until = q.until;
  const inWindow = (seq: number) => {
    if (since === undefined && until === undefined) return true;
    const t = src.timeMs(seq);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  const match = (seq: number) => {
    if (!inWindow(seq)) return false;
    if (all) return true;
    const f = src.flow(seq);
    return f !== undefined && q.predicate(f);
  };
  // Notices of loss while this query runs; subscribed before reading, so nothing falls between.
  const notices: { source: pb.LostEventSource; count: number }[] = [];
  let wake: (() => void) | undefined;
  const offLost = lost.onLost((source, count) => {
    notices.push({ source, count });
    wake?.();
  });
  const offPush = q.follow ? src.onPush(() => wake?.()) : () => {};
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const end = src.seen;
    const windowed = since !== undefined || until !== undefined;
    let history: number[] = [];
    if (q.fromSeq !== undefined) {
      const fresh = q.fromSeq > end;
      const from = fresh ? src.oldest : Math.max(q.fromSeq, src.oldest);
      // What the ring no longer holds is lost to this reader, and said so.
      if (!fresh && from > q.fromSeq) yield { lost: { source: pb.LostEventSource.HUBBLE_RING_BUFFER, count: from - q.fromSeq } };
      for (let s = from; s < end; s++) if (match(s)) history.push(s);
    } else if (q.number !== undefined && q.number > 0) {
      if (q.first) {
        for (let s = src.oldest; s < end && history.length < q.number; s++) if (match(s)) history.push(s);
      } else {
        for (let s = end - 1; s >= src.oldest && history.length < q.number; s--) if (match(s)) history.push(s);
        history.reverse();
      }
    } else if (windowed || !q.follow) {
      for (let s = src.oldest; s < end; s++) if (match(s)) history.push(s);
    }
    // A flow the writer overwrote before it was sent is lost to this reader, and said so.
    let overtaken = 0;
    for (let i = 0; i < history.length; i++) {
      if (signal?.aborted) return;
      const seq = history[i]!;
      if (seq < src.oldest) {
        overtaken++;
        continue;
      }
      if (overtaken) {
        yield { lost: { source: pb.LostEventSource.HUBBLE_RING_BUFFER, count: overtaken } };
        overtaken = 0;
      }
      yield { seq };
    }
    if (overtaken) yield { lost: { source: pb.LostEventSource.HUBBLE_RING_BUFFER, count: overtaken } };
    history = [];
    if (!q.follow) return;
    let next = end;
    while (!signal?.aborted) {
      while (notices.length) yield { lost: notices.shift()! };
      if (next < src.oldest) {
        yield { lost: { source: pb.LostEventSource.HUBBLE_RING_BUFFER, count: src.oldest - next } };
        next = src.oldest;
      }
      const stop = Math.min(src.seen, next + READ_BATCH);
      for (; next < stop; next++) {
        if (next < src.oldest) break; // overtaken while yielding: told at the top of the loop
        if ((since === undefined || src.timeMs(next) >= since) && (all || q.predicate(src.flow(next)!))) yield { seq: next };
      }
      if (next < src.seen) continue;
      if (q.idleMarks) {
        yield { idle: true };
        if (next < src.seen || notices.length) continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (next < src.seen || notices.length || signal?.aborted) resolve();
      });
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    offLost();
    offPush();
  }
}
