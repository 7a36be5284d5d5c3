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
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { flow as pb } from '@membrane/proto';
import type { FlowPredicate } from './flow-filter.js';
import type { FlowRing } from './flow-ring.js';

export interface FlowQuery {
  number?: number;
  first?: boolean;
  follow?: boolean;
  /** Milliseconds since the epoch. */
  since?: number;
  until?: number;
  predicate: FlowPredicate;
}

export type FlowItem = { flow: pb.Flow } | { lost: { source: pb.LostEventSource; count: number } };

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

const ms = (t: Timestamp | undefined) => (t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0);

export function checkQuery(q: FlowQuery): void {
  if (q.first && q.follow) throw new QueryError('first', 'first and follow cannot be combined');
  if (q.until !== undefined && q.follow) throw new QueryError('until', 'until and follow cannot be combined');
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) throw new QueryError('since', 'since is after until');
  if (q.number !== undefined && (!Number.isInteger(q.number) || q.number < 0)) throw new QueryError('number', `${q.number} is not a count`);
}

/**
 * The flows a query asks for, then (follow) what comes, until `signal`
 * aborts. Yields between batches so a slow consumer holds no lock on the ring.
 */
export async function* queryFlows(ring: FlowRing<pb.Flow>, lost: LostFeed, q: FlowQuery, signal?: AbortSignal): AsyncGenerator<FlowItem> {
  checkQuery(q);
  const inWindow = (f: pb.Flow) => {
    const t = ms(f.time);
    return (q.since === undefined || t >= q.since) && (q.until === undefined || t <= q.until);
  };
  const match = (f: pb.Flow) => inWindow(f) && q.predicate(f);
  // Notices of loss while this query runs; subscribed before reading, so nothing falls between.
  const notices: { source: pb.LostEventSource; count: number }[] = [];
  let wake: (() => void) | undefined;
  const offLost = lost.onLost((source, count) => {
    notices.push({ source, count });
    wake?.();
  });
  const offPush = q.follow ? ring.onPush(() => wake?.()) : () => {};
  try {
    const end = ring.seen;
    const windowed = q.since !== undefined || q.until !== undefined;
    let history: pb.Flow[] = [];
    if (q.number !== undefined && q.number > 0) {
      if (q.first) {
        for (let s = ring.oldest; s < end && history.length < q.number; s++) {
          const f = ring.at(s);
          if (f && match(f)) history.push(f);
        }
      } else {
        for (let s = end - 1; s >= ring.oldest && history.length < q.number; s--) {
          const f = ring.at(s);
          if (f && match(f)) history.push(f);
        }
        history.reverse();
      }
    } else if (windowed || !q.follow) {
      for (let s = ring.oldest; s < end; s++) {
        const f = ring.at(s);
        if (f && match(f)) history.push(f);
      }
    }
    for (let i = 0; i < history.length; i++) {
      if (signal?.aborted) return;
      yield { flow: history[i]! };
    }
    history = [];
    if (!q.follow) return;
    let next = end;
    while (!signal?.aborted) {
      while (notices.length) yield { lost: notices.shift()! };
      const r = ring.read(next, 1024);
      if (r.lost) yield { lost: { source: pb.LostEventSource.HUBBLE_RING_BUFFER, count: r.lost } };
      next = r.next;
      for (const it of r.items) if (q.predicate(it.value) && (q.since === undefined || ms(it.value.time) >= q.since)) yield { flow: it.value };
      if (next < ring.seen) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        signal?.addEventListener('abort', () => resolve(), { once: true });
        if (next < ring.seen || notices.length || signal?.aborted) resolve();
      });
      wake = undefined;
    }
  } finally {
    offLost();
    offPush();
  }
}
