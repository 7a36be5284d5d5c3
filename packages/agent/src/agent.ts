/**
 * The agent: the composition root. It wires the cells — state directory,
 * store, safety routes, datapath, pod network, endpoint manager, workloads,
 * API — and starts them in that order (stopped in reverse). What each does
 * lives in its own module: apply/ (validate → plan → commit → enforce),
 * controllers/, pods/ (plumbing, containers, readiness), views/, api/.
 */
import type { StatusResponse } from '@membrane/api';
import { fileURLToPath } from 'node:url';
import { Datapath, PodNetwork, ServiceDatapath, TestHosts, installSafetyRoutes } from '@membrane/datapath';
import { EndpointManager } from '@membrane/endpoint';
import { IdentityAllocator, type IdentitySnapshot } from '@membrane/identity';
import { Repository } from '@membrane/policy';
import { agentRoutes } from './api/routes.js';
import { ApiServer, type Route } from './api/http-api.js';
import { Applier, SYSTEM_NAMESPACES } from './apply/applier.js';
import { restorePolicies } from './apply/restore-policies.js';
import type { AgentConfig } from './config.js';
import { dnsAddressOf, hostAddresses, prepareStateDir } from './host.js';
import { DnsServer } from './dns/dns-server.js';
import { FqdnProxy } from './dns/fqdn-proxy.js';
import { Observer } from '@membrane/observer';
import { AgentFlowContext } from './observer/flow-context.js';
import { KernelLossWatch } from './observer/kernel-loss.js';
import { ConsoleCell } from './console/console-cell.js';
import { consoleRoutes } from './console/console-routes.js';
import { PolicyHistory } from './apply/policy-history.js';
import { KubeServer, type KubeObject } from './kube/kube-server.js';
import { listObjects } from './views/object-view.js';
import { ensureKubeCredentials, type KubeCredentials } from './kube/kube-certs.js';
import { HubbleServer } from './observer/hubble-server.js';
import { MetricsServer } from './observer/metrics-server.js';
import type { FqdnCacheEntry } from './dns/fqdn-cache.js';
import { netnsResolvConf, type PodEtcFiles } from './dns/netns-resolv-conf.js';
import { KUBE_DNS, ServiceManager, dnsServerPod, kubeDnsService } from './services/service-manager.js';
import type { AddressingSnapshot } from './services/service-addressing.js';
import { Lifecycle } from './lifecycle.js';
import { ContainerSupervisor } from './pods/container-supervisor.js';
import { PodManager } from './pods/pod-manager.js';
import type { PodRuntime } from './pods/pod-runtime.js';
import { PROBE_TICK_MS, ReadinessProber } from './pods/readiness.js';
import { restorePods } from './pods/restore.js';
import { ProblemLog } from './problem-log.js';
import { openSqliteStore, type Store } from './store/index.js';
import { teardown } from './teardown.js';
import { VERSION } from './views/status-view.js';
import { agentApi } from './api/agent-api.js';
import { WorkQueue } from './work-queue.js';
import { ProxyHub } from './proxy/proxy-hub.js';
import { PROXY_LISTENER_IP, disableProxyRedirect, enableProxyRedirect } from './proxy/proxy-redirect.js';
import { ProxySupervisor } from './proxy/proxy-supervisor.js';
import { podNamedPorts } from './pods/endpoint-specs.js';
import type { ProcessRef } from './workloads/container-process.js';

/** The L7 proxy's entry (packages/proxy), which the agent starts. */
export const PROXY_MAIN = fileURLToPath(import.meta.resolve('@membrane/proxy/main'));
import { defaultProcessRunner } from './workloads/container-process.js';
import { runProbe } from './workloads/probe.js';

export { VERSION };

