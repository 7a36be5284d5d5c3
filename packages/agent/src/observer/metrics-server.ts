/**
 * Hubble's metrics for Prometheus: `GET /metrics` on 127.0.0.1 (Hubble's
 * port 9965 by default), the observer's FlowMetrics in the text format.
 */
import { createServer, type Server } from 'node:http';
import type { FlowMetrics } from '@membrane/observer';
import { closeServer, listenTcp } from '../listen.js';

export class MetricsServer {
  private server?: Server;
  port = 0;

  constructor(private readonly o: { metrics: () => FlowMetrics; address: string; port: number }) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      const m = this.o.metrics();
      m.text().then(
        (text) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e instanceof Error ? e.message : String(e)}\n`),
      );
    });
    this.port = await listenTcp(server, this.o.port, this.o.address, 'metrics');
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }
}
