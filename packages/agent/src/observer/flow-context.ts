/**
 * What the flow parser asks of the agent (FlowContext), answered from the
 * parts in force — pods, the endpoint manager's identities and installed
 * policy maps, the toFQDNs cache — through maps rebuilt only when those
 * change (the observer asks for every event; a list scan per event would
 * cost what a map lookup does not). Every answer is a new object after a
 * change and never changed after: the observer keeps them with the events.
 */
import type { EndpointManager } from '@membrane/endpoint';
import { ipv4Number, type EndpointInfo, type EndpointPolicy, type FlowContext, type ServiceRef } from '@membrane/observer';
import type { PolicyMapEntry, PolicyRef, RuleOrigin } from '@membrane/policy';
import { ownerOf } from '../controllers/deployment-controller.js';
import type { Frontend } from '../controllers/service-controller.js';
import type { PodManager } from '../pods/pod-manager.js';

export interface FlowContextSources {
  nodeName: string;
  pods: () => PodManager;
  endpoints: () => EndpointManager;
  /** toFQDNs: address → names. */
  dnsNames: () => ReadonlyMap<string, readonly string[]>;
  /** The Services' frontends in force (a new array after each change). */
  frontends?: () => readonly Frontend[];
}

const NONE: readonly string[] = [];

export class AgentFlowContext implements FlowContext {
  readonly nodeName: string;
  private byEp?: Map<number, EndpointInfo>;
  private byAddr?: Map<number, EndpointInfo>;
  private labels?: Map<number, readonly string[]>;
  private fqdn?: Map<number, readonly string[]>;
  private svcOf?: readonly Frontend[];
  private svc = new Map<number, ServiceRef>();

  constructor(private readonly s: FlowContextSources) {
    this.nodeName = s.nodeName;
  }

  /** What is in force changed (a regeneration, a pod, a toFQDNs answer): the maps are rebuilt when next asked. */
  invalidate(): void {
    this.byEp = undefined;
    this.byAddr = undefined;
    this.labels = undefined;
    this.fqdn = undefined;
  }

  private build(): void {
    const em = this.s.endpoints();
    this.byEp = new Map();
    this.byAddr = new Map();
    for (const rt of this.s.pods().list()) {
      const id = em.identityOf(rt.state.epId);
      const owner = ownerOf(rt.manifest);
      const installed = em.installedPolicy(rt.state.epId);
      const e: EndpointInfo = {
        id: rt.state.epId,
        identity: id?.id ?? 0,
        namespace: rt.state.namespace,
        podName: rt.state.name,
        labels: id ? id.labels.toStrings() : [],
        // ownerOf says `Deployment ns/name`.
        workloads: owner ? [{ name: owner.slice(owner.indexOf('/') + 1), kind: 'Deployment' }] : [],
        ...(installed ? { policy: policyView(installed.entries, installed.defaultDenyBy) } : {}),
      };
      this.byEp.set(e.id, e);
      this.byAddr.set(ipv4Number(rt.state.ip), e);
    }
  }

  endpoint(epId: number): EndpointInfo | undefined {
    if (!this.byEp) this.build();
    return this.byEp!.get(epId);
  }

  endpointAt(addr: number): EndpointInfo | undefined {
    if (!this.byAddr) this.build();
    return this.byAddr!.get(addr);
  }

  identityLabels(id: number): readonly string[] | undefined {
    if (!this.labels) this.labels = new Map(this.s.endpoints().identities.list().map((i) => [i.id, i.labels.toStrings()]));
    return this.labels.get(id);
  }

  names(addr: number): readonly string[] {
    if (!this.fqdn) {
      this.fqdn = new Map();
      for (const [ip, names] of this.s.dnsNames()) this.fqdn.set(ipv4Number(ip), [...names]);
    }
    return this.fqdn.get(addr) ?? NONE;
  }

  /** The Service an address:port is a frontend (ClusterIP:port) or an active backend (pod:targetPort) of. */
  service(addr: number, port: number): ServiceRef | undefined {
    const list = this.s.frontends?.();
    if (!list) return undefined;
    if (list !== this.svcOf) {
      this.svcOf = list;
      this.svc = new Map();
      for (const f of list) {
        const slash = f.service.indexOf('/');
        const ref: ServiceRef = { namespace: f.service.slice(0, slash), name: f.service.slice(slash + 1) };
        this.svc.set(ipv4Number(f.ip) * 65536 + f.port, ref);
        for (const b of f.backends) {
          const key = ipv4Number(b.ip) * 65536 + b.port;
          if (b.state === 'active' && !this.svc.has(key)) this.svc.set(key, ref);
        }
      }
    }
    return this.svc.get(addr * 65536 + port);
  }
}

/** An endpoint's installed policy map as the observer reads it: the rules and match type behind each entry (cookie = index + 1). */
function policyView(entries: readonly PolicyMapEntry[], defaultDenyBy: { readonly ingress: readonly PolicyRef[]; readonly egress: readonly PolicyRef[] }): EndpointPolicy {
  return {
    origins(cookie: number): readonly RuleOrigin[] {
      const e = entries[cookie - 1];
      return e ? [...new Set(e.sources.flatMap((s) => s.origins))] : [];
    },
    matchType(cookie: number): number {
      const e = entries[cookie - 1];
      return e ? matchType(e) : 0;
    },
    defaultDenyBy: (direction) => defaultDenyBy[direction],
  };
}

/** Cilium's policy match type of an entry: L3-L4 2, L3-Only 1, L3-Proto 5, L4-Only 3, all 4, Proto-Only 6. */
export function matchType(e: PolicyMapEntry): number {
  const l3 = e.identity !== 0;
  if (e.portBits > 0) return l3 ? 2 : 3;
  if (e.proto !== 0) return l3 ? 5 : 6;
  return l3 ? 1 : 4;
}
