/**
 * The Kubernetes API cell: the cache fed by the store's changes and the
 * pods' state, the writer on the agent's apply and delete, the event
 * recorder, the agent itself as pod `membrane-<node>` in kube-system (exec
 * into it runs membrane's commands, also under the names `cilium` and
 * `hubble`), and the HTTPS server. The agent calls the hooks (podChanged,
 * applied, refused); everything else stays in here.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ValidationError, type ApplyRequest, type ApplyResponse, type DeleteRequest, type DeleteResponse } from '@membrane/api';
import type { PodManager } from '../pods/pod-manager.js';
import type { PodRuntime } from '../pods/pod-runtime.js';
import { containerLogPath } from '../pods/container-supervisor.js';
import type { Store } from '../store/index.js';
import { objectView, type ServiceStatusSource } from '../views/object-view.js';
import { ensureKubeCredentials, type KubeCredentials } from './kube-certs.js';
import { KubeCache, type KubeObject } from './kube-cache.js';
import { EventRecorder, podEvents, podSnapshot } from './kube-events.js';
import { notExecutable, type ExecLaunch } from './kube-exec.js';
import { LogSizes } from './kube-logs.js';
import { RESOURCES } from './kube-resources.js';
import { KubeServer } from './kube-server.js';
import { KubeStatusError, KubeWriter } from './kube-writes.js';

/** The membrane command of this tree (bin/membrane), for exec into the agent's pod. */
const MEMBRANE_BIN = fileURLToPath(new URL('../../../../bin/membrane', import.meta.url));
const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

export interface KubeCellDeps {
  stateDir: string;
  socketPath: string;
  nodeName: string;
  port: number;
  store: Store;
  pods: () => PodManager;
  services: () => ServiceStatusSource;
  hostIP: () => string;
  startedAt: () => string;
  apply(req: ApplyRequest): Promise<ApplyResponse>;
  delete(req: DeleteRequest): Promise<DeleteResponse>;
  problem(what: string): void;
}

export class KubeCell {
  credentials?: KubeCredentials;
  private server?: KubeServer;
  private cache?: KubeCache;
  private events?: EventRecorder;
  private logSizes?: LogSizes;
  private stopWatch?: () => void;
  private readonly seen = new Map<string, ReturnType<typeof podSnapshot>>();

  constructor(private readonly d: KubeCellDeps) {}

  get port(): number {
    return this.server?.port ?? 0;
  }

  get agentPodName(): string {
    return `membrane-${this.d.nodeName}`;
  }

  async start(): Promise<void> {
    this.credentials = ensureKubeCredentials(this.d.stateDir);
    const cache = (this.cache = new KubeCache({ list: (kind) => this.list(kind), get: (kind, ns, name) => this.view(kind, ns, name) }));
    await cache.load();
    await cache.put('Pod', 'kube-system', this.agentPodName, this.agentPod());
    this.events = new EventRecorder(cache, this.d.nodeName);
    for (const rt of this.d.pods().list()) this.seen.set(`${rt.state.namespace}/${rt.state.name}`, podSnapshot(rt.state));
    this.stopWatch = this.d.store.watch((e) => {
      const o = e.object;
      void cache.refresh(o.kind, o.namespace, o.name);
      if (o.kind === 'Pod') this.refreshDependents(o.namespace);
      if (o.kind === 'Pod' && e.type === 'deleted') this.seen.delete(`${o.namespace}/${o.name}`);
    });
    this.logSizes = new LogSizes(() => this.logFiles());
    this.logSizes.start();
    const writer = new KubeWriter({ cache, stored: async (kind, ns, name) => (await this.d.store.get<Record<string, unknown>>({ kind, namespace: ns, name }))?.body, apply: this.d.apply, delete: this.d.delete });
    const server = new KubeServer({ address: '127.0.0.1', port: this.d.port, credentials: this.credentials, cache, writer, pods: { logFile: (ns, pod, c) => this.logFile(ns, pod, c), exec: (ns, pod) => this.exec(ns, pod) }, logSizes: this.logSizes, problem: this.d.problem });
    await server.start();
    this.server = server;
  }

  async stop(): Promise<void> {
    this.stopWatch?.();
    this.logSizes?.stop();
    await this.server?.stop();
  }

  /** A pod's state changed (containers, phase, readiness): its view, its Deployment's and Services', and kubelet's events. */
  podChanged(rt: PodRuntime): void {
    const cache = this.cache;
    if (!cache) return;
    const k = `${rt.state.namespace}/${rt.state.name}`;
    const now = podSnapshot(rt.state);
    const ref = { kind: 'Pod', apiVersion: 'v1', namespace: rt.state.namespace, name: rt.state.name };
    void cache.refresh('Pod', rt.state.namespace, rt.state.name).then(() => {
      for (const note of podEvents(this.seen.get(k), now, this.d.nodeName)) this.events?.record(ref, note, note.reason === 'Scheduled' ? 'default-scheduler' : 'kubelet');
    });
    this.seen.set(k, now);
    this.refreshDependents(rt.state.namespace);
  }

  /** After an apply: policies applied, and the endpoints whose policy was computed again. */
  applied(out: ApplyResponse): void {
    for (const r of out.results) {
      if (!POLICY_KINDS.has(r.kind) || r.action === 'unchanged') continue;
      const res = RESOURCES.find((x) => x.kind === r.kind)!;
      const apiVersion = res.group ? `${res.group}/${res.version}` : res.version;
      void this.cache?.settled().then(() => this.events?.record({ kind: r.kind, apiVersion, namespace: r.namespace ?? '', name: r.name }, { type: 'Normal', reason: 'PolicyApplied', message: `Policy ${r.action} and enforced on the datapath in ${out.enforcedMs.toFixed(1)} ms` }));
    }
    if (out.results.some((r) => POLICY_KINDS.has(r.kind) && r.action !== 'unchanged')) {
      for (const rt of this.d.pods().endpoints()) {
        this.events?.record({ kind: 'Pod', apiVersion: 'v1', namespace: rt.state.namespace, name: rt.state.name }, { type: 'Normal', reason: 'EndpointRegenerated', message: `Endpoint ${rt.state.epId} regenerated: policy revision changed` });
      }
    }
  }

