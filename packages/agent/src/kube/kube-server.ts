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
import { closeServer, listenTcp } from '../listen.js';
import type { KubeCredentials } from './kube-certs.js';
import { AGGREGATED, aggregatedDiscovery, groupList, resourceList, RESOURCES, type KubeResource } from './kube-resources.js';
import { TABLE_TYPE, table } from './kube-tables.js';
import { createHash } from 'node:crypto';

/** A stored object as the agent's views give it (metadata with creationTimestamp and resourceVersion, status filled). */
export type KubeObject = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; creationTimestamp?: string; [k: string]: unknown }; [k: string]: unknown };

export interface KubeObjects {
  /** The objects of a kind, of one namespace or all. */
  list(kind: string, namespace?: string): Promise<KubeObject[]>;
}

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

  constructor(private readonly o: { address: string; port: number; credentials: KubeCredentials; objects: KubeObjects }) {}

  async start(): Promise<void> {
    const c = this.o.credentials;
    this.server = createServer({ key: c.key, cert: c.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) send(res, 500, status(500, 'InternalError', e instanceof Error ? e.message : String(e)));
        else res.destroy();
      });
    });
    this.port = await listenTcp(this.server, this.o.port, this.o.address, 'the Kubernetes API');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
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
    const target = parsePath(path);
    if (target) return this.read(req, res, url, target);
    send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
  }

  /** get and list (Table, List or the object). */
  private async read(req: IncomingMessage, res: ServerResponse, url: URL, t: Target): Promise<void> {
    const r = t.resource;
    const all = (await this.o.objects.list(r.kind, r.namespaced ? t.namespace : undefined)).map((o) => asKube(r, o));
    const wantTable = (req.headers.accept ?? '').includes('as=Table');
    if (t.name !== undefined) {
      const o = all.find((x) => x.metadata.name === t.name);
      if (!o) return send(res, 404, status(404, 'NotFound', `${r.resource}${r.group ? `.${r.group}` : ''} "${t.name}" not found`, { name: t.name, ...(r.group ? { group: r.group } : {}), kind: r.resource }));
      return wantTable ? send(res, 200, table(r.kind, [o], String(o.metadata.resourceVersion ?? '')), TABLE_TYPE) : send(res, 200, o);
    }
    let items = all;
    const labels = url.searchParams.get('labelSelector');
    if (labels) {
      const match = labelMatcher(labels);
      if (!match) return send(res, 400, status(400, 'BadRequest', `unable to parse requirement: labelSelector "${labels}"`));
      items = items.filter((o) => match(o.metadata.labels ?? {}));
    }
    const fields = url.searchParams.get('fieldSelector');
    if (fields) {
      for (const term of fields.split(',')) {
        // metadata.name/namespace for every kind; involvedObject.* for events (what `kubectl describe` asks).
        const m = /^(metadata\.name|metadata\.namespace|involvedObject\.(?:kind|namespace|name|uid|apiVersion|fieldPath|resourceVersion))(==?|!=)(.*)$/.exec(term);
        if (!m || (m[1]!.startsWith('involvedObject.') && r.kind !== 'Event')) return send(res, 400, status(400, 'BadRequest', `field label not supported: ${term.split(/[=!]/)[0]}`));
        const path = m[1]!.split('.');
        const get = (o: KubeObject) => String((o as Record<string, Record<string, unknown> | undefined>)[path[0]!]?.[path[1]!] ?? '');
        items = items.filter((o) => (m[2] === '!=' ? get(o) !== m[3] : get(o) === m[3]));
      }
    }
    const rv = String(all.reduce((n, o) => Math.max(n, Number(o.metadata.resourceVersion ?? 0)), 0));
    if (wantTable) return send(res, 200, table(r.kind, items, rv), TABLE_TYPE);
    send(res, 200, { kind: `${r.kind}List`, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, metadata: { resourceVersion: rv }, items });
  }
}

interface Target {
  resource: KubeResource;
  namespace?: string;
  name?: string;
}

/** /api/v1/[namespaces/NS/]RES[/NAME] and /apis/G/V/[namespaces/NS/]RES[/NAME]. */
export function parsePath(path: string): Target | undefined {
  const m = /^\/api\/v1\/(.+)$/.exec(path) ?? /^\/apis\/([^/]+)\/([^/]+)\/(.+)$/.exec(path);
  if (!m) return undefined;
  const [group, version, rest] = m.length === 2 ? ['', 'v1', m[1]!] : [m[1]!, m[2]!, m[3]!];
  const parts = rest.split('/').map(decodeURIComponent);
  const find = (res: string) => RESOURCES.find((r) => r.group === group && r.version === version && r.resource === res);
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    const r = find(parts[2]!);
    if (!r || !r.namespaced || parts.length > 4) return undefined;
    return { resource: r, namespace: parts[1]!, ...(parts[3] !== undefined ? { name: parts[3] } : {}) };
  }
  const r = find(parts[0]!);
  if (!r || parts.length > 2) return undefined;
  return { resource: r, ...(parts[1] !== undefined ? { name: parts[1] } : {}) };
}

/** The object as the apiserver answers it: apiVersion and kind, a uid that stays the object's for its life. */
function asKube(r: KubeResource, o: KubeObject): KubeObject {
  const uid = createHash('sha256').update(`${r.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}/${o.metadata.creationTimestamp ?? ''}`).digest('hex');
  const id = `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${uid.slice(20, 32)}`;
  return { ...o, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, kind: r.kind, metadata: { ...o.metadata, uid: id } };
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a` (undefined: not one). */
export function labelMatcher(sel: string): ((labels: Record<string, string>) => boolean) | undefined {
  const terms: ((l: Record<string, string>) => boolean)[] = [];
  for (const raw of sel.split(',')) {
    const t = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t))) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      terms.push(op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = /^!([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((l) => !(k in l));
    } else if ((m = /^([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((l) => k in l);
    } else return undefined;
  }
  return (l) => terms.every((f) => f(l));
}
