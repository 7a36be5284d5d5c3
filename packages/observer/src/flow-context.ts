/**
 * What the observer asks of the agent to make flows (FlowContext): local
 * endpoints by id and address, identities' labels, the names the DNS proxy
 * saw, Services, and per endpoint the rules behind its policy-map entries.
 * Addresses are IPv4 host-order numbers (the datapath's events carry them
 * so; no string is made to look one up).
 *
 * Answers are taken to be immutable: the observer keeps the references it
 * was given with each event and makes the flow from them later, so a flow
 * says what was in force when its packet passed.
 */
import type { PolicyRef, RuleOrigin } from '@membrane/policy';

export interface ServiceRef {
  name: string;
  namespace: string;
}

/** The rules behind an endpoint's policy-map entries as they were installed. */
export interface EndpointPolicy {
  /** The rules behind the entry an event names by its cookie (1-based; none for 0 or an unknown one). */
  origins(cookie: number): readonly RuleOrigin[];
  /** How the entry matched (Cilium's policy match types: 1 L3-Only, 2 L3-L4, 3 L4-Only, 4 all, 5 L3-Proto, 6 Proto-Only); 0 none. */
  matchType(cookie: number): number;
  /** The policies that put a direction into default deny (none when it is not). */
  defaultDenyBy(direction: 'ingress' | 'egress'): readonly PolicyRef[];
}

export interface EndpointInfo {
  id: number;
  identity: number;
  namespace: string;
  podName: string;
  /** `source:key=value` */
  labels: readonly string[];
  workloads?: readonly { name: string; kind: string }[];
  policy?: EndpointPolicy;
}

export interface FlowContext {
  nodeName: string;
  endpoint(epId: number): EndpointInfo | undefined;
  endpointAt(addr: number): EndpointInfo | undefined;
  identityLabels(id: number): readonly string[] | undefined;
  /** Names the DNS proxy saw this address resolve from. */
  names(addr: number): readonly string[];
  /** The Service an address:port is a frontend of. */
  service?(addr: number, port: number): ServiceRef | undefined;
}

export function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** A dotted IPv4 address as a number (NaN when it is not one). */
export function ipv4Number(s: string): number {
  const p = s.split('.');
  if (p.length !== 4) return NaN;
  let n = 0;
  for (const x of p) {
    const v = Number(x);
    if (!/^\d{1,3}$/.test(x) || v > 255) return NaN;
    n = n * 256 + v;
  }
  return n;
}
