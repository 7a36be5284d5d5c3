/**
 * The agent: the composition root. It owns the store, identities, the policy
 * repository, the datapath, the pod network and the workloads, and wires
 * them: every change validates everything first, stores it atomically, then
 * brings the kernel and the processes to it, so `apply` returns once the
 * change is in force.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  APPLY_ORDER,
  MembraneError,
  ValidationError,
  isPolicyManifest,
  objectName,
  parseManifest,
  type ApplyAction,
  type ApplyRequest,
  type ApplyResponse,
  type DeleteRequest,
  type DeleteResponse,
  type Deployment,
  type EndpointInfo,
  type ExecTarget,
  type IdentityInfo,
  type Manifest,
  type Namespace,
  type ObjectRef,
  type Pod,
  type PolicyManifest,
  type StatusResponse,
} from '@membrane/api';
import { Datapath, PodNetwork, findMembraneSafetyRoutes, installSafetyRoutes, native, removeMembraneSafetyRoutes, safetyPrefixes, type SafetyRoutes } from '@membrane/datapath';
import { EndpointRealizer, IPCacheSync } from '@membrane/endpoint';
import { IPCache, IdentityAllocator, type IdentitySnapshot } from '@membrane/identity';
import {
  ReservedIdentity,
  Repository,
  SelectorCache,
  endpointIdentityLabels,
  hostPrefix,
  resolveAll,
  translatePolicy,
  type Identity,
  type Prefix,
  type Rule,
  type TranslatedPolicy,
} from '@membrane/policy';
import type { AgentConfig } from './config.js';
import { ApiServer, type Route } from './http-api.js';
import { Lifecycle } from './lifecycle.js';
import { podKey, type ContainerState, type PodState } from './pod-status.js';
import { openSqliteStore, type Store, type StoredObject } from './store/index.js';
import { isAlive, resolveExecutable, startContainer, stopContainer } from './workloads/container-process.js';
import { runProbe } from './workloads/probe.js';

export const VERSION = '0.1.0';
const SYSTEM_NAMESPACES = ['default', 'kube-system'];

interface PodRuntime {
  /** Per container: the last readiness probe result (containers without a probe are ready when running). */
  probeOk: Map<string, boolean>;
  state: PodState;
  manifest: Pod;
  identity?: Identity;
  ifindex: number;
  hostIf: string;
  netns: string;
  stopping: boolean;
  timers: NodeJS.Timeout[];
}

