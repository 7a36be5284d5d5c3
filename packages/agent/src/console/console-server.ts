/**
 * The web console's server (packages/ui, built by Vite into dist-web), on
 * 127.0.0.1 (MEMBRANE_UI_PORT, default 12000; `membrane ui` prints its URL).
 *
 * Safety, since a browser is a confused deputy waiting to happen:
 *   - every request needs the session token: the URL `membrane ui` prints
 *     carries it once (`/?token=…`), the server answers with a cookie
 *     (HttpOnly, SameSite=Strict) and sends the browser to a URL without
 *     it; a request without a valid cookie gets 401 and a sentence saying
 *     how to get a new link (a stale token is told so);
 *   - the Host header must name this server by loopback address or
 *     `localhost` (no DNS rebinding), a change (POST) must come from this
 *     origin with a JSON body, and no CORS header is ever sent;
 *   - a strict Content-Security-Policy (scripts, styles and connections
 *     only from this origin, no frames, no inline script; the editor's
 *     generated styles carry a nonce made for each page), nosniff, no
 *     referrer; the UI renders every flow field as text.
 * The API is a read-mostly subset of the agent's routes under /api (the
 * same handlers, so an apply from the console is the same all-or-nothing
 * apply as `membrane apply`), and live flows as server-sent events.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiErrorBody } from '@membrane/api';
import { dispatch, type Route } from '../api/http-api.js';
import { closeServer, listenTcp } from '../listen.js';

export const SESSION_COOKIE = 'mbr_console';

/** The policy; the page's own styles (the editor's) carry a nonce made for each page load. */
export function contentSecurityPolicy(styleNonce?: string): string {
  return [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self'${styleNonce ? ` 'nonce-${styleNonce}'` : ''}`,
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  ].join('; ');
}

export const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

export const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

export interface ConsoleServerOptions {
  address: string;
  port: number;
  /** The session token (read when asked: `membrane ui --new-token` changes it). */
  token: () => string;
  /** The agent routes the console may use, mounted under /api. */
  routes: readonly Route[];
  /** The built console (index.html and assets); absent: a page says how to build it. */
  webRoot: string;
}

function tokenEquals(got: string | undefined, want: string): boolean {
  if (!got || !want) return false;
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

const STALE = 'This console link is not valid (the session token is missing, stale or changed). Run `membrane ui` on the machine for a new link.';

export class ConsoleServer {
  private server?: Server;
  port = 0;

  constructor(private readonly o: ConsoleServerOptions) {}

  /** The URL to open: with the session token, which the server turns into a cookie. */
  url(): string {
    return `http://${this.o.address}:${this.port}/?token=${encodeURIComponent(this.o.token())}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.json(res, 500, { error: { code: 'MEMBRANE_E_INTERNAL', message: e instanceof Error ? e.message : String(e) } });
        else res.destroy();
      });
    });
    this.port = await listenTcp(this.server, this.o.port, this.o.address, 'the console');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private refuse(res: ServerResponse, status: number, message: string, api: boolean): void {
    if (api) return this.json(res, status, { error: { code: status === 401 ? 'MEMBRANE_E_SESSION' : 'MEMBRANE_E_USAGE', message } } satisfies ApiErrorBody);
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${message}\n`);
  }

  /** Host must be this server by a loopback name (a rebinding DNS name is refused). */
  private hostAllowed(req: IncomingMessage): boolean {
    const host = (req.headers.host ?? '').toLowerCase();
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`, `${this.o.address}:${this.port}`].includes(host);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console');
    const api = url.pathname.startsWith('/api/');
    if (!this.hostAllowed(req)) return this.refuse(res, 421, `the console answers only as http://127.0.0.1:${this.port} (Host: ${req.headers.host ?? 'none'})`, api);
    if (req.method === 'OPTIONS') return this.refuse(res, 405, 'cross-origin requests are not served', api);
    // The link's token becomes the session cookie, and leaves the address bar.
    const offered = url.searchParams.get('token');
    if (url.pathname === '/' && offered !== null) {
      if (!tokenEquals(offered, this.o.token())) return this.refuse(res, 401, STALE, false);
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': `${SESSION_COOKIE}=${encodeURIComponent(offered)}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (!tokenEquals(cookie(req, SESSION_COOKIE), this.o.token())) return this.refuse(res, 401, STALE, api);
    if (api) return this.api(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.refuse(res, 405, `${req.method} is not served here`, false);
    this.asset(res, url.pathname);
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) return this.refuse(res, 403, `a change must come from the console itself (Origin: ${origin})`, true);
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return this.refuse(res, 415, 'a change is a JSON body (content-type: application/json)', true);
    }
    await dispatch(this.o.routes, req, res, url.pathname.slice('/api'.length), url.searchParams, SECURITY_HEADERS);
  }

  private asset(res: ServerResponse, pathname: string): void {
    const root = resolve(this.o.webRoot);
    const index = join(root, 'index.html');
    if (!existsSync(index)) return this.refuse(res, 503, `the console is not built (no ${index}): run npm run build`, false);
    let file = normalize(join(root, decodeURIComponent(pathname)));
    if (file !== root && !file.startsWith(root + sep)) return this.refuse(res, 404, 'not found', false);
    // Client-side routes (/flows, /policies/…) are the app's.
    if (!existsSync(file) || statSync(file).isDirectory()) file = index;
    if (file === index) {
      // The page learns its style nonce from a meta element (CodeMirror puts it on the styles it makes).
      const nonce = randomBytes(16).toString('base64');
      const html = readFileSync(index, 'utf8').replace('<head>', `<head>\n    <meta name="membrane-style-nonce" content="${nonce}" />`);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-security-policy': contentSecurityPolicy(nonce), 'content-type': TYPES['.html']!, 'cache-control': 'no-store' });
      res.end(html);
      return;
    }
    const immutable = file.includes(`${sep}assets${sep}`);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': immutable ? 'max-age=31536000, immutable' : 'no-store' });
    res.end(readFileSync(file));
  }
}
