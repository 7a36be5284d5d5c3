/**
 * The cluster's names, as CoreDNS's kubernetes plugin serves them (pure):
 *   <service>.<namespace>.svc.<domain>      A: the Service's ClusterIP
 *   <a-b-c-d>.<namespace>.pod.<domain>      A: a.b.c.d, when a pod of that
 *                                            namespace has it ("pods verified")
 * Any other name inside <domain> does not exist (NXDOMAIN); a name that
 * exists but has no record of the asked type answers NOERROR with no
 * answer (NODATA); names outside <domain> are someone else's (forwarded).
 * Names are matched case-insensitively, with or without the final dot.
 */
export const CLUSTER_DOMAIN = 'cluster.local';

export interface ClusterView {
  /** `name.namespace` → ClusterIP. */
  services: ReadonlyMap<string, string>;
  /** `ip namespace` of every pod. */
  pods: ReadonlySet<string>;
  namespaces: ReadonlySet<string>;
}

export type ClusterAnswer =
  | { kind: 'forward' }
  | { kind: 'nxdomain' }
  /** The name exists; `a` holds its IPv4 addresses (empty: no A record, or another type asked). */
  | { kind: 'records'; a: string[] };

export function normalizeName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

export function inClusterDomain(name: string, domain = CLUSTER_DOMAIN): boolean {
  const n = normalizeName(name);
  return n === domain || n.endsWith(`.${domain}`);
}

export function lookupCluster(view: ClusterView, qname: string, qtype: string, domain = CLUSTER_DOMAIN): ClusterAnswer {
  const n = normalizeName(qname);
  if (!inClusterDomain(n, domain)) return { kind: 'forward' };
  const labels = n === domain ? [] : n.slice(0, -(domain.length + 1)).split('.');
  const wantA = qtype === 'A' || qtype === 'ANY';
  // The zone itself and its two subtrees exist (they hold names).
  if (labels.length === 0 || (labels.length === 1 && (labels[0] === 'svc' || labels[0] === 'pod'))) return { kind: 'records', a: [] };
  const [first, second, third] = labels;
  if (labels.length === 2 && (second === 'svc' || second === 'pod')) return view.namespaces.has(first!) ? { kind: 'records', a: [] } : { kind: 'nxdomain' };
  if (labels.length === 3 && third === 'svc') {
    const ip = view.services.get(`${first}.${second}`);
    if (!ip) return { kind: 'nxdomain' };
    return { kind: 'records', a: wantA ? [ip] : [] };
  }
  if (labels.length === 3 && third === 'pod') {
    const m = /^(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})$/.exec(first!);
    if (!m || m.slice(1).some((x) => Number(x) > 255)) return { kind: 'nxdomain' };
    const ip = m.slice(1).map(Number).join('.');
    if (!view.pods.has(`${ip} ${second}`)) return { kind: 'nxdomain' };
    return { kind: 'records', a: wantA ? [ip] : [] };
  }
  return { kind: 'nxdomain' };
}

/** A pod's resolv.conf: the cluster resolver and Kubernetes' search path (ClusterFirst). */
export function podResolvConf(namespace: string, nameserver: string, domain = CLUSTER_DOMAIN): string {
  return `# written by membrane for pods of namespace ${namespace} (Kubernetes dnsPolicy ClusterFirst)\nsearch ${namespace}.svc.${domain} svc.${domain} ${domain}\nnameserver ${nameserver}\noptions ndots:5\n`;
}