function keyOf(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export class Agent {
  readonly lifecycle = new Lifecycle();
  private store!: Store;
  private datapath!: Datapath;
  private podNet!: PodNetwork;
  private realizer!: EndpointRealizer;
  private ipcacheSync!: IPCacheSync;
  private rails?: SafetyRoutes;
  private api!: ApiServer;
  private readonly repo = new Repository();
  private identities = new IdentityAllocator();
  private readonly pods = new Map<string, PodRuntime>();
  private monitor?: NodeJS.Timeout;
  private stopGc?: () => void;
  private nextEpId = 1;
  private token = '';
  private startedAt = new Date().toISOString();
  private state: StatusResponse['agent']['state'] = 'starting';
  /** Serializes changes: one apply/delete/reconcile at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private shutdownRequested?: (teardown: boolean) => void;
  /** Pods created since the last regeneration: their containers start once their policy is in force. */
  private pendingStart: PodRuntime[] = [];

  constructor(
    readonly config: AgentConfig,
    private readonly progress: (msg: string) => void = () => {},
  ) {
    this.lifecycle.append({ name: 'state directory', start: () => this.startStateDir(), stop: () => {} });
    this.lifecycle.append({ name: 'store', start: () => this.startStore(), stop: () => this.store?.close() });
    this.lifecycle.append({ name: 'safety routes', start: () => this.startRails(), stop: () => {} });
    this.lifecycle.append({ name: 'BPF datapath', start: () => this.startDatapath(), stop: () => this.datapath?.close() });
    this.lifecycle.append({ name: 'pod network', start: () => this.startPodNetwork(), stop: () => {} });
    this.lifecycle.append({ name: 'workloads', start: () => this.restore(), stop: () => this.stopMonitor() });
    this.lifecycle.append({ name: 'API', start: () => this.startApi(), stop: () => this.api?.stop() });
  }

  // ---- start ---------------------------------------------------------------------------

  private startStateDir(): void {
    mkdirSync(this.config.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.config.stateDir, 'logs'), { recursive: true, mode: 0o700 });
    const tokenFile = join(this.config.stateDir, 'token');
    if (!existsSync(tokenFile)) writeFileSync(tokenFile, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
    this.token = readFileSync(tokenFile, 'utf8').trim();
  }

  private async startStore(): Promise<void> {
    this.store = openSqliteStore({ stateDir: this.config.stateDir });
    const snap = await this.store.getState<IdentitySnapshot>('identities');
    this.identities = new IdentityAllocator(snap);
    this.nextEpId = (await this.store.getState<number>('nextEndpointId')) ?? 1;
    for (const ns of SYSTEM_NAMESPACES) {
      if (!(await this.store.get({ kind: 'Namespace', namespace: '', name: ns }))) {
        await this.store.put({ kind: 'Namespace', namespace: '', name: ns, body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
      }
    }
    const policies: TranslatedPolicy[] = [];
    for (const kind of ['CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy', 'NetworkPolicy']) {
      for (const o of await this.store.list<PolicyManifest>(kind)) policies.push(translatePolicy(o.body, { source: 'store', label: `${kind} ${o.namespace}/${o.name}` }));
    }
    this.repo.apply(policies);
  }

  private async startRails(): Promise<void> {
    this.rails = await installSafetyRoutes(safetyPrefixes(this.config.podCIDR), { ownLinkPrefix: 'mbr' });
    for (const s of this.rails.skipped) this.progress(`safety route not installed for ${s.prefix}: ${s.reason}`);
  }

  private startDatapath(): void {
    this.datapath = Datapath.open({ pinRoot: this.config.pinRoot });
    this.realizer = new EndpointRealizer(this.datapath);
    this.ipcacheSync = new IPCacheSync(this.datapath);
    this.stopGc = this.datapath.startCtGc(30_000);
  }

  private async startPodNetwork(): Promise<void> {
    const inUse: string[] = [];
    for (const k of await this.podStateKeys()) {
      const s = await this.store.getState<PodState>(k);
      if (s) inUse.push(s.ip);
    }
    this.podNet = await PodNetwork.open({ cidr: this.config.podCIDR, inUse, names: podNetworkNames(this.config) });
  }

  private async podStateKeys(): Promise<string[]> {
    const pods = await this.store.list<Pod>('Pod');
    return pods.map((p) => `pod/${p.namespace}/${p.name}`);
  }

  /** Adopt the pods a previous run left (store + kernel), start the ones that are missing. */
  private async restore(): Promise<void> {
    for (const o of await this.store.list<Pod>('Pod')) {
      const s = await this.store.getState<PodState>(`pod/${o.namespace}/${o.name}`);
      if (s) await this.adoptPod(o.body, s);
      else this.pendingStart.push(await this.createPod(o.body, ownerOf(o.body)));
    }
    await this.regenerate();
    this.startPending();
    this.monitor = setInterval(() => void this.enqueue(() => this.checkProcesses()).catch((e) => this.progress(`monitor: ${String(e)}`)), 500);
    this.monitor.unref();
  }

  private stopMonitor(): void {
    if (this.monitor) clearInterval(this.monitor);
    this.stopGc?.();
    for (const rt of this.pods.values()) for (const t of rt.timers) clearTimeout(t);
  }

  private startApi(): Promise<void> {
    this.api = new ApiServer(this.routes(), { socketPath: this.config.socketPath, port: this.config.apiPort, token: this.token });
    return this.api.start().then(() => {
      this.state = 'ready';
    });
  }

  async start(): Promise<void> {
    this.startedAt = new Date().toISOString();
    await this.lifecycle.start(this.progress);
  }

  /** Resolves when a client asks the agent to stop (teardown: remove everything, for `membrane down`). */
  waitForShutdown(): Promise<boolean> {
    return new Promise((resolve) => (this.shutdownRequested = resolve));
  }

  async stop(teardown: boolean): Promise<void> {
    this.state = 'stopping';
    if (teardown) await this.teardown();
    await this.lifecycle.stop(this.progress);
  }

  /** `membrane down`: stop every pod and remove every kernel object the agent made. */
  private async teardown(): Promise<void> {
    this.stopMonitor();
    for (const rt of [...this.pods.values()]) await this.destroyPod(rt, false);
    for (const k of await this.store.list('Pod')) await this.store.deleteState(`pod/${k.namespace}/${k.name}`);
    await this.store.deleteState('identities');
    this.datapath.close();
    Datapath.unpinAll(this.config.pinRoot);
    await this.podNet.destroy();
    // The pod CIDR's rail is this agent's own. The test ranges' rails are shared by every
    // agent and test run on the machine (the first one adds them, the others find them
    // covered): while another one's rail is up (another pod CIDR), they stay for it.
    const mine = safetyPrefixes(this.config.podCIDR);
    const others = (await findMembraneSafetyRoutes()).filter((p) => !mine.includes(p));
    await removeMembraneSafetyRoutes(others.length ? [this.config.podCIDR] : mine);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---- apply / delete ------------------------------------------------------------------

  apply(req: ApplyRequest): Promise<ApplyResponse> {
    return this.enqueue(() => this.applyNow(req));
  }

  private async applyNow(req: ApplyRequest): Promise<ApplyResponse> {
    const t0 = process.hrtime.bigint();
    // 1. Validate every document before anything changes.
    const parsed: { m: Manifest; policy?: TranslatedPolicy; ref: string }[] = [];
    const seen = new Set<string>();
    for (const d of req.documents) {
      const ref = { source: d.source, label: d.label };
      const m = parseManifest(d.value, ref, { ...(req.defaultNamespace ? { defaultNamespace: req.defaultNamespace } : {}) });
      const k = keyOf(m.kind, m.metadata.namespace, m.metadata.name);
      if (seen.has(k)) throw new ValidationError('MEMBRANE_E_MANIFEST_INVALID', { ...ref, object: objectName(m.kind, m.metadata) }, [{ path: 'metadata.name', reason: 'the same object appears twice in this apply' }]);
      seen.add(k);
      const policy = isPolicyManifest(m) ? translatePolicy(m, { ...ref, object: objectName(m.kind, m.metadata) }) : undefined;
      parsed.push({ m, ...(policy ? { policy } : {}), ref: `${d.source}: ${d.label}` });
    }
    const batchNamespaces = new Set(parsed.filter((p) => p.m.kind === 'Namespace').map((p) => p.m.metadata.name));
    for (const p of parsed) {
      const ns = p.m.metadata.namespace;
      if (p.m.kind === 'Namespace' || p.m.kind === 'CiliumClusterwideNetworkPolicy' || !ns) continue;
      if (!batchNamespaces.has(ns) && !(await this.store.get({ kind: 'Namespace', namespace: '', name: ns }))) {
        throw new MembraneError('MEMBRANE_E_NOT_FOUND', `${p.ref} (${objectName(p.m.kind, p.m.metadata)}): namespace "${ns}" not found (apply a Namespace first)`);
      }
    }
    for (const p of parsed) {
      if (p.m.kind !== 'Pod') continue;
      const owner = this.pods.get(podKey(p.m.metadata.namespace!, p.m.metadata.name))?.state.owner;
      if (owner) throw new MembraneError('MEMBRANE_E_CONFLICT', `${p.ref}: pod ${p.m.metadata.namespace}/${p.m.metadata.name} belongs to ${owner}`);
    }
    // 2. Store everything at once.
    parsed.sort((a, b) => APPLY_ORDER.indexOf(a.m.kind as (typeof APPLY_ORDER)[number]) - APPLY_ORDER.indexOf(b.m.kind as (typeof APPLY_ORDER)[number]));
    const results: ApplyResponse['results'] = [];
    await this.store.transaction(async (tx) => {
      for (const p of parsed) {
        const ns = p.m.kind === 'Namespace' || p.m.kind === 'CiliumClusterwideNetworkPolicy' ? '' : p.m.metadata.namespace ?? 'default';
        const out = await tx.put({ kind: p.m.kind, namespace: ns, name: p.m.metadata.name, body: p.m });
        results.push({ kind: p.m.kind, ...(ns ? { namespace: ns } : {}), name: p.m.metadata.name, action: out.result as ApplyAction });
      }
    });
    // 3. Bring the kernel and the processes to it.
    const changed = (kind: string) => parsed.filter((p, i) => p.m.kind === kind && results[i]!.action !== 'unchanged');
    const policies = parsed.filter((p, i) => p.policy && results[i]!.action !== 'unchanged').map((p) => p.policy!);
    if (policies.length) this.repo.apply(policies);
    for (const p of changed('Deployment')) await this.reconcileDeployment(p.m as Deployment);
    for (const p of changed('Pod')) {
      const pod = p.m as Pod;
      const rt = this.pods.get(podKey(pod.metadata.namespace!, pod.metadata.name));
      if (rt) await this.destroyPod(rt, true);
      await this.createPod(pod);
    }
    for (const p of changed('Pod')) this.pendingStart.push(this.pods.get(podKey(p.m.metadata.namespace!, p.m.metadata.name))!);
    await this.regenerate();
    this.startPending();
    const enforcedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    return { results, enforcedMs };
  }

  delete(req: DeleteRequest): Promise<DeleteResponse> {
    return this.enqueue(() => this.deleteNow(req));
  }

  private async deleteNow(req: DeleteRequest): Promise<DeleteResponse> {
    const refs: ObjectRef[] = [...(req.refs ?? [])];
    for (const d of req.documents ?? []) {
      const m = parseManifest(d.value, { source: d.source, label: d.label }, { ...(req.defaultNamespace ? { defaultNamespace: req.defaultNamespace } : {}) });
      refs.push({ kind: m.kind, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}), name: m.metadata.name });
    }
    const missing: string[] = [];
    const found: StoredObject[] = [];
    for (const r of refs) {
      const ns = r.kind === 'Namespace' || r.kind === 'CiliumClusterwideNetworkPolicy' ? '' : r.namespace ?? 'default';
      const o = await this.store.get({ kind: r.kind, namespace: ns, name: r.name });
      if (o) found.push(o);
      else missing.push(`${r.kind} ${ns ? ns + '/' : ''}${r.name}`);
    }
    if (missing.length && !req.ignoreNotFound) throw new MembraneError('MEMBRANE_E_NOT_FOUND', `not found: ${missing.join(', ')}`);
    const results: DeleteResponse['results'] = [];
    // Namespaces take their objects with them.
    for (const o of [...found]) {
      if (o.kind !== 'Namespace') continue;
      if (SYSTEM_NAMESPACES.includes(o.name)) throw new MembraneError('MEMBRANE_E_CONFLICT', `namespace ${o.name} cannot be deleted`);
      for (const kind of ['Pod', 'Deployment', 'Service', 'ServiceAccount', 'CiliumNetworkPolicy', 'NetworkPolicy']) {
        for (const x of await this.store.list(kind, { namespace: o.name })) if (!found.some((f) => f.kind === x.kind && f.namespace === x.namespace && f.name === x.name)) found.unshift(x);
      }
    }
    const deletedPodOwners = new Set<string>();
    for (const o of found) {
      if (o.kind === 'Pod') {
        const owner = this.pods.get(podKey(o.namespace, o.name))?.state.owner;
        if (owner && !found.some((f) => f.kind === 'Deployment' && `Deployment ${f.namespace}/${f.name}` === owner)) deletedPodOwners.add(owner);
      }
    }
    for (const o of found) {
      if (o.kind === 'Deployment') {
        for (const rt of [...this.pods.values()]) if (rt.state.owner === `Deployment ${o.namespace}/${o.name}`) await this.removePodObject(rt);
      }
      if (o.kind === 'Pod') {
        const rt = this.pods.get(podKey(o.namespace, o.name));
        if (rt) await this.removePodObject(rt);
        else await this.store.delete(o);
      } else {
        await this.store.delete(o);
      }
      if (['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'].includes(o.kind)) {
        this.repo.delete([{ kind: o.kind, ...(o.namespace ? { namespace: o.namespace } : {}), name: o.name }]);
      }
      results.push({ kind: o.kind, ...(o.namespace ? { namespace: o.namespace } : {}), name: o.name, action: 'deleted' });
    }
    // A Deployment replaces the pods of its own that were deleted (as its controller would).
    for (const o of await this.store.list<Deployment>('Deployment')) {
      const owner = `Deployment ${o.namespace}/${o.name}`;
      if (deletedPodOwners.has(owner)) await this.reconcileDeployment(o.body);
    }
    for (const m of missing) {
      const [kind, rest] = [m.split(' ')[0]!, m.split(' ')[1]!];
      const [ns, name] = rest.includes('/') ? rest.split('/') : [undefined, rest];
      results.push({ kind, ...(ns ? { namespace: ns } : {}), name: name!, action: 'not found' });
    }
    await this.regenerate();
    this.startPending();
    return { results };
  }

  private async removePodObject(rt: PodRuntime): Promise<void> {
    await this.destroyPod(rt, true);
    await this.store.delete({ kind: 'Pod', namespace: rt.state.namespace, name: rt.state.name });
  }

  // ---- deployments ---------------------------------------------------------------------

  private async reconcileDeployment(d: Deployment): Promise<void> {
    const owner = `Deployment ${d.metadata.namespace}/${d.metadata.name}`;
    const mine = [...this.pods.values()].filter((p) => p.state.owner === owner);
    const template = JSON.stringify(d.spec.template);
    // Pods of an older template are replaced.
    for (const rt of mine) {
      if (rt.state.template !== undefined && rt.state.template !== template) await this.removePodObject(rt);
    }
    let live = [...this.pods.values()].filter((p) => p.state.owner === owner);
    while (live.length > d.spec.replicas) {
      await this.removePodObject(live.pop()!);
    }
    while (live.length < d.spec.replicas) {
      const name = `${d.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`;
      const pod: Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: d.metadata.namespace!, labels: { ...d.spec.template.metadata.labels }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name }] } as Pod['metadata'],
        spec: { ...d.spec.template.spec, restartPolicy: 'Always' },
      };
      await this.store.put({ kind: 'Pod', namespace: pod.metadata.namespace!, name, body: pod });
      const rt = await this.createPod(pod, owner);
      rt.state.template = template;
      await this.saveState(rt);
      this.pendingStart.push(rt);
      live = [...live, rt];
    }
  }

  // ---- pods ----------------------------------------------------------------------------

  private async createPod(pod: Pod, owner?: string): Promise<PodRuntime> {
    const ns = pod.metadata.namespace ?? 'default';
    const epId = this.nextEpId++;
    await this.store.setState('nextEndpointId', this.nextEpId);
    const p = await this.podNet.addPod({ id: epId.toString(36), name: `${ns}/${pod.metadata.name}` });
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
      ...(owner ? { owner } : {}),
    };
    const rt: PodRuntime = { probeOk: new Map(), state, manifest: pod, ifindex: p.ifindex, hostIf: p.hostIf, netns: p.netns, stopping: false, timers: [] };
    this.pods.set(podKey(ns, pod.metadata.name), rt);
    this.datapath.attach(p.ifindex, p.hostIf);
    await this.saveState(rt);
    return rt;
  }

  private async adoptPod(pod: Pod, s: PodState): Promise<void> {
    let p;
    try {
      p = await this.podNet.adoptPod(s.podId, { ip: s.ip, name: `${s.namespace}/${s.name}` });
    } catch (e) {
      this.progress(`pod ${s.namespace}/${s.name}: cannot adopt (${e instanceof Error ? e.message : String(e)}); recreating it`);
      await this.store.deleteState(`pod/${s.namespace}/${s.name}`);
      this.pendingStart.push(await this.createPod(pod, s.owner));
      return;
    }
    const rt: PodRuntime = { probeOk: new Map(), state: s, manifest: pod, ifindex: p.ifindex, hostIf: p.hostIf, netns: p.netns, stopping: false, timers: [] };
    this.pods.set(podKey(s.namespace, s.name), rt);
    this.datapath.attach(p.ifindex, p.hostIf);
    if (s.epId >= this.nextEpId) this.nextEpId = s.epId + 1;
    // Containers still running are watched by polling; the others restart as their policy says.
    for (const c of s.containers) {
      if (c.state === 'running' && c.process && !isAlive(c.process)) this.containerExited(rt, c, undefined);
    }
  }

  /** Start what was created since the last regeneration (policy first, then processes). */
  private startPending(): void {
    const list = this.pendingStart;
    this.pendingStart = [];
    for (const rt of list) if (this.pods.get(podKey(rt.state.namespace, rt.state.name)) === rt) this.startContainers(rt);
  }

  private startContainers(rt: PodRuntime): void {
    for (const c of rt.manifest.spec.containers) this.startContainer(rt, c.name);
    this.updatePhase(rt);
  }

  private startContainer(rt: PodRuntime, name: string): void {
    if (rt.stopping) return;
    const spec = rt.manifest.spec.containers.find((c) => c.name === name)!;
    const cs = rt.state.containers.find((c) => c.name === name)!;
    const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: rt.state.name, POD_NAME: rt.state.name, POD_NAMESPACE: rt.state.namespace, POD_IP: rt.state.ip };
    for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
    if (argv.length === 0) {
      this.failContainer(rt, cs, 'ContainerCannotRun', 'no command: Membrane runs a container\'s command and args as host processes (the image is informational)', 128);
      return;
    }
    const exe = resolveExecutable(argv[0]!, env['PATH']!, spec.workingDir ?? '/');
    if ('error' in exe) {
      this.failContainer(rt, cs, 'ContainerCannotRun', exe.error, exe.code);
      return;
    }
    const logFile = join(this.config.stateDir, 'logs', `${rt.state.namespace}_${rt.state.name}_${name}.log`);
    const started = startContainer({ netns: rt.netns, argv, env, ...(spec.workingDir ? { cwd: spec.workingDir } : {}), logFile });
    cs.process = started.ref;
    cs.state = 'running';
    delete cs.reason;
    delete cs.exitCode;
    cs.startedAt = new Date().toISOString();
    started.exit.then((st) => void this.enqueue(async () => this.containerExited(rt, cs, st.code ?? (st.signal ? 128 + 9 : 1))));
    void this.saveState(rt);
  }

  private failContainer(rt: PodRuntime, cs: ContainerState, reason: string, message: string, code: number): void {
    cs.state = 'terminated';
    cs.reason = reason;
    cs.exitCode = code;
    cs.finishedAt = new Date().toISOString();
    rt.state.message = `container ${cs.name}: ${message}`;
    this.afterExit(rt, cs);
  }

  private containerExited(rt: PodRuntime, cs: ContainerState, code: number | undefined): void {
    if (cs.state !== 'running' || rt.stopping) return;
    cs.state = 'terminated';
    cs.exitCode = code ?? 255;
    cs.reason = code === 0 ? 'Completed' : 'Error';
    cs.finishedAt = new Date().toISOString();
    this.afterExit(rt, cs);
  }

  /** Restart as restartPolicy says (with a growing back-off), then recompute the phase. */
  private afterExit(rt: PodRuntime, cs: ContainerState): void {
    const policy = rt.manifest.spec.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && cs.exitCode !== 0);
    if (restart && cs.reason !== 'ContainerCannotRun') {
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(cs.restarts, 5));
      cs.reason = 'CrashLoopBackOff';
      const t = setTimeout(() => {
        cs.restarts++;
        void this.enqueue(async () => this.startContainer(rt, cs.name));
      }, delay);
      t.unref();
      rt.timers.push(t);
    }
    this.updatePhase(rt);
    void this.saveState(rt);
  }

  private updatePhase(rt: PodRuntime): void {
    const cs = rt.state.containers;
    const policy = rt.manifest.spec.restartPolicy ?? 'Always';
    if (cs.some((c) => c.reason === 'ContainerCannotRun')) {
      rt.state.phase = 'Failed';
      rt.state.reason = 'ContainerCannotRun';
    } else if (cs.every((c) => c.state === 'terminated') && (policy === 'Never' || (policy === 'OnFailure' && cs.every((c) => c.exitCode === 0)))) {
      rt.state.phase = cs.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
      rt.state.reason = rt.state.phase === 'Failed' ? 'Error' : 'Completed';
    } else if (cs.some((c) => c.state === 'running')) {
      rt.state.phase = 'Running';
      delete rt.state.reason;
    }
    rt.state.ready =
      rt.state.phase === 'Running' &&
      cs.every((c) => c.state === 'running' && (!rt.manifest.spec.containers.find((x) => x.name === c.name)?.readinessProbe || rt.probeOk.get(c.name) === true));
  }

  /** Run the readiness probes that are due (each container's own period). */
  private probeTick = 0;
  private async runProbes(): Promise<void> {
    this.probeTick++;
    await Promise.all(
      [...this.pods.values()].flatMap((rt) =>
        rt.manifest.spec.containers
          .filter((c) => c.readinessProbe && rt.state.containers.find((x) => x.name === c.name)?.state === 'running')
          .map(async (c) => {
            const p = c.readinessProbe!;
            const periodTicks = Math.max(1, Math.round(((p.periodSeconds ?? 10) * 1000) / 500));
            const cs = rt.state.containers.find((x) => x.name === c.name)!;
            const since = cs.startedAt ? (Date.now() - Date.parse(cs.startedAt)) / 1000 : 0;
            if (since < (p.initialDelaySeconds ?? 0) || this.probeTick % periodTicks !== 0) return;
            const ok = await runProbe(p, c, rt.state.ip, rt.netns);
            if (rt.probeOk.get(c.name) !== ok) {
              rt.probeOk.set(c.name, ok);
              this.updatePhase(rt);
              await this.saveState(rt);
            }
          }),
      ),
    );
  }

  /** Adopted processes are not our children: watch them by polling. */
  private async checkProcesses(): Promise<void> {
    void this.runProbes().catch((e) => this.progress(`probes: ${String(e)}`));
    for (const rt of this.pods.values()) {
      for (const c of rt.state.containers) {
        if (c.state === 'running' && c.process && !isAlive(c.process)) this.containerExited(rt, c, undefined);
      }
    }
  }

  private async destroyPod(rt: PodRuntime, releaseIdentity: boolean): Promise<void> {
    rt.stopping = true;
    for (const t of rt.timers) clearTimeout(t);
    const grace = rt.manifest.spec.terminationGracePeriodSeconds ?? 30;
    await Promise.all(rt.state.containers.filter((c) => c.process).map((c) => stopContainer(c.process!, grace)));
    this.datapath.detach(rt.ifindex);
    this.realizer.remove({ ifindex: rt.ifindex, epId: rt.state.epId, ipv4: rt.state.ip, identity: rt.identity?.id ?? 0 });
    await this.podNet.removePod(rt.state.podId).catch(() => undefined);
    if (releaseIdentity && rt.identity) this.identities.release(rt.identity.id);
    this.pods.delete(podKey(rt.state.namespace, rt.state.name));
    await this.store.deleteState(`pod/${rt.state.namespace}/${rt.state.name}`);
  }

  private async saveState(rt: PodRuntime): Promise<void> {
    if (rt.stopping) return;
    await this.store.setState(`pod/${rt.state.namespace}/${rt.state.name}`, rt.state);
  }

  // ---- identities and policy -----------------------------------------------------------

  /**
   * Recompute every endpoint's identity and policy and bring the kernel to
   * them: ipcache first (new identities resolvable), then each endpoint's
   * policy map (one atomic swap each).
   */
  private async regenerate(): Promise<void> {
    const namespaces = new Map((await this.store.list<Namespace>('Namespace')).map((n) => [n.name, n.body.metadata.labels ?? {}]));
    for (const rt of this.pods.values()) {
      const labels = endpointIdentityLabels({
        namespace: rt.state.namespace,
        podLabels: rt.manifest.metadata.labels ?? {},
        namespaceLabels: namespaces.get(rt.state.namespace) ?? {},
        serviceAccount: rt.manifest.spec.serviceAccountName ?? 'default',
      });
      if (rt.identity && rt.identity.labels.toString() === labels.toString()) continue;
      const next = this.identities.allocate(labels);
      if (rt.identity) this.identities.release(rt.identity.id);
      rt.identity = next;
    }
    // CIDR identities for every prefix the policies name.
    const rules = this.repo.rules();
    const ipcache = new IPCache();
    for (const prefix of cidrPrefixes(rules)) {
      const id = this.identities.allocateCIDR(prefix);
      ipcache.upsert({ prefix, identity: id.id, source: 'policy' });
    }
    for (const ip of hostAddresses()) {
      const p = hostPrefix(ip);
      if (p && p.family === 4) ipcache.upsert({ prefix: p, identity: ReservedIdentity.host, source: 'host' });
    }
    ipcache.upsert({ prefix: hostPrefix(this.podNet.routerIP)!, identity: ReservedIdentity.host, source: 'router' });
    for (const rt of this.pods.values()) {
      if (rt.identity) ipcache.upsert({ prefix: hostPrefix(rt.state.ip)!, identity: rt.identity.id, endpointId: rt.state.epId, source: 'endpoint' });
    }
    this.ipcacheSync.sync(ipcache.list());
    await this.store.setState('identities', this.identities.snapshot());

    const selection = { identities: this.identities.list() };
    const subjects = [...new Map([...this.pods.values()].filter((p) => p.identity).map((p) => [p.identity!.id, p.identity!])).values()];
    const policies = resolveAll(rules, selection, subjects, () => ({}), new SelectorCache(selection));
    for (const rt of this.pods.values()) {
      if (!rt.identity) continue;
      this.realizer.realize({ ifindex: rt.ifindex, epId: rt.state.epId, ipv4: rt.state.ip, identity: rt.identity.id }, policies.get(rt.identity.id)!);
    }
  }

  // ---- queries -------------------------------------------------------------------------

  endpoints(): EndpointInfo[] {
    return [...this.pods.values()]
      .sort((a, b) => a.state.epId - b.state.epId)
      .map((rt) => {
        const ep = this.datapath.getEndpoint(rt.ifindex);
        const pol = rt.identity ? this.enforcement(rt) : { ingress: false, egress: false };
        return {
          id: rt.state.epId,
          pod: rt.state.name,
          namespace: rt.state.namespace,
          identity: rt.identity?.id ?? 0,
          labels: rt.identity?.labels.toStrings() ?? [],
          ipv4: rt.state.ip,
          policyEnforcement: pol,
          state: ep ? (rt.state.phase === 'Running' ? 'ready' : rt.state.phase.toLowerCase()) : 'not-ready',
          hostInterface: rt.hostIf,
        };
      });
  }

  private enforcement(rt: PodRuntime): { ingress: boolean; egress: boolean } {
    const selection = { identities: this.identities.list() };
    const pol = resolveAll(this.repo.rules(), selection, [rt.identity!]).get(rt.identity!.id)!;
    return { ingress: pol.ingress.enforced, egress: pol.egress.enforced };
  }

  identityList(): IdentityInfo[] {
    const counts = new Map<number, number>();
    for (const rt of this.pods.values()) if (rt.identity) counts.set(rt.identity.id, (counts.get(rt.identity.id) ?? 0) + 1);
    return this.identities.list().map((i) => ({ id: i.id, labels: i.labels.toStrings(), endpoints: counts.get(i.id) ?? 0 }));
  }

  async objects(kind: string, namespace: string | undefined, name: string | undefined): Promise<unknown[]> {
    const list = await this.store.list(kind, namespace !== undefined ? { namespace: kind === 'Namespace' || kind === 'CiliumClusterwideNetworkPolicy' ? '' : namespace } : {});
    const out = list.filter((o) => name === undefined || o.name === name).map((o) => this.withStatus(o));
    if (name !== undefined && out.length === 0) {
      throw new MembraneError('MEMBRANE_E_NOT_FOUND', `${kind} ${namespace && kind !== 'Namespace' ? `${namespace}/` : ''}${name} not found`);
    }
    return out;
  }

  private withStatus(o: StoredObject): unknown {
    const body = JSON.parse(JSON.stringify(o.body)) as { metadata: Record<string, unknown>; status?: unknown };
    body.metadata['creationTimestamp'] = o.creationTimestamp;
    body.metadata['resourceVersion'] = String(o.resourceVersion);
    if (o.kind === 'Pod') {
      const rt = this.pods.get(podKey(o.namespace, o.name));
      const s = rt?.state;
      body.status = {
        phase: s?.phase ?? 'Pending',
        ...(s?.reason ? { reason: s.reason } : {}),
        ...(s?.message ? { message: s.message } : {}),
        ...(s ? { podIP: s.ip, podIPs: [{ ip: s.ip }], startTime: s.startTime } : {}),
        conditions: [{ type: 'Ready', status: s?.ready ? 'True' : 'False' }],
        containerStatuses: (s?.containers ?? []).map((c) => ({
          name: c.name,
          ready: c.state === 'running',
          restartCount: c.restarts,
          state: c.state === 'running' ? { running: { startedAt: c.startedAt } } : c.state === 'terminated' ? { terminated: { exitCode: c.exitCode, reason: c.reason, finishedAt: c.finishedAt } } : { waiting: { reason: c.reason } },
        })),
      };
    }
    if (o.kind === 'Deployment') {
      const owner = `Deployment ${o.namespace}/${o.name}`;
      const mine = [...this.pods.values()].filter((p) => p.state.owner === owner);
      body.status = { replicas: mine.length, readyReplicas: mine.filter((p) => p.state.ready).length };
    }
    return body;
  }

  execTarget(namespace: string, name: string): ExecTarget {
    const rt = this.pods.get(podKey(namespace, name));
    if (!rt) throw new MembraneError('MEMBRANE_E_NOT_FOUND', `pod ${namespace}/${name} not found`);
    return { namespace, pod: name, netns: rt.netns, ip: rt.state.ip, phase: rt.state.phase };
  }

  status(): StatusResponse {
    let libbpf = '?';
    try {
      libbpf = native().libbpfVersion();
    } catch {
      /* reported elsewhere */
    }
    return {
      agent: { pid: process.pid, stateDir: this.config.stateDir, version: VERSION, startedAt: this.startedAt, state: this.state },
      datapath: { pinRoot: this.config.pinRoot, podCIDR: this.config.podCIDR, programs: 'from-container, to-container', lostEvents: Number(this.datapath?.lostEvents() ?? 0n) },
      endpoints: { total: this.pods.size, ready: [...this.pods.values()].filter((p) => p.state.ready).length },
      policies: { total: this.repo.list().length, revision: this.repo.revision },
      identities: { total: this.identities.list().length },
      observer: { flowsSeen: 0, bufferSize: 0, lostEvents: 0 },
      proxy: { state: 'not implemented yet (HTTP and DNS rules are enforced at L4 only)' },
      versions: { membrane: VERSION, node: process.version, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), libbpf },
    };
  }

  logsPath(namespace: string, name: string, container?: string): string {
    const rt = this.pods.get(podKey(namespace, name));
    if (!rt) throw new MembraneError('MEMBRANE_E_NOT_FOUND', `pod ${namespace}/${name} not found`);
    const c = container ?? rt.manifest.spec.containers[0]!.name;
    return join(this.config.stateDir, 'logs', `${namespace}_${name}_${c}.log`);
  }

  // ---- API -----------------------------------------------------------------------------

  private routes(): Route[] {
    return [
      { method: 'GET', path: '/v1/status', handler: () => this.status() },
      { method: 'POST', path: '/v1/apply', handler: (r) => this.apply(r.body as ApplyRequest) },
      { method: 'POST', path: '/v1/delete', handler: (r) => this.delete(r.body as DeleteRequest) },
      { method: 'GET', path: '/v1/objects/:kind', handler: (r) => this.objects(r.params['kind']!, r.query.get('namespace') ?? undefined, r.query.get('name') ?? undefined) },
      { method: 'GET', path: '/v1/endpoints', handler: () => this.endpoints() },
      { method: 'GET', path: '/v1/identities', handler: () => this.identityList() },
      { method: 'GET', path: '/v1/pods/:namespace/:name/exec', handler: (r) => this.execTarget(r.params['namespace']!, r.params['name']!) },
      {
        method: 'GET',
        path: '/v1/pods/:namespace/:name/logs',
        handler: (r) => {
          const path = this.logsPath(r.params['namespace']!, r.params['name']!, r.query.get('container') ?? undefined);
          r.res.writeHead(200, { 'content-type': 'text/plain' });
          let offset = 0;
          const pump = () => {
            if (!existsSync(path)) return;
            const size = statSync(path).size;
            if (size > offset) {
              const fd = readFileSync(path);
              r.res.write(fd.subarray(offset, size));
              offset = size;
            }
          };
          pump();
          if (r.query.get('follow') !== 'true') {
            r.res.end();
            return undefined;
          }
          const t = setInterval(pump, 200);
          r.raw.on('close', () => clearInterval(t));
          return undefined;
        },
      },
      {
        method: 'POST',
        path: '/v1/shutdown',
        handler: (r) => {
          const teardown = (r.body as { teardown?: boolean } | undefined)?.teardown === true;
          setImmediate(() => this.shutdownRequested?.(teardown));
          return { stopping: true, teardown };
        },
      },
    ];
  }
}

