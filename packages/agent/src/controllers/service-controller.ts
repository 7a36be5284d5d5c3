/**
 * The Service controller's arithmetic (pure): a Service's frontends — one
 * per port, at its ClusterIP — and, for each, the backends it balances over:
 * the pods its selector picks in its namespace, each at the port its
 * `targetPort` names (a number, or a container port name looked up in each
 * pod's own containers, as Kubernetes resolves it per pod). Only ready pods
 * get new connections ("active"); pods not ready are listed for `service
 * list` but never chosen. What cannot be resolved (a targetPort name no
 * selected pod has) is a condition of the Service, never an error of the
 * apply that made it.
 */
import type { Pod, Service } from '@membrane/api';

export interface BackendPod {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  ip: string;
  ready: boolean;
  manifest: Pod;
}

export type BackendState = 'active' | 'not-ready';

export interface Backend {
  ip: string;
  port: number;
  pod: string;
  state: BackendState;
}

export interface Frontend {
  /** Stable id of this frontend (service + port), shown by `service list`. */
  id: number;
  service: string;
  portName?: string;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  backends: Backend[];
}

export interface ServiceCondition {
  type: 'BackendsResolved';
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** Does a selector (matchLabels form, as a Service has) pick these labels? An empty or missing one picks nothing. */
export function selects(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The container port named `name` with this protocol in a pod, if any. */
export function namedContainerPort(pod: Pod, name: string, protocol: string): number | undefined {
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) if (p.name === name && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
  }
  return undefined;
}

export function serviceFrontends(svc: Service, clusterIP: string, ids: readonly number[], pods: readonly BackendPod[]): { frontends: Frontend[]; condition: ServiceCondition } {
  const ns = svc.metadata.namespace ?? 'default';
  const selected = pods.filter((p) => p.namespace === ns && selects(svc.spec.selector, p.labels));
  const problems: string[] = [];
  const frontends = svc.spec.ports.map((sp, i): Frontend => {
    const protocol = sp.protocol ?? 'TCP';
    const target = sp.targetPort ?? sp.port;
    const backends: Backend[] = [];
    for (const p of selected) {
      const port = typeof target === 'number' ? target : namedContainerPort(p.manifest, target, protocol);
      if (port === undefined) {
        problems.push(`targetPort "${target}" of port ${sp.name ?? sp.port}: pod ${p.name} has no ${protocol} container port of that name`);
        continue;
      }
      backends.push({ ip: p.ip, port, pod: `${p.namespace}/${p.name}`, state: p.ready ? 'active' : 'not-ready' });
    }
    return { id: ids[i]!, service: `${ns}/${svc.metadata.name}`, ...(sp.name ? { portName: sp.name } : {}), ip: clusterIP, port: sp.port, protocol, backends };
  });
  let condition: ServiceCondition;
  if (problems.length) condition = { type: 'BackendsResolved', status: 'False', reason: 'TargetPortNotFound', message: problems.join('; ') };
  else if (!svc.spec.selector || Object.keys(svc.spec.selector).length === 0) condition = { type: 'BackendsResolved', status: 'False', reason: 'NoSelector', message: 'the Service has no selector: it balances over no pods' };
  else if (selected.length === 0) condition = { type: 'BackendsResolved', status: 'False', reason: 'NoPodsSelected', message: `the selector ${Object.entries(svc.spec.selector).map(([k, v]) => `${k}=${v}`).join(',')} picks no pod in namespace ${ns}: connections are refused` };
  else condition = { type: 'BackendsResolved', status: 'True', reason: 'Resolved', message: `${selected.length} pod(s) selected` };
  return { frontends, condition };
}
