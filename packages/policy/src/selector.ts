/**
 * EndpointSelector: a Kubernetes label selector whose keys carry a Cilium
 * label source (`k8s:app`, `reserved:host`, or `app` = any source), compiled
 * for matching against an identity's labels.
 */
import type { LabelSelector, SelectorOperator } from '@membrane/api';
import { LabelSet, SOURCE_ANY, SOURCE_RESERVED } from './labels.js';

export interface Requirement {
  readonly source: string;
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

/** Splits a selector key into source and key; no source means any source. */
export function splitSelectorKey(key: string, defaultSource = SOURCE_ANY): { source: string; key: string } {
  const colon = key.indexOf(':');
  if (colon < 0) return { source: defaultSource, key };
  return { source: key.slice(0, colon), key: key.slice(colon + 1) };
}

export class EndpointSelector {
  readonly requirements: readonly Requirement[];
  private canonical?: string;

  constructor(requirements: Iterable<Requirement>) {
    this.requirements = [...requirements].sort((a, b) => {
      const x = reqString(a);
      const y = reqString(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }

  /** From a user's LabelSelector; keys without a source get defaultSource. */
  static fromLabelSelector(ls: LabelSelector, defaultSource = SOURCE_ANY): EndpointSelector {
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(ls.matchLabels ?? {})) {
      const { source, key } = splitSelectorKey(k, defaultSource);
      reqs.push({ source, key, operator: 'In', values: [v] });
    }
    for (const e of ls.matchExpressions ?? []) {
      const { source, key } = splitSelectorKey(e.key, defaultSource);
      reqs.push({ source, key, operator: e.operator, values: [...(e.values ?? [])].sort() });
    }
    return new EndpointSelector(reqs);
  }

  static readonly wildcard = new EndpointSelector([]);

  /** Selects every identity (no requirement, or Cilium's `reserved:all`). */
  get isWildcard(): boolean {
    return this.requirements.length === 0 || this.selectsAll;
  }

  private get selectsAll(): boolean {
    return this.requirements.some((r) => r.source === SOURCE_RESERVED && r.key === 'all' && r.operator === 'In');
  }

  /** Does any requirement name this key (under this source, or under `any`)? */
  hasKey(source: string, key: string): boolean {
    return this.requirements.some((r) => r.key === key && (r.source === source || r.source === SOURCE_ANY));
  }

  hasKeyPrefix(source: string, prefix: string): boolean {
    return this.requirements.some((r) => r.key.startsWith(prefix) && (r.source === source || r.source === SOURCE_ANY));
  }

  /**
   * Does the selector only ever match identities that carry a label with this key (or key
   * prefix), i.e. does it hold an In or Exists requirement on it?
   */
  requiresKey(source: string, key: string, prefix = false): boolean {
    return this.requirements.some(
      (r) =>
        (r.operator === 'In' || r.operator === 'Exists') &&
        (r.source === source || r.source === SOURCE_ANY) &&
        (prefix ? r.key.startsWith(key) : r.key === key),
    );
  }

  hasSource(source: string): boolean {
    return this.requirements.some((r) => r.source === source);
  }

  and(...more: Requirement[]): EndpointSelector {
    return new EndpointSelector([...this.requirements, ...more]);
  }

  matches(labels: LabelSet): boolean {
    if (this.selectsAll) return true;
    for (const r of this.requirements) {
      const found = labels.find(r.source, r.key);
      switch (r.operator) {
        case 'In':
          if (!found.some((l) => r.values.includes(l.value))) return false;
          break;
        case 'NotIn':
          if (found.some((l) => r.values.includes(l.value))) return false;
          break;
        case 'Exists':
          if (found.length === 0) return false;
          break;
        case 'DoesNotExist':
          if (found.length > 0) return false;
          break;
      }
    }
    return true;
  }

  /** Equal selectors give equal strings (used as cache keys). */
  toString(): string {
    this.canonical ??= this.requirements.length === 0 ? '{}' : this.requirements.map(reqString).join(',');
    return this.canonical;
  }
}

function reqString(r: Requirement): string {
  switch (r.operator) {
    case 'In':
      return r.values.length === 1 ? `${r.source}:${r.key}=${r.values[0]}` : `${r.source}:${r.key} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${r.source}:${r.key} notin (${r.values.join(',')})`;
    case 'Exists':
      return `${r.source}:${r.key}`;
    case 'DoesNotExist':
      return `!${r.source}:${r.key}`;
  }
}
