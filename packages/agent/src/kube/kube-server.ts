/**
 * The part of the Kubernetes API the seed's kubectl commands use, on
 * 127.0.0.1:6443 (MEMBRANE_KUBE_PORT) over HTTPS with the agent's own CA
 * and a bearer token (`membrane kubeconfig` prints both): `/version`
 * (minor 32: the machine's kubectl is a dispatcher that picks its client
 * build from it), discovery (aggregated v2 with its exact media type, and
 * the legacy lists), `/openapi/v3`; get, list and watch from the cache;
 * create, replace, patch and delete through the agent's applier
 * (kube-writes.ts); pods' log and exec subresources. Errors are Status
 * objects as the apiserver words them; without the token, 401.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { closeServer, listenTcp } from '../listen.js';
import type { KubeCredentials } from './kube-certs.js';
import type { KubeCache, KubeObject } from './kube-cache.js';
import { endExecSessions, execQuery, handleExecUpgrade, type ExecLaunch } from './kube-exec.js';
import { serveLog, type LogSizes } from './kube-logs.js';
import { openApiDocument, openApiRoot, openApiTarget } from './kube-openapi.js';
import { fieldMatcher, labelMatcher, page, parsePath, type Target } from './kube-read.js';
import { AGGREGATED, aggregatedDiscovery, groupList, resourceList } from './kube-resources.js';
import { TABLE_TYPE, table } from './kube-tables.js';
import { watchStream } from './kube-watch.js';
import { KubeStatusError, type KubeWriter } from './kube-writes.js';

export type { KubeObject } from './kube-cache.js';
export { labelMatcher, parsePath } from './kube-read.js';

export const KUBE_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-membrane', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-12-02T00:00:00Z', goVersion: 'none (Node.js)', compiler: 'membrane', platform: 'linux/amd64' };

export function status(code: number, reason: string, message: string, details?: object) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function send(res: ServerResponse, code: number, body: unknown, type = 'application/json'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-cache, private' });
  res.end(JSON.stringify(body));
}

/** What exec and logs need from the agent's pods. */
export interface KubePods {
  /** The log file of a pod's container (the first when none is named); throws a KubeStatusError when there is none. */
  logFile(namespace: string, pod: string, container?: string): string;
  /** How to run a command in a pod's container (its network namespace); throws a KubeStatusError when it cannot. */
  exec(namespace: string, pod: string, container?: string): (command: string[]) => ExecLaunch;
}

export interface KubeServerOptions {
  address: string;
  port: number;
  credentials: KubeCredentials;
  cache: KubeCache;
  writer: KubeWriter;
  pods: KubePods;
  logSizes: LogSizes;
  problem?: (what: string) => void;
}

const MAX_BODY = 8 * 1024 * 1024;

export class KubeServer {
  private server?: Server;
  port = 0;

  constructor(private readonly o: KubeServerOptions) {}

  async start(): Promise<void> {
    const c = this.o.credentials;
    this.server = createServer({ key: c.key, cert: c.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        if (res.headersSent) return void res.destroy();
        if (e instanceof KubeStatusError) return send(res, e.code, e.status());
        send(res, 500, status(500, 'InternalError', `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`));
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.port = await listenTcp(this.server, this.o.port, this.o.address, 'the Kubernetes API');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    endExecSessions();
    await closeServer(s);
  }

  private authorized(req: IncomingMessage): boolean {
    const want = Buffer.from(`Bearer ${this.o.credentials.token}`);
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'https://membrane');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      const served = this.discovery(req, res, path);
      if (served) return;
    }
    const target = parsePath(path);
    if (!target) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
    if (target.subresource === 'exec') return send(res, 400, status(400, 'BadRequest', 'exec is served over WebSocket (subprotocol v5.channel.k8s.io); SPDY/3.1 upgrade is not'));
    if (target.subresource === 'log') return this.log(req, res, url, target);
    if (method === 'GET') return this.read(req, res, url, target);
    if (target.subresource) return send(res, 405, status(405, 'MethodNotAllowed', `${method} on ${target.resource.resource}/${target.subresource} is not served`));
    const w = this.o.writer;
    const q = url.searchParams;
    if (method === 'POST' && target.name === undefined) return this.answer(res, await w.create(target, await jsonBody(req), q));
    if (target.name === undefined) return send(res, 405, status(405, 'MethodNotAllowed', `${method} on a collection is not served`));
    if (method === 'PUT') return this.answer(res, await w.replace(target, await jsonBody(req), q));
    if (method === 'PATCH') return this.answer(res, await w.patch(target, req.headers['content-type'] ?? '', await body(req), q));
    if (method === 'DELETE') {
      await body(req);
      return this.answer(res, await w.delete(target, q));
    }
    send(res, 405, status(405, 'MethodNotAllowed', `${method} is not served`));
  }

