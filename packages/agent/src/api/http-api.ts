/**
 * The agent's API server: JSON over HTTP on a root-only unix socket (mode
 * 0600) and on 127.0.0.1 for the console. Over TCP every request needs the
 * agent's token (Authorization: Bearer): reads return objects, pod logs and
 * the state directory, which are no one else's business; the socket's file
 * mode is its own authentication.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { MembraneError, type ApiErrorBody } from '@membrane/api';
import { closeServer, listenTcp } from '../listen.js';

export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  raw: IncomingMessage;
  res: ServerResponse;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** `/v1/pods/:namespace/:name` style. */
  path: string;
  /** Returns the JSON body; or undefined when the handler wrote the response itself (streams). */
  handler: (req: ApiRequest) => unknown | Promise<unknown>;
}

const STATUS: Record<string, number> = {
  MEMBRANE_E_YAML: 400,
  MEMBRANE_E_MANIFEST_INVALID: 400,
  MEMBRANE_E_POLICY_INVALID: 400,
  MEMBRANE_E_USAGE: 400,
  MEMBRANE_E_SCENARIO_INVALID: 400,
  MEMBRANE_E_NOT_FOUND: 404,
  MEMBRANE_E_CONFLICT: 409,
  MEMBRANE_E_IP_EXHAUSTED: 409,
};

/** Constant-time comparison of the bearer token. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const want = Buffer.from(`Bearer ${token}`);
  const got = Buffer.from(header ?? '');
  return got.length === want.length && timingSafeEqual(got, want);
}

function match(pattern: string, path: string): Record<string, string> | undefined {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.startsWith(':')) params[a[i]!.slice(1)] = decodeURIComponent(b[i]!);
    else if (a[i] !== b[i]) return undefined;
  }
  return params;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024 * 1024) throw new MembraneError('MEMBRANE_E_USAGE', 'request body over 64 MiB');
    chunks.push(c as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new MembraneError('MEMBRANE_E_USAGE', 'request body is not JSON');
  }
}

/**
 * Answers one request with the first route that matches: its JSON, or an
 * error body whose status says what kind of error (the console's server
 * mounts the same routes, with its own headers).
 */
export async function dispatch(routes: readonly Route[], req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string> = {}): Promise<void> {
  const send = (status: number, body: unknown) => {
    if (res.headersSent) return res.end();
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  try {
    for (const r of routes) {
      if (r.method !== req.method) continue;
      const params = match(r.path, path);
      if (!params) continue;
      const body = req.method === 'GET' ? undefined : await readBody(req);
      const out = await r.handler({ method: req.method, path, params, query, body, raw: req, res });
      if (out !== undefined) send(200, out);
      return;
    }
    send(404, { error: { code: 'MEMBRANE_E_NOT_FOUND', message: `no API route ${req.method} ${path}` } } satisfies ApiErrorBody);
  } catch (e) {
    if (e instanceof MembraneError) send(STATUS[e.code] ?? 500, { error: { code: e.code, message: e.message, ...(e.details.length > 1 ? { details: [...e.details] } : {}) } } satisfies ApiErrorBody);
    else send(500, { error: { code: 'MEMBRANE_E_INTERNAL', message: e instanceof Error ? e.message : String(e) } } satisfies ApiErrorBody);
  }
}

export class ApiServer {
  private unix?: Server;
  private tcp?: Server;
  port = 0;

  constructor(
    private readonly routes: readonly Route[],
    private readonly opts: { socketPath: string; port: number; token: string },
  ) {}

  private async handle(req: IncomingMessage, res: ServerResponse, trusted: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (!trusted && !tokenMatches(req.headers.authorization, this.opts.token)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'MEMBRANE_E_USAGE', message: 'requests over TCP need the agent token (Authorization: Bearer <token>, in the token file of the state directory)' } } satisfies ApiErrorBody));
      return;
    }
    await dispatch(this.routes, req, res, url.pathname, url.searchParams);
  }

  async start(): Promise<void> {
    // A socket file left by an agent that died is stale: nobody answers on it.
    if (existsSync(this.opts.socketPath)) {
      if (await socketAnswers(this.opts.socketPath)) throw new Error(`another agent is serving ${this.opts.socketPath}`);
      unlinkSync(this.opts.socketPath);
    }
    this.unix = createServer((q, s) => this.handle(q, s, true).catch(() => s.destroy()));
    await new Promise<void>((resolve, reject) => {
      this.unix!.once('error', reject);
      this.unix!.listen(this.opts.socketPath, () => resolve());
    });
    chmodSync(this.opts.socketPath, 0o600);
    this.tcp = createServer((q, s) => this.handle(q, s, false).catch(() => s.destroy()));
    this.port = await listenTcp(this.tcp, this.opts.port, '127.0.0.1', 'the API');
  }

  async stop(): Promise<void> {
    for (const s of [this.tcp, this.unix]) await closeServer(s);
    if (existsSync(this.opts.socketPath)) unlinkSync(this.opts.socketPath);
  }
}

/** Does an agent answer on this socket? */
export function socketAnswers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const r = request({ socketPath, path: '/v1/status', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(true);
    });
    r.on('error', () => resolve(false));
    r.on('timeout', () => {
      r.destroy();
      resolve(false);
    });
    r.end();
  });
}
