/**
 * An endpoint's MapState → the writes of its kernel policy map and the
 * enforcement flags of its endpoint entry (the policy-map model of
 * packages/policy/src/policy-map.ts, encoded for bpf/lib/abi.h).
 */
import type { PolicyMapWrite } from '@membrane/datapath';
import { L7Parser, entryPrefix, toPolicyMapEntries, type EndpointPolicy, type PolicyMapEntry } from '@membrane/policy';

/** The meta entry of a direction: its key's identity, and the bits its cookie holds. */
export const META_IDENTITY = 0xffffffff;
export const META_ENFORCED = 1;
export const META_DEFAULT_DENY = 2;
/** No entry of the direction has identity 0: the programs skip that lookup (abi.h MBR_POLICY_META_NO_WILDCARD). */
export const META_NO_WILDCARD = 4;

export interface ProxyPorts {
  /** Port of the HTTP proxy listener; 0 until the L7 proxy runs. */
  http?: number;
  dns?: number;
}

export interface EndpointPolicyWrites {
  writes: PolicyMapWrite[];
  /** The policy-map entries, in the order of their cookies (cookie = index + 1). */
  entries: PolicyMapEntry[];
  ingressEnforced: boolean;
  egressEnforced: boolean;
  ingressDefaultDeny: boolean;
  egressDefaultDeny: boolean;
}

export function policyMapWrites(policy: EndpointPolicy, proxy: ProxyPorts = {}): EndpointPolicyWrites {
  const entries = [...toPolicyMapEntries(policy.ingress), ...toPolicyMapEntries(policy.egress)];
  const writes = entries.map((e, i) => ({
    identity: e.identity,
    direction: e.direction,
    proto: e.proto,
    port: e.port,
    prefix: entryPrefix(e),
    deny: e.deny,
    l7: e.deny ? L7Parser.NONE : e.l7,
    proxyPort: e.deny || e.l7 === L7Parser.NONE ? 0 : (e.l7 === L7Parser.DNS ? proxy.dns : proxy.http) ?? 0,
    cookie: i + 1,
  }));
  // The enforcement of each direction travels in the map (see MBR_POLICY_META_* in abi.h).
  for (const [direction, dp] of [['ingress', policy.ingress], ['egress', policy.egress]] as const) {
    const wildcard = writes.some((w) => w.direction === direction && w.identity === 0);
    const bits = (dp.enforced ? META_ENFORCED : 0) | (dp.enforced && dp.defaultDeny ? META_DEFAULT_DENY : 0) | (wildcard ? 0 : META_NO_WILDCARD);
    writes.push({ identity: META_IDENTITY, direction, proto: 0, port: 0, prefix: 24, deny: false, l7: 0, proxyPort: 0, cookie: bits });
  }
  return {
    writes,
    entries,
    ingressEnforced: policy.ingress.enforced,
    egressEnforced: policy.egress.enforced,
    ingressDefaultDeny: policy.ingress.enforced && policy.ingress.defaultDeny,
    egressDefaultDeny: policy.egress.enforced && policy.egress.defaultDeny,
  };
}
