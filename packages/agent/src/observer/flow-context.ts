/**
 * What the flow parser asks of the agent (FlowContext), answered from the
 * parts in force — pods, the endpoint manager's identities and rules, the
 * toFQDNs cache — through maps rebuilt only when those change (the parser
 * asks for every event; a list scan per event would cost what a map lookup
 * does not).
 */
import type { EndpointManager } from '@membrane/endpoint';
import type { EndpointInfo, FlowContext } from '@membrane/observer';
import { ownerOf } from '../controllers/deployment-controller.js';
import type { PodManager } from '../pods/pod-manager.js';

export interface FlowContextSources {
  nodeName: string;
  pods: () => PodManager;
  endpoints: () => EndpointManager;
  /** toFQDNs: address → names. */
  dnsNames: () => ReadonlyMap<string, readonly string[]>;
}

export class AgentFlowContext implements FlowContext {
  readonly nodeName: string;
  private byEp?: Map<number, EndpointInfo>;
  private byIP?: Map<string, EndpointInfo>;
  private labels?: Map<number, string[]>;
  private fqdn?: ReadonlyMap<string, readonly string[]>;

  constructor(private readonly s: FlowContextSources) {
    this.nodeName = s.nodeName;
  }

  /** What is in force changed (a regeneration, a pod, a toFQDNs answer): the maps are rebuilt when next asked. */
  invalidate(): void {
    this.byEp = undefined;
    this.byIP = undefined;
    this.labels = undefined;
    this.fqdn = undefined;
  }

  private build(): void {
    const em = this.s.endpoints();
    this.byEp = new Map();
    this.byIP = new Map();
    for (const rt of this.s.pods().list()) {
      const id = em.identityOf(rt.state.epId);
      const owner = ownerOf(rt.manifest);
      const e: EndpointInfo = {
        id: rt.state.epId,
        identity: id?.id ?? 0,
        namespace: rt.state.namespace,
        podName: rt.state.name,
        labels: id ? id.labels.toStrings() : [],
        // ownerOf says `Deployment ns/name`.
        workloads: owner ? [{ name: owner.slice(owner.indexOf('/') + 1), kind: 'Deployment' }] : [],
      };
      this.byEp.set(e.id, e);
      this.byIP.set(rt.state.ip, e);
    }
  }

  endpoint(epId: number): EndpointInfo | undefined {
    if (!this.byEp) this.build();
    return this.byEp!.get(epId);
  }

  endpointByIP(ip: string): EndpointInfo | undefined {
    if (!this.byIP) this.build();
    return this.byIP!.get(ip);
  }

  identityLabels(id: number): string[] | undefined {
    if (!this.labels) this.labels = new Map(this.s.endpoints().identities.list().map((i) => [i.id, i.labels.toStrings()]));
    return this.labels.get(id);
  }

  names(ip: string): string[] {
    this.fqdn ??= this.s.dnsNames();
    return [...(this.fqdn.get(ip) ?? [])];
  }

  origins(epId: number, cookie: number) {
    return this.s.endpoints().origins(epId, cookie);
  }

  defaultDenyBy(epId: number, direction: 'ingress' | 'egress') {
    return this.s.endpoints().defaultDenyBy(epId, direction);
  }

  /** Cilium's policy match type of the entry: L3-L4 2, L3-Only 1, L3-Proto 5, L4-Only 3, all 4, Proto-Only 6. */
  matchType(epId: number, cookie: number): number {
    const e = this.s.endpoints().entry(epId, cookie);
    if (!e) return 0;
    const l3 = e.identity !== 0;
    if (e.portBits > 0) return l3 ? 2 : 3;
    if (e.proto !== 0) return l3 ? 5 : 6;
    return l3 ? 1 : 4;
  }
}
