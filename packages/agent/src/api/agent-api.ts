/** The REST API's answers, from the agent's parts (views over them; changes go to the applier). */
import { MembraneError, type FqdnPreload, type StatusResponse } from '@membrane/api';
import { linkShow, type Datapath, type TestHosts } from '@membrane/datapath';
import type { L7Event } from '@membrane/proxy';
import type { EndpointManager } from '@membrane/endpoint';
import { checkMatchName, parseIP, type Repository } from '@membrane/policy';
import type { Applier } from '../apply/applier.js';
import type { AgentConfig } from '../config.js';
import { containerLogPath } from '../pods/container-supervisor.js';
import type { PodManager } from '../pods/pod-manager.js';
import type { PodRuntime } from '../pods/pod-runtime.js';
import type { ProblemLog } from '../problem-log.js';
import type { FqdnProxy } from '../dns/fqdn-proxy.js';
import type { ObserverStatus } from '@membrane/observer';
import type { ProxyHub } from '../proxy/proxy-hub.js';
import type { ProxyProcessStatus } from '../proxy/proxy-supervisor.js';
import type { ServiceManager } from '../services/service-manager.js';
import type { StoreReader } from '../store/index.js';
import { endpointList, identityList } from '../views/endpoint-view.js';
import { listObjects } from '../views/object-view.js';
import { VERSION, statusView } from '../views/status-view.js';
import type { AgentApi } from './routes.js';
import type { KubeAccess } from '@membrane/api';
import type { ConsoleCell } from '../console/console-cell.js';
import type { PolicyHistory } from '../apply/policy-history.js';

export interface AgentParts {
  config: AgentConfig;
  store: StoreReader;
  datapath: Datapath;
  pods: PodManager;
  endpoints: EndpointManager;
  applier: Applier;
  policies: { repo: Repository };
  services: ServiceManager;
  problems: ProblemLog;
  /** The agent's own state, startedAt and API port (they change after start). */
  agent: () => { state: StatusResponse['agent']['state']; startedAt: string; apiPort: number };
  shutdown: (teardown: boolean) => void;
  testHosts: TestHosts;
  proxy: {
    hub: ProxyHub;
    /** The proxy process (undefined: not started, e.g. no proxy port). */
    process: () => ProxyProcessStatus | undefined;
    listener: string;
  };
  /** The DNS proxy (undefined: no DNS proxy port). */
  fqdn?: FqdnProxy;
  /** The observer (undefined until its cell started). */
  observer?: () => ObserverStatus | undefined;
  /** Where Hubble's gRPC API listens (empty until it does). */
  hubble?: () => string;
  /** Where the metrics are served (empty until they are). */
  metrics?: () => string;
  /** The web console (undefined until its cell started). */
  console?: () => ConsoleCell | undefined;
  /** Versions of policies applied and deleted (the console's history). */
  history?: PolicyHistory;
  /** Where the Kubernetes API listens, its CA and token (undefined until it does). */
  kube?: () => KubeAccess | undefined;
}

/** How long an apply waits for the proxy to put the new policy in force. */
const PROXY_SETTLE_MS = 3000;

function podOf(pods: PodManager, namespace: string, name: string): PodRuntime {
  const rt = pods.get(namespace, name);
  if (!rt) throw new MembraneError('MEMBRANE_E_NOT_FOUND', `pod ${namespace}/${name} not found`);
  return rt;
}

