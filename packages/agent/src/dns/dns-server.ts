/**
 * The cluster DNS server (UDP and TCP on one address, port 53): cluster
 * names answered from the agent's view of Services and pods (lookupCluster),
 * every other name forwarded to the host's resolvers. Messages are read and
 * written with dns-packet.
 *
 * Robustness, since any pod can send it anything:
 *   - a message that does not decode gets FORMERR when its header can be
 *     read, and is dropped otherwise; a response (QR set) sent to the server
 *     is dropped (no reflection loops between resolvers);
 *   - one question per query (else FORMERR), opcode QUERY only (else
 *     NOTIMP), UDP queries over 4096 bytes and TCP messages over 65535 are
 *     refused, a TCP connection idle for 10 s is closed;
 *   - forwarded queries go over UDP (again over TCP when the upstream
 *     truncates an answer a TCP client asked for) and carry ids of their own, an answer is accepted only
 *     from the upstream asked, with that id and the same question, and one
 *     that does not decode becomes SERVFAIL, as does an upstream that does
 *     not answer within the timeout; the number of queries in flight is
 *     bounded (SERVFAIL beyond), and an upstream that is the server itself
 *     is never used;
 *   - a UDP answer longer than the client can take (512 bytes, or its EDNS
 *     size) is sent truncated (TC) so that the client asks again over TCP.
 * No failure of one message stops the server.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket, connect } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { lookupCluster, type ClusterView } from './cluster-names.js';

export interface DnsServerOptions {
  address: string;
  port?: number;
  /** The current cluster names (read on every query). */
  view: () => ClusterView;
  /** `ip` or `ip:port` of the resolvers other names go to. */
  upstreams: readonly string[];
  ttl?: number;
  timeoutMs?: number;
  maxInflight?: number;
}

export interface DnsStats {
  queries: number;
  cluster: number;
  forwarded: number;
  nxdomain: number;
  servfail: number;
  formerr: number;
  dropped: number;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const MAX_UDP_QUERY = 4096;
const TCP_IDLE_MS = 10_000;

interface Pending {
  reply: (msg: Buffer) => void;
  query: dnsPacket.DecodedPacket;
  timer: NodeJS.Timeout;
  upstream: { host: string; port: number };
  udpLimit: number;
  /** The client asked over TCP: a truncated upstream answer is asked again over TCP. */
  tcpClient: boolean;
  wire: Buffer;
}

function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`DNS upstream "${s}": not an IPv4 address (with an optional :port)`);
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 53 };
}

/** The largest UDP answer a query accepts: its EDNS payload size, else 512. */
function udpLimitOf(q: dnsPacket.DecodedPacket): number {
  const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return Math.max(512, Math.min(opt?.udpPayloadSize ?? 512, 4096));
}

export class DnsServer {
  readonly stats: DnsStats = { queries: 0, cluster: 0, forwarded: 0, nxdomain: 0, servfail: 0, formerr: 0, dropped: 0 };
  private udp?: Socket;
  private tcp?: Server;
  private upstreamSock?: Socket;
  private readonly tcpClients = new Set<TcpSocket>();
  private readonly pending = new Map<number, Pending>();
  /**
   * Answers to cluster names by the query's bytes after its id: the same
   * bytes under the same view always get the same answer, so a repeated
   * query is answered by copying (its own id written in) without decoding
   * or encoding again. Emptied when the view changes or it grows too big.
   */
  private readonly answers = new Map<string, Buffer>();
  private answersView?: ClusterView;
  private nextId = Math.floor(Math.random() * 65536);
  private readonly upstreams: { host: string; port: number }[];
  private port: number;
  private readonly ttl: number;
  private readonly timeoutMs: number;
  private readonly maxInflight: number;

