/**
 * The part of the Kubernetes API the seed's kubectl commands use, on
 * 127.0.0.1:6443 (MEMBRANE_KUBE_PORT) over HTTPS with the agent's own CA
 * and a bearer token (`membrane kubeconfig` prints both). This first part
 * serves what kubectl asks before anything else: `/version` (minor 32: the
 * machine's kubectl is a dispatcher that picks its client build from it),
 * discovery — aggregated v2 with its exact media type, and the legacy
 * lists — with short names, categories and subresources. Every other path
 * is a NotFound Status, as the apiserver answers it. Errors are Status
 * objects; without the token, 401.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { listenTcp } from '../listen.js';
import type { KubeCredentials } from './kube-certs.js';
import { AGGREGATED, aggregatedDiscovery, groupList, resourceList } from './kube-resources.js';

export const KUBE_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-membrane', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-12-02T00:00:00Z', goVersion: 'none (Node.js)', compiler: 'membrane', platform: 'linux/amd64' };

export function status(code: number, reason: string, message: string, details?: object) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function send(res: ServerResponse, code: number, body: unknown, type = 'application/json'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-cache, private' });
  res.end(JSON.stringify(body));
}

export class KubeServer {
  private server?: Server;
  port = 0;

  constructor(private readonly o: { address: string; port: number; credentials: KubeCredentials }) {}

  async start(): Promise<void> {
    const c = this.o.credentials;
    this.server = createServer({ key: c.key, cert: c.cert }, (req, res) => this.handle(req, res));
    this.port = await listenTcp(this.server, this.o.port, this.o.address, 'the Kubernetes API');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private authorized(req: IncomingMessage): boolean {
    const want = Buffer.from(`Bearer ${this.o.credentials.token}`);
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (!this.authorized(req)) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'https://membrane');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const aggregated = (req.headers.accept ?? '').includes('as=APIGroupDiscoveryList');
    if (req.method !== 'GET') return send(res, 405, status(405, 'MethodNotAllowed', `${req.method} ${path} is not served yet`));
    if (path === '/version') return send(res, 200, KUBE_VERSION);
    if (path === '/api') {
      if (aggregated) return send(res, 200, aggregatedDiscovery(true), AGGREGATED);
      return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }] });
    }
    if (path === '/apis') {
      if (aggregated) return send(res, 200, aggregatedDiscovery(false), AGGREGATED);
      return send(res, 200, groupList());
    }
    const legacy = /^\/api\/(v1)$/.exec(path) ?? /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (legacy) {
      const list = legacy.length === 2 ? resourceList('', legacy[1]!) : resourceList(legacy[1]!, legacy[2]!);
      if (list) return send(res, 200, list);
    }
    send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
  }
}
