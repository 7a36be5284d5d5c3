/**
 * Labels as Cilium models them: `source:key=value`. Pod labels have source
 * `k8s`, reserved identities `reserved`, CIDR identities `cidr`. A selector key
 * without a source (or with `any:`) matches a label of any source.
 */

export const SOURCE_ANY = 'any';
export const SOURCE_K8S = 'k8s';
export const SOURCE_RESERVED = 'reserved';
export const SOURCE_CIDR = 'cidr';

/** The namespace of a pod, set by the system, never by the pod (CVE-2023-39347). */
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
/** Prefix of the namespace's own labels as they appear on its pods. */
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const SERVICE_ACCOUNT_LABEL = 'io.cilium.k8s.policy.serviceaccount';
export const CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
/** Kubernetes labels every namespace with its own name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
export const DEFAULT_CLUSTER_NAME = 'default';

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/** Parses `source:key=value`; a missing source is `unspec` as in Cilium. */
export function parseLabel(s: string): Label {
  const eq = s.indexOf('=');
  const head = eq >= 0 ? s.slice(0, eq) : s;
  const value = eq >= 0 ? s.slice(eq + 1) : '';
  const colon = head.indexOf(':');
  if (colon < 0) return { source: 'unspec', key: head, value };
  return { source: head.slice(0, colon), key: head.slice(colon + 1), value };
}

/** An immutable set of labels, sorted, with lookups by key. */
export class LabelSet {
  readonly labels: readonly Label[];
  private readonly byKey: Map<string, Label[]>;
  private canonical?: string;

  constructor(labels: Iterable<Label>) {
    const uniq = new Map<string, Label>();
    for (const l of labels) uniq.set(`${l.source}:${l.key}`, l);
    this.labels = [...uniq.values()].sort((a, b) => cmp(a.source, b.source) || cmp(a.key, b.key));
    this.byKey = new Map();
    for (const l of this.labels) {
      const list = this.byKey.get(l.key);
      if (list) list.push(l);
      else this.byKey.set(l.key, [l]);
    }
  }

  static of(...labels: string[]): LabelSet {
    return new LabelSet(labels.map(parseLabel));
  }

  /** Labels with this key, from this source (or any source when source is `any`). */
  find(source: string, key: string): Label[] {
    const list = this.byKey.get(key);
    if (!list) return [];
    if (source === SOURCE_ANY) return list;
    return list.filter((l) => l.source === source);
  }

  has(source: string, key: string): boolean {
    return this.find(source, key).length > 0;
  }

  get(source: string, key: string): string | undefined {
    return this.find(source, key)[0]?.value;
  }

  hasSource(source: string): boolean {
    return this.labels.some((l) => l.source === source);
  }

  /** `k8s:app=web,k8s:io.kubernetes.pod.namespace=default,...` — equal sets give equal strings. */
  toString(): string {
    this.canonical ??= this.labels.map(formatLabel).join(',');
    return this.canonical;
  }

  toStrings(): string[] {
    return this.labels.map(formatLabel);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
