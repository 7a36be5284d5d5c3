/**
 * The HTTP/1.1 L7 proxy. It serves connections the datapath steered to it
 * (their local address is the original destination, their remote the
 * client), judges every request on its own — a denied request on a
 * kept-alive connection is answered 403 and the next one is judged afresh —
 * and forwards allowed ones over one upstream connection per client
 * connection, opened from the client's own address so the destination sees
 * (and its policy judges) the real client.
 *
 *   request      checked (http-checks.ts), judged (PolicyView), forwarded
 *                with the normalized path; bodies stream both ways, never
 *                buffered whole;
 *   denied       403 "Access denied" (as Cilium's Envoy answers), an event;
 *   malformed    400 and the connection closed, an event;
 *   upstream     refused or reset: 503; no answer in time: 504;
 *   Expect: 100-continue   judged before the body is asked for;
 *   Upgrade      judged at the upgrade request; allowed, the two sides are
 *                spliced and no longer parsed (as Envoy does for WebSocket).
 * Every request ends in one event with the verdict and the rules behind it;
 * Authorization, Cookie and Set-Cookie (and configured names) are redacted
 * when the event is made.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RuleOrigin } from '@membrane/policy';
import { checkRequest, redact } from './http-checks.js';
import type { PolicyView, RequestVerdict } from './policy-view.js';

/** What judges a request (PolicyView; tests pass a small fake). */
export type RequestJudge = Pick<PolicyView, 'decideHttp'>;

export interface Endpoint4 {
  ip: string;
  port: number;
}

export interface L7HttpEvent {
  time: string;
  source: Endpoint4;
  destination: Endpoint4;
  srcIdentity: number;
  dstIdentity: number;
  srcEndpoint?: string;
  dstEndpoint?: string;
  verdict: 'FORWARDED' | 'DENIED' | 'ERROR';
  method: string;
  url: string;
  host: string;
  protocol: string;
  code: number;
  latencyNs: number;
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  rules: RuleOrigin[];
  reason: string;
}

export interface HttpProxyOptions {
  /** The policy in force (read for every request). */
  view: () => RequestJudge;
  /** A socket towards the original destination, from the client's address (a transparent socket in production). */
  upstream: (client: Endpoint4, destination: Endpoint4) => Socket;
  /** Where a steered connection was going (default: its local address, which a transparent listener gives). */
  originalDestination?: (s: Socket) => Endpoint4;
  onEvent: (e: L7HttpEvent) => void;
  /** An upstream that sends no response head within this is answered 504 (default 15 s). */
  upstreamTimeoutMs?: number;
  /** Largest request head (default 16 KiB: the ~ of Envoy's default 60 KiB is more than any policy needs). */
  maxHeaderSize?: number;
  /** More header names to redact in events. */
  redactHeaders?: string[];
}

const DENIED_BODY = 'Access denied\r\n';

interface ConnState {
  client: Endpoint4;
  destination: Endpoint4;
  agent: Agent;
}

