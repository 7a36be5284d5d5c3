/**
 * The order of the writes that change one frontend's backends (bpf/lib/
 * abi_lb.h, mbr_lb4_svc). The programs read the master entry's count, pick a
 * slot in 1..count, read it, then its backend, with no lock; so every
 * instant between two writes must leave a reader something valid:
 *
 *   every slot 1..count is present and names a backend that is present.
 *
 * The plan keeps that true by its order:
 *   1. new backends are written first (nothing names them yet);
 *   2. growing (or same size): the slots, then the master's count;
 *      shrinking: the master's count first, then the slots 1..count;
 *   3. slots beyond the count are deleted (no reader goes there any more);
 *   4. backends no slot names any more are deleted last.
 * Deleting a frontend: the master first (it stops being a frontend), then
 * every slot, then its backends. A backend a slot still names, or that a
 * reader holding a count from before a shrink may still reach, is there
 * until step 4; such a late reader may miss a slot deleted in step 3 and
 * then picks again with the new count (bpf/lib/lb.h).
 *
 * Backends keep their slot when they stay and still fit: fewer writes, and
 * the spread of new connections changes only where it must.
 */

/** One write of a plan, for one frontend. */
export type LBWrite =
  | { op: 'put-backend'; backendId: number }
  | { op: 'put-slot'; slot: number; backendId: number }
  | { op: 'put-master'; count: number }
  | { op: 'delete-slot'; slot: number }
  | { op: 'delete-master' }
  | { op: 'delete-backend'; backendId: number };

/** A frontend's entries in mbr_lb4_svc as they are now. */
export interface FrontendSlots {
  /** The master entry; absent: not a frontend (yet, or any more). */
  master?: { count: number; serviceId: number; flags: number };
  /** Slot number → backend id, for every slot entry present (beyond the count too, after a crash). */
  slots: ReadonlyMap<number, number>;
}

export interface UpsertPlanInput {
  serviceId: number;
  flags?: number;
  /** The backend ids wanted, no duplicates. */
  backendIds: readonly number[];
  /** Of backendIds, those not yet in mbr_lb4_backend: written first. */
  create?: readonly number[];
  /** Backend ids to delete at the end (no slot of any frontend names them after this plan). */
  release?: readonly number[];
}

/**
 * The new contents of slots 1..wanted.length: a backend that stays keeps its
 * slot when the slot still exists, the others fill the holes in the order
 * given. `current` is slots 1..count now (undefined: a slot missing).
 */
export function layoutSlots(current: readonly (number | undefined)[], wanted: readonly number[]): number[] {
  const want = new Set(wanted);
  const out: (number | undefined)[] = new Array<number | undefined>(wanted.length).fill(undefined);
  const placed = new Set<number>();
  for (let i = 0; i < Math.min(current.length, wanted.length); i++) {
    const id = current[i];
    if (id !== undefined && want.has(id) && !placed.has(id)) {
      out[i] = id;
      placed.add(id);
    }
  }
  const rest = wanted.filter((id) => !placed.has(id));
  let r = 0;
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = rest[r++];
  return out as number[];
}

/** The live slots of a frontend: 1..count as they are (undefined where one is missing). */
export function liveSlots(state: FrontendSlots): (number | undefined)[] {
  const n = state.master?.count ?? 0;
  return Array.from({ length: n }, (_, i) => state.slots.get(i + 1));
}

/** The writes that make `state` hold exactly `want`, in an order that keeps the invariant. */
export function planUpsert(state: FrontendSlots, want: UpsertPlanInput): LBWrite[] {
  const n = state.master?.count ?? 0;
  const layout = layoutSlots(liveSlots(state), want.backendIds);
  const m = layout.length;
  // A slot's service id only labels it (the programs read the master's), but
  // listings show it: a new id rewrites every slot.
  const relabel = state.master !== undefined && state.master.serviceId !== want.serviceId;
  const slots: LBWrite[] = [];
  layout.forEach((id, i) => {
    if (relabel || state.slots.get(i + 1) !== id) slots.push({ op: 'put-slot', slot: i + 1, backendId: id });
  });
  const masterChanged = !state.master || state.master.count !== m || state.master.serviceId !== want.serviceId || state.master.flags !== (want.flags ?? 0);
  const master: LBWrite[] = masterChanged ? [{ op: 'put-master', count: m }] : [];

  const writes: LBWrite[] = (want.create ?? []).map((backendId) => ({ op: 'put-backend', backendId }));
  if (m >= n) writes.push(...slots, ...master);
  else writes.push(...master, ...slots);
  const beyond = [...state.slots.keys()].filter((s) => s > m).sort((a, b) => a - b);
  for (const slot of beyond) writes.push({ op: 'delete-slot', slot });
  for (const backendId of want.release ?? []) writes.push({ op: 'delete-backend', backendId });
  return writes;
}

/** The writes that remove a frontend: its master, its slots, then `release`. */
export function planDelete(state: FrontendSlots, release: readonly number[] = []): LBWrite[] {
  const writes: LBWrite[] = state.master ? [{ op: 'delete-master' }] : [];
  for (const slot of [...state.slots.keys()].sort((a, b) => a - b)) writes.push({ op: 'delete-slot', slot });
  for (const backendId of release) writes.push({ op: 'delete-backend', backendId });
  return writes;
}

/**
 * What a reader could trip on now: a slot 1..count missing, or naming a
 * backend that is not there. Empty when the invariant holds.
 */
export function slotProblems(state: FrontendSlots, backendExists: (id: number) => boolean): string[] {
  const problems: string[] = [];
  liveSlots(state).forEach((id, i) => {
    if (id === undefined) problems.push(`slot ${i + 1} of ${state.master!.count} is missing`);
    else if (!backendExists(id)) problems.push(`slot ${i + 1} names backend ${id}, which is missing`);
  });
  return problems;
}
