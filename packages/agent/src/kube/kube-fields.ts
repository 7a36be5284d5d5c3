/**
 * managedFields and server-side apply, as structured-merge-diff models
 * them for the kinds served: every leaf field an object sets is owned by
 * the managers that set it (FieldsV1 sets: `f:<field>` for a map key,
 * `k:{"name":"c"}` for an element of a list with a merge key, other lists
 * owned whole). An apply sets the fields of its configuration, removes the
 * fields its manager applied before and no longer applies (unless another
 * manager owns them too), and conflicts where it would change a value
 * another manager owns — unless forced, which moves the ownership. An
 * ordinary write (create, update, patch) gives its manager the fields it
 * changed and takes them from the others. The identity of the object
 * (apiVersion, kind, name, namespace) and what the server keeps
 * (uid, resourceVersion, generation, creationTimestamp, managedFields) and
 * status are owned by nobody.
 */
import { mergeKeyOf } from './kube-merge.js';

type Json = unknown;
type Obj = Record<string, Json>;
const isObj = (v: Json): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Obj;
}

export interface Conflict {
  manager: string;
  field: string;
}

const UNOWNED_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'generateName']);

/** A leaf's path as FieldsV1 segments (`f:spec`, `k:{"name":"c"}`), JSON-encoded to be a set member. */
function leaves(o: Json, kind: string, path: string[] = [], dotted = ''): Map<string, Json> {
  const out = new Map<string, Json>();
  const walk = (v: Json, segs: string[], dot: string, depth: number) => {
    if (isObj(v) && (Object.keys(v).length > 0 || depth === 0)) {
      for (const [k, x] of Object.entries(v)) {
        if (depth === 0 && (k === 'apiVersion' || k === 'kind' || k === 'status')) continue;
        if (depth === 1 && segs[0] === 'f:metadata' && UNOWNED_META.has(k)) continue;
        walk(x, [...segs, `f:${k}`], dot ? `${dot}.${k}` : k, depth + 1);
      }
      return;
    }
    const key = Array.isArray(v) ? mergeKeyOf(kind, dot.replace(/\[[^\]]*\]/g, '.*').replace(/\.\*\./g, '.*.')) : undefined;
    if (Array.isArray(v) && key) {
      for (const e of v) {
        if (!isObj(e)) continue;
        const seg = `k:${JSON.stringify({ [key]: e[key] })}`;
        out.set(JSON.stringify([...segs, seg, '.']), undefined);
        walk(e, [...segs, seg], `${dot}[${key}="${String(e[key])}"]`, depth + 1);
      }
      return;
    }
    if (Array.isArray(v) && key === '') {
      for (const e of v) out.set(JSON.stringify([...segs, `v:${JSON.stringify(e)}`]), e);
      return;
    }
    out.set(JSON.stringify(segs), v);
  };
  walk(o, path, dotted, 0);
  return out;
}

export function fieldSet(o: Json, kind: string): Set<string> {
  return new Set(leaves(o, kind).keys());
}

export function toFieldsV1(set: Iterable<string>): Obj {
  const root: Obj = {};
  for (const s of set) {
    let cur = root;
    for (const seg of JSON.parse(s) as string[]) cur = (cur[seg] ??= {}) as Obj;
  }
  return root;
}

export function fromFieldsV1(f: Obj | undefined): Set<string> {
  const out = new Set<string>();
  const walk = (o: Obj, segs: string[]) => {
    const keys = Object.keys(o);
    if (keys.length === 0) out.add(JSON.stringify(segs));
    for (const k of keys) walk(o[k] as Obj, [...segs, k]);
  };
  if (f) walk(f, []);
  return out;
}

