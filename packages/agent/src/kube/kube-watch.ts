/**
 * `?watch=true`: one JSON event a line over a chunked response that stays
 * open until the client goes, `timeoutSeconds` passes or the server stops
 * (`kubectl get -w` exits 0 when the stream ends, so ending it early is a
 * bug). From resourceVersion V: the changes after V; without one (or "0"):
 * an ADDED for every object there is, then the changes — the apiserver's
 * "start at the most recent" semantics. `allowWatchBookmarks` adds BOOKMARK
 * events carrying the latest resourceVersion; `sendInitialEvents` ends the
 * initial ADDEDs with the bookmark annotated `k8s.io/initial-events-end`.
 * Table watches (kubectl get -w) carry one row an event and no column
 * definitions, which kubectl printed with the list.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheEvent, KubeCache, KubeObject, WatchEventType } from './kube-cache.js';
import type { KubeResource } from './kube-resources.js';
import { TABLE_TYPE, table } from './kube-tables.js';

export interface WatchRequest {
  resource: KubeResource;
  namespace?: string;
  /** The list's selectors: an object outside them is not sent. */
  match: (o: KubeObject) => boolean;
  table: boolean;
  resourceVersion?: string;
  bookmarks: boolean;
  initialEvents: boolean;
  timeoutSeconds?: number;
}

const BOOKMARK_MS = 10_000;

export function watchStream(cache: KubeCache, req: IncomingMessage, res: ServerResponse, w: WatchRequest, status: (code: number, reason: string, message: string) => object): void {
  const rv = w.resourceVersion && w.resourceVersion !== '0' ? Number(w.resourceVersion) : undefined;
  if (rv !== undefined && !Number.isInteger(rv)) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status(400, 'BadRequest', `invalid resource version "${w.resourceVersion}"`)));
    return;
  }
  const kind = w.resource.kind;
  const inScope = (o: KubeObject) => (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.match(o);
  const line = (type: WatchEventType | 'BOOKMARK' | 'ERROR', object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
  const shape = (o: KubeObject) => {
    if (!w.table) return o;
    const { columnDefinitions: _c, ...t } = table(kind, [o], String(o.metadata.resourceVersion ?? ''));
    return t;
  };
  const bookmark = (annotations?: Record<string, string>) =>
    line('BOOKMARK', { kind, apiVersion: w.resource.group ? `${w.resource.group}/${w.resource.version}` : w.resource.version, metadata: { resourceVersion: String(cache.resourceVersion), ...(annotations ? { annotations } : {}) } });

  res.writeHead(200, { 'content-type': w.table ? TABLE_TYPE : 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  const start = rv ?? cache.resourceVersion;
  if (rv === undefined) {
    for (const o of cache.list(kind, w.namespace)) if (w.match(o)) line('ADDED', shape(o));
    if (w.initialEvents && w.bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  }
  const stop = cache.watch(start, (e: CacheEvent) => {
    if (e.kind === kind && inScope(e.object)) line(e.type, shape(e.object));
  });
  if (stop === 'expired') {
    line('ERROR', { ...status(410, 'Expired', `too old resource version: ${rv} (${cache.resourceVersion})`) });
    res.end();
    return;
  }
  const timers: NodeJS.Timeout[] = [];
  if (w.bookmarks) timers.push(setInterval(() => bookmark(), BOOKMARK_MS));
  if (w.timeoutSeconds && w.timeoutSeconds > 0) timers.push(setTimeout(() => res.end(), w.timeoutSeconds * 1000));
  const done = () => {
    stop();
    for (const t of timers) clearTimeout(t);
  };
  res.on('close', done);
  req.on('close', done);
}
