/**
 * Identities as the policy engine sees them: a number, the labels behind it,
 * and for CIDR identities the prefix. The numbering follows Cilium: reserved
 * identities 1-8, cluster identities from 256, local CIDR identities from 2^24.
 */
import { hostPrefix, parsePrefix, type Prefix } from './cidr.js';
import {
  CLUSTER_LABEL,
  DEFAULT_CLUSTER_NAME,
  LabelSet,
  NAMESPACE_LABELS_PREFIX,
  NAMESPACE_NAME_LABEL,
  POD_NAMESPACE_LABEL,
  SERVICE_ACCOUNT_LABEL,
  SOURCE_CIDR,
  SOURCE_K8S,
  SOURCE_RESERVED,
  type Label,
} from './labels.js';

export interface Identity {
  readonly id: number;
  readonly labels: LabelSet;
  /** For CIDR identities (and world): the prefix they stand for. */
  readonly prefix?: Prefix;
}

export const ReservedIdentity = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
} as const;

export type ReservedName = keyof typeof ReservedIdentity;

export const FIRST_CLUSTER_IDENTITY = 256;
export const FIRST_LOCAL_IDENTITY = 1 << 24;
/** Identity 0 in a MapState key: any peer. */
export const ANY_IDENTITY = 0;

export function reservedIdentity(name: ReservedName, extraLabels: Label[] = []): Identity {
  const labels: Label[] = [{ source: SOURCE_RESERVED, key: name, value: '' }, ...extraLabels];
  const id = ReservedIdentity[name];
  if (name === 'world') return { id, labels: new LabelSet(labels), prefix: parsePrefix('0.0.0.0/0') as Prefix };
  return { id, labels: new LabelSet(labels) };
}

export function reservedIdentities(): Identity[] {
  return (Object.keys(ReservedIdentity) as ReservedName[]).map((n) => reservedIdentity(n));
}

export function isReservedIdentity(id: number): boolean {
  return id > 0 && id < FIRST_CLUSTER_IDENTITY;
}

/** Labels of a CIDR identity: `cidr:<prefix>` and `reserved:world` (it lies outside the cluster). */
export function cidrIdentityLabels(prefixText: string): LabelSet {
  return new LabelSet([
    { source: SOURCE_CIDR, key: prefixText, value: '' },
    { source: SOURCE_RESERVED, key: 'world', value: '' },
  ]);
}

/** An identity from its number and labels: a CIDR identity (label `cidr:<prefix>`) carries its prefix, which CIDR and toFQDNs selectors read. */
export function identityOf(id: number, labels: LabelSet): Identity {
  const cidr = labels.labels.find((l) => l.source === SOURCE_CIDR);
  const prefix = cidr ? parsePrefix(cidr.key) : undefined;
  return prefix && typeof prefix !== 'string' ? { id, labels, prefix } : { id, labels };
}

export function cidrIdentity(id: number, ip: string): Identity | undefined {
  const prefix = hostPrefix(ip);
  if (!prefix) return undefined;
  return { id, labels: cidrIdentityLabels(ip.includes('/') ? ip : `${ip}/${prefix.bits}`), prefix };
}

export interface EndpointLabelInput {
  namespace: string;
  podLabels: Readonly<Record<string, string>>;
  namespaceLabels?: Readonly<Record<string, string>>;
  serviceAccount?: string;
  clusterName?: string;
}

/**
 * Labels a pod's labels may not set: the system derives them, and a pod
 * claiming another namespace's name must gain nothing (CVE-2023-39347).
 */
function isSystemLabelKey(key: string): boolean {
  return key === POD_NAMESPACE_LABEL || key.startsWith(NAMESPACE_LABELS_PREFIX) || key.startsWith('io.cilium.k8s.policy.');
}

/**
 * Cilium's default identity-relevant label filter (pkg/labelsfilter): some
 * Kubernetes bookkeeping labels never become part of an identity, so a
 * selector on them matches nothing.
 */
const INCLUDE = [/^io\.kubernetes\.pod\.namespace/, /^io\.cilium\.k8s\.namespace\.labels/, /^app\.kubernetes\.io/, /^io\.cilium\.k8s\.policy\.cluster/];
const IGNORE = [
  /^io\.kubernetes/,
  /^kubernetes\.io/,
  /^statefulset\.kubernetes\.io\/pod-name/,
  /^apps\.kubernetes\.io\/pod-index/,
  /^batch\.kubernetes\.io\/job-completion-index/,
  /^.*beta\.kubernetes\.io/,
  /^k8s\.io/,
  /^pod-template-generation/,
  /^pod-template-hash/,
  /^controller-revision-hash/,
  /^annotation.*/,
  /^etcd_node/,
];

export function isIdentityLabelKey(key: string): boolean {
  let included = 0;
  let ignored = 0;
  for (const re of INCLUDE) {
    const m = re.exec(key);
    if (m && m[0].length > included) included = m[0].length;
  }
  for (const re of IGNORE) {
    const m = re.exec(key);
    if (m && (ignored === 0 || m[0].length < ignored)) ignored = m[0].length;
  }
  return ignored === 0 || included > ignored;
}

/** The identity labels of a pod, as Cilium derives them. */
export function endpointIdentityLabels(input: EndpointLabelInput): LabelSet {
  const out: Label[] = [];
  const k8s = (key: string, value: string) => {
    if (isIdentityLabelKey(key)) out.push({ source: SOURCE_K8S, key, value });
  };
  for (const [k, v] of Object.entries(input.podLabels)) {
    if (!isSystemLabelKey(k)) k8s(k, v);
  }
  k8s(POD_NAMESPACE_LABEL, input.namespace);
  const nsLabels = { ...(input.namespaceLabels ?? {}), [NAMESPACE_NAME_LABEL]: input.namespace };
  for (const [k, v] of Object.entries(nsLabels)) k8s(NAMESPACE_LABELS_PREFIX + k, v);
  k8s(SERVICE_ACCOUNT_LABEL, input.serviceAccount ?? 'default');
  k8s(CLUSTER_LABEL, input.clusterName ?? DEFAULT_CLUSTER_NAME);
  return new LabelSet(out);
}
