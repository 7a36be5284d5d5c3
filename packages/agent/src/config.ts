/** Agent configuration: flags, then environment, then defaults. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface AgentConfig {
  /** Durable state: the database, pod logs, the API token. */
  stateDir: string;
  /** The root-only API socket. */
  socketPath: string;
  /** The console's API on 127.0.0.1 (0: pick a free port). */
  apiPort: number;
  podCIDR: string;
  /** ClusterIPs come from here (its own unreachable rail, as the pod CIDR's). */
  serviceCIDR: string;
  /** Where names outside cluster.local go: `ip[:port]`, by default the host's /etc/resolv.conf nameservers. */
  dnsUpstreams: string[];
  /** Where BPF maps are pinned. */
  pinRoot: string;
  /** Prefix of every kernel object name the agent creates (must start with mbr). */
  namePrefix: string;
  /** Capacity of each endpoint's policy map (tests make it small; default: the datapath's 65,536). */
  policyMapMaxEntries?: number;
  /** The L7 proxy's listener port on 127.0.0.1, which HTTP entries name (0: no proxy; L7 rules enforced at L4 only). */
  proxyPort: number;
  /** The DNS proxy's port on 127.0.0.1 (UDP and TCP), which DNS entries name (0: no DNS proxy; DNS rules enforced at L4 only). */
  dnsProxyPort: number;
  /** The name flows carry as their node (Hubble's node_name). */
  nodeName: string;
  /** Flows the observer's ring holds (Hubble's default 65,535). */
  flowRingSize: number;
  /** Hubble's Observer and Peer gRPC API on 127.0.0.1 (Hubble's 4245; 0: a free port, see status). */
  hubblePort: number;
  /** Hubble's metrics (`/metrics`) on 127.0.0.1 (Hubble's 9965; 0: a free port, see status). */
  metricsPort: number;
  /** The web console on 127.0.0.1 (default 12000; 0: a free port, see `membrane ui`). */
  uiPort: number;
  /** The Kubernetes API subset on 127.0.0.1 over HTTPS (default 6443; 0: a free port, see `membrane kubeconfig`). */
  kubePort: number;
  /** toFQDNs: an answer's TTL below this many seconds is raised to it (Cilium's --tofqdns-min-ttl; default 0, the TTL as answered). */
  tofqdnsMinTtl: number;
}

export const DEFAULT_PROXY_PORT = 15001;
export const DEFAULT_DNS_PROXY_PORT = 15053;

export const DEFAULT_STATE_DIR = '/var/lib/membrane';

export function resolveConfig(flags: Partial<AgentConfig> = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const stateDir = flags.stateDir ?? env['MEMBRANE_STATE_DIR'] ?? DEFAULT_STATE_DIR;
  const namePrefix = flags.namePrefix ?? env['MEMBRANE_NAME_PREFIX'] ?? 'mbr';
  if (!namePrefix.startsWith('mbr')) throw new Error(`name prefix "${namePrefix}" must start with "mbr"`);
  return {
    stateDir,
    socketPath: flags.socketPath ?? env['MEMBRANE_SOCKET'] ?? join(stateDir, 'agent.sock'),
    apiPort: flags.apiPort ?? Number(env['MEMBRANE_API_PORT'] ?? 4244),
    podCIDR: flags.podCIDR ?? env['MEMBRANE_POD_CIDR'] ?? '10.200.0.0/16',
    serviceCIDR: flags.serviceCIDR ?? env['MEMBRANE_SERVICE_CIDR'] ?? '10.96.0.0/16',
    dnsUpstreams: flags.dnsUpstreams ?? (env['MEMBRANE_DNS_UPSTREAM'] ? env['MEMBRANE_DNS_UPSTREAM'].split(',') : hostResolvers()),
    pinRoot: flags.pinRoot ?? env['MEMBRANE_PIN_ROOT'] ?? '/sys/fs/bpf/membrane',
    namePrefix,
    proxyPort: flags.proxyPort ?? portOf('MEMBRANE_PROXY_PORT', env['MEMBRANE_PROXY_PORT'], DEFAULT_PROXY_PORT, 'no L7 proxy'),
    dnsProxyPort: flags.dnsProxyPort ?? portOf('MEMBRANE_DNS_PROXY_PORT', env['MEMBRANE_DNS_PROXY_PORT'], DEFAULT_DNS_PROXY_PORT, 'no DNS proxy'),
    tofqdnsMinTtl: flags.tofqdnsMinTtl ?? secondsOf('MEMBRANE_TOFQDNS_MIN_TTL', env['MEMBRANE_TOFQDNS_MIN_TTL']),
    nodeName: flags.nodeName ?? env['MEMBRANE_NODE_NAME'] ?? hostname(),
    flowRingSize: flags.flowRingSize ?? ringSizeOf(env['MEMBRANE_FLOW_RING']),
    hubblePort: flags.hubblePort ?? portOf('MEMBRANE_HUBBLE_PORT', env['MEMBRANE_HUBBLE_PORT'], 4245, 'a free port'),
    metricsPort: flags.metricsPort ?? portOf('MEMBRANE_METRICS_PORT', env['MEMBRANE_METRICS_PORT'], 9965, 'a free port'),
    uiPort: flags.uiPort ?? portOf('MEMBRANE_UI_PORT', env['MEMBRANE_UI_PORT'], 12000, 'a free port'),
    kubePort: flags.kubePort ?? portOf('MEMBRANE_KUBE_PORT', env['MEMBRANE_KUBE_PORT'], 6443, 'a free port'),
    ...(env['MEMBRANE_POLICY_MAP_MAX'] ? { policyMapMaxEntries: Number(env['MEMBRANE_POLICY_MAP_MAX']) } : {}),
  };
}

/** The IPv4 nameservers of the host's /etc/resolv.conf. */
export function hostResolvers(path = '/etc/resolv.conf'): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l)?.[1])
      .filter((x): x is string => !!x);
  } catch {
    return [];
  }
}

function portOf(name: string, v: string | undefined, fallback: number, zero: string): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} "${v}" is not a port (0 to 65535; 0: ${zero})`);
  return n;
}

function ringSizeOf(v: string | undefined): number {
  if (v === undefined || v === '') return 65_535;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000_000) throw new Error(`MEMBRANE_FLOW_RING "${v}" is not a number of flows (1 to 10,000,000)`);
  return n;
}

function secondsOf(name: string, v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} "${v}" is not a number of seconds (0 or more)`);
  return n;
}
