// The write order of a frontend's change (lb-slot-plan.ts), exactly: what a
// reader of the maps could see between two writes is always valid.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { layoutSlots, planDelete, planUpsert, slotProblems, type FrontendSlots, type LBWrite } from './lb-slot-plan.js';

function state(count: number | undefined, slots: Record<number, number>, serviceId = 7): FrontendSlots {
  return { ...(count === undefined ? {} : { master: { count, serviceId, flags: 0 } }), slots: new Map(Object.entries(slots).map(([k, v]) => [Number(k), v])) };
}

/** Applies writes one by one, checking the reader's invariant after each. */
function replay(start: FrontendSlots, backends: Iterable<number>, writes: readonly LBWrite[]): { end: FrontendSlots; backends: Set<number> } {
  const slots = new Map(start.slots);
  let master = start.master && { ...start.master };
  const have = new Set(backends);
  writes.forEach((w, i) => {
    switch (w.op) {
      case 'put-backend': have.add(w.backendId); break;
      case 'delete-backend': have.delete(w.backendId); break;
      case 'put-slot': slots.set(w.slot, w.backendId); break;
      case 'delete-slot': slots.delete(w.slot); break;
      case 'put-master': master = { count: w.count, serviceId: master?.serviceId ?? 0, flags: 0 }; break;
      case 'delete-master': master = undefined; break;
    }
    const now: FrontendSlots = { ...(master ? { master } : {}), slots };
    assert.deepEqual(slotProblems(now, (id) => have.has(id)), [], `after write ${i} (${JSON.stringify(w)}) of ${JSON.stringify(writes)}`);
    // No backend a live slot names is ever deleted.
    if (w.op === 'delete-backend') assert.ok(![...slots.values()].includes(w.backendId), `backend ${w.backendId} deleted while a slot names it`);
  });
  return { end: { ...(master ? { master } : {}), slots }, backends: have };
}

test('layoutSlots keeps a staying backend in its slot and fills the holes in order', () => {
  assert.deepEqual(layoutSlots([], [1, 2, 3]), [1, 2, 3]);
  assert.deepEqual(layoutSlots([1, 2, 3], [1, 2, 3]), [1, 2, 3]);
  // 2 leaves: 4 takes its slot; 1 and 3 stay where they are.
  assert.deepEqual(layoutSlots([1, 2, 3], [1, 3, 4]), [1, 4, 3]);
  // Shrinking: 3 sat beyond the new count and moves into the hole.
  assert.deepEqual(layoutSlots([1, 2, 3], [3, 1]), [1, 3]);
  // A missing slot (undefined) is a hole like any other.
  assert.deepEqual(layoutSlots([1, undefined, 3], [1, 3, 5]), [1, 5, 3]);
  assert.deepEqual(layoutSlots([1, 2], []), []);
});

test('a new frontend: backends, then slots, then the master with the count', () => {
  const writes = planUpsert(state(undefined, {}), { serviceId: 7, backendIds: [10, 11], create: [10, 11] });
  assert.deepEqual(writes, [
    { op: 'put-backend', backendId: 10 },
    { op: 'put-backend', backendId: 11 },
    { op: 'put-slot', slot: 1, backendId: 10 },
    { op: 'put-slot', slot: 2, backendId: 11 },
    { op: 'put-master', count: 2 },
  ]);
  replay(state(undefined, {}), [], writes);
  // No backends: the master alone, count 0 (the programs refuse).
  assert.deepEqual(planUpsert(state(undefined, {}), { serviceId: 7, backendIds: [] }), [{ op: 'put-master', count: 0 }]);
});

