/** The agent's REST routes (packages/api/src/agent-api.ts has the shapes). */
import { existsSync, openSync, closeSync, readSync, statSync } from 'node:fs';
import type { ConsoleInfo, KubeAccess, PolicyVersion, ApplyRequest, ApplyResponse, DeleteRequest, DeleteResponse, EndpointInfo, ExecTarget, FqdnCacheInfo, FqdnPreload, IdentityInfo, ServiceListEntry, StatusResponse } from '@membrane/api';
import type { Route } from './http-api.js';

/** What the routes serve. */
export interface AgentApi {
  status(): StatusResponse;
  apply(req: ApplyRequest): Promise<ApplyResponse>;
  delete(req: DeleteRequest): Promise<DeleteResponse>;
  objects(kind: string, namespace: string | undefined, name: string | undefined): Promise<unknown[]>;
  endpoints(): EndpointInfo[];
  identities(): IdentityInfo[];
  services(): ServiceListEntry[];
  /** Outside test hosts for live runs (`policy test --live`): made, and all taken down. */
  addTestHost(req: { name: string; ip: string }): Promise<{ name: string; ip: string; netns: string }>;
  removeTestHosts(): Promise<{ removed: number }>;
  execTarget(namespace: string, name: string): ExecTarget;
  logsPath(namespace: string, name: string, container?: string): string;
  shutdown(teardown: boolean): void;
  /** The L7 proxy's long poll: a policy snapshot newer than `after` (which it has in force). */
  proxySnapshot(after: number): Promise<unknown>;
  proxyEvents(batch: { events?: unknown[]; lost?: number }): { accepted: number };
  fqdnCache(): FqdnCacheInfo[];
  preloadFqdn(req: FqdnPreload): Promise<{ entries: number }>;
  clearFqdn(): Promise<{ entries: number }>;
  /** Versions of policies applied and deleted, newest first (of one policy when named). */
  policyHistory(ref: { kind?: string; namespace?: string; name?: string }): PolicyVersion[];
  /** The Kubernetes API: its URL, CA certificate and bearer token (for `membrane kubeconfig`). */
  kubeAccess(): KubeAccess;
  /** The web console's link (with its session token); moved or given a new token. */
  console(): ConsoleInfo;
  configureConsole(req: { port?: number; newToken?: boolean }): Promise<ConsoleInfo>;
}

/** Copy what was appended to a file since `offset`, in bounded chunks. Returns the new offset. */
function copyFrom(path: string, offset: number, write: (b: Buffer) => void): number {
  if (!existsSync(path)) return offset;
  const size = statSync(path).size;
  if (size <= offset) return size < offset ? 0 : offset;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    while (offset < size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - offset), offset);
      if (n <= 0) break;
      write(Buffer.from(buf.subarray(0, n)));
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}

export function agentRoutes(a: AgentApi): Route[] {
  return [
    { method: 'GET', path: '/v1/status', handler: () => a.status() },
    { method: 'POST', path: '/v1/apply', handler: (r) => a.apply(r.body as ApplyRequest) },
    { method: 'POST', path: '/v1/delete', handler: (r) => a.delete(r.body as DeleteRequest) },
    { method: 'GET', path: '/v1/objects/:kind', handler: (r) => a.objects(r.params['kind']!, r.query.get('namespace') ?? undefined, r.query.get('name') ?? undefined) },
    { method: 'GET', path: '/v1/endpoints', handler: () => a.endpoints() },
    { method: 'GET', path: '/v1/identities', handler: () => a.identities() },
    { method: 'GET', path: '/v1/services', handler: () => a.services() },
    { method: 'POST', path: '/v1/testhosts', handler: (r) => a.addTestHost(r.body as { name: string; ip: string }) },
    { method: 'DELETE', path: '/v1/testhosts', handler: () => a.removeTestHosts() },
    { method: 'GET', path: '/v1/proxy/snapshot', handler: (r) => a.proxySnapshot(Number(r.query.get('after') ?? 0) || 0) },
    { method: 'POST', path: '/v1/proxy/events', handler: (r) => a.proxyEvents((r.body ?? {}) as { events?: unknown[]; lost?: number }) },
    { method: 'GET', path: '/v1/fqdn/cache', handler: () => a.fqdnCache() },
    { method: 'GET', path: '/v1/console', handler: () => a.console() },
    { method: 'GET', path: '/v1/kube/access', handler: () => a.kubeAccess() },
    {
      method: 'GET',
      path: '/v1/policy-history',
      handler: (r) => a.policyHistory({ ...(r.query.get('kind') ? { kind: r.query.get('kind')! } : {}), ...(r.query.has('namespace') ? { namespace: r.query.get('namespace')! } : {}), ...(r.query.get('name') ? { name: r.query.get('name')! } : {}) }),
    },
    { method: 'POST', path: '/v1/console', handler: (r) => a.configureConsole((r.body ?? {}) as { port?: number; newToken?: boolean }) },
    { method: 'POST', path: '/v1/fqdn/cache', handler: (r) => a.preloadFqdn(r.body as FqdnPreload) },
    { method: 'DELETE', path: '/v1/fqdn/cache', handler: () => a.clearFqdn() },
    { method: 'GET', path: '/v1/pods/:namespace/:name/exec', handler: (r) => a.execTarget(r.params['namespace']!, r.params['name']!) },
    {
      method: 'GET',
      path: '/v1/pods/:namespace/:name/logs',
      handler: (r) => {
        const path = a.logsPath(r.params['namespace']!, r.params['name']!, r.query.get('container') ?? undefined);
        r.res.writeHead(200, { 'content-type': 'text/plain' });
        const write = (b: Buffer) => void r.res.write(b);
        let offset = copyFrom(path, 0, write);
        if (r.query.get('follow') !== 'true') {
          r.res.end();
          return undefined;
        }
        const t = setInterval(() => {
          try {
            offset = copyFrom(path, offset, write);
          } catch {
            clearInterval(t);
            r.res.end();
          }
        }, 200);
        r.raw.on('close', () => clearInterval(t));
        return undefined;
      },
    },
    {
      method: 'POST',
      path: '/v1/shutdown',
      handler: (r) => {
        const teardown = (r.body as { teardown?: boolean } | undefined)?.teardown === true;
        setImmediate(() => a.shutdown(teardown));
        return { stopping: true, teardown };
      },
    },
  ];
}
