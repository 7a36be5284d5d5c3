/**
 * Read views of stored objects, shaped as the Kubernetes API shows them:
 * metadata from the store (creationTimestamp, resourceVersion) and a status
 * synthesised from what the agent runs (Pod phase, IP, conditions and
 * container states; Deployment replica counts).
 */
import type { PodManager } from '../pods/pod-manager.js';
import type { PodState } from '../pods/pod-state.js';
import { MembraneError } from '@membrane/api';
import type { StoreReader, StoredObject } from '../store/index.js';
import { deploymentOwner } from '../controllers/deployment-controller.js';

export function podStatus(s: PodState | undefined): Record<string, unknown> {
  return {
    phase: s?.phase ?? 'Pending',
    ...(s?.reason ? { reason: s.reason } : {}),
    ...(s?.message ? { message: s.message } : {}),
    ...(s ? { podIP: s.ip, podIPs: [{ ip: s.ip }], startTime: s.startTime } : {}),
    conditions: [{ type: 'Ready', status: s?.ready ? 'True' : 'False' }],
    containerStatuses: (s?.containers ?? []).map((c) => ({
      name: c.name,
      ready: c.state === 'running',
      restartCount: c.restarts,
      state:
        c.state === 'running'
          ? { running: { startedAt: c.startedAt } }
          : c.state === 'terminated'
            ? { terminated: { exitCode: c.exitCode, reason: c.reason, finishedAt: c.finishedAt } }
            : { waiting: { reason: c.reason } },
    })),
  };
}

/** What the Service views add to the stored manifest: the ClusterIP given, and whether its backends resolve. */
export interface ServiceStatusSource {
  status(namespace: string, name: string): { clusterIP?: string; condition?: { type: string; status: string; reason: string; message: string } };
}

export function objectView(o: StoredObject, pods: PodManager, services?: ServiceStatusSource): unknown {
  const body = JSON.parse(JSON.stringify(o.body)) as { metadata: Record<string, unknown>; status?: unknown };
  body.metadata['creationTimestamp'] = o.creationTimestamp;
  body.metadata['resourceVersion'] = String(o.resourceVersion);
  if (o.kind === 'Pod') body.status = podStatus(pods.get(o.namespace, o.name)?.state);
  if (o.kind === 'Service' && services) {
    const st = services.status(o.namespace, o.name);
    const spec = (body as { spec?: Record<string, unknown> }).spec ?? {};
    if (st.clusterIP) {
      spec['clusterIP'] = st.clusterIP;
      spec['clusterIPs'] = [st.clusterIP];
    }
    spec['type'] ??= 'ClusterIP';
    body.status = { loadBalancer: {}, ...(st.condition ? { conditions: [{ ...st.condition, lastTransitionTime: o.updateTimestamp }] } : {}) };
  }
  if (o.kind === 'Deployment') {
    const mine = pods.ownedBy(deploymentOwner(o.namespace, o.name));
    body.status = { replicas: mine.length, readyReplicas: mine.filter((p) => p.state.ready).length };
  }
  return body;
}

/** `get KIND [NAME]`: the stored objects with their status; NotFound for a name that is absent. */
export async function listObjects(store: StoreReader, pods: PodManager, kind: string, namespace: string | undefined, name: string | undefined, services?: ServiceStatusSource): Promise<unknown[]> {
  const clusterScoped = kind === 'Namespace' || kind === 'CiliumClusterwideNetworkPolicy';
  const list = await store.list(kind, namespace !== undefined ? { namespace: clusterScoped ? '' : namespace } : {});
  const out = list.filter((o) => name === undefined || o.name === name).map((o) => objectView(o, pods, services));
  if (name !== undefined && out.length === 0) {
    throw new MembraneError('MEMBRANE_E_NOT_FOUND', `${kind} ${namespace && !clusterScoped ? `${namespace}/` : ''}${name} not found`);
  }
  return out;
}
