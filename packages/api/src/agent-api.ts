/**
 * The agent's REST API (JSON over HTTP on the root-only unix socket and on
 * 127.0.0.1): request and response shapes shared by the agent and its clients.
 * Errors come back as { error: { code, message } } with a 4xx/5xx status.
 */

export const API_PREFIX = '/v1';

/** One document of a manifest file, as the client read it. */
export interface ApiDocument {
  source: string;
  label: string;
  value: unknown;
}

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface ApplyRequest {
  documents: ApiDocument[];
  /** kubectl's current namespace for documents that name none. */
  defaultNamespace?: string;
}

/** kubectl's words, and `restarted`: an unchanged object whose pods had failed to start was started again. */
export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'restarted';

export interface ApplyResponse {
  results: (ObjectRef & { action: ApplyAction })[];
  /** Time from the request to policies enforced in the datapath. */
  enforcedMs: number;
}

export interface DeleteRequest {
  documents?: ApiDocument[];
  refs?: ObjectRef[];
  ignoreNotFound?: boolean;
  defaultNamespace?: string;
}

export interface DeleteResponse {
  results: (ObjectRef & { action: 'deleted' | 'not found' })[];
  /**
   * What could not be taken down after the objects left the store (a
   * namespace or veth the kernel refused to remove), one line each; the CLI
   * prints them and exits 1.
   */
  problems?: string[];
}

export interface ApiErrorBody {
  /** `details`: every problem, one line each, when there are several. */
  error: { code: string; message: string; details?: string[] };
}

export interface EndpointInfo {
  id: number;
  pod: string;
  namespace: string;
  identity: number;
  labels: string[];
  ipv4: string;
  policyEnforcement: { ingress: boolean; egress: boolean };
  state: string;
  hostInterface: string;
}

export interface IdentityInfo {
  id: number;
  labels: string[];
  /** Endpoints with this identity. */
  endpoints: number;
}

export interface StatusResponse {
  agent: { pid: number; stateDir: string; version: string; startedAt: string; state: 'ready' | 'starting' | 'stopping' };
  /** Where the REST API listens: the root-only socket, and 127.0.0.1:port (every request there needs the token). */
  api: { socket: string; port: number };
  datapath: { pinRoot: string; podCIDR: string; programs: string; lostEvents: number };
  endpoints: { total: number; ready: number };
  policies: { total: number; revision: number };
  identities: { total: number };
  services: { total: number; frontends: number; serviceCIDR: string; dns: string };
  /** Flows made since start, the ring (held now, at most), events lost before they were flows (by where). */
  observer: { flowsSeen: number; bufferSize: number; flows?: number; lostEvents: number; lost?: { kernel: number; observer: number }; /** GetFlows followers (and other subscribers) of the flow ring now. */ followers?: number; /** Hubble's Observer gRPC API (host:port). */ hubble?: string; /** Hubble's metrics, GET /metrics (host:port). */ metrics?: string };
  /** The L7 proxy: its process, the policy snapshot it judges by, its listener and events. */
  proxy: {
    state: string;
    pid?: number;
    origin?: 'started' | 'adopted';
    restarts?: number;
    /** Where it listens (127.0.0.1:port) for the connections the datapath steers to it. */
    listener?: string;
    /** The policy snapshot revision the agent has, and the one the proxy said it has in force. */
    snapshot?: { revision: number; applied: number };
    events?: { received: number; lost: number };
  };
  /** The DNS proxy (in the agent) and its toFQDNs cache. */
  dnsProxy: {
    state: string;
    listener?: string;
    queries?: { total: number; forwarded: number; refused: number; servfail: number; formerr: number; dropped: number };
    /** Name/address pairs learnt from allowed answers, and when the next one expires. */
    fqdnCache?: { entries: number; nextExpiry?: string };
  };
  /** What the agent could not do and wants a person to know: stored objects it skipped, cleanups that failed. */
  problems: string[];
  versions: { membrane: string; node: string; kernel: string; libbpf: string };
}

/** One name/address pair of the toFQDNs cache (`membrane fqdn cache list`, as `cilium fqdn cache list`). */
export interface FqdnCacheInfo {
  name: string;
  ip: string;
  expiresAt: string;
}

/** `POST /v1/fqdn/cache`: names → addresses as if answered through the DNS proxy (Cilium's --tofqdns-pre-cache). */
export interface FqdnPreload {
  entries: { name: string; ips: string[]; ttl: number }[];
}

/** What `membrane exec` needs to enter a pod. */
export interface ExecTarget {
  namespace: string;
  pod: string;
  netns: string;
  ip: string;
  phase: string;
}

/** One frontend of `membrane service list` (the `cilium service list` table). */
export interface ServiceListEntry {
  id: number;
  /** `namespace/name` of the Service. */
  service: string;
  frontend: string;
  type: 'ClusterIP';
  backends: { address: string; pod: string; state: 'active' | 'not-ready' }[];
}

/** The web console (`membrane ui`): its link, with the session token. */
export interface ConsoleInfo {
  url: string;
  address: string;
  port: number;
}

/** A version of a policy as it was put in force or taken out (the console's history). */
export interface PolicyVersion {
  id: number;
  /** ISO 8601. */
  time: string;
  kind: string;
  namespace: string;
  name: string;
  action: 'created' | 'configured' | 'deleted';
  /** The manifest as applied (null: deleted). */
  body: unknown;
  resourceVersion: number;
}

/** The Kubernetes API the agent serves (`membrane kubeconfig`). */
export interface KubeAccess {
  /** https://127.0.0.1:port */
  server: string;
  /** PEM of the agent's CA. */
  caCert: string;
  token: string;
}