export function createHttpProxy(o: HttpProxyOptions): Server {
  const conns = new WeakMap<Socket, ConnState>();
  const timeout = o.upstreamTimeoutMs ?? 15_000;
  const server = createServer({ maxHeaderSize: o.maxHeaderSize ?? 16 * 1024, insecureHTTPParser: false, keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 0 });

  const stateOf = (s: Socket): ConnState => {
    let st = conns.get(s);
    if (!st) {
      const destination = o.originalDestination ? o.originalDestination(s) : { ip: String(s.localAddress).replace(/^::ffff:/, ''), port: s.localPort ?? 0 };
      const client = { ip: String(s.remoteAddress).replace(/^::ffff:/, ''), port: s.remotePort ?? 0 };
      // One upstream connection per client connection: requests keep their order and their client.
      const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
      (agent as unknown as { createConnection: () => Socket }).createConnection = () => o.upstream(client, destination);
      st = { client, destination, agent };
      conns.set(s, st);
      s.once('close', () => agent.destroy());
    }
    return st;
  };

  const event = (st: ConnState, req: IncomingMessage, v: Partial<RequestVerdict>, verdict: L7HttpEvent['verdict'], code: number, t0: bigint, url: string, resHeaders: readonly string[] = []) =>
    o.onEvent({
      time: new Date().toISOString(),
      source: st.client,
      destination: st.destination,
      srcIdentity: v.srcIdentity ?? 0,
      dstIdentity: v.dstIdentity ?? 0,
      ...(v.src ? { srcEndpoint: v.src.name } : {}),
      ...(v.dst ? { dstEndpoint: v.dst.name } : {}),
      verdict,
      method: req.method ?? '',
      url,
      host: req.headers.host ?? '',
      protocol: `HTTP/${req.httpVersion}`,
      code,
      latencyNs: Number(process.hrtime.bigint() - t0),
      requestHeaders: redact(req.rawHeaders, o.redactHeaders),
      responseHeaders: redact(resHeaders, o.redactHeaders),
      rules: v.rules ?? [],
      reason: v.reason ?? '',
    });

  /** Judge a request: the verdict, or undefined after answering it (400, 403). */
  const judge = (req: IncomingMessage, respond: (code: number, body: string, close: boolean) => void, t0: bigint): { st: ConnState; path: string; v: RequestVerdict } | undefined => {
    const st = stateOf(req.socket);
    const c = checkRequest(req.method ?? '', req.url ?? '', req.rawHeaders);
    if (!c.ok) {
      respond(400, `Bad request: ${c.reason}\r\n`, true);
      event(st, req, { reason: `malformed request: ${c.reason}` }, 'ERROR', 400, t0, req.url ?? '');
      return undefined;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    let v: RequestVerdict;
    try {
      v = o.view().decideHttp(st.client.ip, st.destination.ip, st.destination.port, { method: req.method ?? '', path: c.path, host: c.host, headers });
    } catch (e) {
      // No verdict is a denial: fail closed.
      respond(403, DENIED_BODY, false);
      event(st, req, { reason: `no verdict: ${e instanceof Error ? e.message : String(e)}` }, 'DENIED', 403, t0, c.path);
      return undefined;
    }
    if (!v.allowed) {
      respond(403, DENIED_BODY, false);
      event(st, req, v, 'DENIED', 403, t0, c.path);
      return undefined;
    }
    return { st, path: c.path, v };
  };

  const answer = (res: ServerResponse) => (code: number, body: string, close: boolean) => {
    res.writeHead(code, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(close ? { connection: 'close' } : {}) });
    res.end(body);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, j: { st: ConnState; path: string; v: RequestVerdict }, t0: bigint, dropExpect: boolean) => {
    const headers: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const n = req.rawHeaders[i]!.toLowerCase();
      if (n === 'connection' || n === 'keep-alive' || n === 'proxy-connection' || (dropExpect && n === 'expect')) continue;
      headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    let done = false;
    const fail = (code: number, why: string) => {
      if (done) return;
      done = true;
      if (!res.headersSent) answer(res)(code, code === 504 ? 'Upstream timeout\r\n' : 'Upstream unavailable\r\n', false);
      else res.destroy();
      event(j.st, req, { ...j.v, reason: why }, 'ERROR', code, t0, j.path);
    };
    const up = httpRequest({ agent: j.st.agent, host: j.st.destination.ip, port: j.st.destination.port, method: req.method, path: j.path, headers, setHost: false });
    // The upstream has `timeout` to answer once the request is sent; while the body streams, the clock restarts with every chunk.
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        fail(504, `no response from ${j.st.destination.ip}:${j.st.destination.port} within ${timeout} ms`);
        up.destroy();
      }, timeout);
    };
    arm();
    req.on('data', arm);
    up.on('finish', arm);
    up.on('response', (ur) => {
      clearTimeout(timer);
      req.off('data', arm);
      up.off('finish', arm);
      if (done) return ur.resume();
      const out: string[] = [];
      for (let i = 0; i + 1 < ur.rawHeaders.length; i += 2) {
        const n = ur.rawHeaders[i]!.toLowerCase();
        if (n === 'connection' || n === 'keep-alive') continue;
        out.push(ur.rawHeaders[i]!, ur.rawHeaders[i + 1]!);
      }
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, out);
      ur.pipe(res);
      ur.on('end', () => {
        done = true;
        event(j.st, req, j.v, 'FORWARDED', ur.statusCode ?? 0, t0, j.path, ur.rawHeaders);
      });
      ur.on('error', () => res.destroy());
    });
    up.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(503, `upstream ${j.st.destination.ip}:${j.st.destination.port}: ${e.code ?? e.message}`);
    });
    req.pipe(up);
    req.on('error', () => up.destroy());
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const t0 = process.hrtime.bigint();
    const j = judge(req, answer(res), t0);
    if (!j) {
      // The body of a refused request is read and dropped, so the connection can carry the next one.
      req.resume();
      return;
    }
    forward(req, res, j, t0, false);
  });

  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const t0 = process.hrtime.bigint();
    // Judged before the body is asked for; a refused one closes the connection (its body never comes).
    const j = judge(req, (code, body) => answer(res)(code, body, true), t0);
    if (!j) return;
    res.writeContinue();
    forward(req, res, j, t0, true);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const t0 = process.hrtime.bigint();
    const raw = (code: number, body: string) => socket.end(`HTTP/1.1 ${code} ${code === 403 ? 'Forbidden' : 'Bad Request'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    const j = judge(req, (code, body) => raw(code, body), t0);
    if (!j) return;
    const up = o.upstream(j.st.client, j.st.destination);
    const lines = [`${req.method} ${j.path} HTTP/${req.httpVersion}`];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.once('connect', () => {
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
      event(j.st, req, j.v, 'FORWARDED', 101, t0, j.path);
    });
    up.on('error', () => {
      if (!socket.destroyed) raw(403, 'Upstream unavailable\r\n');
    });
    socket.on('error', () => up.destroy());
    socket.on('close', () => up.destroy());
    up.on('close', () => socket.destroy());
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const st = stateOf(socket);
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 13\r\nconnection: close\r\n\r\nBad request\r\n');
    o.onEvent({
      time: new Date().toISOString(),
      source: st.client,
      destination: st.destination,
      srcIdentity: 0,
      dstIdentity: 0,
      verdict: 'ERROR',
      method: '',
      url: '',
      host: '',
      protocol: 'HTTP/1.1',
      code: 400,
      latencyNs: 0,
      requestHeaders: [],
      responseHeaders: [],
      rules: [],
      reason: `malformed request: ${err.code ?? err.message}`,
    });
  });

  return server;
}
