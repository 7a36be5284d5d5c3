/**
 * Services on the node: each stored Service's ClusterIP and frontends, kept
 * in the socket load balancer (ServiceDatapath) as pods come, go and turn
 * ready or not ready, and the cluster's names for the DNS server.
 *
 * ClusterIPs are given while a change is planned (on a copy of the
 * addressing, kept only when the change commits); backends are brought to
 * the kernel after every change and every readiness change (`sync`), newest
 * first, so a new connection only ever picks a backend that is ready now.
 * What cannot be resolved (a targetPort name no pod has, a selector that
 * picks nothing) is a condition of the Service, shown by get/describe.
 */
import type { Pod, Service } from '@membrane/api';
import type { PodManager } from '../pods/pod-manager.js';
import type { StoreReader } from '../store/index.js';
import type { ClusterView } from '../dns/cluster-names.js';
import { serviceFrontends, type BackendPod, type Frontend, type ServiceCondition } from '../controllers/service-controller.js';
import { ServiceAddressing, type AddressingSnapshot } from './service-addressing.js';

/** A frontend as the socket load balancer holds it. */
export interface LbService {
  id: number;
  frontend: { ip: string; port: number; protocol: 'TCP' | 'UDP' };
  backends: { ip: string; port: number }[];
}

/** What the service manager needs of the datapath (ServiceDatapath implements it; tests fake it). */
export interface ServiceDatapathPort {
  upsertService(svc: LbService): void;
  deleteService(frontend: LbService['frontend']): void;
}

export const KUBE_DNS = { namespace: 'kube-system', name: 'kube-dns' } as const;

/** The kube-dns Service every cluster has: its backends are the agent's DNS server. */
export function kubeDnsService(): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: KUBE_DNS.name, namespace: KUBE_DNS.namespace, labels: { 'k8s-app': 'kube-dns' } },
    spec: {
      type: 'ClusterIP',
      selector: { 'k8s-app': 'kube-dns' },
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
      ],
    },
  };
}

/** The agent's DNS server as the pod kube-dns selects (no netns of its own: it runs in the agent). */
export function dnsServerPod(ip: string): BackendPod {
  const manifest: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'coredns', namespace: KUBE_DNS.namespace, labels: { 'k8s-app': 'kube-dns' } },
    spec: { serviceAccountName: 'coredns', containers: [{ name: 'dns', ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }] }] },
  };
  return { namespace: KUBE_DNS.namespace, name: 'coredns', labels: manifest.metadata.labels!, ip, ready: true, manifest };
}

export interface ServiceManagerDeps {
  store: StoreReader;
  pods: PodManager;
  datapath: ServiceDatapathPort;
  /** The DNS server as a backend (kube-dns). */
  dnsPod: BackendPod;
}

function lbKey(f: { ip: string; port: number; protocol: string }): string {
  return `${f.ip}:${f.port}/${f.protocol}`;
}

export class ServiceManager {
  addressing: ServiceAddressing;
  private frontends: Frontend[] = [];
  private readonly conditions = new Map<string, ServiceCondition>();
  private readonly installed = new Map<string, string>();
  private services = new Map<string, string>();
  /** The names as of the last sync (the DNS server reads it on every query; a new object means new names). */
  private cachedView?: ClusterView;

  constructor(
    private readonly d: ServiceManagerDeps,
    serviceCIDR: string,
    snapshot?: AddressingSnapshot,
  ) {
    this.addressing = new ServiceAddressing(serviceCIDR, snapshot);
  }

  /** Backends are pods in force (not terminating) and the DNS server. */
  private backendPods(): BackendPod[] {
    return [
      ...this.d.pods.list().map((rt) => ({ namespace: rt.state.namespace, name: rt.state.name, labels: rt.manifest.metadata.labels ?? {}, ip: rt.state.ip, ready: rt.state.ready && !rt.stopping, manifest: rt.manifest })),
      this.d.dnsPod,
    ];
  }

  /**
   * Bring the load balancer to the stored Services and the pods now.
   * Answers what could not be written (the Services stay as they were in
   * the kernel for those frontends).
   */
  async sync(): Promise<string[]> {
    const problems: string[] = [];
    const pods = this.backendPods();
    const frontends: Frontend[] = [];
    const names = new Map<string, string>();
    for (const o of await this.d.store.list<Service>('Service')) {
      const key = `${o.namespace}/${o.name}`;
      const a = this.addressing.get(key);
      if (!a) continue;
      names.set(`${o.name}.${o.namespace}`, a.clusterIP);
      const r = serviceFrontends(o.body, a.clusterIP, a.frontendIds, pods);
      this.conditions.set(key, r.condition);
      frontends.push(...r.frontends);
    }
    for (const k of [...this.conditions.keys()]) if (!frontends.some((f) => f.service === k)) this.conditions.delete(k);
    const want = new Map<string, LbService>();
    for (const f of frontends) {
      if (f.protocol === 'SCTP') continue;
      want.set(lbKey(f), { id: f.id, frontend: { ip: f.ip, port: f.port, protocol: f.protocol }, backends: f.backends.filter((b) => b.state === 'active').map((b) => ({ ip: b.ip, port: b.port })) });
    }
    for (const [k, svc] of want) {
      const fp = JSON.stringify(svc);
      if (this.installed.get(k) === fp) continue;
      try {
        this.d.datapath.upsertService(svc);
        this.installed.set(k, fp);
      } catch (e) {
        problems.push(`service frontend ${k}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const k of [...this.installed.keys()]) {
      if (want.has(k)) continue;
      const [ipPort, protocol] = k.split('/') as [string, 'TCP' | 'UDP'];
      const [ip, port] = ipPort.split(':') as [string, string];
      try {
        this.d.datapath.deleteService({ ip, port: Number(port), protocol });
        this.installed.delete(k);
      } catch (e) {
        problems.push(`remove service frontend ${k}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.frontends = frontends;
    this.services = names;
    this.cachedView = undefined;
    return problems;
  }

  /**
   * The cluster's names (the DNS server reads this on every query). It is
   * computed again after every sync — every change of Services or pods ends
   * with one — and the same object is answered until then.
   */
  view(): ClusterView {
    this.cachedView ??= this.computeView();
    return this.cachedView;
  }

  private computeView(): ClusterView {
    const pods = new Set<string>();
    const namespaces = new Set<string>(['default', 'kube-system']);
    for (const rt of this.d.pods.list()) {
      pods.add(`${rt.state.ip} ${rt.state.namespace}`);
      namespaces.add(rt.state.namespace);
    }
    for (const k of this.services.keys()) namespaces.add(k.slice(k.indexOf('.') + 1));
    return { services: this.services, pods, namespaces };
  }

  /** A Service's ClusterIP and condition, for its views. */
  status(namespace: string, name: string): { clusterIP?: string; condition?: ServiceCondition } {
    const a = this.addressing.get(`${namespace}/${name}`);
    const c = this.conditions.get(`${namespace}/${name}`);
    return { ...(a ? { clusterIP: a.clusterIP } : {}), ...(c ? { condition: c } : {}) };
  }

  /** The frontends in force (replaced as a whole by each sync, never changed: a holder may keep it). */
  inForce(): readonly Frontend[] {
    return this.frontends;
  }

  /** Every frontend with its backends, for `membrane service list`. */
  list(): Frontend[] {
    return [...this.frontends].sort((a, b) => a.id - b.id);
  }
}