test('growing writes the count last; shrinking writes it first, then deletes the slots beyond, then the backends', () => {
  const grow = planUpsert(state(2, { 1: 10, 2: 11 }), { serviceId: 7, backendIds: [10, 11, 12], create: [12] });
  assert.deepEqual(grow, [{ op: 'put-backend', backendId: 12 }, { op: 'put-slot', slot: 3, backendId: 12 }, { op: 'put-master', count: 3 }]);

  const shrink = planUpsert(state(3, { 1: 10, 2: 11, 3: 12 }), { serviceId: 7, backendIds: [10, 12], release: [11] });
  assert.deepEqual(shrink, [
    { op: 'put-master', count: 2 },
    { op: 'put-slot', slot: 2, backendId: 12 },
    { op: 'delete-slot', slot: 3 },
    { op: 'delete-backend', backendId: 11 },
  ]);
  replay(state(3, { 1: 10, 2: 11, 3: 12 }), [10, 11, 12], shrink);

  // To zero: the count first (connections are refused from then on), then every slot.
  assert.deepEqual(planUpsert(state(2, { 1: 10, 2: 11 }), { serviceId: 7, backendIds: [], release: [10, 11] }), [
    { op: 'put-master', count: 0 },
    { op: 'delete-slot', slot: 1 },
    { op: 'delete-slot', slot: 2 },
    { op: 'delete-backend', backendId: 10 },
    { op: 'delete-backend', backendId: 11 },
  ]);
});

test('replacing one backend rewrites its slot only, the count stays', () => {
  const writes = planUpsert(state(3, { 1: 10, 2: 11, 3: 12 }), { serviceId: 7, backendIds: [10, 13, 12], create: [13], release: [11] });
  assert.deepEqual(writes, [{ op: 'put-backend', backendId: 13 }, { op: 'put-slot', slot: 2, backendId: 13 }, { op: 'delete-backend', backendId: 11 }]);
});

test('the same spec again writes nothing; a new service id relabels the master and every slot', () => {
  assert.deepEqual(planUpsert(state(2, { 1: 10, 2: 11 }), { serviceId: 7, backendIds: [11, 10] }), []);
  assert.deepEqual(planUpsert(state(2, { 1: 10, 2: 11 }), { serviceId: 8, backendIds: [10, 11] }), [
    { op: 'put-slot', slot: 1, backendId: 10 },
    { op: 'put-slot', slot: 2, backendId: 11 },
    { op: 'put-master', count: 2 },
  ]);
});

test('slots a crash left beyond the count are deleted after the master is right', () => {
  const writes = planUpsert(state(1, { 1: 10, 2: 11, 5: 12 }), { serviceId: 7, backendIds: [10] });
  assert.deepEqual(writes, [{ op: 'delete-slot', slot: 2 }, { op: 'delete-slot', slot: 5 }]);
});

test('deleting a frontend: the master first, then its slots, then its backends', () => {
  const writes = planDelete(state(2, { 1: 10, 2: 11 }), [10, 11]);
  assert.deepEqual(writes, [{ op: 'delete-master' }, { op: 'delete-slot', slot: 1 }, { op: 'delete-slot', slot: 2 }, { op: 'delete-backend', backendId: 10 }, { op: 'delete-backend', backendId: 11 }]);
  const { end } = replay(state(2, { 1: 10, 2: 11 }), [10, 11], writes);
  assert.deepEqual(end, { slots: new Map() });
});

test('every change between random backend sets keeps the invariant at every write', () => {
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let cur = state(undefined, {});
  let have = new Set<number>();
  for (let round = 0; round < 500; round++) {
    const size = rand(8);
    const wanted = [...new Set(Array.from({ length: size }, () => 1 + rand(12)))];
    const named = new Set(cur.slots.values());
    const create = wanted.filter((id) => !have.has(id));
    const release = [...named].filter((id) => !wanted.includes(id) && have.has(id));
    const writes = planUpsert(cur, { serviceId: 7, backendIds: wanted, create, release });
    const r = replay(cur, have, writes);
    assert.equal(r.end.master?.count, wanted.length);
    assert.deepEqual(new Set(r.end.slots.values()), new Set(wanted));
    assert.equal(r.end.slots.size, wanted.length);
    cur = r.end;
    have = r.backends;
  }
});