/** `Deployment ns/name` for a pod a Deployment made (its ownerReferences), else undefined. */
function ownerOf(pod: Pod): string | undefined {
  const refs = (pod.metadata as { ownerReferences?: { kind: string; name: string }[] }).ownerReferences;
  const d = refs?.find((r) => r.kind === 'Deployment');
  return d ? `Deployment ${pod.metadata.namespace ?? 'default'}/${d.name}` : undefined;
}

/** The agent's link and netns names: `<prefix>_e<id>` in `<prefix>_pod_<id>` (prefix `mbr` by default). */
export function podNetworkNames(c: AgentConfig): { linkPrefix: string; netnsPrefix: string } {
  return { linkPrefix: `${c.namePrefix}_`, netnsPrefix: `${c.namePrefix}_pod_` };
}

/** Every prefix CIDR peers and their exceptions name (each gets a CIDR identity and an ipcache entry). */
export function cidrPrefixes(rules: readonly Rule[]): Prefix[] {
  const seen = new Map<string, Prefix>();
  for (const r of rules) {
    for (const d of [...r.ingress, ...r.egress]) {
      for (const p of d.peers) {
        if (p.kind !== 'cidr') continue;
        for (const x of [p.cidr, ...p.except]) if (x.family === 4 && x.bits > 0) seen.set(`${[...x.bytes].join('.')}/${x.bits}`, x);
      }
    }
  }
  return [...seen.values()];
}

/** The host's own IPv4 addresses (traffic from them is the host identity). */
export function hostAddresses(): string[] {
  try {
    const out = execFileSync('ip', ['-json', '-4', 'addr', 'show'], { encoding: 'utf8' });
    const links = JSON.parse(out) as { addr_info?: { local: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)).filter((a) => !a.startsWith('127.'));
  } catch {
    return [];
  }
}