  /** An apply refused: a policy that exists gets a Warning saying why its new version was not taken. */
  refused(e: unknown): void {
    if (!(e instanceof ValidationError)) return;
    const m = /^(CiliumNetworkPolicy|CiliumClusterwideNetworkPolicy|NetworkPolicy) (?:([^/\s]+)\/)?(\S+)$/.exec(e.document.object ?? '');
    if (!m) return;
    const [, kind, ns, name] = m as unknown as [string, string, string | undefined, string];
    if (!this.cache?.get(kind, ns, name)) return;
    const res = RESOURCES.find((x) => x.kind === kind)!;
    this.events?.record({ kind, apiVersion: `${res.group}/${res.version}`, namespace: ns ?? '', name }, { type: 'Warning', reason: 'PolicyInvalid', message: `New version refused, the version in force stays: ${e.problems.map((p) => `${p.path ? `${p.path}: ` : ''}${p.reason}`).join('; ')}` });
  }

  private refreshDependents(namespace: string): void {
    const cache = this.cache!;
    for (const kind of ['Deployment', 'Service']) for (const o of cache.list(kind, namespace)) void cache.refresh(kind, namespace, o.metadata.name);
  }

  private async list(kind: string): Promise<KubeObject[]> {
    const list = await this.d.store.list(kind);
    return list.map((o) => objectView(o, this.d.pods(), this.d.services()) as KubeObject);
  }

  private async view(kind: string, namespace: string, name: string): Promise<KubeObject | undefined> {
    if (kind === 'Pod' && namespace === 'kube-system' && name === this.agentPodName) return this.agentPod();
    const clusterScoped = !RESOURCES.find((r) => r.kind === kind)?.namespaced;
    const o = await this.d.store.get({ kind, namespace: clusterScoped ? '' : namespace, name });
    return o && (objectView(o, this.d.pods(), this.d.services()) as KubeObject);
  }

  /** The agent, shown as Cilium's agent pod is: host network, one container, Ready while it serves. */
  private agentPod(): KubeObject {
    const started = this.d.startedAt();
    return {
      metadata: { name: this.agentPodName, namespace: 'kube-system', labels: { 'k8s-app': 'membrane', 'app.kubernetes.io/name': 'membrane-agent' }, creationTimestamp: started },
      spec: { nodeName: this.d.nodeName, hostNetwork: true, containers: [{ name: 'membrane-agent', image: 'membrane', command: ['membrane', 'agent'] }], restartPolicy: 'Always' },
      status: {
        phase: 'Running',
        hostIP: this.d.hostIP(),
        podIP: this.d.hostIP(),
        podIPs: [{ ip: this.d.hostIP() }],
        startTime: started,
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'membrane-agent', ready: true, restartCount: 0, state: { running: { startedAt: started } } }],
      },
    };
  }

  private logFiles(): string[] {
    const dir = `${this.d.stateDir}/logs`;
    return this.d.pods().list().flatMap((rt) => rt.manifest.spec.containers.map((c) => containerLogPath(dir, rt.state.namespace, rt.state.name, c.name)));
  }

  private logFile(namespace: string, pod: string, container?: string): string {
    if (namespace === 'kube-system' && pod === this.agentPodName) return `${this.d.stateDir}/agent.log`;
    const rt = this.d.pods().get(namespace, pod);
    if (!rt) throw new KubeStatusError(404, 'NotFound', `pods "${pod}" not found`, { name: pod, kind: 'pods' });
    const names = rt.manifest.spec.containers.map((c) => c.name);
    const c = container ?? names[0]!;
    if (!names.includes(c)) throw new KubeStatusError(400, 'BadRequest', `container ${c} is not valid for pod ${pod}`);
    return containerLogPath(`${this.d.stateDir}/logs`, namespace, pod, c);
  }

  private exec(namespace: string, pod: string): (command: string[]) => ExecLaunch {
    const env = { ...process.env, MEMBRANE_SOCKET: this.d.socketPath };
    if (namespace === 'kube-system' && pod === this.agentPodName) {
      return (command) => {
        const [cmd, ...rest] = command as [string, ...string[]];
        // The agent's pod speaks Cilium's and Hubble's command names: `cilium endpoint list`, `hubble observe`.
        if (['cilium', 'cilium-dbg', 'hubble', 'membrane'].includes(cmd) && existsSync(MEMBRANE_BIN)) return { file: MEMBRANE_BIN, args: rest, env };
        return { file: cmd, args: rest, env };
      };
    }
    const rt = this.d.pods().get(namespace, pod);
    if (!rt) throw new KubeStatusError(404, 'NotFound', `pods "${pod}" not found`, { name: pod, kind: 'pods' });
    if (rt.state.phase !== 'Running') throw new KubeStatusError(400, 'BadRequest', `unable to upgrade connection: container not found ("${rt.manifest.spec.containers[0]!.name}")`);
    return (command) => {
      // A command that is not there is reported as kubelet reports it (the launcher checks the file it is given).
      if (notExecutable(command[0]!, env)) return { file: command[0]!, args: command.slice(1), env };
      return { file: 'ip', args: ['netns', 'exec', rt.netns, ...command], env };
    };
  }
}
