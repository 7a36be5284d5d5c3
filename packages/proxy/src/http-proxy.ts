/**
 * The HTTP/1.1 L7 proxy. It serves connections the datapath steered to it
 * (their local address is the original destination, their remote the
 * client), judges every request on its own — a denied request on a
 * kept-alive connection is answered 403 and the next one is judged afresh —
 * and forwards allowed ones over one upstream connection per client
 * connection, opened from the client's own address so the destination sees
 * (and its policy judges) the real client.
 *
 * Only heads are parsed (http-wire.ts, strict); bodies and responses pass
 * as the bytes they are, counted to find where each message ends, so the
 * cost per request is one head parse, one judgement and the copies the
 * kernel makes. Requests are taken one at a time: the next head is read
 * once the previous response has ended, so a local answer (403, 400, 503)
 * never lands inside an upstream's response.
 *
 *   request      checked (http-checks.ts), judged (PolicyView), forwarded
 *                with the normalized path and without hop-by-hop headers;
 *                bodies stream both ways, never buffered whole;
 *   denied       403 "Access denied" (as Cilium's Envoy answers), an event;
 *                its body is read and dropped, the connection carries on;
 *   malformed    400 and the connection closed, an event;
 *   upstream     refused or reset before answering: 503; no answer in time: 504;
 *   Expect: 100-continue   judged before the body is asked for (the
 *                upstream's 100 Continue passes through; a denial closes);
 *   Upgrade      judged at the upgrade request; on 101 the two sides are
 *                spliced and no longer parsed (as Envoy does for WebSocket).
 * Every request ends in one event with the verdict and the rules behind it;
 * Authorization, Cookie and Set-Cookie (and configured names) are redacted
 * when the event is made.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { L7Endpoint, L7HttpEvent } from '@membrane/api';
import { checkRequest, redact } from './http-checks.js';
import { BodyFramer, closesAfter, parseHead, requestFraming, responseFraming, valuesOf, type ParsedHead } from './http-wire.js';
import type { PolicyView, RequestVerdict } from './policy-view.js';
import { UpstreamPool } from './upstream-pool.js';

/** What judges a request (PolicyView; tests pass a small fake). */
export type RequestJudge = Pick<PolicyView, 'decideHttp'>;

/** An address and port (the client, the original destination). */
export type Endpoint4 = L7Endpoint;

export type { L7HttpEvent };

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
  /** Largest request head (default 16 KiB: more than any policy needs). */
  maxHeaderSize?: number;
  /** More header names to redact in events. */
  redactHeaders?: string[];
}

export interface HttpProxyServer extends Server {
  /** Ends every connection now (tests, shutdown). */
  closeAllConnections(): void;
  /** Ends the connections that wait for a next request. */
  closeIdleConnections(): void;
}

const DENIED_BODY = 'Access denied\r\n';
/** How long a client told `connection: close` has to close before it is reset. */
const CLOSE_WAIT_MS = 2000;
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Hop-by-hop headers (RFC 9110 7.6.1): never forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

