/**
 * Workload manifests the agent runs: Namespace, ServiceAccount, Pod,
 * Deployment and Service (core/v1 and apps/v1), validated as the API server
 * would for the fields Membrane implements. Fields Kubernetes accepts that
 * Membrane does not implement are rejected by name rather than ignored.
 */
import { checkDns1123Label, checkLabelKey, checkLabelValue } from './k8s-names.js';
import { labelSelector, type LabelSelector } from './label-selector.js';
import { objectMeta, type ObjectMeta } from './object-meta.js';
import { any, arr, int, intOrString, isPlainObject, join, obj, str, strMap, type Problems, type Schema } from './schema.js';

const notYet = (what: string) => `${what} is not supported by Membrane yet`;

export interface EnvVar {
  name: string;
  value?: string;
}

export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface Probe {
  tcpSocket?: { port: number | string };
  httpGet?: { path?: string; port: number | string; scheme?: 'HTTP' };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  workingDir?: string;
  ports?: ContainerPort[];
  readinessProbe?: Probe;
}

export interface PodSpec {
  containers: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
}

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export interface ServiceAccount {
  apiVersion: 'v1';
  kind: 'ServiceAccount';
  metadata: ObjectMeta;
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
}

export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: { replicas: number; selector: LabelSelector; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: { type?: 'ClusterIP'; selector?: Record<string, string>; ports: ServicePort[]; clusterIP?: string };
}

const portNumber = int({ min: 1, max: 65535 });
const protocol = str({ oneOf: ['TCP', 'UDP', 'SCTP'] });

const portRef: Schema<number | string> = (v, path, problems) => {
  const r = intOrString()(v, path, problems);
  if (typeof r === 'number' && (r < 1 || r > 65535)) {
    problems.add(path, `${r} is not a valid port number (1-65535)`);
    return undefined;
  }
  return r;
};

const probe: Schema<Probe> = (v, path, problems) => {
  const r = obj(
    {
      tcpSocket: obj({ port: portRef, host: str() }, { required: ['port'] }),
      httpGet: obj({ path: str(), port: portRef, scheme: str({ oneOf: ['HTTP'] }), httpHeaders: arr(obj({ name: str(), value: str() })) }, { required: ['port'] }),
      exec: obj({ command: arr(str()) }, { required: ['command'] }),
      initialDelaySeconds: int({ min: 0 }),
      periodSeconds: int({ min: 1 }),
      timeoutSeconds: int({ min: 1 }),
      successThreshold: int({ min: 1 }),
      failureThreshold: int({ min: 1 }),
    },
    { unsupported: { grpc: notYet('a gRPC probe') } },
  )(v, path, problems);
  if (!r) return undefined;
  const n = Number(!!r.tcpSocket) + Number(!!r.httpGet) + Number(!!r.exec);
  if (n !== 1) {
    problems.add(path, 'must specify exactly one of tcpSocket, httpGet or exec');
    return undefined;
  }
  return r as Probe;
};

const container: Schema<Container> = (v, path, problems) =>
  obj(
    {
      name: str({ nonEmpty: true, check: checkDns1123Label }),
      image: str(),
      command: arr(str()),
      args: arr(str()),
      env: arr(obj({ name: str({ nonEmpty: true }), value: str() }, { required: ['name'], unsupported: { valueFrom: notYet('env valueFrom') } })),
      workingDir: str(),
      ports: arr(obj({ containerPort: portNumber, name: str({ check: (s) => (s.length > 15 ? `"${s}" is longer than 15 characters` : undefined) }), protocol, hostPort: any() }, { required: ['containerPort'] })),
      readinessProbe: probe,
      imagePullPolicy: any(),
      resources: any(),
      securityContext: any(),
      terminationMessagePath: any(),
      terminationMessagePolicy: any(),
    },
    {
      required: ['name'],
      unsupported: {
        livenessProbe: notYet('livenessProbe'),
        startupProbe: notYet('startupProbe'),
        volumeMounts: notYet('volumes'),
        lifecycle: notYet('container lifecycle hooks'),
        stdin: notYet('interactive containers (stdin)'),
        tty: notYet('interactive containers (tty)'),
      },
    },
  )(v, path, problems) as Container | undefined;

export const podSpec: Schema<PodSpec> = (v, path, problems) => {
  const r = obj(
    {
      containers: arr(container),
      restartPolicy: str({ oneOf: ['Always', 'OnFailure', 'Never'] }),
      serviceAccountName: str({ nonEmpty: true, check: checkDns1123Label }),
      serviceAccount: str({ nonEmpty: true, check: checkDns1123Label }),
      terminationGracePeriodSeconds: int({ min: 0 }),
      dnsPolicy: any(),
      schedulerName: any(),
      securityContext: any(),
      nodeSelector: any(),
      tolerations: any(),
      priority: any(),
      enableServiceLinks: any(),
      preemptionPolicy: any(),
    },
    {
      required: ['containers'],
      unsupported: {
        initContainers: notYet('initContainers'),
        volumes: notYet('volumes'),
        hostNetwork: notYet('hostNetwork (every pod gets its own network namespace)'),
        hostPID: notYet('hostPID'),
        affinity: notYet('affinity'),
      },
    },
  )(v, path, problems);
  if (!r) return undefined;
  if (r.containers!.length === 0) {
    problems.add(join(path, 'containers'), 'must have at least one container');
    return undefined;
  }
  const names = new Set<string>();
  r.containers!.forEach((c, i) => {
    if (names.has(c.name)) problems.add(join(join(path, 'containers'), i) + '.name', `duplicate container name "${c.name}"`);
    names.add(c.name);
  });
  if (!problems.ok) return undefined;
  const sa = r.serviceAccountName ?? r.serviceAccount;
  return {
    containers: r.containers!,
    ...(r.restartPolicy ? { restartPolicy: r.restartPolicy as PodSpec['restartPolicy'] } : {}),
    ...(sa ? { serviceAccountName: sa } : {}),
    ...(r.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: r.terminationGracePeriodSeconds } : {}),
  };
};

