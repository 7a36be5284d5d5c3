// The console's server, as a browser (and an attacker's page) meets it:
// the token link becomes a cookie; nothing is read or changed without it;
// a stale token is told so; Host, Origin and content type are checked; no
// CORS; a strict CSP with a per-page style nonce; no path escapes the web
// root.
import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Route } from '../api/http-api.js';
import { ConsoleServer, SESSION_COOKIE } from './console-server.js';

function http(port: number, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...o.headers } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end(o.body);
  });
}

test('the console server: token → cookie, every request needs it, CSP, no CORS, Host/Origin checks, no path escape', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'mbr-console-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'web');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><html><head><title>x</title></head><body></body></html>');
  writeFileSync(join(root, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(base, 'secret.txt'), 'nope');
  let token = 'tok-1';
  const applied: unknown[] = [];
  const routes: Route[] = [
    { method: 'GET', path: '/v1/status', handler: () => ({ ok: true }) },
    { method: 'POST', path: '/v1/apply', handler: (r) => (applied.push(r.body), { results: [] }) },
  ];
  const s = new ConsoleServer({ address: '127.0.0.1', port: 0, token: () => token, routes, webRoot: root });
  await s.start();
  t.after(() => s.stop());
  const p = s.port;
  assert.equal(s.url(), `http://127.0.0.1:${p}/?token=tok-1`);

  // Without the cookie: nothing, and a sentence saying how to get a link.
  for (const path of ['/', '/assets/app.js', '/api/v1/status']) {
    const r = await http(p, path);
    assert.equal(r.status, 401, path);
    assert.match(r.body, /membrane ui/);
  }
  assert.equal((await http(p, '/?token=wrong')).status, 401);
  // The link: a cookie (HttpOnly, SameSite=Strict), and the token leaves the address.
  const link = await http(p, '/?token=tok-1');
  assert.equal(link.status, 303);
  assert.equal(link.headers['location'], '/');
  const setCookie = String(link.headers['set-cookie']);
  assert.match(setCookie, new RegExp(`^${SESSION_COOKIE}=tok-1; HttpOnly; SameSite=Strict; Path=/`));
  const cookie = { cookie: `${SESSION_COOKIE}=tok-1` };

  const page = await http(p, '/flows', { headers: cookie });
  assert.equal(page.status, 200, 'client-side routes are the app');
  const nonce = /name="membrane-style-nonce" content="([^"]+)"/.exec(page.body)?.[1];
  assert.ok(nonce, 'the page learns its style nonce');
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/, 'no inline script');
  assert.ok(csp.includes(`style-src 'self' 'nonce-${nonce}'`));
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal(page.headers['access-control-allow-origin'], undefined, 'no CORS');
  const again = /content="([^"]+)"/.exec((await http(p, '/', { headers: cookie })).body)?.[1];
  assert.notEqual(again, nonce, 'a nonce per page');
  assert.equal((await http(p, '/assets/app.js', { headers: cookie })).body, 'console.log(1)');
  assert.equal((await http(p, '/api/v1/status', { headers: cookie })).body, '{"ok":true}');
  assert.equal((await http(p, '/api/v1/nothing', { headers: cookie })).status, 404);

  // No escape from the web root.
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt']) {
    const r = await http(p, path, { headers: cookie });
    assert.ok(!r.body.includes('nope'), path);
  }
  // DNS rebinding: another Host is refused.
  assert.equal((await http(p, '/api/v1/status', { headers: { ...cookie, host: `evil.example:${p}` } })).status, 421);
  // Changes: JSON from this origin only.
  const body = JSON.stringify({ documents: [] });
  assert.equal((await http(p, '/api/v1/apply', { method: 'POST', headers: { ...cookie, 'content-type': 'text/plain' }, body })).status, 415);
  assert.equal((await http(p, '/api/v1/apply', { method: 'POST', headers: { ...cookie, 'content-type': 'application/json', origin: 'http://evil.example' }, body })).status, 403);
  assert.equal((await http(p, '/api/v1/apply', { method: 'OPTIONS', headers: { ...cookie, origin: 'http://evil.example' } })).status, 405);
  assert.equal(applied.length, 0, 'nothing refused reached the agent');
  assert.equal((await http(p, '/api/v1/apply', { method: 'POST', headers: { ...cookie, 'content-type': 'application/json', origin: `http://127.0.0.1:${p}` }, body })).status, 200);
  assert.equal(applied.length, 1);

  // A new token: the old cookie is stale, and told so.
  token = 'tok-2';
  const stale = await http(p, '/api/v1/status', { headers: cookie });
  assert.equal(stale.status, 401);
  assert.match(JSON.parse(stale.body).error.message, /stale/);
});