function answerBytes(code: number, body: string, close: boolean): string {
  return `HTTP/1.1 ${code} ${REASONS[code]}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}

/** One request in flight: what it was, how its verdict went, how its response is framed. */
interface Exchange {
  head: ParsedHead;
  method: string;
  path: string;
  host: string;
  verdict: Partial<RequestVerdict>;
  t0: bigint;
  body: BodyFramer;
  /** Allowed: the body goes upstream; denied: it is read and dropped, then answered 403. */
  forward: boolean;
  upgrade: boolean;
  clientCloses: boolean;
  response?: { head: ParsedHead; status: number; body: BodyFramer; closes: boolean };
  /** Bytes of the response already sent to the client. */
  answered: boolean;
}

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private up?: Socket;
  private upBuf: Buffer = Buffer.alloc(0);
  private x?: Exchange;
  private timer?: NodeJS.Timeout;
  private tunnel = false;
  private closed = false;
  private clientEnded = false;
  /** Inside pump(): writes upstream are corked and sent together at its end. */
  private pumping = false;
  private corked?: Socket;
  /** The upstream may serve a later client connection (it is between responses and did not say close). */
  private upReusable = false;
  private upListeners?: { data: (d: Buffer) => void; end: () => void; error: (e: NodeJS.ErrnoException) => void; close: () => void };
  readonly client: Endpoint4;
  readonly destination: Endpoint4;

  constructor(
    private readonly c: Socket,
    private readonly o: HttpProxyOptions,
    private readonly pool: UpstreamPool,
  ) {
    this.destination = o.originalDestination ? o.originalDestination(c) : { ip: String(c.localAddress).replace(/^::ffff:/, ''), port: c.localPort ?? 0 };
    this.client = { ip: String(c.remoteAddress).replace(/^::ffff:/, ''), port: c.remotePort ?? 0 };
    c.setNoDelay(true);
    c.on('data', (d: Buffer) => this.onClient(d));
    c.on('end', () => this.onClientEnd());
    c.on('error', () => this.destroy());
    c.on('close', () => this.destroy());
  }

  get idle(): boolean {
    return !this.x && this.buf.length === 0;
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.c.destroy();
    this.releaseUp();
  }

  /** The upstream goes back to the pool when it is between responses, else it is closed. */
  private releaseUp(): void {
    const up = this.up;
    this.up = undefined;
    if (!up) return;
    const l = this.upListeners;
    if (l) for (const ev of ['data', 'end', 'error', 'close'] as const) up.off(ev, l[ev]);
    this.upListeners = undefined;
    if (this.x || this.tunnel || this.upBuf.length || !this.upReusable) up.destroy();
    else this.pool.give(UpstreamPool.key(this.client, this.destination), up);
  }

  // ---- the client side ----------------------------------------------------------------------------

  private onClient(d: Buffer): void {
    if (this.tunnel || this.closed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.pump();
  }

  private onClientEnd(): void {
    // A client that half-closes gets the answer in progress, then the connection ends.
    this.clientEnded = true;
    if (!this.x && !this.tunnel) this.end();
  }

  /** Works through the buffered client bytes: heads to judge, bodies to pass or drop. */
  private pump(): void {
    this.pumping = true;
    try {
      this.pumpNow();
    } finally {
      this.pumping = false;
      this.corked?.uncork();
      this.corked = undefined;
    }
  }

  private pumpNow(): void {
    while (!this.closed && !this.tunnel) {
      const x = this.x;
      if (!x) {
        if (this.buf.length === 0) return this.clientEnded ? this.end() : undefined;
        if (!this.startRequest()) return;
        continue;
      }
      if (x.body.done) {
        // Waiting for the response: read no further (one request at a time).
        if (x.forward) {
          this.c.pause();
          return;
        }
        this.finishDenied(x);
        continue;
      }
      if (this.buf.length === 0) return;
      const n = x.body.consume(this.buf, 0);
      if (x.body.error) return this.malformed(x, x.body.error);
      const part = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      if (x.forward && part.length) this.sendUp(part);
      if (x.forward) this.arm(x);
    }
  }

  /** Reads the next head; false when more bytes are needed or the connection ended. */
  private startRequest(): boolean {
    const max = this.o.maxHeaderSize ?? 16 * 1024;
    const r = parseHead(this.buf, max, 'request');
    if ('incomplete' in r) return false;
    const t0 = process.hrtime.bigint();
    if ('error' in r) {
      this.refuse400(r.error, t0);
      return false;
    }
    const head = r.head;
    this.buf = this.buf.subarray(head.length);
    const [method, target, version] = head.start;
    const framing = requestFraming(head.rawHeaders);
    const checked = 'error' in framing ? { ok: false as const, reason: framing.error } : checkRequest(method, target, head.rawHeaders);
    if (!checked.ok || 'error' in framing) {
      this.refuse400(checked.ok ? 'malformed' : checked.reason, t0, head);
      return false;
    }
    const upgrade = valuesOf(head.rawHeaders, 'upgrade').length > 0 && valuesOf(head.rawHeaders, 'connection').some((v) => /(^|,)\s*upgrade\s*(,|$)/i.test(v));
    const x: Exchange = { head, method, path: checked.path, host: checked.host, verdict: {}, t0, body: new BodyFramer(framing), forward: false, upgrade, clientCloses: closesAfter(version, head.rawHeaders), answered: false };
    this.x = x;
    let v: RequestVerdict;
    try {
      const headers: Record<string, string> = {};
      for (let i = 0; i + 1 < head.rawHeaders.length; i += 2) {
        const k = head.rawHeaders[i]!.toLowerCase();
        headers[k] = headers[k] === undefined ? head.rawHeaders[i + 1]! : `${headers[k]}, ${head.rawHeaders[i + 1]}`;
      }
      v = this.o.view().decideHttp(this.client.ip, this.destination.ip, this.destination.port, { method, path: checked.path, host: checked.host, headers });
    } catch (e) {
      // No verdict is a denial: fail closed.
      v = { allowed: false, rules: [], reason: `no verdict: ${e instanceof Error ? e.message : String(e)}`, srcIdentity: 0, dstIdentity: 0 };
    }
    x.verdict = v;
    if (!v.allowed) {
      // Expect: 100-continue: the body is never asked for, so it never comes; the connection closes after the 403.
      if (valuesOf(head.rawHeaders, 'expect').some((e) => e.toLowerCase() === '100-continue')) {
        x.clientCloses = true;
        x.body.done = true;
      }
      return true;
    }
    x.forward = true;
    this.sendUp(this.requestHead(x));
    this.arm(x);
    return true;
  }

  /** The head sent upstream: the normalized path, no hop-by-hop headers (but an upgrade's own). */
  private requestHead(x: Exchange): Buffer {
    const [method, , version] = x.head.start;
    let s = `${method} ${x.path} HTTP/${version}\r\n`;
    const raw = x.head.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const n = raw[i]!.toLowerCase();
      if (HOP.has(n) && !(x.upgrade && (n === 'connection' || n === 'upgrade'))) continue;
      s += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    return Buffer.from(s + '\r\n', 'latin1');
  }

  private finishDenied(x: Exchange): void {
    this.event(x, 'DENIED', 403, []);
    this.x = undefined;
    this.c.write(answerBytes(403, DENIED_BODY, x.clientCloses));
    if (x.clientCloses) this.end();
  }

  private refuse400(reason: string, t0: bigint, head?: ParsedHead): void {
    const x: Exchange = { head: head ?? { start: ['', '', '1.1'], rawHeaders: [], length: 0 }, method: head?.start[0] ?? '', path: head?.start[1] ?? '', host: valuesOf(head?.rawHeaders ?? [], 'host')[0] ?? '', verdict: { reason: `malformed request: ${reason}` }, t0, body: new BodyFramer({ kind: 'none' }), forward: false, upgrade: false, clientCloses: true, answered: false };
    this.event(x, 'ERROR', 400, []);
    this.x = undefined;
    this.c.write(answerBytes(400, `Bad request: ${reason}\r\n`, true));
    this.end();
  }

  private malformed(x: Exchange, reason: string): void {
    x.verdict = { ...x.verdict, reason: `malformed request body: ${reason}` };
    this.upReusable = false;
    if (x.answered) return this.destroy();
    this.refuse400(reason, x.t0, x.head);
  }

  /**
   * Ends the client connection after what was written. The client closes
   * first where it can (it was told `connection: close`, or it half-closed
   * already): the proxy's side of a connection the datapath assigned to it
   * must not sit in TIME_WAIT, because a new SYN from the same client port
   * is handed straight to the listener (bpf_sk_assign) and the kernel drops
   * it while that tuple is in TIME_WAIT (a duplicate of the request socket).
   * A client that has not closed within CLOSE_WAIT_MS is reset, which
   * leaves no TIME_WAIT either. `fin`: a response that runs to the end of
   * the connection, the one case that needs the proxy's FIN.
   */
  private end(fin = false): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.releaseUp();
    if (fin || this.clientEnded) {
      this.c.end();
      return;
    }
    // Reading on (and dropping) until the client's FIN, answered with ours.
    const t = setTimeout(() => this.c.resetAndDestroy(), CLOSE_WAIT_MS);
    this.c.once('end', () => this.c.end());
    this.c.once('close', () => clearTimeout(t));
    this.c.resume();
  }

  // ---- the upstream side --------------------------------------------------------------------------

  private sendUp(b: Buffer): void {
    if (!this.up || this.up.destroyed) this.connectUp();
    if (this.pumping && this.corked !== this.up) {
      this.corked?.uncork();
      this.up!.cork();
      this.corked = this.up;
    }
    if (!this.up!.write(b)) {
      this.c.pause();
      this.up!.once('drain', () => this.c.resume());
    }
  }

  private connectUp(): void {
    const up = this.pool.take(UpstreamPool.key(this.client, this.destination)) ?? this.o.upstream(this.client, this.destination);
    this.up = up;
    this.upBuf = Buffer.alloc(0);
    this.upReusable = true;
    up.setNoDelay(true);
    const l = (this.upListeners = {
      data: (d: Buffer) => this.onUpstream(up, d),
      end: () => this.onUpstreamGone(up, 'closed the connection'),
      error: (e: NodeJS.ErrnoException) => this.onUpstreamGone(up, e.code ?? e.message),
      close: () => this.onUpstreamGone(up, 'closed the connection'),
    });
    up.on('data', l.data);
    up.on('end', l.end);
    up.on('error', l.error);
    up.on('close', l.close);
  }

  /** The 504 clock: `timeout` from the last byte sent upstream until the response head. */
  private arm(x: Exchange): void {
    clearTimeout(this.timer);
    const ms = this.o.upstreamTimeoutMs ?? 15_000;
    this.timer = setTimeout(() => {
      if (this.x !== x || x.response) return;
      this.upstreamFailed(x, 504, `no response from ${this.destination.ip}:${this.destination.port} within ${ms} ms`);
    }, ms);
  }

  private onUpstreamGone(up: Socket, why: string): void {
    if (up !== this.up) return;
    this.up = undefined;
    const x = this.x;
    if (this.tunnel) return this.destroy();
    if (!x || !x.forward) return;
    const r = x.response;
    // A response that runs to the end of the connection ends here.
    if (r && !r.body.done && responseRunsToClose(r)) {
      r.body.done = true;
      return this.responseDone(x);
    }
    if (r?.body.done) return;
    this.upstreamFailed(x, 503, `upstream ${this.destination.ip}:${this.destination.port}: ${why}`);
  }

  private upstreamFailed(x: Exchange, code: 503 | 504, reason: string): void {
    clearTimeout(this.timer);
    x.verdict = { ...x.verdict, reason };
    this.event(x, 'ERROR', code, []);
    this.up?.destroy();
    this.up = undefined;
    if (x.answered) return this.destroy();
    const requestRead = x.body.done;
    this.x = undefined;
    this.c.write(answerBytes(code, code === 504 ? 'Upstream timeout\r\n' : 'Upstream unavailable\r\n', !requestRead || x.clientCloses));
    if (!requestRead || x.clientCloses) return this.end();
    this.c.resume();
    this.pump();
  }

  private onUpstream(up: Socket, d: Buffer): void {
    if (up !== this.up) return;
    if (this.tunnel) {
      this.writeClient(up, d);
      return;
    }
    const x = this.x;
    if (!x || !x.forward) return this.destroy(); // bytes nobody asked for
    this.upBuf = this.upBuf.length ? Buffer.concat([this.upBuf, d]) : d;
    let from = 0;
    while (from < this.upBuf.length && this.x === x) {
      if (!x.response) {
        const r = parseHead(this.upBuf.subarray(from), MAX_RESPONSE_HEAD, 'response');
        if ('incomplete' in r) break;
        if ('error' in r) return this.upstreamFailed(x, 503, `upstream sent ${r.error}`);
        const status = Number(r.head.start[1]);
        clearTimeout(this.timer);
        if (status === 101 && x.upgrade) {
          this.writeClient(up, this.upBuf.subarray(from));
          this.upBuf = Buffer.alloc(0);
          return this.splice(x);
        }
        if (status >= 100 && status < 200) {
          // 100 Continue (and other interim answers) pass, the final one follows.
          this.writeClient(up, this.upBuf.subarray(from, from + r.head.length));
          from += r.head.length;
          continue;
        }
        x.response = { head: r.head, status, body: new BodyFramer(responseFraming(x.method, status, r.head.rawHeaders)), closes: closesAfter(r.head.start[0], r.head.rawHeaders) };
        const n = x.response.body.consume(this.upBuf, from + r.head.length);
        this.writeClient(up, this.upBuf.subarray(from, from + r.head.length + n));
        x.answered = true;
        from += r.head.length + n;
      } else {
        const n = x.response.body.consume(this.upBuf, from);
        this.writeClient(up, this.upBuf.subarray(from, from + n));
        from += n;
      }
      if (x.response.body.error) return this.destroy();
      if (x.response.body.done) {
        // Anything after the response was not asked for: it keeps the upstream out of the pool.
        this.upBuf = this.upBuf.subarray(from);
        return this.responseDone(x);
      }
    }
    // What is left is the start of a head not complete yet (or bytes after the response: dropped with the connection).
    this.upBuf = this.x === x && !x.response ? this.upBuf.subarray(from) : Buffer.alloc(0);
  }

  private writeClient(up: Socket, b: Buffer): void {
    if (b.length === 0) return;
    if (!this.c.write(b)) {
      up.pause();
      this.c.once('drain', () => up.resume());
    }
  }

  private responseDone(x: Exchange): void {
    const r = x.response!;
    this.event(x, 'FORWARDED', r.status, r.head.rawHeaders);
    this.x = undefined;
    if (r.closes || !x.body.done) this.upReusable = false;
    if (x.clientCloses || r.closes || !x.body.done) return this.end(responseRunsToClose(r));
    this.c.resume();
    this.pump();
  }

  /** An allowed upgrade answered 101: from now on the bytes pass both ways unparsed. */
  private splice(x: Exchange): void {
    this.tunnel = true;
    this.upReusable = false;
    this.event(x, 'FORWARDED', 101, []);
    this.x = undefined;
    const up = this.up!;
    if (this.buf.length) up.write(this.buf);
    this.buf = Buffer.alloc(0);
    this.c.removeAllListeners('data');
    this.c.on('data', (d: Buffer) => {
      if (!up.write(d)) {
        this.c.pause();
        up.once('drain', () => this.c.resume());
      }
    });
    this.c.resume();
  }

  private event(x: Exchange, verdict: L7HttpEvent['verdict'], code: number, resHeaders: readonly string[]): void {
    const v = x.verdict;
    this.o.onEvent({
      time: new Date().toISOString(),
      source: this.client,
      destination: this.destination,
      srcIdentity: v.srcIdentity ?? 0,
      dstIdentity: v.dstIdentity ?? 0,
      ...(v.src ? { srcEndpoint: v.src.name } : {}),
      ...(v.dst ? { dstEndpoint: v.dst.name } : {}),
      verdict,
      method: x.method,
      url: x.path,
      host: x.host,
      protocol: `HTTP/${x.head.start[2]}`,
      code,
      latencyNs: Number(process.hrtime.bigint() - x.t0),
      requestHeaders: redact(x.head.rawHeaders, this.o.redactHeaders),
      responseHeaders: redact(resHeaders, this.o.redactHeaders),
      rules: v.rules ?? [],
      reason: v.reason ?? '',
    });
  }
}

function responseRunsToClose(r: NonNullable<Exchange['response']>): boolean {
  return responseFraming('GET', r.status, r.head.rawHeaders).kind === 'close';
}

export function createHttpProxy(o: HttpProxyOptions): HttpProxyServer {
  const conns = new Set<Connection>();
  const pool = new UpstreamPool();
  // Half-open allowed: a client that half-closes after its request still gets the response.
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const c = new Connection(s, o, pool);
    conns.add(c);
    s.once('close', () => conns.delete(c));
  }) as HttpProxyServer;
  server.closeAllConnections = () => {
    for (const c of conns) c.destroy();
    pool.clear();
  };
  server.on('close', () => pool.clear());
  server.closeIdleConnections = () => {
    for (const c of conns) if (c.idle) c.destroy();
  };
  return server;
}
