/**
 * The engine's own form of a policy: what every CNP, CCNP and NetworkPolicy
 * is translated into. A Rule selects subjects (endpoints or the node) and
 * carries directional rules, each allowing or denying a set of peers on a set
 * of ports, possibly with L7 rules. Every piece remembers its origin so that
 * a verdict can name the rule behind it.
 */
import type { Prefix } from './cidr.js';
import type { DnsMatcher } from './l7/dns.js';
import type { HttpRule } from './l7/http.js';
import type { EndpointSelector } from './selector.js';

export type Direction = 'ingress' | 'egress';
export type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';

export interface PolicyRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface RuleOrigin extends PolicyRef {
  /** Index in `specs` when the policy uses `specs`. */
  spec?: number;
  section: Section | 'implicit';
  index: number;
}

export function policyKey(p: PolicyRef): string {
  return p.namespace ? `${p.kind}/${p.namespace}/${p.name}` : `${p.kind}/${p.name}`;
}

export function formatOrigin(o: RuleOrigin): string {
  if (o.section === 'implicit') return o.name;
  const where = o.namespace ? `${o.namespace}/${o.name}` : o.name;
  const spec = o.spec !== undefined ? `specs[${o.spec}].` : '';
  return `${o.kind} ${where} ${spec}${o.section}[${o.index}]`;
}

export type PeerSelector =
  /** Every peer, world included (L4-only rules, KNP rules without `from`). */
  | { kind: 'wildcard' }
  /** Label-based: fromEndpoints/toEndpoints, KNP pod/namespace selectors. Requirements fold into these. */
  | { kind: 'endpoints'; selector: EndpointSelector }
  /** fromEntities/toEntities. */
  | { kind: 'entity'; name: string }
  /** fromCIDR/fromCIDRSet/toCIDR/toCIDRSet/ipBlock: only peers outside the cluster. */
  | { kind: 'cidr'; cidr: Prefix; except: Prefix[]; text: string }
  /** toFQDNs: the IPs that matching names resolved to. */
  | { kind: 'fqdn'; matcher: DnsMatcher };

export interface L7Spec {
  http?: HttpRule[];
  dns?: DnsMatcher[];
}

export interface PortSpec {
  /** Protocol number; 0 = TCP, UDP and SCTP (expanded at resolution). */
  proto: number;
  port: number;
  endPort: number;
  /** A named port, resolved against container ports at resolution. */
  name?: string;
  l7?: L7Spec;
}

export interface DirectionalRule {
  origin: RuleOrigin;
  direction: Direction;
  deny: boolean;
  peers: PeerSelector[];
  /** fromRequires/toRequires: folded into every label-based peer of the subject's rules in this direction. */
  requires: EndpointSelector[];
  /** null: all ports and protocols, ICMP included (an L3-only rule). */
  ports: PortSpec[] | null;
}

export interface Rule {
  policy: PolicyRef;
  spec?: number;
  /** endpointSelector, or nodeSelector (then it selects the host only). */
  subject: { kind: 'endpoints' | 'node'; selector: EndpointSelector };
  ingress: DirectionalRule[];
  egress: DirectionalRule[];
  /** Does this rule put the direction under policy enforcement? */
  enforces: Record<Direction, boolean>;
  /** ...and is that enforcement default-deny (enableDefaultDeny)? */
  defaultDeny: Record<Direction, boolean>;
  description?: string;
}
