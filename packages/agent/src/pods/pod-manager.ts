/**
 * The pods of the node: their plumbing (through the pod network), their
 * endpoint programs and their containers (through the supervisor).
 *
 * A pod comes to life in steps that keep apply all-or-nothing:
 *   prepare   an endpoint id and the pod's namespace, veth and address —
 *             nothing that judges or carries traffic yet, so `discard`
 *             undoes it without a trace;
 *   attach    (after the store committed) the programs on its veth;
 *   activate  (after the kernel took the change) its place among the node's
 *             pods; a pod it replaces (same name) moves to `terminating`
 *             until it is destroyed;
 *   start     (after regeneration put its policy in force) its containers.
 * `destroy` stops the containers (SIGTERM, then SIGKILL after the grace
 * period), detaches the programs and removes the plumbing, and answers what
 * it could not remove instead of hiding it.
 */
import type { Pod } from '@membrane/api';
import { MembraneError } from '@membrane/api';
import type { AgentDatapath, PodNet } from '../ports.js';
import type { ContainerSupervisor } from './container-supervisor.js';
import { newRuntime, runtimeKey, type PodRuntime } from './pod-runtime.js';
import type { PodState } from './pod-state.js';
import type { PodEtcFiles } from '../dns/netns-resolv-conf.js';

export interface PodManagerDeps {
  net: PodNet;
  datapath: Pick<AgentDatapath, 'attach' | 'detach'>;
  supervisor: ContainerSupervisor;
  /** The pod's own /etc files (resolv.conf), written before its processes start. */
  etc?: PodEtcFiles;
}

export class PodManager {
  private readonly active = new Map<string, PodRuntime>();
  private readonly terminating = new Set<PodRuntime>();
  /** The next endpoint id; the applier persists it with each commit. */
  nextEpId = 1;

  constructor(private readonly deps: PodManagerDeps) {}

  get(namespace: string, name: string): PodRuntime | undefined {
    return this.active.get(`${namespace}/${name}`);
  }

  /** The pods in force, by endpoint id. */
  list(): PodRuntime[] {
    return [...this.active.values()].sort((a, b) => a.state.epId - b.state.epId);
  }

  /** Active and terminating pods: every endpoint the kernel must keep enforcing. */
  endpoints(): PodRuntime[] {
    return [...this.list(), ...this.terminating];
  }

  ownedBy(owner: string): PodRuntime[] {
    return this.list().filter((p) => p.state.owner === owner);
  }

  /** Plumb a pod (not yet in force). The error names the pod. */
  async prepare(pod: Pod, opts: { owner?: string; template?: string } = {}): Promise<PodRuntime> {
    const ns = pod.metadata.namespace ?? 'default';
    const epId = this.nextEpId++;
    let p;
    try {
      p = await this.deps.net.addPod({ id: epId.toString(36), name: `${ns}/${pod.metadata.name}` });
    } catch (e) {
      const code = e instanceof MembraneError ? e.code : 'MEMBRANE_E_POD_NETWORK';
      throw new MembraneError(code, `pod ${ns}/${pod.metadata.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      this.deps.etc?.write(p.netns, ns);
    } catch (e) {
      await this.deps.net.removePod(p.id).catch(() => undefined);
      throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${ns}/${pod.metadata.name}: write its resolv.conf: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const state: PodState = {
      namespace: ns,
      name: pod.metadata.name,
      epId,
      podId: p.id,
      ip: p.ip,
      phase: 'Pending',
      ready: false,
      containers: pod.spec.containers.map((c) => ({ name: c.name, state: 'waiting', reason: 'ContainerCreating', restarts: 0 })),
      startTime: new Date().toISOString(),
      ...(opts.owner ? { owner: opts.owner } : {}),
      ...(opts.template ? { template: opts.template } : {}),
    };
    return newRuntime(state, pod, { netns: p.netns, hostIf: p.hostIf, ifindex: p.ifindex });
  }

  /** Undo `prepare` (the apply it belonged to failed). */
  async discard(rt: PodRuntime): Promise<void> {
    this.deps.etc?.remove(rt.netns);
    await this.deps.net.removePod(rt.state.podId);
  }

  get routerIP(): string {
    return this.deps.net.routerIP;
  }

  /** Put the endpoint programs on a prepared pod's veth (before its policy is swapped in). */
  attach(rt: PodRuntime): void {
    this.deps.datapath.attach(rt.ifindex, rt.hostIf);
  }

  /** Take them off again (the change failed). */
  detachPrograms(rt: PodRuntime): void {
    try {
      this.deps.datapath.detach(rt.ifindex);
    } catch {
      // The veth goes with the prepared pod anyway.
    }
  }

  /** Make the pod the one of its name; the pod it replaces starts terminating. */
  activate(rt: PodRuntime): PodRuntime | undefined {
    const key = runtimeKey(rt);
    const old = this.active.get(key);
    if (old) this.terminating.add(old);
    this.active.set(key, rt);
    return old;
  }

  /** Move a pod out of the active set (deleted): it keeps its endpoint until destroyed. */
  retire(rt: PodRuntime): void {
    if (this.active.get(runtimeKey(rt)) === rt) this.active.delete(runtimeKey(rt));
    this.terminating.add(rt);
  }

  /** Take over a pod a previous agent left running; undefined when its plumbing is not what it should be. */
  async adopt(pod: Pod, s: PodState): Promise<PodRuntime> {
    const p = await this.deps.net.adoptPod(s.podId, { ip: s.ip, name: `${s.namespace}/${s.name}` });
    const rt = newRuntime(s, pod, { netns: p.netns, hostIf: p.hostIf, ifindex: p.ifindex });
    this.active.set(runtimeKey(rt), rt);
    this.deps.datapath.attach(p.ifindex, p.hostIf);
    // Written again: the cluster resolver's address may have changed (a new service CIDR).
    this.deps.etc?.write(p.netns, s.namespace);
    if (s.epId >= this.nextEpId) this.nextEpId = s.epId + 1;
    return rt;
  }

  /**
   * Stop and take down a pod. Answers what could not be removed (empty
   * when all went); the pod leaves the node's lists either way.
   */
  async destroy(rt: PodRuntime): Promise<string[]> {
    const problems: string[] = [];
    const name = runtimeKey(rt);
    await this.deps.supervisor.stopAll(rt);
    try {
      this.deps.datapath.detach(rt.ifindex);
    } catch (e) {
      problems.push(`pod ${name}: detach the programs from ${rt.hostIf}: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.deps.etc?.remove(rt.netns);
    try {
      await this.deps.net.removePod(rt.state.podId);
    } catch (e) {
      problems.push(`pod ${name}: remove its network namespace ${rt.netns} and veth ${rt.hostIf}: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.terminating.delete(rt);
    if (this.active.get(name) === rt) this.active.delete(name);
    return problems;
  }

  /** Let go of every pod without touching it (the agent stops; pods carry on). */
  detachAll(): void {
    for (const rt of this.endpoints()) this.deps.supervisor.detach(rt);
  }
}
