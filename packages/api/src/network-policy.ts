/** Kubernetes NetworkPolicy (networking.k8s.io/v1), validated as the API server does. */
import { labelSelector, type LabelSelector } from './label-selector.js';
import { objectMeta, type ObjectMeta } from './object-meta.js';
import { any, arr, int, intOrString, isPlainObject, join, obj, str, type Schema } from './schema.js';

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  /** Number or named port; absent = every port of the protocol. */
  port?: number | string;
  endPort?: number;
  /** Defaults to TCP. */
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  podSelector: LabelSelector;
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
  policyTypes?: ('Ingress' | 'Egress')[];
}

export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: NetworkPolicySpec;
}

const ipBlock: Schema<IPBlock> = (value, path, problems) =>
  obj({ cidr: str({ nonEmpty: true }), except: arr(str({ nonEmpty: true })) }, { required: ['cidr'] })(value, path, problems) as
    | IPBlock
    | undefined;

const peer: Schema<NetworkPolicyPeer> = (value, path, problems) => {
  const r = obj({ podSelector: labelSelector, namespaceSelector: labelSelector, ipBlock })(value, path, problems);
  if (!r) return undefined;
  const n = Number(r.podSelector !== undefined) + Number(r.namespaceSelector !== undefined);
  if (r.ipBlock !== undefined && n > 0) {
    problems.add(path, 'ipBlock may not be combined with podSelector or namespaceSelector');
    return undefined;
  }
  if (r.ipBlock === undefined && n === 0) {
    problems.add(path, 'must specify at least one of podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  return r as NetworkPolicyPeer;
};

const port: Schema<NetworkPolicyPort> = (value, path, problems) => {
  const r = obj({
    port: intOrString(),
    endPort: int({ min: 1, max: 65535 }),
    protocol: str({ oneOf: ['TCP', 'UDP', 'SCTP'] }),
  })(value, path, problems);
  if (!r) return undefined;
  if (typeof r.port === 'string') {
    // Kubernetes: a string port is a named port, an IANA service name (validation.IsValidPortName).
    const why = checkPortName(r.port);
    if (why) {
      problems.add(join(path, 'port'), why);
      return undefined;
    }
  }
  if (typeof r.port === 'number' && (r.port < 1 || r.port > 65535)) {
    problems.add(join(path, 'port'), `${r.port} is not a valid port number (1-65535)`);
    return undefined;
  }
  if (r.endPort !== undefined) {
    if (typeof r.port !== 'number') {
      problems.add(join(path, 'endPort'), 'may only be used with a numeric port');
      return undefined;
    }
    if (r.endPort < r.port) {
      problems.add(join(path, 'endPort'), `${r.endPort} is below port ${r.port}`);
      return undefined;
    }
  }
  return r as NetworkPolicyPort;
};

const spec: Schema<NetworkPolicySpec> = (value, path, problems) =>
  obj(
    {
      podSelector: labelSelector,
      ingress: arr(obj({ from: arr(peer), ports: arr(port) })),
      egress: arr(obj({ to: arr(peer), ports: arr(port) })),
      policyTypes: arr(str({ oneOf: ['Ingress', 'Egress'] })),
    },
    { required: ['podSelector'] },
  )(value, path, problems) as NetworkPolicySpec | undefined;

export const networkPolicy: Schema<NetworkPolicy> = (value, path, problems) => {
  if (!isPlainObject(value)) return undefined;
  const r = obj(
    { apiVersion: str(), kind: str(), metadata: objectMeta, spec, status: any() },
    { required: ['metadata', 'spec'] },
  )(value, path, problems);
  if (!r) return undefined;
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: r.metadata!, spec: r.spec! };
};

/**
 * policyTypes as the API server stores them: when omitted, Ingress always,
 * plus Egress when the policy has egress rules (Kubernetes docs, "The
 * NetworkPolicy resource").
 */
export function effectivePolicyTypes(np: NetworkPolicySpec): ('Ingress' | 'Egress')[] {
  if (np.policyTypes && np.policyTypes.length > 0) return np.policyTypes;
  return np.egress && np.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

function checkPortName(name: string): string | undefined {
  if (/^[0-9]+$/.test(name)) return `"${name}" is a string, so it names a port, and a port name must contain a letter (write the number without quotes)`;
  if (name.length > 15) return `"${name}" is not a valid port name: at most 15 characters`;
  if (!/^[a-z0-9-]+$/.test(name)) return `"${name}" is not a valid port name: only lower-case letters, digits and '-'`;
  if (!/[a-z]/.test(name)) return `"${name}" is not a valid port name: it must contain a letter`;
  if (name.startsWith('-') || name.endsWith('-') || name.includes('--')) return `"${name}" is not a valid port name: no leading, trailing or double '-'`;
  return undefined;
}
