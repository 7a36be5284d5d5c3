/**
 * Observer.GetFlows over gRPC (HTTP/2), written by the agent itself rather
 * than through Connect's per-message pipeline: a follower of a busy node
 * gets hundreds of thousands of flows a second, and Connect spends more on
 * each message (its async stages, one write per message) than the whole
 * budget of one flow. Here the flows of the datapath go from the ring
 * straight into wire bytes (Observer.writeResponse), many gRPC messages per
 * HTTP/2 write, with the stream's back-pressure respected. The protocol is
 * gRPC's as any client speaks it (the hubble CLI, Relay, grpc-js):
 * `application/grpc` requests with one uncompressed GetFlowsRequest,
 * length-prefixed messages back, `grpc-status`/`grpc-message` in trailers
 * (or a trailers-only answer for an error before any flow), `grpc-timeout`
 * honoured, and a client that goes away ends its query (nothing is left).
 * Every other method of the API is served by Connect.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampDate, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { compileFilters, FilterError, ProtoWriter, QueryError, queryFlows, type Observer } from '@membrane/observer';
import { flow as pb, observer as obs } from '@membrane/proto';
import { writeAndWait } from '../stream-write.js';

export const GET_FLOWS_PATH = '/observer.Observer/GetFlows';

/** gRPC status codes used here. */
const Status = { OK: 0, CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, UNIMPLEMENTED: 12, INTERNAL: 13 } as const;
/** A write is made once this many bytes of messages wait. */
const FLUSH_BYTES = 64 * 1024;
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

class GrpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** grpc-message is percent-encoded (the gRPC spec: printable ASCII but %). */
function grpcMessage(s: string): string {
  return Buffer.from(s, 'utf8').reduce((out, b) => out + (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`), '');
}

/** grpc-timeout: an integer and a unit (H, M, S, m, u, n) → milliseconds. */
export function grpcTimeoutMs(v: string | undefined): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(v ?? '');
  if (!m) return undefined;
  const n = Number(m[1]);
  return { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H']! * n;
}

function readRequest(req: Http2ServerRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_REQUEST_BYTES) reject(new GrpcError(Status.INVALID_ARGUMENT, `request larger than ${MAX_REQUEST_BYTES} bytes`));
      else parts.push(d);
    });
    req.once('end', () => resolve(Buffer.concat(parts)));
    req.once('error', reject);
    req.once('aborted', () => reject(new GrpcError(Status.CANCELLED, 'the client went away')));
  });
}

function decodeRequest(body: Buffer, encoding: string | undefined): obs.GetFlowsRequest {
  if (body.length < 5) throw new GrpcError(Status.INTERNAL, 'the request holds no gRPC message');
  const len = body.readUInt32BE(1);
  if (body.length !== 5 + len) throw new GrpcError(Status.INTERNAL, `the request's message claims ${len} bytes, ${body.length - 5} came`);
  if (body[0] !== 0 && encoding && encoding !== 'identity') throw new GrpcError(Status.UNIMPLEMENTED, `compressed requests (${encoding}) are not accepted; send them uncompressed`);
  if (body[0] !== 0) throw new GrpcError(Status.INTERNAL, 'a compressed message without grpc-encoding');
  try {
    return fromBinary(obs.GetFlowsRequestSchema, body.subarray(5));
  } catch (e) {
    throw new GrpcError(Status.INTERNAL, `parse GetFlowsRequest: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export interface GetFlowsContext {
  observer: () => Observer;
  nodeName: string;
}

/** Whether this request is a gRPC GetFlows call this writer serves. */
export function isGetFlows(req: Http2ServerRequest): boolean {
  return req.method === 'POST' && req.url === GET_FLOWS_PATH && /^application\/grpc(\+proto)?(;|$)/.test(req.headers['content-type'] ?? '');
}

export async function serveGetFlows(req: Http2ServerRequest, res: Http2ServerResponse, o: GetFlowsContext): Promise<void> {
  const ac = new AbortController();
  const gone = () => ac.abort();
  res.once('close', gone);
  const timeout = grpcTimeoutMs(req.headers['grpc-timeout'] as string | undefined);
  let timedOut = false;
  const timer =
    timeout !== undefined
      ? setTimeout(() => {
          timedOut = true;
          ac.abort();
        }, timeout)
      : undefined;
  let started = false;
  const w = new ProtoWriter(FLUSH_BYTES * 2);
  const flush = async (): Promise<void> => {
    if (w.pos === 0 || ac.signal.aborted) return;
    const chunk = w.take();
    w.reset();
    await writeAndWait(res, chunk);
  };
  const finish = (code: number, message = '') => {
    if (res.writableEnded || res.destroyed) return;
    const status = { 'grpc-status': String(code), ...(message ? { 'grpc-message': grpcMessage(message) } : {}) };
    if (!started) {
      // Trailers-only: one HEADERS frame that ends the stream (gRPC clients read the status only there).
      if (!res.stream.headersSent) res.stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', ...status }, { endStream: true });
      else res.end();
    } else {
      res.addTrailers(status);
      res.end();
    }
  };
  try {
    const request = decodeRequest(await readRequest(req), req.headers['grpc-encoding'] as string | undefined);
    let predicate;
    try {
      predicate = compileFilters(request.whitelist, request.blacklist);
    } catch (e) {
      if (e instanceof FilterError) throw new GrpcError(Status.INVALID_ARGUMENT, e.message);
      throw e;
    }
    const observer = o.observer();
    const q = {
      ...(request.number > 0n ? { number: Number(request.number) } : {}),
      first: request.first,
      follow: request.follow,
      ...(request.since ? { since: timestampDate(request.since).getTime() } : {}),
      ...(request.until ? { until: timestampDate(request.until).getTime() } : {}),
      predicate,
      idleMarks: true,
    };
    const flows = queryFlows(observer, observer, q, ac.signal);
    // The first step checks the query (a bad one is an error before any header).
    let step: IteratorResult<unknown>;
    try {
      step = await flows.next();
    } catch (e) {
      if (e instanceof QueryError) throw new GrpcError(Status.INVALID_ARGUMENT, e.message);
      throw e;
    }
    res.writeHead(200, { 'content-type': 'application/grpc+proto' });
    started = true;
    let overtaken = 0;
    for (; !step.done && !ac.signal.aborted; step = await flows.next()) {
      const item = step.value as { seq: number } | { lost: { source: pb.LostEventSource; count: number } } | { idle: true };
      if ('seq' in item) {
        if (observer.writeResponse(item.seq, w, o.nodeName)) {
          if (overtaken) writeLost(w, pb.LostEventSource.HUBBLE_RING_BUFFER, overtaken, o.nodeName, observer);
          overtaken = 0;
        } else overtaken++;
      } else if ('lost' in item) writeLost(w, item.lost.source, item.lost.count, o.nodeName, observer);
      else await flush();
      if (w.pos >= FLUSH_BYTES) await flush();
    }
    if (overtaken) writeLost(w, pb.LostEventSource.HUBBLE_RING_BUFFER, overtaken, o.nodeName, observer);
    await flows.return(undefined);
    await flush();
    if (timedOut) finish(Status.DEADLINE_EXCEEDED, 'the deadline (grpc-timeout) passed');
    else finish(Status.OK);
  } catch (e) {
    if (e instanceof GrpcError) finish(e.code, e.message);
    else finish(Status.INTERNAL, e instanceof Error ? e.message : String(e));
  } finally {
    if (timer) clearTimeout(timer);
    res.off('close', gone);
  }
}

/** A lost-events notice in the stream; a follower overtaken by the writer is counted in the metrics too. */
function writeLost(w: ProtoWriter, source: pb.LostEventSource, count: number, nodeName: string, observer: Observer): void {
  if (source === pb.LostEventSource.HUBBLE_RING_BUFFER) observer.readerLost(count);
  const msg = create(obs.GetFlowsResponseSchema, { responseTypes: { case: 'lostEvents', value: { source, numEventsLost: BigInt(count) } }, nodeName, time: timestampFromMs(Date.now()) });
  const frame = w.beginFrame();
  w.raw(toBinary(obs.GetFlowsResponseSchema, msg));
  w.endFrame(frame);
}