export function agentApi(p: AgentParts): AgentApi {
  const logDir = `${p.config.stateDir}/logs`;
  return {
    status: () => {
      const a = p.agent();
      const pods = p.pods.list();
      return statusView({
        agent: { pid: process.pid, stateDir: p.config.stateDir, version: VERSION, startedAt: a.startedAt, state: a.state },
        api: { socket: p.config.socketPath, port: a.apiPort },
        podCIDR: p.config.podCIDR,
        pinRoot: p.config.pinRoot,
        lostEvents: Number(p.datapath.lostEvents()),
        endpoints: { total: pods.length, ready: pods.filter((x) => x.state.ready).length },
        policies: { total: p.policies.repo.list().length, revision: p.policies.repo.revision },
        identities: p.endpoints.identities.list().length,
        services: { total: new Set(p.services.list().map((f) => f.service)).size, frontends: p.services.list().length, serviceCIDR: p.config.serviceCIDR, dns: p.services.addressing.dnsIP },
        problems: p.problems.list(),
        proxy: proxyStatus(p),
        dnsProxy: dnsProxyStatus(p.fqdn),
        observer: { ...observerStatus(p.observer?.()), ...(p.hubble?.() ? { hubble: p.hubble() } : {}), ...(p.metrics?.() ? { metrics: p.metrics() } : {}) },
      });
    },
    apply: async (r) => {
      const out = await p.applier.apply(r);
      await p.history?.applied(out);
      await settleProxy(p);
      return out;
    },
    delete: async (r) => {
      const out = await p.applier.delete(r);
      await p.history?.deleted(out);
      await settleProxy(p);
      return out;
    },
    policyHistory: (ref) => p.history?.list(ref) ?? [],
    kubeAccess: () => {
      const k = p.kube?.();
      if (!k) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the Kubernetes API is not serving yet');
      return k;
    },
    objects: (kind, ns, name) => listObjects(p.store, p.pods, kind, ns, name, p.services),
    endpoints: () => endpointList(p.pods, p.endpoints, (i) => p.datapath.getEndpoint(i) !== undefined),
    identities: () => identityList(p.endpoints),
    services: () =>
      p.services.list().map((f) => ({
        id: f.id,
        service: f.service,
        frontend: `${f.ip}:${f.port}/${f.protocol}`,
        type: 'ClusterIP' as const,
        backends: f.backends.map((b) => ({ address: `${b.ip}:${b.port}/${f.protocol}`, pod: b.pod, state: b.state })),
      })),
    execTarget: (namespace, name) => {
      const rt = podOf(p.pods, namespace, name);
      return { namespace, pod: name, netns: rt.netns, ip: rt.state.ip, phase: rt.state.phase };
    },
    logsPath: (ns, name, container) => containerLogPath(logDir, ns, name, container ?? podOf(p.pods, ns, name).manifest.spec.containers[0]!.name),
    shutdown: p.shutdown,
    addTestHost: async (req) => {
      if (typeof req?.ip !== 'string') throw new MembraneError('MEMBRANE_E_USAGE', 'a test host needs an ip');
      const h = await p.testHosts.add(req.ip, typeof req.name === 'string' ? req.name : req.ip);
      // Connections from outside to an ingress L7 port go to the proxy at the host end of the test host's veth.
      const link = await linkShow(h.hostIf);
      if (link) p.datapath.attachOutside(link.ifindex, h.hostIf);
      return { name: h.name, ip: h.ip, netns: h.netns };
    },
    removeTestHosts: async () => {
      const n = p.testHosts.list().length;
      await p.testHosts.removeAll();
      return { removed: n };
    },
    console: () => {
      const i = p.console?.()?.info();
      if (!i) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the console is not running yet');
      return i;
    },
    configureConsole: async (req) => {
      const c = p.console?.();
      if (!c) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the console is not running yet');
      return c.configure(req);
    },
    proxySnapshot: (after) => p.proxy.hub.poll(after),
    proxyEvents: (b) => {
      const events = Array.isArray(b.events) ? (b.events as L7Event[]) : [];
      p.proxy.hub.receive(events, typeof b.lost === 'number' ? b.lost : 0);
      return { accepted: events.length };
    },
    fqdnCache: () => (p.fqdn?.cache.list() ?? []).map((e) => ({ name: e.name, ip: e.ip, expiresAt: new Date(e.expiresAt).toISOString() })),
    preloadFqdn: async (req) => {
      if (!p.fqdn) throw new MembraneError('MEMBRANE_E_USAGE', 'the DNS proxy is off (MEMBRANE_DNS_PROXY_PORT=0): there is no toFQDNs cache to fill');
      const entries = checkPreload(req);
      await p.fqdn.preload(entries);
      return { entries: p.fqdn.cache.size };
    },
    clearFqdn: async () => {
      await p.fqdn?.clear();
      return { entries: 0 };
    },
  };
}

/** A pre-cache request, checked whole before anything is learnt. */
function checkPreload(req: unknown): FqdnPreload['entries'] {
  const entries = (req as FqdnPreload | undefined)?.entries;
  if (!Array.isArray(entries)) throw new MembraneError('MEMBRANE_E_USAGE', 'fqdn cache: "entries" must be a list of {name, ips, ttl}');
  entries.forEach((e: FqdnPreload['entries'][number], i) => {
    const at = `fqdn cache: entries[${i}]`;
    if (typeof e?.name !== 'string' || checkMatchName(e.name)) throw new MembraneError('MEMBRANE_E_USAGE', `${at}.name: ${typeof e?.name === 'string' ? checkMatchName(e.name) : 'must be a DNS name'}`);
    if (!Array.isArray(e.ips) || e.ips.some((ip: unknown) => typeof ip !== 'string' || !/^\d+\.\d+\.\d+\.\d+$/.test(ip) || !parseIP(ip))) throw new MembraneError('MEMBRANE_E_USAGE', `${at}.ips: must be a list of IPv4 addresses`);
    if (!Number.isInteger(e.ttl) || e.ttl < 0) throw new MembraneError('MEMBRANE_E_USAGE', `${at}.ttl: must be a number of seconds (0 or more)`);
  });
  return entries;
}

function observerStatus(o: ObserverStatus | undefined): StatusResponse['observer'] {
  if (!o) return { flowsSeen: 0, bufferSize: 0, lostEvents: 0 };
  return { flowsSeen: o.flowsSeen, bufferSize: o.bufferSize, flows: o.flows, lostEvents: o.lost.kernel + o.lost.observer, lost: o.lost, followers: o.followers };
}

function dnsProxyStatus(f: FqdnProxy | undefined): StatusResponse['dnsProxy'] {
  if (!f) return { state: 'disabled (no DNS proxy port): DNS rules are enforced at L4 only, toFQDNs selects nothing' };
  const s = f.status();
  return { state: s.state, listener: s.listener, queries: { total: s.stats.queries, forwarded: s.stats.forwarded, refused: s.stats.refused, servfail: s.stats.servfail, formerr: s.stats.formerr, dropped: s.stats.dropped }, fqdnCache: s.cache };
}

async function settleProxy(p: AgentParts): Promise<void> {
  if (!(await p.proxy.hub.settle(PROXY_SETTLE_MS))) p.problems.add(`the L7 proxy did not confirm policy revision ${p.proxy.hub.current().revision} within ${PROXY_SETTLE_MS} ms`);
}

function proxyStatus(p: AgentParts): StatusResponse['proxy'] {
  const proc = p.proxy.process();
  const hub = p.proxy.hub.status();
  const base = { listener: p.proxy.listener, snapshot: { revision: hub.revision, applied: hub.applied }, events: { received: hub.events.received, lost: hub.events.lost } };
  if (!proc) return { state: 'disabled (no proxy port): HTTP and DNS rules are enforced at L4 only', ...base };
  const state = proc.state === 'running' ? (p.proxy.hub.connected() ? 'running' : 'running (not connected to the agent yet)') : proc.state;
  return { state, ...(proc.pid !== undefined ? { pid: proc.pid } : {}), ...(proc.origin ? { origin: proc.origin } : {}), restarts: proc.restarts, ...base };
}
