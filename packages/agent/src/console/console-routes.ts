/**
 * What the console may ask of the agent: the reads its views need, apply
 * and delete (the agent's own handlers: the same validation and the same
 * all-or-nothing apply as `membrane apply`), and live flows as server-sent
 * events. Nothing else of the agent's API (exec, shutdown, test hosts, the
 * proxies' routes) is reachable from a browser.
 *
 * GET /v1/flows/stream?number=N: the last N flows (default 2,000), then every
 * new one, each an `event: flow` whose `id` is its sequence number and whose
 * data is the flow in Hubble's JSON (proto field names, as `observe -o
 * json`); loss as `event: lost` ({source, count}); a comment every 15 s keeps
 * the connection honest. A browser that reconnects sends Last-Event-ID and
 * resumes after it, as does `after=SEQ` (what the ring dropped meanwhile is
 * told as lost; after an agent restart, a new ring is read from its start).
 */
import { createRegistry, toJson } from '@bufbuild/protobuf';
import { compileFilters, FilterError, queryFlows, type FlowQuery, type Observer } from '@membrane/observer';
import { MembraneError } from '@membrane/api';
import { flow as pb, membranev1 } from '@membrane/proto';
import type { ApiRequest, Route } from '../api/http-api.js';
import { SECURITY_HEADERS } from './console-server.js';
import { writeAndWait } from '../stream-write.js';

const ALLOWED = new Set(['GET /v1/status', 'POST /v1/apply', 'POST /v1/delete', 'GET /v1/objects/:kind', 'GET /v1/endpoints', 'GET /v1/identities', 'GET /v1/services', 'GET /v1/fqdn/cache', 'GET /v1/policy-history']);
const registry = createRegistry(membranev1.FlowExtensionSchema);
const FLUSH_BYTES = 64 * 1024;

export function consoleRoutes(agentRoutes: readonly Route[], observer: () => Observer | undefined): Route[] {
  return [...agentRoutes.filter((r) => ALLOWED.has(`${r.method} ${r.path}`)), { method: 'GET', path: '/v1/flows/stream', handler: (r) => flowStream(r, observer()) }];
}

async function flowStream(req: ApiRequest, observer: Observer | undefined): Promise<undefined> {
  if (!observer) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the observer is not running yet');
  const number = Number(req.query.get('number') ?? 2000);
  if (!Number.isInteger(number) || number < 0 || number > 1_000_000) throw new MembraneError('MEMBRANE_E_USAGE', `number: ${req.query.get('number')} is not a count`);
  // Resuming: the browser's Last-Event-ID, or `after` (a page that opens a new stream after the agent was away).
  const lastId = req.raw.headers['last-event-id'] ?? req.query.get('after') ?? undefined;
  const resume = typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) + 1 : undefined;
  const q: FlowQuery = { ...(resume !== undefined ? { fromSeq: resume } : number > 0 ? { number } : {}), follow: true, predicate: compileFilters([]), idleMarks: true };
  const res = req.res;
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.write(': membrane flows\n\n');
  const ac = new AbortController();
  res.once('close', () => ac.abort());
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), 15_000);
  keepalive.unref();
  let out = '';
  const flush = async () => {
    if (!out || ac.signal.aborted) return;
    const chunk = out;
    out = '';
    await writeAndWait(res, chunk);
  };
  try {
    for await (const item of queryFlows(observer, observer, q, ac.signal)) {
      if ('seq' in item) {
        const f = observer.flow(item.seq);
        if (f) out += `id: ${item.seq}\nevent: flow\ndata: ${JSON.stringify(toJson(pb.FlowSchema, f, { useProtoFieldName: true, registry }))}\n\n`;
      } else if ('lost' in item) out += `event: lost\ndata: ${JSON.stringify({ source: pb.LostEventSource[item.lost.source], count: item.lost.count })}\n\n`;
      else await flush();
      if (out.length >= FLUSH_BYTES) await flush();
    }
  } catch (e) {
    if (!(e instanceof FilterError)) throw e;
  } finally {
    clearInterval(keepalive);
    if (!res.writableEnded) res.end();
  }
  return undefined;
}