  constructor(private readonly opts: DnsServerOptions) {
    this.port = opts.port ?? 53;
    this.ttl = opts.ttl ?? 5;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxInflight = opts.maxInflight ?? 4096;
    // Never ourselves: a query forwarded to this server would come back forever.
    this.upstreams = opts.upstreams.map(parseHostPort).filter((u) => !(u.host === opts.address && u.port === this.port));
  }

  get address(): string {
    return this.opts.address;
  }

  /** The port it serves on (the one given, or the one the kernel chose for 0). */
  get boundPort(): number {
    return this.port;
  }

  async start(): Promise<void> {
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo));
    udp.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.port, this.opts.address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    // Port 0 (tests): TCP takes the port UDP was given.
    this.port = udp.address().port;
    const up = createSocket('udp4');
    up.on('message', (msg, rinfo) => this.onUpstream(msg, rinfo));
    up.on('error', () => undefined);
    await new Promise<void>((resolve) => up.bind(0, () => resolve()));
    this.upstreamSock = up;
    const tcp = createServer((s) => this.onTcp(s));
    tcp.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.port, this.opts.address, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const s of this.tcpClients) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.upstreamSock ? this.upstreamSock.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
  }

  // ---- transports ------------------------------------------------------------------------

  private onUdp(msg: Buffer, rinfo: RemoteInfo): void {
    const send = (b: Buffer) => this.udp?.send(b, rinfo.port, rinfo.address);
    if (msg.length > MAX_UDP_QUERY) return void this.stats.dropped++;
    this.handle(msg, send, true);
  }

  private onTcp(s: TcpSocket): void {
    this.tcpClients.add(s);
    s.setTimeout(TCP_IDLE_MS, () => s.destroy());
    s.on('close', () => this.tcpClients.delete(s));
    s.on('error', () => s.destroy());
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < 12) {
          this.stats.dropped++;
          s.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        this.handle(msg, (out) => {
          if (s.destroyed) return;
          const framed = Buffer.alloc(2 + out.length);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          s.write(framed);
        }, false);
      }
    });
  }

  // ---- one query ---------------------------------------------------------------------------

  private handle(msg: Buffer, reply: (b: Buffer) => void, udp: boolean): void {
    this.stats.queries++;
    const view = this.opts.view();
    if (view !== this.answersView || this.answers.size > 10_000) {
      this.answers.clear();
      this.answersView = view;
    }
    const key = msg.length <= 512 ? `${udp ? 'u' : 't'}${msg.toString('latin1', 2)}` : undefined;
    const known = key !== undefined ? this.answers.get(key) : undefined;
    if (known) {
      this.stats.cluster++;
      const out = Buffer.from(known);
      msg.copy(out, 0, 0, 2);
      reply(out);
      return;
    }
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      if (msg.length >= 12 && (msg[2]! & 0x80) === 0) this.error(reply, msg.readUInt16BE(0), [], RCODE.FORMERR);
      else this.stats.dropped++;
      return;
    }
    if (q.type === 'response') return void this.stats.dropped++;
    const questions = q.questions ?? [];
    if (((q.flags ?? 0) >> 11) & 0xf) return this.error(reply, q.id ?? 0, questions, RCODE.NOTIMP);
    if (questions.length !== 1) return this.error(reply, q.id ?? 0, [], RCODE.FORMERR);
    const question = questions[0]!;
    const limit = udp ? udpLimitOf(q) : 65535;
    let answer;
    try {
      answer = lookupCluster(view, question.name, question.type);
    } catch {
      return this.error(reply, q.id ?? 0, questions, RCODE.SERVFAIL);
    }
    if (answer.kind === 'forward') return this.forward(q, reply, udp, limit);
    this.stats.cluster++;
    if (answer.kind === 'nxdomain') this.stats.nxdomain++;
    const rcode = answer.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
    const answers = answer.kind === 'records' ? answer.a.map((ip) => ({ type: 'A' as const, name: question.name, ttl: this.ttl, class: 'IN' as const, data: ip })) : [];
    this.respond(key === undefined ? reply : (b) => (this.answers.set(key, b), reply(b)), {
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (q.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions,
      answers,
    }, limit);
  }

  private respond(reply: (b: Buffer) => void, p: dnsPacket.Packet, limit: number): void {
    let out: Buffer;
    try {
      out = dnsPacket.encode(p);
    } catch {
      return this.error(reply, p.id ?? 0, [], RCODE.SERVFAIL);
    }
    if (out.length > limit) {
      // Too long for the client's UDP: truncated, so it asks again over TCP.
      out = dnsPacket.encode({ ...p, flags: (p.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [], additionals: [] });
    }
    reply(out);
  }

  private error(reply: (b: Buffer) => void, id: number, questions: dnsPacket.Question[], rcode: number): void {
    if (rcode === RCODE.FORMERR) this.stats.formerr++;
    if (rcode === RCODE.SERVFAIL) this.stats.servfail++;
    try {
      reply(dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions }));
    } catch {
      try {
        reply(dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions: [] }));
      } catch {
        this.stats.dropped++;
      }
    }
  }

  // ---- forwarding --------------------------------------------------------------------------

  private forward(q: dnsPacket.DecodedPacket, reply: (b: Buffer) => void, udp: boolean, limit: number): void {
    const upstream = this.upstreams[0];
    if (!upstream || this.pending.size >= this.maxInflight) return this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.SERVFAIL);
    this.stats.forwarded++;
    let id = this.nextId;
    for (let i = 0; this.pending.has(id) && i < 65536; i++) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    let out: Buffer;
    try {
      out = dnsPacket.encode({ ...q, type: 'query', id });
    } catch {
      return this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.FORMERR);
    }
    const timer = setTimeout(() => {
      this.pending.delete(id);
      this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.SERVFAIL);
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(id, { reply, query: q, timer, upstream, udpLimit: limit, tcpClient: !udp, wire: out });
    this.upstreamSock?.send(out, upstream.port, upstream.host);
  }

  private onUpstream(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const p = this.pending.get(id);
    // Only the upstream asked, with the id it was given, answers a query.
    if (!p || rinfo.address !== p.upstream.host || rinfo.port !== p.upstream.port) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.tcpClient && msg.length >= 4 && msg[2]! & 0x02) return this.forwardTcp(p.query, p.wire, p.reply, p.upstream);
    this.relay(p.query, msg, p.reply, p.udpLimit);
  }

  private forwardTcp(q: dnsPacket.DecodedPacket, out: Buffer, reply: (b: Buffer) => void, upstream: { host: string; port: number }): void {
    const s = connect({ host: upstream.host, port: upstream.port });
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (answer?: Buffer) => {
      if (done) return;
      done = true;
      s.destroy();
      if (answer) this.relay(q, answer, reply, 65535);
      else this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.SERVFAIL);
    };
    s.setTimeout(this.timeoutMs, () => finish());
    s.on('error', () => finish());
    s.on('close', () => finish());
    s.on('connect', () => {
      const framed = Buffer.alloc(2 + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, 2);
      s.write(framed);
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
  }

  /** An upstream answer back to the client, checked and with the client's id. */
  private relay(q: dnsPacket.DecodedPacket, msg: Buffer, reply: (b: Buffer) => void, limit: number): void {
    let a: dnsPacket.DecodedPacket;
    try {
      a = dnsPacket.decode(msg);
    } catch {
      return this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.SERVFAIL);
    }
    const want = q.questions?.[0];
    const got = a.questions?.[0];
    if (a.type !== 'response' || !want || !got || got.name.toLowerCase() !== want.name.toLowerCase() || got.type !== want.type) {
      return this.error(reply, q.id ?? 0, q.questions ?? [], RCODE.SERVFAIL);
    }
    if (((a.flags ?? 0) & 0xf) === RCODE.NXDOMAIN) this.stats.nxdomain++;
    this.respond(reply, { ...a, id: q.id ?? 0 }, limit);
  }
}
