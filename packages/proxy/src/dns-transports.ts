/**
 * The DNS proxy's sockets: the queries the datapath assigns to its port
 * arrive over UDP (a transparent UDP socket that reads each datagram's
 * original destination) and over TCP (a transparent listener: an accepted
 * connection's local address is the server the client asked). Each query
 * is judged by DnsProxy; an allowed one goes to the server the client asked
 * over the same protocol, from the client's own address when that server is
 * a local endpoint (its ingress policy sees the client, as without the
 * proxy), from the host otherwise; the answer goes back from the address
 * and port the client sent its query to.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { TransparentUdpSocket, connectTransparent, listenTransparent, sendUdpFrom, transparentUpstream, type UdpDatagram } from '@membrane/datapath';
import type { DnsProxy, DnsQueryContext } from './dns-proxy.js';

export interface DnsProxyServerOptions {
  /** The proxy's address (127.0.0.1) and port, which the DNS entries name. */
  address: string;
  port: number;
  proxy: DnsProxy;
  /** Whether ip is a local endpoint (a pod of this node): the upstream then leaves from the client's address. */
  isLocalEndpoint: (ip: string) => boolean;
  /** How long a server has to answer (default 3 s; then SERVFAIL). */
  timeoutMs?: number;
  /** Told of what failed without a client to tell (a send that the kernel refused). */
  problem?: (what: string) => void;
}

const MAX_UDP_QUERY = 4096;
const MAX_TCP_MESSAGE = 65535;
const TCP_IDLE_MS = 10_000;

/** Splits a TCP stream into DNS messages (two-byte length prefix). */
class Frames {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.buf.length >= 2) {
      const len = this.buf.readUInt16BE(0);
      if (this.buf.length < 2 + len) break;
      out.push(this.buf.subarray(2, 2 + len));
      this.buf = this.buf.subarray(2 + len);
    }
    return out;
  }
}

function framed(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(Math.min(msg.length, MAX_TCP_MESSAGE));
  return Buffer.concat([len, msg.subarray(0, MAX_TCP_MESSAGE)]);
}

export class DnsProxyServer {
  private udp?: TransparentUdpSocket;
  private tcp?: Server;
  private readonly connections = new Set<Socket>();
  private readonly timeoutMs: number;

  constructor(private readonly o: DnsProxyServerOptions) {
    this.timeoutMs = o.timeoutMs ?? 3000;
  }

  get port(): number {
    return this.udp?.port ?? this.o.port;
  }

  async start(): Promise<void> {
    this.udp = new TransparentUdpSocket({ address: this.o.address, port: this.o.port }, (d) => this.onDatagram(d));
    const tcp = (this.tcp = createServer((c) => this.onConnection(c)));
    tcp.on('error', (e) => this.o.problem?.(`DNS proxy (TCP): ${e.message}`));
    try {
      await listenTransparent(tcp, { address: this.o.address, port: this.udp.port });
    } catch (e) {
      this.udp.close();
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.udp?.close();
    this.udp = undefined;
    for (const c of this.connections) c.destroy();
    const tcp = this.tcp;
    this.tcp = undefined;
    if (tcp?.listening) await new Promise<void>((r) => tcp.close(() => r()));
  }

  private onDatagram(d: UdpDatagram): void {
    if (d.data.length > MAX_UDP_QUERY) return;
    const ctx: DnsQueryContext = { client: { ip: d.address, port: d.port }, server: { ip: d.destAddress, port: d.destPort }, protocol: 'udp' };
    void this.o.proxy.handle(ctx, d.data).then((answer) => {
      if (!answer) return;
      try {
        sendUdpFrom({ address: ctx.server.ip, port: ctx.server.port }, { address: ctx.client.ip, port: ctx.client.port }, answer);
      } catch (e) {
        this.o.problem?.(`DNS proxy: answer to ${ctx.client.ip}:${ctx.client.port}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  private onConnection(c: Socket): void {
    this.connections.add(c);
    c.on('close', () => this.connections.delete(c));
    c.on('error', () => c.destroy());
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    const ctx: DnsQueryContext = { client: { ip: c.remoteAddress!, port: c.remotePort! }, server: { ip: c.localAddress!, port: c.localPort! }, protocol: 'tcp' };
    const frames = new Frames();
    c.on('data', (chunk: Buffer) => {
      for (const msg of frames.push(chunk)) {
        void this.o.proxy.handle(ctx, msg).then((answer) => {
          if (answer && !c.destroyed) c.write(framed(answer));
        });
      }
    });
  }

  /** DnsProxyDeps.forward: the query to the server the client asked, over the protocol it used. */
  forward = (ctx: DnsQueryContext, query: Buffer): Promise<Buffer> => (ctx.protocol === 'udp' ? this.forwardUdp(ctx, query) : this.forwardTcp(ctx, query));

  private forwardUdp(ctx: DnsQueryContext, query: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const { ip, port } = ctx.server;
      let close = () => {};
      const timer = setTimeout(() => done(new Error(`${ip}:${port} did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      let settled = false;
      const done = (r: Buffer | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        close();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const onAnswer = (data: Buffer, from: { address: string; port: number }) => {
        if (from.address === ip && from.port === port) done(data);
      };
      try {
        if (this.o.isLocalEndpoint(ip)) {
          const up = transparentUpstream(ctx.client.ip, (d) => onAnswer(d.data, d));
          close = () => up.close();
          up.send(query, ip, port);
        } else {
          const up: UdpSocket = createSocket('udp4');
          close = () => up.close();
          up.on('message', (data, r) => onAnswer(data, r));
          up.on('error', (e) => done(e));
          up.send(query, port, ip);
        }
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private forwardTcp(ctx: DnsQueryContext, query: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const { ip, port } = ctx.server;
      let up: Socket;
      try {
        up = this.o.isLocalEndpoint(ip) ? connectTransparent({ source: ctx.client.ip, host: ip, port }) : connect(port, ip);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const timer = setTimeout(() => done(new Error(`${ip}:${port} did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      let settled = false;
      const done = (r: Buffer | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        up.destroy();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const frames = new Frames();
      up.on('connect', () => up.write(framed(query)));
      up.on('data', (chunk: Buffer) => {
        const [answer] = frames.push(chunk);
        if (answer) done(answer);
      });
      up.on('error', (e) => done(e));
      up.on('end', () => done(new Error(`${ip}:${port} closed the connection without an answer`)));
    });
  }
}