export class Agent {
  readonly lifecycle = new Lifecycle();
  private readonly problems: ProblemLog;
  private readonly queue: WorkQueue;
  private readonly policies = { repo: new Repository() };
  private token = '';
  private store!: Store;
  private datapath!: Datapath;
  private serviceDatapath!: ServiceDatapath;
  private services!: ServiceManager;
  private dns?: DnsServer;
  private testHosts!: TestHosts;
  private etc!: PodEtcFiles;
  /** The cluster DNS server's address (on the router link, in the pod CIDR). */
  private readonly dnsIP: string;
  private readonly readiness = new Map<string, boolean>();
  private podNet!: PodNetwork;
  private endpoints!: EndpointManager;
  private pods!: PodManager;
  private supervisor!: ContainerSupervisor;
  private applier!: Applier;
  private api!: ApiServer;
  private proxyHub!: ProxyHub;
  private proxy?: ProxySupervisor;
  private fqdn?: FqdnProxy;
  private observer!: Observer;
  private flowContext?: AgentFlowContext;
  private kernelLoss?: KernelLossWatch;
  private hubble?: HubbleServer;
  private metrics?: MetricsServer;
  private routes: Route[] = [];
  private readonly console: ConsoleCell;
  private history!: PolicyHistory;
  private kube?: KubeServer;
  private kubeCredentials?: KubeCredentials;
  private monitor?: NodeJS.Timeout;
  private stopCtGc?: () => void;
  private state: StatusResponse['agent']['state'] = 'starting';
  private startedAt = new Date().toISOString();
  private shutdownRequested?: (teardown: boolean) => void;

  constructor(
    readonly config: AgentConfig,
    private readonly progress: (msg: string) => void = () => {},
  ) {
    this.problems = new ProblemLog(progress);
    this.console = new ConsoleCell(config.stateDir, config.uiPort);
    this.dnsIP = dnsAddressOf(config.podCIDR);
    this.queue = new WorkQueue((what, e) => this.problems.add(`${what}: ${e instanceof Error ? e.message : String(e)}`));
    const cell = (name: string, start: () => unknown, stop: () => unknown = () => {}) => this.lifecycle.append({ name, start: async () => void (await start()), stop: async () => void (await stop()) });
    cell('state directory', () => (this.token = prepareStateDir(config.stateDir)));
    cell('store', () => this.startStore(), () => this.store?.close());
    cell('safety routes', () => this.startRails());
    cell('BPF datapath', () => this.startDatapath(), () => {
      this.stopCtGc?.();
      this.datapath?.close();
    });
    cell('service load balancer', () => (this.serviceDatapath = ServiceDatapath.open({ pinRoot: config.pinRoot })), () => this.serviceDatapath?.close());
    cell('pod network', async () => (this.podNet = await PodNetwork.open({ cidr: config.podCIDR, names: { linkPrefix: `${config.namePrefix}_`, netnsPrefix: `${config.namePrefix}_pod_` }, hostAddresses: [this.dnsIP] })));
    cell('test hosts', () => (this.testHosts = new TestHosts({ linkPrefix: `${config.namePrefix}_`, netnsPrefix: `${config.namePrefix}_host_` }, this.podNet.routerIP)), () => this.testHosts?.removeAll());
    cell('L7 proxy redirect', () => this.startRedirect());
    cell('workloads', () => this.startWorkloads(), () => this.stopWorkloads());
    cell('cluster DNS', () => this.startDns(), () => this.dns?.stop());
    cell('DNS proxy', () => this.fqdn?.start(), () => this.fqdn?.stop());
    cell('API', () => this.startApi(), () => {
      this.proxyHub?.close();
      return this.api?.stop();
    });
    cell('L7 proxy', () => this.startProxy(), () => this.proxy?.detach());
    cell('observer', () => this.startObserver(), () => this.kernelLoss?.stop());
    cell('Hubble API', () => this.startHubble(), () => this.hubble?.stop());
    cell('metrics', () => this.startMetrics(), () => this.metrics?.stop());
    cell('console', () => this.console.start(consoleRoutes(this.routes, () => this.observer)), () => this.console.stop());
    cell('Kubernetes API', () => this.startKube(), () => this.kube?.stop());
  }

