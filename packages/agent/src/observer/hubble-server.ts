/**
 * Hubble's Observer and Peer gRPC services on 127.0.0.1 (default port 4245,
 * Hubble's), served with Connect speaking the gRPC protocol over HTTP/2
 * without TLS, as a Hubble server does on its local port: the hubble CLI
 * (`hubble observe --server 127.0.0.1:4245`), Hubble Relay and Hubble UI's
 * backend talk to it unchanged.
 *
 *   GetFlows        flow-query.ts semantics; filters compiled once (a bad
 *                   one is InvalidArgument naming the field); lost events
 *                   in-band as GetFlowsResponse.lost_events — written by
 *                   getflows-stream.ts, straight from the ring into wire
 *                   bytes, on the same HTTP/2 server;
 *   ServerStatus    the ring's num/max/seen flows and the uptime;
 *   GetNodes        this node; GetNamespaces: the namespaces seen in flows;
 *   Peer.Notify     this node as PEER_ADDED, then nothing until the client goes.
 * A client that goes away mid-stream ends its stream (the signal aborts the
 * query, which unsubscribes): nothing is left behind.
 */
import { createServer, type Http2Server } from 'node:http2';
import { create } from '@bufbuild/protobuf';
import { type ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { listenTcp } from '../listen.js';
import type { Observer } from '@membrane/observer';
import { observer as obs, peer, relay } from '@membrane/proto';
import { isGetFlows, serveGetFlows } from './getflows-stream.js';

export interface HubbleServerOptions {
  observer: () => Observer;
  nodeName: string;
  version: string;
  address: string;
  port: number;
}

export class HubbleServer {
  private server?: Http2Server;
  private readonly sessions = new Set<import('node:http2').ServerHttp2Session>();
  port = 0;

  constructor(private readonly o: HubbleServerOptions) {}

  async start(): Promise<void> {
    const handler = connectNodeAdapter({ routes: (r) => this.routes(r), grpc: true, grpcWeb: false, connect: false });
    const flows = { observer: this.o.observer, nodeName: this.o.nodeName };
    const server = createServer((req, res) => {
      if (isGetFlows(req)) void serveGetFlows(req, res, flows);
      else handler(req, res);
    });
    server.on('session', (s) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
    });
    this.port = await listenTcp(server, this.o.port, this.o.address, "Hubble's Observer API");
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private routes(router: ConnectRouter): void {
    const o = this.o;
    const address = () => `${o.address}:${this.port}`;
    router.service(obs.Observer, {
      serverStatus() {
        const s = o.observer().status();
        return create(obs.ServerStatusResponseSchema, {
          numFlows: BigInt(s.flows),
          maxFlows: BigInt(s.bufferSize),
          seenFlows: BigInt(s.flowsSeen),
          uptimeNs: BigInt(Date.now() - s.startedAt) * 1_000_000n,
          numConnectedNodes: 1,
          numUnavailableNodes: 0,
          version: o.version,
        });
      },
      getNodes() {
        const s = o.observer().status();
        return create(obs.GetNodesResponseSchema, {
          nodes: [{ name: o.nodeName, version: o.version, address: address(), state: relay.NodeState.NODE_CONNECTED, uptimeNs: BigInt(Date.now() - s.startedAt) * 1_000_000n, numFlows: BigInt(s.flows), maxFlows: BigInt(s.bufferSize), seenFlows: BigInt(s.flowsSeen) }],
        });
      },
      getNamespaces() {
        const seen = o.observer().namespaces();
        return create(obs.GetNamespacesResponseSchema, { namespaces: [...seen].sort().map((namespace) => ({ cluster: 'default', namespace })) });
      },
    });
    router.service(peer.Peer, {
      async *notify(_req, ctx) {
        yield create(peer.ChangeNotificationSchema, { name: o.nodeName, address: address(), type: peer.ChangeNotificationType.PEER_ADDED });
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      },
    });
  }
}