function topLevel<T>(apiVersion: string, kind: string, spec: Schema<unknown> | undefined, specRequired: boolean): Schema<T> {
  return (value, path, problems) => {
    if (!isPlainObject(value)) return undefined;
    const r = obj(
      { apiVersion: str(), kind: str(), metadata: objectMeta, ...(spec ? { spec } : {}), status: any(), ...(kind === 'ServiceAccount' ? { secrets: any(), automountServiceAccountToken: any(), imagePullSecrets: any() } : {}) },
      { required: ['metadata', ...(specRequired ? ['spec'] : [])] },
    )(value, path, problems);
    if (!r) return undefined;
    return { apiVersion, kind, metadata: r.metadata!, ...(spec ? { spec: (r as { spec?: unknown }).spec } : {}) } as T;
  };
}

export const namespaceSchema: Schema<Namespace> = (value, path, problems) => {
  const r = topLevel<Namespace>('v1', 'Namespace', obj({ finalizers: any() }), false)(value, path, problems);
  if (!r) return undefined;
  const why = checkDns1123Label(r.metadata.name);
  if (why) {
    problems.add('metadata.name', why);
    return undefined;
  }
  return r;
};

export const serviceAccountSchema = topLevel<ServiceAccount>('v1', 'ServiceAccount', undefined, false);

export const podSchema = topLevel<Pod>('v1', 'Pod', podSpec, true);

export const deploymentSchema: Schema<Deployment> = (value, path, problems) => {
  const spec = (v: unknown, p: string, pr: Problems) => {
    const r = obj(
      {
        replicas: int({ min: 0 }),
        selector: labelSelector,
        template: obj({ metadata: obj({ labels: strMap(checkLabelKey, str({ check: checkLabelValue })), annotations: any(), name: any() }), spec: podSpec }, { required: ['spec'] }),
        strategy: any(),
        revisionHistoryLimit: any(),
        progressDeadlineSeconds: any(),
        minReadySeconds: any(),
      },
      { required: ['selector', 'template'] },
    )(v, p, pr);
    if (!r) return undefined;
    const labels = (r.template!.metadata?.labels ?? {}) as Record<string, string>;
    const sel = r.selector!;
    for (const [k, val] of Object.entries(sel.matchLabels ?? {})) {
      if (labels[k] !== val) {
        pr.add(join(p, 'template.metadata.labels'), `do not match the selector (selector needs ${k}=${val})`);
        return undefined;
      }
    }
    if ((sel.matchExpressions ?? []).length > 0) {
      pr.add(join(p, 'selector.matchExpressions'), notYet('a Deployment selector with matchExpressions'));
      return undefined;
    }
    if (Object.keys(sel.matchLabels ?? {}).length === 0) {
      pr.add(join(p, 'selector'), 'must select at least one label (an empty selector is invalid for a Deployment)');
      return undefined;
    }
    return { replicas: r.replicas ?? 1, selector: sel, template: { metadata: { labels }, spec: r.template!.spec! } };
  };
  return topLevel<Deployment>('apps/v1', 'Deployment', spec, true)(value, path, problems);
};

export const serviceSchema: Schema<Service> = (value, path, problems) => {
  const spec = (v: unknown, p: string, pr: Problems) => {
    const r = obj(
      {
        type: str({ oneOf: ['ClusterIP'] }),
        selector: strMap(checkLabelKey, str({ check: checkLabelValue })),
        ports: arr(obj({ name: str({ check: checkDns1123Label }), port: portNumber, targetPort: portRef, protocol, appProtocol: any() }, { required: ['port'] })),
        clusterIP: str(),
        clusterIPs: any(),
        sessionAffinity: any(),
        ipFamilies: any(),
        ipFamilyPolicy: any(),
        internalTrafficPolicy: any(),
      },
      { required: ['ports'], unsupported: { externalName: notYet('ExternalName services'), loadBalancerIP: notYet('LoadBalancer services'), externalIPs: notYet('externalIPs') } },
    )(v, p, pr);
    if (!r) return undefined;
    if (r.ports!.length === 0) {
      pr.add(join(p, 'ports'), 'must have at least one port');
      return undefined;
    }
    if (r.ports!.length > 1 && r.ports!.some((x) => !x.name)) {
      pr.add(join(p, 'ports'), 'every port needs a name when there are several');
      return undefined;
    }
    const seen = new Set<string>();
    r.ports!.forEach((x, i) => {
      const k = `${x.port}/${x.protocol ?? 'TCP'}`;
      if (seen.has(k)) pr.add(`${join(p, 'ports')}[${i}]`, `duplicate port ${k}`);
      seen.add(k);
    });
    if (r.clusterIP === 'None') pr.add(join(p, 'clusterIP'), notYet('a headless Service (clusterIP: None)'));
    else if (r.clusterIP !== undefined && r.clusterIP !== '' && !/^\d{1,3}(\.\d{1,3}){3}$/.test(r.clusterIP)) pr.add(join(p, 'clusterIP'), `"${r.clusterIP}" is not an IPv4 address`);
    if (!pr.ok) return undefined;
    if (r.clusterIP === '') delete r.clusterIP;
    return r;
  };
  return topLevel<Service>('v1', 'Service', spec, true)(value, path, problems);
};
