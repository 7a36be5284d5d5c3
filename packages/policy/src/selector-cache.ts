/**
 * SelectorCache: which identities each peer selector selects, computed once
 * per distinct selector for a given set of identities (and DNS cache). Rules
 * share selectors heavily, so resolution cost grows with the number of
 * distinct selectors, not with rules x identities.
 */
import { prefixContains } from './cidr.js';
import { dnsMatches } from './l7/dns.js';
import type { Identity } from './identity.js';
import { CLUSTER_LABEL, DEFAULT_CLUSTER_NAME, SOURCE_K8S, SOURCE_RESERVED } from './labels.js';
import { formatIP } from './cidr.js';
import type { PeerSelector } from './rule.js';

/** The reserved identities that make up the `cluster` entity, besides the cluster's pods. */
const CLUSTER_RESERVED = ['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'];

export interface SelectionContext {
  readonly identities: readonly Identity[];
  /** IP (as text) → names that resolved to it through the DNS proxy (toFQDNs). */
  readonly dnsNames?: ReadonlyMap<string, readonly string[]>;
  readonly clusterName?: string;
}

export type Selection = 'any' | readonly number[];

export function entityMatches(name: string, id: Identity, clusterName = DEFAULT_CLUSTER_NAME): boolean {
  const reserved = (n: string) => id.labels.has(SOURCE_RESERVED, n);
  switch (name) {
    case 'all':
      return true;
    case 'world':
      return reserved('world');
    case 'world-ipv4':
      return reserved('world') && (id.prefix === undefined || id.prefix.family === 4);
    case 'world-ipv6':
      return reserved('world') && (id.prefix === undefined || id.prefix.family === 6);
    case 'cluster':
      return CLUSTER_RESERVED.some(reserved) || id.labels.get(SOURCE_K8S, CLUSTER_LABEL) === clusterName;
    default:
      return reserved(name);
  }
}

export function peerMatches(p: PeerSelector, id: Identity, ctx: SelectionContext): boolean {
  switch (p.kind) {
    case 'wildcard':
      return true;
    case 'endpoints':
      return p.selector.matches(id.labels);
    case 'entity':
      return entityMatches(p.name, id, ctx.clusterName);
    case 'cidr': {
      // CIDR rules select only peers outside the cluster: identities that stand for a prefix.
      const ip = id.prefix;
      if (!ip || !id.labels.has(SOURCE_RESERVED, 'world')) return false;
      if (!prefixContains(p.cidr, ip)) return false;
      return !p.except.some((e) => prefixContains(e, ip));
    }
    case 'fqdn': {
      const ip = id.prefix;
      if (!ip || ip.bits !== (ip.family === 4 ? 32 : 128) || !ctx.dnsNames) return false;
      const names = ctx.dnsNames.get(formatIP(ip.family, ip.bytes));
      return names !== undefined && names.some((n) => dnsMatches(p.matcher, n));
    }
  }
}

export function peerKey(p: PeerSelector): string {
  switch (p.kind) {
    case 'wildcard': return '*';
    case 'endpoints': return `ep:${p.selector.toString()}`;
    case 'entity': return `entity:${p.name}`;
    case 'cidr': return `cidr:${p.text}`;
    case 'fqdn': return `fqdn:${p.matcher.text}`;
  }
}

export class SelectorCache {
  private readonly cache = new Map<string, Selection>();

  constructor(readonly ctx: SelectionContext) {}

  select(p: PeerSelector): Selection {
    if (p.kind === 'wildcard' || (p.kind === 'endpoints' && p.selector.isWildcard) || (p.kind === 'entity' && p.name === 'all')) return 'any';
    const key = peerKey(p);
    let sel = this.cache.get(key);
    if (sel === undefined) {
      const ids: number[] = [];
      for (const id of this.ctx.identities) if (peerMatches(p, id, this.ctx)) ids.push(id.id);
      sel = ids;
      this.cache.set(key, sel);
    }
    return sel;
  }

  get size(): number {
    return this.cache.size;
  }
}
