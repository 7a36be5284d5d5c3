import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { flow as pb } from '@membrane/proto';
import { FlowRing } from './flow-ring.js';
import { QueryError, queryFlows as query, ringSource, type FlowItem, type FlowQuery, type LostFeed } from './flow-query.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const mk = (i: number, verdict = pb.Verdict.FORWARDED) => create(pb.FlowSchema, { uuid: `f${i}`, verdict, time: timestampFromMs(T0 + i * 1000) });
const all = () => true;
const noLoss = { onLost: () => () => {} };
const rings = new WeakMap<AsyncGenerator<FlowItem>, FlowRing<pb.Flow>>();
/** queryFlows over a ring of made flows; items name their flows' uuids. */
function queryFlows(r: FlowRing<pb.Flow>, lost: LostFeed, q: FlowQuery, signal?: AbortSignal): AsyncGenerator<FlowItem> {
  const it = query(ringSource(r), lost, q, signal);
  rings.set(it, r);
  return it;
}
let current: FlowRing<pb.Flow> | undefined;
const ids = (items: FlowItem[]) => items.map((x) => ('seq' in x ? current!.at(x.seq)!.uuid : 'lost' in x ? `lost:${x.lost.source}:${x.lost.count}` : 'idle'));
async function collect(it: AsyncGenerator<FlowItem>, n = Infinity): Promise<FlowItem[]> {
  const out: FlowItem[] = [];
  current = rings.get(it) ?? current;
  for await (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

function ring(n: number, cap = 100) {
  const r = new FlowRing<pb.Flow>(cap);
  for (let i = 0; i < n; i++) r.push(mk(i, i % 2 ? pb.Verdict.DROPPED : pb.Verdict.FORWARDED));
  return r;
}

test('number: the last N matching (the first N with first); nothing asked: everything held', async () => {
  const r = ring(10);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { number: 3, predicate: all }))), ['f7', 'f8', 'f9']);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { number: 2, first: true, predicate: all }))), ['f0', 'f1']);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { number: 2, predicate: (f) => f.verdict === pb.Verdict.DROPPED }))), ['f7', 'f9']);
  assert.equal((await collect(queryFlows(r, noLoss, { predicate: all }))).length, 10);
});

test('since/until: the window; since with follow: the window, then what comes', async () => {
  const r = ring(10);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { since: T0 + 7000, predicate: all }))), ['f7', 'f8', 'f9']);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { since: T0 + 2000, until: T0 + 4000, predicate: all }))), ['f2', 'f3', 'f4']);
  const ac = new AbortController();
  const got = collect(queryFlows(r, noLoss, { since: T0 + 8000, follow: true, predicate: all }, ac.signal), 4);
  await new Promise((res) => setTimeout(res, 10));
  r.push(mk(10));
  r.push(mk(11));
  assert.deepEqual(ids(await got), ['f8', 'f9', 'f10', 'f11']);
  ac.abort();
});

test('follow alone: only what comes; a follower overtaken and the kernel losses are told in-band, exactly', async () => {
  const r = ring(5, 8);
  let tell: ((s: pb.LostEventSource, n: number) => void) | undefined;
  const feed = { onLost: (l: (s: pb.LostEventSource, n: number) => void) => ((tell = l), () => (tell = undefined)) };
  const ac = new AbortController();
  const it = queryFlows(r, feed, { follow: true, predicate: all }, ac.signal);
  current = r;
  const first = it.next();
  r.push(mk(5));
  assert.deepEqual(ids([(await first).value as FlowItem]), ['f5']);
  // 20 pushes before the follower reads again: the ring (8) overwrote 12 of them.
  for (let i = 6; i < 26; i++) r.push(mk(i));
  tell!(pb.LostEventSource.PERF_EVENT_RING_BUFFER, 7);
  const rest = await collect({ next: () => it.next(), [Symbol.asyncIterator]() { return this; } } as AsyncGenerator<FlowItem>, 10);
  assert.deepEqual(ids(rest), [`lost:${pb.LostEventSource.PERF_EVENT_RING_BUFFER}:7`, `lost:${pb.LostEventSource.HUBBLE_RING_BUFFER}:12`, 'f18', 'f19', 'f20', 'f21', 'f22', 'f23', 'f24', 'f25']);
  ac.abort();
  await it.return(undefined);
  assert.equal(tell, undefined, 'a stopped follower unsubscribes');
});

test('bad queries name the field', async () => {
  for (const [q, field] of [[{ first: true, follow: true }, 'first'], [{ until: T0, follow: true }, 'until'], [{ since: T0 + 5, until: T0 }, 'since'], [{ number: -1 }, 'number']] as const) {
    await assert.rejects(collect(queryFlows(ring(1), noLoss, { ...q, predicate: all })), (e: Error) => e instanceof QueryError && e.field === field);
  }
});

test('fromSeq: a reader resumes where it was; what the ring dropped meanwhile is told; beyond the end is a new ring', async () => {
  const r = ring(10, 4); // holds f6..f9
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { fromSeq: 8, predicate: all }))), ['f8', 'f9']);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { fromSeq: 3, predicate: all }))), [`lost:${pb.LostEventSource.HUBBLE_RING_BUFFER}:3`, 'f6', 'f7', 'f8', 'f9']);
  assert.deepEqual(ids(await collect(queryFlows(r, noLoss, { fromSeq: 50, predicate: all }))), ['f6', 'f7', 'f8', 'f9']);
});
