/**
 * The patch formats the apiserver takes, applied to a stored manifest:
 * JSON merge patch (RFC 7386: null removes, objects merge, anything else
 * replaces), JSON patch (RFC 6902), and strategic merge patch, which is
 * what `kubectl apply` sends for the core kinds: lists whose Go field is
 * tagged `patchStrategy:"merge"` merge element by element on their merge
 * key, the directives `$patch` (replace, delete, merge),
 * `$setElementOrder/<list>`, `$retainKeys` and
 * `$deleteFromPrimitiveList/<list>` are obeyed and never stored. Inputs are
 * never changed.
 */

export class PatchError extends Error {
  constructor(
    readonly reason: 'BadRequest' | 'Invalid',
    message: string,
  ) {
    super(message);
  }
}

type Json = unknown;
type Obj = Record<string, Json>;

const isObj = (v: Json): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export function jsonMergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError('BadRequest', `invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], path: string): { parent: Obj | Json[]; key: string } {
  let cur: Json = doc;
  for (const p of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isObj(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new PatchError('Invalid', `doc is missing path: "${path}"`);
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw new PatchError('Invalid', `doc is missing path: "${path}"`);
  return { parent: cur, key: parts.at(-1)! };
}

function getAt(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isObj(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new PatchError('Invalid', `doc is missing path: "${path}"`);
  }
  return cur;
}

export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('BadRequest', 'a JSON patch is a list of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObj(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') throw new PatchError('BadRequest', 'a JSON patch operation needs "op" and "path"');
    const { op, path } = raw as { op: string; path: string };
    const put = (p: string, value: Json) => {
      const parts = pointer(p);
      if (parts.length === 0) return void (doc = clone(value));
      const { parent, key } = parentOf(doc, parts, p);
      if (Array.isArray(parent)) {
        const i = key === '-' ? parent.length : Number(key);
        if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError('Invalid', `index out of bounds at "${p}"`);
        parent.splice(i, 0, clone(value));
      } else parent[key] = clone(value);
    };
    const remove = (p: string): Json => {
      const parts = pointer(p);
      const { parent, key } = parentOf(doc, parts, p);
      const was = getAt(doc, p);
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      return was;
    };
    if (op === 'add') put(path, raw['value']);
    else if (op === 'remove') remove(path);
    else if (op === 'replace') {
      remove(path);
      put(path, raw['value']);
    } else if (op === 'move') put(path, remove(String(raw['from'])));
    else if (op === 'copy') put(path, getAt(doc, String(raw['from'])));
    else if (op === 'test') {
      if (JSON.stringify(sortKeys(getAt(doc, path))) !== JSON.stringify(sortKeys(raw['value']))) throw new PatchError('Invalid', `testing value ${path} failed`);
    } else throw new PatchError('BadRequest', `unknown JSON patch operation "${op}"`);
  }
  return doc;
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

/**
 * Merge keys of the lists tagged patchStrategy=merge in the Go types
 * (k8s.io/api), by path from the object's root; `*` is a list element.
 * A path with key '' is a merged list of primitives (finalizers).
 */
const POD_SPEC: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  'containers.*.ports': 'containerPort',
  'containers.*.env': 'name',
  'containers.*.volumeMounts': 'mountPath',
  'containers.*.volumeDevices': 'devicePath',
  'initContainers.*.ports': 'containerPort',
  'initContainers.*.env': 'name',
  'initContainers.*.volumeMounts': 'mountPath',
  volumes: 'name',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
};

const under = (prefix: string, t: Record<string, string>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [`${prefix}.${k}`, v]));

export const MERGE_KEYS: Record<string, Record<string, string>> = {
  Pod: under('spec', POD_SPEC),
  Deployment: under('spec.template.spec', POD_SPEC),
  Service: { 'spec.ports': 'port' },
  ServiceAccount: { secrets: 'name' },
};
const META: Record<string, string> = { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' };

export function mergeKeyOf(kind: string, path: string): string | undefined {
  return META[path] ?? MERGE_KEYS[kind]?.[path];
}

export function strategicMergePatch(original: Json, patch: Json, kind: string): Json {
  if (!isObj(patch)) throw new PatchError('BadRequest', 'a strategic merge patch is an object');
  return mergeMap(isObj(original) ? original : {}, patch, kind, '');
}

function join(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

function mergeMap(orig: Obj, patch: Obj, kind: string, path: string): Json {
  const directive = patch['$patch'];
  if (directive === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return clone(rest);
  }
  if (directive === 'delete') return undefined;
  let out: Obj = clone(orig);
  const retain = patch['$retainKeys'];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/') || k.startsWith('$deleteFromPrimitiveList/')) continue;
    const p = join(path, k);
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = Array.isArray(v) ? mergeKeyOf(kind, p) : undefined;
    if (Array.isArray(v) && key !== undefined) out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, key, kind, p);
    else if (isObj(v) && isObj(out[k])) {
      const m = mergeMap(out[k] as Obj, v, kind, p);
      if (m === undefined) delete out[k];
      else out[k] = m;
    } else if (isObj(v)) {
      const m = mergeMap({}, v, kind, p);
      if (m !== undefined) out[k] = m;
    } else out[k] = clone(v);
  }
  for (const [k, v] of Object.entries(patch)) {
    const del = /^\$deleteFromPrimitiveList\/(.+)$/.exec(k);
    if (del && Array.isArray(out[del[1]!]) && Array.isArray(v)) out[del[1]!] = (out[del[1]!] as Json[]).filter((x) => !v.includes(x));
    const order = /^\$setElementOrder\/(.+)$/.exec(k);
    if (order && Array.isArray(out[order[1]!]) && Array.isArray(v)) out[order[1]!] = reorder(out[order[1]!] as Json[], v, mergeKeyOf(kind, join(path, order[1]!)) ?? '');
  }
  if (Array.isArray(retain)) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  return out;
}

function mergeList(orig: Json[], patch: Json[], key: string, kind: string, path: string): Json[] {
  if (patch.some((e) => isObj(e) && e['$patch'] === 'replace')) return clone(patch.filter((e) => !(isObj(e) && e['$patch'] === 'replace')));
  if (key === '') return [...clone(orig), ...patch.filter((x) => !orig.includes(x))];
  const out = clone(orig);
  for (const e of patch) {
    if (!isObj(e)) {
      out.push(clone(e));
      continue;
    }
    const i = out.findIndex((x) => isObj(x) && x[key] === e[key]);
    if (e['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = mergeMap(out[i] as Obj, e, kind, `${path}.*`);
    else out.push(mergeMap({}, e, kind, `${path}.*`));
  }
  return out;
}

/** `$setElementOrder`: the listed elements in that order, the others after, keeping theirs. */
function reorder(list: Json[], order: Json[], key: string): Json[] {
  const id = (e: Json) => JSON.stringify(key && isObj(e) ? e[key] : e);
  const rank = new Map(order.map((e, i) => [id(e), i]));
  const listed = list.filter((e) => rank.has(id(e))).sort((a, b) => rank.get(id(a))! - rank.get(id(b))!);
  return [...listed, ...list.filter((e) => !rank.has(id(e)))];
}