/** `.spec.containers[name="c"].image`, as the apiserver writes a field in a conflict. */
export function fieldPath(member: string): string {
  return (JSON.parse(member) as string[])
    .filter((s) => s !== '.')
    .map((s) => {
      if (s.startsWith('f:')) return `.${s.slice(2)}`;
      if (s.startsWith('k:')) return `[${Object.entries(JSON.parse(s.slice(2)) as Obj).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
      return `[=${s.slice(2)}]`;
    })
    .join('');
}

function entriesOf(o: Obj | undefined): ManagedFieldsEntry[] {
  const mf = (o?.['metadata'] as Obj | undefined)?.['managedFields'];
  return Array.isArray(mf) ? (clone(mf) as ManagedFieldsEntry[]) : [];
}

function sameValue(a: Json, b: Json): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

function withEntries(entries: ManagedFieldsEntry[]): ManagedFieldsEntry[] {
  return entries.filter((e) => Object.keys(e.fieldsV1).length > 0).sort((a, b) => (a.operation === b.operation ? a.manager.localeCompare(b.manager) : a.operation === 'Apply' ? -1 : 1));
}

/** The managedFields after an ordinary write by `manager`. */
export function recordUpdate(o: { before: Obj | undefined; after: Obj; kind: string; apiVersion: string; manager: string; now: string }): ManagedFieldsEntry[] {
  const was = o.before ? leaves(o.before, o.kind) : new Map<string, Json>();
  const now = leaves(o.after, o.kind);
  const changed = new Set([...now].filter(([k, v]) => !was.has(k) || !sameValue(was.get(k), v)).map(([k]) => k));
  const removed = new Set([...was.keys()].filter((k) => !now.has(k)));
  const entries = entriesOf(o.before).map((e) => ({ ...e, fieldsV1: toFieldsV1([...fromFieldsV1(e.fieldsV1)].filter((f) => !changed.has(f) && !removed.has(f))) }));
  const mine = entries.find((e) => e.manager === o.manager && e.operation === 'Update');
  const owned = new Set([...fromFieldsV1(mine?.fieldsV1), ...changed]);
  const entry: ManagedFieldsEntry = { manager: o.manager, operation: 'Update', apiVersion: o.apiVersion, time: changed.size || !mine ? o.now : mine.time, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(owned) };
  return withEntries([...entries.filter((e) => e !== mine), entry]);
}

/** Server-side apply of `applied` by `manager` over `live` (undefined: the object is created). */
export function serverSideApply(o: { live: Obj | undefined; applied: Obj; kind: string; apiVersion: string; manager: string; force: boolean; now: string }): { object: Obj; conflicts: Conflict[] } {
  const live = o.live ? leaves(o.live, o.kind) : new Map<string, Json>();
  const want = leaves(o.applied, o.kind);
  const entries = entriesOf(o.live);
  const mine = entries.find((e) => e.manager === o.manager && e.operation === 'Apply');
  const others = entries.filter((e) => e !== mine).map((e) => ({ e, set: fromFieldsV1(e.fieldsV1) }));
  const conflicts: Conflict[] = [];
  const taken = new Set<string>();
  for (const [k, v] of want) {
    if (!live.has(k) || sameValue(live.get(k), v)) continue;
    for (const x of others) if (x.set.has(k)) conflicts.push({ manager: x.e.manager, field: fieldPath(k) });
    taken.add(k);
  }
  if (conflicts.length && !o.force) return { object: o.live ?? o.applied, conflicts };
  // The result: the live object with the applied configuration merged in, minus what this manager let go of.
  let object = mergeApplied(clone(o.live ?? {}), o.applied, o.kind, '');
  const ownedByOthers = new Set(others.flatMap((x) => [...x.set].filter((f) => !taken.has(f))));
  for (const f of fromFieldsV1(mine?.fieldsV1)) if (!want.has(f) && !ownedByOthers.has(f)) object = removeField(object, JSON.parse(f) as string[]);
  const rest = others.map((x) => ({ ...x.e, fieldsV1: toFieldsV1([...x.set].filter((f) => !taken.has(f))) }));
  const entry: ManagedFieldsEntry = { manager: o.manager, operation: 'Apply', apiVersion: o.apiVersion, time: o.now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(want.keys()) };
  const metadata = { ...((object['metadata'] as Obj | undefined) ?? {}), managedFields: withEntries([...rest, entry]) };
  return { object: { ...object, metadata }, conflicts: [] };
}

function mergeApplied(live: Obj, applied: Obj, kind: string, path: string): Obj {
  for (const [k, v] of Object.entries(applied)) {
    const p = path ? `${path}.${k}` : k;
    const key = Array.isArray(v) ? mergeKeyOf(kind, p) : undefined;
    if (isObj(v) && isObj(live[k])) live[k] = mergeApplied(live[k] as Obj, v, kind, p);
    else if (Array.isArray(v) && key && Array.isArray(live[k])) {
      const list = live[k] as Json[];
      for (const e of v) {
        const i = list.findIndex((x) => isObj(x) && isObj(e) && x[key] === e[key]);
        if (i >= 0 && isObj(e)) list[i] = mergeApplied(list[i] as Obj, e, kind, `${p}.*`);
        else list.push(clone(e));
      }
    } else live[k] = clone(v);
  }
  return live;
}

function removeField(o: Obj, segs: string[]): Obj {
  const [head, ...rest] = segs;
  if (!head || head === '.') return o;
  if (head.startsWith('f:')) {
    const k = head.slice(2);
    if (!(k in o)) return o;
    if (rest.length === 0 || rest[0] === '.') {
      delete o[k];
      return o;
    }
    const v = o[k];
    if (isObj(v)) {
      o[k] = removeField(v, rest);
      if (Object.keys(o[k] as Obj).length === 0) delete o[k];
    } else if (Array.isArray(v) && rest[0]!.startsWith('k:')) {
      const want = JSON.parse(rest[0]!.slice(2)) as Obj;
      const i = v.findIndex((e) => isObj(e) && Object.entries(want).every(([wk, wv]) => e[wk] === wv));
      if (i >= 0) {
        if (rest.length === 1 || rest[1] === '.') v.splice(i, 1);
        else v[i] = removeField(v[i] as Obj, rest.slice(1));
      }
    } else if (Array.isArray(v) && rest[0]!.startsWith('v:')) {
      const val = JSON.parse(rest[0]!.slice(2)) as Json;
      o[k] = v.filter((e) => !sameValue(e, val));
    }
  }
  return o;
}

/** The apiserver's words for apply conflicts (structured-merge-diff's Conflicts error, prefixed by the handler). */
export function conflictMessage(conflicts: Conflict[], apiVersion: string): string {
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), c.field]);
  const parts = [...byManager].map(([m, fields]) => (fields.length === 1 ? `conflict with "${m}" using ${apiVersion}: ${fields[0]}` : `conflicts with "${m}" using ${apiVersion}:\n${fields.map((f) => `- ${f}`).join('\n')}`));
  return `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${parts.join('\n')}`;
}

export function conflictCauses(conflicts: Conflict[], apiVersion: string) {
  return conflicts.map((c) => ({ type: 'FieldManagerConflict', message: `conflict with "${c.manager}" using ${apiVersion}`, field: c.field }));
}
