/**
 * Fakes of the agent's ports for unprivileged unit tests: a pod network that
 * hands out addresses from a small range (and fails on demand), a process
 * runner whose processes live until a test ends them, and a wired-up set of
 * the agent's parts on a memory store and the endpoint package's
 * FakeDatapath.
 */
import type { DiscoveredPod, Pod as NetPod } from '@membrane/datapath';
import { MembraneError } from '@membrane/api';
import { EndpointManager } from '@membrane/endpoint';
import { FakeDatapath } from '@membrane/endpoint/testing';
import { Repository } from '@membrane/policy';
import { Applier } from '../apply/applier.js';
import { ContainerSupervisor } from '../pods/container-supervisor.js';
import { PodManager } from '../pods/pod-manager.js';
import type { PodNet, ProcessRunner } from '../ports.js';
import { createMemoryStore, type Store } from '../store/index.js';
import type { ProcessRef, StartSpec, Started } from '../workloads/container-process.js';
import { WorkQueue } from '../work-queue.js';
import { ServiceManager, dnsServerPod, type LbService, type ServiceDatapathPort } from '../services/service-manager.js';

/** The socket load balancer as a map of frontends. */
export class FakeServiceDatapath implements ServiceDatapathPort {
  readonly services = new Map<string, LbService>();
  upsertService(svc: LbService): void {
    this.services.set(`${svc.frontend.ip}:${svc.frontend.port}/${svc.frontend.protocol}`, structuredClone(svc));
  }
  deleteService(f: LbService['frontend']): void {
    this.services.delete(`${f.ip}:${f.port}/${f.protocol}`);
  }
}

export class FakePodNet implements PodNet {
  readonly routerIP = '10.9.0.1';
  readonly cidr = '10.9.0.0/24';
  readonly pods = new Map<string, NetPod>();
  private next = 2;
  /** Fail the n-th addPod from now (1 = the next one), as a full pod CIDR would. */
  failAddAfter?: number;
  failRemove = new Set<string>();

  async addPod(spec: { id: string; name: string }): Promise<NetPod> {
    if (this.failAddAfter !== undefined && --this.failAddAfter <= 0) {
      this.failAddAfter = undefined;
      throw new MembraneError('MEMBRANE_E_IP_EXHAUSTED', `no free address left in the pod CIDR ${this.cidr}`);
    }
    const p: NetPod = { id: spec.id, name: spec.name, netns: `mbrt_pod_${spec.id}`, hostIf: `mbrt_e${spec.id}`, ifindex: 1000 + this.next, ip: `10.9.0.${this.next++}`, adopted: false };
    this.pods.set(spec.id, p);
    return p;
  }
  async adoptPod(id: string): Promise<NetPod> {
    const p = this.pods.get(id);
    if (!p) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `cannot adopt pod ${id}: no network namespace`);
    return p;
  }
  async removePod(id: string): Promise<void> {
    if (this.failRemove.has(id)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `delete netns mbrt_pod_${id}: Device or resource busy`);
    this.pods.delete(id);
  }
  async discover(): Promise<DiscoveredPod[]> {
    return [...this.pods.values()].map((p) => ({ id: p.id, netns: p.netns, hostIf: p.hostIf, ip: p.ip, ifindex: p.ifindex, problems: [] }));
  }
}

interface FakeProcess {
  spec: StartSpec;
  alive: boolean;
  exit: (st: { code: number | null; signal: NodeJS.Signals | null }) => void;
}

export class FakeRunner implements ProcessRunner {
  readonly procs = new Map<number, FakeProcess>();
  private nextPid = 5000;
  /** Executables that exist. */
  readonly known = new Set(['sleep', 'python3', 'false', 'true']);

  resolveExecutable(cmd: string): { path: string } | { error: string; code: 126 | 127 } {
    return this.known.has(cmd) ? { path: `/usr/bin/${cmd}` } : { error: `exec: "${cmd}": executable file not found in $PATH`, code: 127 };
  }
  start(spec: StartSpec): Started {
    const pid = this.nextPid++;
    let exit!: FakeProcess['exit'];
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (exit = r));
    const p: FakeProcess = { spec, alive: true, exit: (st) => ((p.alive = false), exit(st)) };
    this.procs.set(pid, p);
    return { ref: { pid, startTime: '1' }, exit: done };
  }
  async stop(ref: ProcessRef): Promise<void> {
    const p = this.procs.get(ref.pid);
    if (p?.alive) p.exit({ code: null, signal: 'SIGTERM' });
  }
  isAlive(ref: ProcessRef): boolean {
    return this.procs.get(ref.pid)?.alive ?? false;
  }
  /** The live processes of a pod. */
  of(netns: string): { pid: number; argv: string[] }[] {
    return [...this.procs].filter(([, p]) => p.alive && p.spec.netns === netns).map(([pid, p]) => ({ pid, argv: p.spec.argv }));
  }
}

export interface Rig {
  store: Store;
  dp: FakeDatapath;
  net: FakePodNet;
  runner: FakeRunner;
  queue: WorkQueue;
  pods: PodManager;
  endpoints: EndpointManager;
  supervisor: ContainerSupervisor;
  applier: Applier;
  services: ServiceManager;
  lb: FakeServiceDatapath;
  problems: string[];
}

export async function rig(): Promise<Rig> {
  const store = createMemoryStore();
  for (const ns of ['default', 'kube-system']) await store.put({ kind: 'Namespace', namespace: '', name: ns, body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
  const dp = new FakeDatapath();
  const net = new FakePodNet();
  const runner = new FakeRunner();
  const problems: string[] = [];
  const queue = new WorkQueue((what, e) => problems.push(`${what}: ${String(e)}`));
  const supervisor = new ContainerSupervisor({ runner, queue, logDir: '/nonexistent', changed: async () => {} });
  const pods = new PodManager({ net, datapath: dp, supervisor });
  const endpoints = new EndpointManager(dp);
  const lb = new FakeServiceDatapath();
  const dnsPod = dnsServerPod('10.9.0.254');
  const services = new ServiceManager({ store, pods, datapath: lb, dnsPod }, '10.96.0.0/24');
  const virtual = [{ name: 'kube-system/coredns', ipv4: dnsPod.ip, namespace: 'kube-system', podLabels: dnsPod.labels, namespaceLabels: {}, serviceAccount: 'coredns' }];
  const applier = new Applier({ store, queue, policies: { repo: new Repository() }, pods, supervisor, endpoints, services, hostAddresses: () => ['192.0.2.2'], virtualEndpoints: () => virtual, problem: (p) => problems.push(p) });
  return { store, dp, net, runner, queue, pods, endpoints, supervisor, applier, services, lb, problems };
}

/** An apply request from manifests (objects, as YAML would give them). */
export function docs(...values: unknown[]): { documents: { source: string; label: string; value: unknown }[] } {
  return { documents: values.map((value, i) => ({ source: 'test.yaml', label: `document ${i + 1}`, value })) };
}

export function pod(name: string, labels: Record<string, string> = {}, spec: Record<string, unknown> = {}, namespace = 'default'): unknown {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { containers: [{ name: 'c', command: ['sleep', 'infinity'] }], ...spec } };
}
