/**
 * Table answers (`as=Table;v=v1;g=meta.k8s.io`) with the apiserver's
 * columns per kind and ages rendered by the server, as `kubectl get`
 * prints them; `rows[].object` is the row's PartialObjectMetadata (so `-A`
 * fills NAMESPACE).
 */
export const TABLE_TYPE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

interface Column {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
}

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; creationTimestamp?: string; [k: string]: unknown }; spec?: Record<string, unknown>; status?: Record<string, unknown> };

/** Kubernetes' human duration (what `kubectl get` shows as AGE). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  return y < 8 && d % 365 !== 0 ? `${y}y${d % 365}d` : `${y}y`;
}

const col = (name: string, type = 'string', description = '', priority = 0, format?: string): Column => ({ name, type, ...(format ? { format } : {}), description, priority });
const NAME = col('Name', 'string', 'Name must be unique within a namespace.', 0, 'name');
const AGE = col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

function age(o: Obj, now: number): string {
  const t = o.metadata.creationTimestamp ? Date.parse(o.metadata.creationTimestamp) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

function podCells(o: Obj, now: number): unknown[] {
  const st = (o.status ?? {}) as { phase?: string; reason?: string; podIP?: string; containerStatuses?: { ready: boolean; restartCount: number; state?: { waiting?: { reason?: string }; terminated?: { reason?: string } } }[] };
  const cs = st.containerStatuses ?? [];
  const total = ((o.spec?.['containers'] as unknown[]) ?? cs).length;
  const waiting = cs.find((c) => c.state?.waiting?.reason)?.state?.waiting?.reason ?? cs.find((c) => c.state?.terminated?.reason)?.state?.terminated?.reason;
  const status = st.reason ?? (st.phase === 'Running' || !waiting ? st.phase ?? 'Pending' : waiting);
  return [o.metadata.name, `${cs.filter((c) => c.ready).length}/${total}`, status, cs.reduce((n, c) => n + (c.restartCount ?? 0), 0), age(o, now), st.podIP ?? '<none>', 'membrane', '<none>', '<none>'];
}

const TABLES: Record<string, { columns: Column[]; cells: (o: Obj, now: number) => unknown[] }> = {
  Pod: {
    columns: [NAME, col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'), col('Status', 'string', 'The aggregate status of the containers in this pod.'), col('Restarts', 'string', 'The number of times the containers in this pod have been restarted.'), AGE, col('IP', 'string', 'The IP address assigned to the pod', 1), col('Node', 'string', 'The name of the node the pod is on', 1), col('Nominated Node', 'string', 'The node the pod is nominated for', 1), col('Readiness Gates', 'string', 'The readiness gates of the pod', 1)],
    cells: podCells,
  },
  Service: {
    columns: [NAME, col('Type', 'string', 'The type of the service.'), col('Cluster-IP', 'string', 'The IP address of the service.'), col('External-IP', 'string', 'External IPs of the service.'), col('Port(s)', 'string', 'The ports of the service.'), AGE, col('Selector', 'string', 'The selector of the service.', 1)],
    cells: (o, now) => {
      const spec = (o.spec ?? {}) as { type?: string; clusterIP?: string; ports?: { port: number; protocol?: string }[]; selector?: Record<string, string> };
      return [o.metadata.name, spec.type ?? 'ClusterIP', spec.clusterIP ?? '<none>', '<none>', (spec.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>', age(o, now), Object.entries(spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>'];
    },
  },
  Deployment: {
    columns: [NAME, col('Ready', 'string', 'Number of the pod with ready state'), col('Up-to-date', 'string', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'), col('Available', 'string', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'), AGE],
    cells: (o, now) => {
      const want = Number((o.spec as { replicas?: number } | undefined)?.replicas ?? 1);
      const st = (o.status ?? {}) as { replicas?: number; readyReplicas?: number };
      return [o.metadata.name, `${st.readyReplicas ?? 0}/${want}`, st.replicas ?? 0, st.readyReplicas ?? 0, age(o, now)];
    },
  },
  Namespace: { columns: [NAME, col('Status', 'string', 'The status of the namespace'), AGE], cells: (o, now) => [o.metadata.name, 'Active', age(o, now)] },
  // Cilium's CRDs print AGE and VALID (the policy was accepted: a stored policy always was).
  CiliumNetworkPolicy: { columns: [NAME, AGE, col('Valid', 'string', '')], cells: (o, now) => [o.metadata.name, age(o, now), 'True'] },
  CiliumClusterwideNetworkPolicy: { columns: [NAME, AGE, col('Valid', 'string', '')], cells: (o, now) => [o.metadata.name, age(o, now), 'True'] },
  NetworkPolicy: {
    columns: [NAME, col('Pod-Selector', 'string', 'Selects the pods to which this NetworkPolicy object applies.'), AGE],
    cells: (o, now) => {
      const sel = (o.spec?.['podSelector'] as { matchLabels?: Record<string, string> } | undefined)?.matchLabels ?? {};
      return [o.metadata.name, Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',') || '<none>', age(o, now)];
    },
  },
};

function partial(o: Obj) {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

export function table(kind: string, objects: readonly Obj[], resourceVersion: string, now = Date.now()) {
  const t = TABLES[kind] ?? { columns: [NAME, AGE], cells: (o: Obj, n: number) => [o.metadata.name, age(o, n)] };
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: t.columns,
    rows: objects.map((o) => ({ cells: t.cells(o, now), object: partial(o) })),
  };
}
