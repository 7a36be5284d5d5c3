/**
 * Reading: paths, selectors and pages as the apiserver reads them. Label
 * selectors (equality, inequality, existence, `in`/`notin`), field
 * selectors (`metadata.name`/`metadata.namespace` for every kind, events'
 * `involvedObject.*`, pods' `spec.nodeName` and `status.phase`), and
 * `limit` with a `continue` token that names the list's resourceVersion
 * and where the next page starts.
 */
import type { KubeObject } from './kube-cache.js';
import { RESOURCES, type KubeResource } from './kube-resources.js';

export interface Target {
  resource: KubeResource;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** /api/v1/[namespaces/NS/]RES[/NAME[/SUB]] and /apis/G/V/[namespaces/NS/]RES[/NAME[/SUB]]. */
export function parsePath(path: string): Target | undefined {
  const m = /^\/api\/v1\/(.+)$/.exec(path) ?? /^\/apis\/([^/]+)\/([^/]+)\/(.+)$/.exec(path);
  if (!m) return undefined;
  const [group, version, rest] = m.length === 2 ? ['', 'v1', m[1]!] : [m[1]!, m[2]!, m[3]!];
  const parts = rest.split('/').map(decodeURIComponent);
  const find = (res: string) => RESOURCES.find((r) => r.group === group && r.version === version && r.resource === res);
  const item = (r: KubeResource | undefined, name: string | undefined, sub: string | undefined, namespace?: string): Target | undefined => {
    if (!r) return undefined;
    if (sub !== undefined && !r.subresources.some((s) => s.name === sub)) return undefined;
    return { resource: r, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}), ...(sub !== undefined ? { subresource: sub } : {}) };
  };
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    const r = find(parts[2]!);
    if (!r || !r.namespaced || parts.length > 5) return undefined;
    return item(r, parts[3], parts[4], parts[1]!);
  }
  const r = find(parts[0]!);
  if (!r || parts.length > 3) return undefined;
  return item(r, parts[1], parts[2]);
}

/** Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)` (undefined: not one). */
export function labelMatcher(sel: string): ((labels: Record<string, string>) => boolean) | undefined {
  const terms: ((l: Record<string, string>) => boolean)[] = [];
  // Commas inside parentheses belong to a set, not to the list of requirements.
  const raw = sel.match(/[^,(]+(\([^)]*\))?[^,]*/g) ?? [];
  for (const part of raw) {
    const t = part.trim();
    if (!t) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const [, k, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(',').map((v) => v.trim()));
      terms.push(op === 'in' ? (l) => k in l && values.has(l[k]!) : (l) => !(k in l) || !values.has(l[k]!));
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t))) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      terms.push(op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = /^!([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((l) => !(k in l));
    } else if ((m = /^([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((l) => k in l);
    } else return undefined;
  }
  return (l) => terms.every((f) => f(l));
}

const FIELDS: Record<string, (o: KubeObject) => unknown> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
};
const EVENT_FIELDS = ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'fieldPath', 'resourceVersion'];

function fieldGetter(kind: string, field: string): ((o: KubeObject) => unknown) | undefined {
  if (FIELDS[field]) return FIELDS[field];
  const ev = /^involvedObject\.(\w+)$/.exec(field);
  if (kind === 'Event' && ev && EVENT_FIELDS.includes(ev[1]!)) return (o) => (o['involvedObject'] as Record<string, unknown> | undefined)?.[ev[1]!];
  if (kind === 'Event' && (field === 'reason' || field === 'type')) return (o) => o[field];
  if (kind === 'Pod' && field === 'spec.nodeName') return (o) => (o['spec'] as Record<string, unknown> | undefined)?.['nodeName'];
  if (kind === 'Pod' && field === 'status.phase') return (o) => (o['status'] as Record<string, unknown> | undefined)?.['phase'];
  return undefined;
}

/** A field selector (`a=b,c!=d`) for a kind; a string naming the unsupported field when it is not one. */
export function fieldMatcher(kind: string, sel: string): ((o: KubeObject) => boolean) | string {
  const terms: ((o: KubeObject) => boolean)[] = [];
  for (const term of sel.split(',')) {
    if (!term) continue;
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    const get = m && fieldGetter(kind, m[1]!);
    if (!m || !get) return term.split(/[=!]/)[0]!;
    const want = m[3]!;
    terms.push(m[2] === '!=' ? (o) => String(get(o) ?? '') !== want : (o) => String(get(o) ?? '') === want);
  }
  return (o) => terms.every((f) => f(o));
}

/** The objects of a page, in namespace then name order, and the token of the next one. */
export function page(items: KubeObject[], limit: number | undefined, token: string | null, rv: number): { items: KubeObject[]; next?: string; remaining?: number } | 'expired' {
  const sorted = [...items].sort((a, b) => cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '') || cmp(a.metadata.name, b.metadata.name));
  let from = 0;
  if (token) {
    let t: { rv?: number; start?: [string, string] };
    try {
      t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as typeof t;
    } catch {
      return 'expired';
    }
    if (!t.start) return 'expired';
    const [ns, name] = t.start;
    from = sorted.findIndex((o) => cmp(o.metadata.namespace ?? '', ns) > 0 || (cmp(o.metadata.namespace ?? '', ns) === 0 && cmp(o.metadata.name, name) >= 0));
    if (from < 0) from = sorted.length;
  }
  if (!limit || limit <= 0 || from + limit >= sorted.length) return { items: sorted.slice(from) };
  const rest = sorted.slice(from);
  const next = rest[limit]!;
  return {
    items: rest.slice(0, limit),
    next: Buffer.from(JSON.stringify({ rv, start: [next.metadata.namespace ?? '', next.metadata.name] })).toString('base64url'),
    remaining: rest.length - limit,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
