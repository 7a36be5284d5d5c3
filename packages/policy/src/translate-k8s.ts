/**
 * Kubernetes NetworkPolicy → Rules, as Cilium reads it
 * (cilium/cilium pkg/k8s/network_policy.go): pod selectors see only
 * Kubernetes labels, a peer without namespaceSelector stays in the policy's
 * namespace, namespace selectors match namespace labels (an empty one: any
 * namespace), a rule without peers allows every peer, a port without
 * protocol is TCP, and a port entry without a port covers every port.
 */
import { ValidationError, effectivePolicyTypes, type DocumentRef, type LabelSelector, type NetworkPolicy, type NetworkPolicyPeer, type NetworkPolicyPort } from '@membrane/api';
import { NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_K8S } from './labels.js';
import { protoNumber } from './ports.js';
import type { Direction, DirectionalRule, PeerSelector, PolicyRef, PortSpec, Rule } from './rule.js';
import { EndpointSelector, type Requirement } from './selector.js';
import { Problems, cidrPeer, join, parsePort } from './translate-common.js';

export function translateNetworkPolicy(np: NetworkPolicy, ref: DocumentRef): Rule[] {
  const problems = new Problems();
  const namespace = np.metadata.namespace ?? 'default';
  const policy: PolicyRef = { kind: 'NetworkPolicy', namespace, name: np.metadata.name };
  const nsReq: Requirement = { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] };
  const subject = EndpointSelector.fromLabelSelector(np.spec.podSelector, SOURCE_K8S).and(nsReq);
  const types = effectivePolicyTypes(np.spec);
  const rules: Record<Direction, DirectionalRule[]> = { ingress: [], egress: [] };

  const sections: [Direction, { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[]][] = [
    ['ingress', (np.spec.ingress ?? []).map((r) => ({ ...(r.from ? { peers: r.from } : {}), ...(r.ports ? { ports: r.ports } : {}) }))],
    ['egress', (np.spec.egress ?? []).map((r) => ({ ...(r.to ? { peers: r.to } : {}), ...(r.ports ? { ports: r.ports } : {}) }))],
  ];
  for (const [direction, list] of sections) {
    // Rules of a direction not listed in policyTypes have no effect.
    if (!types.includes(direction === 'ingress' ? 'Ingress' : 'Egress')) continue;
    list.forEach((r, i) => {
      const path = `spec.${direction}[${i}]`;
      const peerField = direction === 'ingress' ? 'from' : 'to';
      const peers: PeerSelector[] = [];
      if (!r.peers || r.peers.length === 0) {
        peers.push({ kind: 'wildcard' });
      } else {
        r.peers.forEach((p, j) => {
          const at = join(join(path, peerField), j);
          if (p.ipBlock) {
            const c = cidrPeer(p.ipBlock.cidr, p.ipBlock.except ?? [], join(at, 'ipBlock.cidr'), join(at, 'ipBlock.except'), problems, false);
            if (c) peers.push(c);
          } else {
            peers.push({ kind: 'endpoints', selector: knpPeerSelector(p, namespace) });
          }
        });
      }
      let ports: PortSpec[] | null = null;
      if (r.ports && r.ports.length > 0) {
        ports = [];
        r.ports.forEach((p, j) => {
          const at = join(join(path, 'ports'), j);
          const parsed = parsePort(p.port === undefined ? undefined : String(p.port), p.endPort, at, problems);
          if (parsed) ports!.push({ proto: protoNumber(p.protocol ?? 'TCP')!, ...parsed });
        });
      }
      rules[direction].push({
        origin: { ...policy, section: direction, index: i },
        direction,
        deny: false,
        peers,
        requires: [],
        ports,
      });
    });
  }
  if (!problems.ok) throw new ValidationError('MEMBRANE_E_POLICY_INVALID', ref, problems.list);
  const enforces = { ingress: types.includes('Ingress'), egress: types.includes('Egress') };
  return [{ policy, subject: { kind: 'endpoints', selector: subject }, ingress: rules.ingress, egress: rules.egress, enforces, defaultDeny: enforces }];
}

function knpPeerSelector(p: NetworkPolicyPeer, namespace: string): EndpointSelector {
  const pod = EndpointSelector.fromLabelSelector(p.podSelector ?? {}, SOURCE_K8S);
  if (!p.namespaceSelector) {
    return pod.and({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] });
  }
  const ns = namespaceRequirements(p.namespaceSelector);
  return pod.and(...ns);
}

/** Namespace selectors match the namespace's labels as they appear on its pods. */
function namespaceRequirements(ls: LabelSelector): Requirement[] {
  const reqs: Requirement[] = [];
  for (const [k, v] of Object.entries(ls.matchLabels ?? {})) {
    reqs.push({ source: SOURCE_K8S, key: NAMESPACE_LABELS_PREFIX + k, operator: 'In', values: [v] });
  }
  for (const e of ls.matchExpressions ?? []) {
    reqs.push({ source: SOURCE_K8S, key: NAMESPACE_LABELS_PREFIX + e.key, operator: e.operator, values: [...(e.values ?? [])].sort() });
  }
  // A namespaceSelector selects pods only (an empty one: the pods of every namespace). NotIn
  // or DoesNotExist alone would also match peers that have no namespace at all.
  if (!reqs.some((r) => r.operator === 'In' || r.operator === 'Exists')) {
    reqs.push({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'Exists', values: [] });
  }
  return reqs;
}