  private answer(res: ServerResponse, r: { code: number; body: unknown }): void {
    send(res, r.code, r.body);
  }

  /** Version, discovery and OpenAPI; false when the path is none of them. */
  private discovery(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const aggregated = (req.headers.accept ?? '').includes('as=APIGroupDiscoveryList');
    if (path === '/version') send(res, 200, KUBE_VERSION);
    else if (path === '/api' && aggregated) send(res, 200, aggregatedDiscovery(true), AGGREGATED);
    else if (path === '/api') send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }] });
    else if (path === '/apis' && aggregated) send(res, 200, aggregatedDiscovery(false), AGGREGATED);
    else if (path === '/apis') send(res, 200, groupList());
    else if (path === '/openapi/v3') send(res, 200, openApiRoot());
    else if (path.startsWith('/openapi/v3/')) {
      const gv = openApiTarget(path);
      const doc = gv && openApiDocument(gv.group, gv.version);
      if (doc) send(res, 200, doc);
      else send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
    } else {
      const legacy = /^\/api\/(v1)$/.exec(path) ?? /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
      const list = legacy && (legacy.length === 2 ? resourceList('', legacy[1]!) : resourceList(legacy[1]!, legacy[2]!));
      if (!list) return false;
      send(res, 200, list);
    }
    return true;
  }

  /** get, list (Table, List or the object), watch. */
  private read(req: IncomingMessage, res: ServerResponse, url: URL, t: Target): void {
    const r = t.resource;
    const cache = this.o.cache;
    const q = url.searchParams;
    const wantTable = (req.headers.accept ?? '').includes('as=Table');
    const namespace = r.namespaced ? t.namespace : undefined;
    if (t.name !== undefined && q.get('watch') !== 'true') {
      const o = cache.get(r.kind, namespace ?? (r.namespaced ? 'default' : undefined), t.name);
      if (!o) return send(res, 404, status(404, 'NotFound', `${r.resource}${r.group ? `.${r.group}` : ''} "${t.name}" not found`, { name: t.name, ...(r.group ? { group: r.group } : {}), kind: r.resource }));
      return wantTable ? send(res, 200, table(r.kind, [o], String(o.metadata.resourceVersion ?? '')), TABLE_TYPE) : send(res, 200, o);
    }
    const match = this.selection(q, r.kind, t.name);
    if (typeof match === 'string') return send(res, 400, status(400, 'BadRequest', match));
    if (q.get('watch') === 'true' || q.get('watch') === '1') {
      const timeout = Number(q.get('timeoutSeconds') ?? '');
      return watchStream(cache, req, res, {
        resource: r,
        ...(namespace !== undefined ? { namespace } : {}),
        match,
        table: wantTable,
        ...(q.get('resourceVersion') !== null ? { resourceVersion: q.get('resourceVersion')! } : {}),
        bookmarks: q.get('allowWatchBookmarks') === 'true',
        initialEvents: q.get('sendInitialEvents') === 'true',
        ...(timeout > 0 ? { timeoutSeconds: timeout } : {}),
      }, status);
    }
    const rv = cache.resourceVersion;
    const limit = Number(q.get('limit') ?? '') || undefined;
    const p = page(cache.list(r.kind, namespace).filter(match), limit, q.get('continue'), rv);
    if (p === 'expired') return send(res, 410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'));
    const metadata = { resourceVersion: String(rv), ...(p.next ? { continue: p.next, remainingItemCount: p.remaining } : {}) };
    if (wantTable) return send(res, 200, { ...table(r.kind, p.items, String(rv)), metadata }, TABLE_TYPE);
    send(res, 200, { kind: `${r.kind}List`, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, metadata, items: p.items });
  }

  /** The list's label and field selectors (and a watch's object name) as one test; an error sentence when one is bad. */
  private selection(q: URLSearchParams, kind: string, name: string | undefined): ((o: KubeObject) => boolean) | string {
    const labels = q.get('labelSelector');
    const byLabels = labels ? labelMatcher(labels) : () => true;
    if (!byLabels) return `unable to parse requirement: labelSelector "${labels}"`;
    const fields = q.get('fieldSelector');
    const byFields = fields ? fieldMatcher(kind, fields) : () => true;
    if (typeof byFields === 'string') return `field label not supported: ${byFields}`;
    return (o) => (name === undefined || o.metadata.name === name) && byLabels(o.metadata.labels ?? {}) && byFields(o);
  }

  private log(req: IncomingMessage, res: ServerResponse, url: URL, t: Target): void {
    if (req.method !== 'GET') return send(res, 405, status(405, 'MethodNotAllowed', 'logs are read with GET'));
    const ns = t.namespace ?? 'default';
    if (!this.o.cache.get('Pod', ns, t.name!)) return send(res, 404, status(404, 'NotFound', `pods "${t.name}" not found`, { name: t.name, kind: 'pods' }));
    const q = url.searchParams;
    const num = (k: string) => (q.get(k) !== null && Number.isFinite(Number(q.get(k))) ? Number(q.get(k)) : undefined);
    const tail = num('tailLines');
    const since = num('sinceSeconds');
    const limitBytes = num('limitBytes');
    const file = this.o.pods.logFile(ns, t.name!, q.get('container') ?? undefined);
    serveLog(req, res, this.o.logSizes, { file, follow: q.get('follow') === 'true', ...(tail !== undefined ? { tailLines: tail } : {}), ...(since !== undefined ? { sinceSeconds: since } : {}), ...(limitBytes !== undefined ? { limitBytes } : {}) });
  }

  /** pods/NAME/exec over WebSocket; every other upgrade is refused. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (code: number, body: object) => {
      const text = JSON.stringify(body);
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : code === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    };
    socket.on('error', () => socket.destroy());
    if (!this.authorized(req)) return refuse(401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'https://membrane');
    const t = parsePath(url.pathname);
    if (!t || t.resource.kind !== 'Pod' || t.subresource !== 'exec' || t.name === undefined) return refuse(400, status(400, 'BadRequest', 'only pods/exec is served over WebSocket'));
    const ns = t.namespace ?? 'default';
    if (!this.o.cache.get('Pod', ns, t.name)) return refuse(404, status(404, 'NotFound', `pods "${t.name}" not found`, { name: t.name, kind: 'pods' }));
    const q = execQuery(url);
    if ('error' in q) return refuse(400, status(400, 'BadRequest', q.error));
    let launch: (command: string[]) => ExecLaunch;
    try {
      launch = this.o.pods.exec(ns, t.name, q.container);
    } catch (e) {
      if (e instanceof KubeStatusError) return refuse(e.code, e.status());
      return refuse(400, status(400, 'BadRequest', e instanceof Error ? e.message : String(e)));
    }
    handleExecUpgrade(req, socket, head, { command: q.command, stdin: q.stdin, stdout: q.stdout, stderr: q.stderr, tty: q.tty, launch, onError: (e) => this.o.problem?.(`kubectl exec ${ns}/${t.name}: ${e.message}`) });
  }
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await body(req);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new KubeStatusError(400, 'BadRequest', `the body of the request is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new KubeStatusError(413, 'RequestEntityTooLarge', 'the request is too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