  private async startStore(): Promise<void> {
    this.store = openSqliteStore({ stateDir: this.config.stateDir });
    for (const ns of SYSTEM_NAMESPACES) {
      if (!(await this.store.get({ kind: 'Namespace', namespace: '', name: ns }))) await this.store.put({ kind: 'Namespace', namespace: '', name: ns, body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
    }
    if (!(await this.store.get({ kind: 'Service', ...KUBE_DNS }))) await this.store.put({ kind: 'Service', ...KUBE_DNS, body: kubeDnsService() });
    this.history = new PolicyHistory(this.store);
    await this.history.load();
    const { repo, problems } = await restorePolicies(this.store);
    this.policies.repo = repo;
    for (const p of problems) this.problems.add(p);
  }

  private async startRails(): Promise<void> {
    // Only the ranges the agent owns: test hosts' addresses get /32 rails from the runs that use them.
    const rails = await installSafetyRoutes([this.config.podCIDR, this.config.serviceCIDR], { ownLinkPrefix: 'mbr' });
    for (const s of rails.skipped) this.progress(`safety route not installed for ${s.prefix}: ${s.reason}`);
  }

  private startDatapath(): void {
    this.datapath = Datapath.open({ pinRoot: this.config.pinRoot, ...(this.config.policyMapMaxEntries ? { policyMapMaxEntries: this.config.policyMapMaxEntries } : {}) });
    this.stopCtGc = this.datapath.startCtGc(30_000);
  }

  private async startWorkloads(): Promise<void> {
    const snapshot = await this.store.getState<IdentitySnapshot>('identities');
    const proxyPorts = { ...(this.config.proxyPort ? { http: this.config.proxyPort } : {}), ...(this.config.dnsProxyPort ? { dns: this.config.dnsProxyPort } : {}) };
    const changed = () => {
      this.proxyHub?.refresh();
      this.flowContext?.invalidate();
    };
    this.endpoints = new EndpointManager(this.datapath, { identities: new IdentityAllocator(snapshot), onChange: changed, proxy: proxyPorts });
    if (this.config.dnsProxyPort) {
      this.fqdn = new FqdnProxy({
        address: PROXY_LISTENER_IP,
        port: this.config.dnsProxyPort,
        minTtl: this.config.tofqdnsMinTtl,
        snapshot: () => this.proxyHub.current(),
        regenerate: () => this.queue.run(() => this.applier.regenerate()),
        load: () => this.store.getState<FqdnCacheEntry[]>('fqdn-cache'),
        save: (entries) => this.store.setState('fqdn-cache', entries),
        event: (e) => this.proxyHub.receive([e]),
        problem: (p) => this.problems.add(p),
      });
      await this.fqdn.restore();
    }
    this.supervisor = new ContainerSupervisor({ runner: defaultProcessRunner, queue: this.queue, logDir: `${this.config.stateDir}/logs`, changed: (rt) => this.podChanged(rt) });
    const snapshotOfServices = await this.store.getState<AddressingSnapshot>('services');
    const etc = (this.etc = netnsResolvConf(() => this.services.addressing.dnsIP));
    this.pods = new PodManager({ net: this.podNet, datapath: this.datapath, supervisor: this.supervisor, etc });
    this.pods.nextEpId = (await this.store.getState<number>('nextEndpointId')) ?? 1;
    const dnsPod = dnsServerPod(this.dnsIP);
    this.services = new ServiceManager({ store: this.store, pods: this.pods, datapath: this.serviceDatapath, dnsPod }, this.config.serviceCIDR, snapshotOfServices);
    const virtualEndpoints = [{ name: 'kube-system/coredns', ipv4: this.dnsIP, namespace: dnsPod.namespace, podLabels: dnsPod.labels, namespaceLabels: {}, serviceAccount: 'coredns' }];
    this.applier = new Applier({
      store: this.store,
      queue: this.queue,
      policies: this.policies,
      pods: this.pods,
      supervisor: this.supervisor,
      endpoints: this.endpoints,
      services: this.services,
      hostAddresses,
      virtualEndpoints: () => virtualEndpoints,
      dnsNames: () => this.fqdn?.cache.dnsNames() ?? new Map(),
      problem: (p) => this.problems.add(p),
    });
    await this.queue.run(async () => {
      const restored = await restorePods(this.store, this.pods, this.podNet, this.progress, etc);
      for (const p of restored.problems) this.problems.add(p);
      await this.applier.regenerate();
      for (const rt of restored.recreated) await this.supervisor.startAll(rt);
      await this.supervisor.poll(this.pods.list());
      await this.applier.assignClusterIPs();
      for (const p of await this.services.sync()) this.problems.add(p);
    });
    this.proxyHub = new ProxyHub({
      policies: () => this.policies.repo.list(),
      identities: () => this.endpoints.identities.list(),
      ipcache: () => this.endpoints.ipcache(),
      endpoints: () => this.pods.list().map((rt) => ({ epId: rt.state.epId, ip: rt.state.ip, name: `${rt.state.namespace}/${rt.state.name}`, identity: this.endpoints.identityOf(rt.state.epId)?.id, namedPorts: podNamedPorts(rt.manifest) })),
      fqdns: () => this.fqdn?.cache.dnsNames() ?? new Map(),
    });
    const prober = new ReadinessProber(runProbe, this.queue, (rt) => this.supervisor.settle(rt));
    this.monitor = setInterval(() => {
      this.queue.post('watch containers', () => this.supervisor.poll(this.pods.endpoints()));
      prober.round(this.pods.list()).catch((e: unknown) => this.problems.add(`readiness probes: ${String(e)}`));
    }, PROBE_TICK_MS);
    this.monitor.unref();
  }

  private async stopWorkloads(): Promise<void> {
    if (this.monitor) clearInterval(this.monitor);
    await this.queue.close();
    this.pods?.detachAll();
    this.endpoints?.close();
  }

  /** Persist a pod's state after a change of its containers (only the pod in force under its name); a readiness change moves Service backends. */
  private async podChanged(rt: PodRuntime): Promise<void> {
    if (rt.stopping || this.pods.get(rt.state.namespace, rt.state.name) !== rt) return;
    await this.store.setState(`pod/${rt.state.namespace}/${rt.state.name}`, rt.state).catch((e: unknown) => this.problems.add(`save pod ${rt.state.namespace}/${rt.state.name}: ${e instanceof Error ? e.message : String(e)}`));
    const key = `${rt.state.epId}`;
    if (this.readiness.get(key) !== rt.state.ready && this.services) {
      this.readiness.set(key, rt.state.ready);
      for (const p of await this.services.sync()) this.problems.add(p);
    }
  }

  private async startDns(): Promise<void> {
    this.dns = new DnsServer({ address: this.dnsIP, view: () => this.services.view(), upstreams: this.config.dnsUpstreams.filter((u) => u.split(':')[0] !== this.services.addressing.dnsIP) });
    await this.dns.start();
  }

  private async startApi(): Promise<void> {
    const api = agentApi({
      config: this.config,
      store: this.store,
      datapath: this.datapath,
      pods: this.pods,
      endpoints: this.endpoints,
      applier: this.applier,
      policies: this.policies,
      services: this.services,
      problems: this.problems,
      agent: () => ({ state: this.state, startedAt: this.startedAt, apiPort: this.api?.port ?? 0 }),
      shutdown: (t) => this.shutdownRequested?.(t),
      testHosts: this.testHosts,
      proxy: { hub: this.proxyHub, process: () => this.proxy?.status(), listener: this.config.proxyPort ? `${PROXY_LISTENER_IP}:${this.config.proxyPort}` : '' },
      ...(this.fqdn ? { fqdn: this.fqdn } : {}),
      observer: () => this.observer?.status(),
      hubble: () => (this.hubble?.port ? `127.0.0.1:${this.hubble.port}` : ''),
      metrics: () => (this.metrics?.port ? `127.0.0.1:${this.metrics.port}` : ''),
      console: () => this.console,
      history: this.history,
      kube: () => (this.kube?.port && this.kubeCredentials ? { server: `https://127.0.0.1:${this.kube.port}`, caCert: this.kubeCredentials.caCert, token: this.kubeCredentials.token } : undefined),
    });
    this.routes = agentRoutes(api);
    this.api = new ApiServer(this.routes, { socketPath: this.config.socketPath, port: this.config.apiPort, token: this.token });
    await this.api.start();
    this.state = 'ready';
  }

  private async startRedirect(): Promise<void> {
    if (!this.config.proxyPort) return;
    await enableProxyRedirect(this.datapath, this.podNet.routerIf, this.config.namePrefix, (w) => this.problems.add(w));
  }

  /** Datapath and L7 events into flows; the kernel's lost events counted as they come. */
  private startObserver(): void {
    this.flowContext = new AgentFlowContext({ nodeName: this.config.nodeName, pods: () => this.pods, endpoints: () => this.endpoints, dnsNames: () => this.fqdn?.cache.dnsNames() ?? new Map(), frontends: () => this.services?.inForce() ?? [] });
    this.observer = new Observer({ context: this.flowContext, capacity: this.config.flowRingSize, problem: (p) => this.problems.add(p) });
    this.datapath.onEventBatches((batch) => this.observer.ingestBatch(batch), 20);
    this.proxyHub.subscribe((e) => this.observer.ingestL7(e));
    this.kernelLoss = new KernelLossWatch(() => this.datapath.lostEvents(), () => this.observer);
    this.kernelLoss.start();
  }

  /** The Kubernetes API is an extra: when it cannot start (no openssl, its port taken) the agent says so and runs on. */
  private async startKube(): Promise<void> {
    try {
      this.kubeCredentials = ensureKubeCredentials(this.config.stateDir);
      const objects = { list: async (kind: string, namespace?: string) => (await listObjects(this.store, this.pods, kind, namespace, undefined, this.services)) as KubeObject[] };
      const kube = new KubeServer({ address: '127.0.0.1', port: this.config.kubePort, credentials: this.kubeCredentials, objects });
      await kube.start();
      this.kube = kube;
    } catch (e) {
      this.problems.add(`Kubernetes API not served: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async startHubble(): Promise<void> {
    this.hubble = new HubbleServer({ observer: () => this.observer, nodeName: this.config.nodeName, version: VERSION, address: '127.0.0.1', port: this.config.hubblePort });
    await this.hubble.start();
  }

  private async startMetrics(): Promise<void> {
    this.metrics = new MetricsServer({ metrics: () => this.observer.metrics, address: '127.0.0.1', port: this.config.metricsPort });
    await this.metrics.start();
  }

  private async startProxy(): Promise<void> {
    if (!this.config.proxyPort) return;
    this.proxy = new ProxySupervisor({
      main: PROXY_MAIN,
      args: ['--socket', this.config.socketPath, '--port', String(this.config.proxyPort), '--listen', PROXY_LISTENER_IP],
      logDir: `${this.config.stateDir}/logs`,
      previous: await this.store.getState<ProcessRef>('proxy'),
      save: (ref) => this.store.setState('proxy', ref),
      problem: (p) => this.problems.add(p),
      progress: this.progress,
    });
    await this.proxy.start();
  }

  async start(): Promise<void> {
    this.startedAt = new Date().toISOString();
    await this.lifecycle.start(this.progress);
  }

  /** Resolves when a client asks the agent to stop (teardown: remove everything, for `membrane down`). */
  waitForShutdown(): Promise<boolean> {
    return new Promise((resolve) => (this.shutdownRequested = resolve));
  }

  async stop(removeEverything: boolean): Promise<void> {
    this.state = 'stopping';
    // Nothing reads the datapath once it closes (teardown closes it before its last awaits).
    this.kernelLoss?.stop();
    if (removeEverything) {
      if (this.monitor) clearInterval(this.monitor);
      await this.dns?.stop();
      await this.fqdn?.stop();
      await this.proxy?.terminate();
      for (const p of await disableProxyRedirect(this.datapath, this.podNet?.routerIf ?? `${this.config.namePrefix}_r`, this.config.namePrefix)) this.progress(`down: ${p}`);
      const problems = await this.queue.run(() => teardown({ store: this.store, pods: this.pods, endpoints: this.endpoints, datapath: this.datapath, serviceDatapath: this.serviceDatapath, podNet: this.podNet, pinRoot: this.config.pinRoot, ownRails: [this.config.podCIDR, this.config.serviceCIDR], etc: this.etc, netnsPrefix: `${this.config.namePrefix}_pod_` }));
      for (const p of problems) this.progress(`down: ${p}`);
    }
    await this.lifecycle.stop(this.progress);
  }
}

