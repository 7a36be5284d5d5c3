/**
 * The Death Star of the Star Wars demo: a small HTTP server that answers as
 * the one in Cilium's getting-started guide does, so the guide's commands
 * show what its readers expect.
 *   POST /v1/request-landing   200 "Ship landed"
 *   PUT  /v1/exhaust-port      500 "Panic: deathstar exploded" and a stack
 *   GET  /v1/ (or /v1)         200 a JSON description of the station and its API
 *   GET  /v1/healthz           200 "ok" (the readiness probe)
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';

export const EXPLOSION = `Panic: deathstar exploded

goroutine 1 [running]:
main.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)
        /code/src/github.com/empire/deathstar/
        temp/main.go:9 +0x64
main.main()
        /code/src/github.com/empire/deathstar/
        temp/main.go:5 +0x85
`;

function description(): string {
  return (
    JSON.stringify({
      name: 'Death Star',
      hostname: process.env['POD_NAME'] ?? hostname(),
      model: 'DS-1 Orbital Battle Station',
      manufacturer: 'Imperial Department of Military Research, Sienar Fleet Systems',
      cost_in_credits: '1000000000000',
      length: '120000',
      crew: '342953',
      passengers: '843342',
      cargo_capacity: '1000000000000',
      hyperdrive_rating: '4.0',
      starship_class: 'Deep Space Mobile Battlestation',
      api: ['GET   /v1', 'GET   /v1/healthz', 'POST  /v1/request-landing', 'PUT   /v1/cargobay', 'GET   /v1/hyper-matter-reactor/status', 'PUT   /v1/exhaust-port'],
    }) + '\n'
  );
}

export function deathstar(log: (line: string) => void = () => {}): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: string, type = 'text/plain') => {
      res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      // One line per request (the pod's log): who asked what, and the answer.
      if (path !== '/v1/healthz') log(`${new Date().toISOString()} ${req.socket.remoteAddress?.replace(/^::ffff:/, '')} ${req.method} ${path} ${code}\n`);
    };
    // Drain the request body (a landing request may carry one).
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && path === '/v1/request-landing') return send(200, 'Ship landed\n');
      if (req.method === 'PUT' && path === '/v1/exhaust-port') return send(500, EXPLOSION);
      if (req.method === 'GET' && (path === '/v1' || path === '/v1/')) return send(200, description(), 'application/json');
      if (req.method === 'GET' && path === '/v1/healthz') return send(200, 'ok\n');
      if (req.method === 'GET' && path === '/v1/hyper-matter-reactor/status') return send(200, 'Hyper-matter reactor: nominal\n');
      if (req.method === 'PUT' && path === '/v1/cargobay') return send(200, 'Cargo stowed\n');
      send(404, 'Not Found\n');
    });
  });
}

/** `membrane demo deathstar-server [--port 80]`: serve until SIGTERM. */
export async function serveDeathstar(port: number, log: (s: string) => void): Promise<number> {
  const server = deathstar(log);
  // Long-lived client connections stay open between requests (Node's default closes them after 5 s idle).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  log(`deathstar listening on :${port}\n`);
  return new Promise((resolve) => {
    const stop = () => server.close(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
