// The HTTP proxy on loopback, through raw sockets (not an HTTP client, which
// would refuse to send the malformed shapes): keep-alive with allowed and
// denied requests interleaved, smuggling and bypass shapes refused before
// anything reaches the upstream, path normalization, 100-continue, upgrade,
// an upstream that is down (503) or silent (504), and a large streamed upload
// with bounded memory.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { checkRequest, removeDotSegments } from './http-checks.js';
import { createHttpProxy, type HttpProxyServer, type L7HttpEvent, type RequestJudge } from './http-proxy.js';

/** Allows GET /public/..., POST /v1/request-landing and everything of method UPLOAD or with x-allow. */
const judge: RequestJudge = {
  decideHttp(_s, _d, _p, req) {
    const ok = (req.method === 'GET' && req.path.startsWith('/public/')) || (req.method === 'POST' && req.path === '/v1/request-landing') || req.method === 'PUT' || req.headers['x-allow'] === 'yes';
    return { allowed: ok, rules: [], reason: ok ? 'test allows' : 'test denies', srcIdentity: 1000, dstIdentity: 2000 };
  },
};

describe('http-checks', () => {
  test('the ambiguous shapes are refused, paths are resolved', () => {
    const raw = (...h: string[]) => h.flatMap((x) => x.split(': '));
    assert.equal(checkRequest('GET', '/', raw('Host: a', 'Content-Length: 1', 'Transfer-Encoding: chunked')).ok, false);
    assert.equal(checkRequest('GET', '/', raw('Host: a', 'Content-Length: 1', 'Content-Length: 2')).ok, false);
    assert.equal(checkRequest('GET', '/', raw('Host: a', 'Transfer-Encoding: chunked, identity')).ok, false);
    assert.equal(checkRequest('GET', '/', raw('Host: a', 'Host: b')).ok, false);
    assert.equal(checkRequest('GET', 'http://evil/x', raw('Host: good')).ok, false);
    assert.deepEqual(checkRequest('GET', 'http://good/x?q=1', raw('Host: good')), { ok: true, path: '/x?q=1', host: 'good' });
    assert.equal(checkRequest('GET', '/a%2fb', raw('Host: a')).ok, false);
    assert.equal(checkRequest('GET', '/a%2E%2E/b', raw('Host: a')).ok, false);
    assert.equal(checkRequest('GET', '/a\\b', raw('Host: a')).ok, false);
    assert.deepEqual(checkRequest('GET', '/public/../admin//x/./y?a=/..', raw('Host: a')), { ok: true, path: '/admin/x/y?a=/..', host: 'a' });
    assert.equal(removeDotSegments('/a/b/../../..'), '/');
    assert.equal(removeDotSegments('/a/b/'), '/a/b/');
    assert.equal(removeDotSegments('//x'), '/x');
  });
});

describe('HTTP proxy', () => {
  let upstream: HttpServer;
  let proxy: HttpProxyServer;
  let silent: Server;
  let up: AddressInfo;
  let target = () => ({ ip: '127.0.0.1', port: up.port });
  const events: L7HttpEvent[] = [];
  const seen: string[] = [];
  let upstreamConnections = 0;

  before(async () => {
    upstream = createHttp((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/upload') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(`got ${n}`));
        return;
      }
      req.resume();
      req.on('end', () => res.end(`hello ${req.method} ${req.url}`));
    });
    upstream.on('connection', () => upstreamConnections++);
    upstream.on('upgrade', (req, s: Socket) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
      s.pipe(s);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    up = upstream.address() as AddressInfo;
    silent = createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    proxy = createHttpProxy({
      view: () => judge,
      upstream: (_c, d) => connect(d.port, d.ip),
      originalDestination: () => target(),
      onEvent: (e) => events.push(e),
      upstreamTimeoutMs: 500,
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
  });
  after(() => {
    proxy.close();
    upstream.close();
    silent.close();
    proxy.closeAllConnections();
  });

  /** Send raw bytes on one connection; collect until `until` is seen or it closes. */
  async function exchange(chunks: (string | Buffer)[], until: (s: string) => boolean, s?: Socket): Promise<{ text: string; socket: Socket; closed: boolean }> {
    const socket = s ?? connect((proxy.address() as AddressInfo).port, '127.0.0.1');
    if (!s) await once(socket, 'connect');
    let text = '';
    let closed = false;
    const done = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (until(text)) {
          clearTimeout(t);
          resolve();
        }
      });
      socket.on('close', () => {
        closed = true;
        clearTimeout(t);
        resolve();
      });
    });
    for (const c of chunks) socket.write(c);
    await done;
    return { text, socket, closed };
  }
  const responses = (t: string) => (t.match(/HTTP\/1\.1 \d{3}/g) ?? []).length;

  test('keep-alive: allowed and denied requests interleaved, each judged on its own', async () => {
    const before = seen.length;
    const req = (m: string, p: string) => `${m} ${p} HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\n\r\n`;
    const r = await exchange([req('POST', '/v1/request-landing'), req('PUT', '/v1/exhaust-port'.replace('PUT', 'PUT')), req('DELETE', '/v1/exhaust-port'), req('GET', '/public/x'), req('DELETE', '/x')], (t) => responses(t) === 5);
    const codes = (r.text.match(/HTTP\/1\.1 (\d{3})/g) ?? []).map((x) => x.slice(9));
    assert.deepEqual(codes, ['200', '200', '403', '200', '403']);
    assert.match(r.text, /HTTP\/1\.1 403 Forbidden[\s\S]*?\r\n\r\nAccess denied\r\n/);
    assert.equal(r.closed, false, 'a denial does not close the connection');
    assert.deepEqual(seen.slice(before), ['POST /v1/request-landing', 'PUT /v1/exhaust-port', 'GET /public/x'], 'only the allowed requests reached the upstream, in order');
    r.socket.destroy();
    const denied = events.filter((e) => e.verdict === 'DENIED').slice(-2);
    assert.deepEqual(denied.map((e) => [e.method, e.url, e.code]), [['DELETE', '/v1/exhaust-port', 403], ['DELETE', '/x', 403]]);
  });

  test('a connection per request: the client closes first, the upstream connection is kept for the next one from that client', async () => {
    const before = upstreamConnections;
    for (let i = 0; i < 3; i++) {
      const r = await exchange([`GET /public/c${i} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n`], (t) => responses(t) === 1);
      assert.match(r.text, /^HTTP\/1\.1 200/);
      assert.equal(r.closed, false, 'the proxy waits for the client to close (no TIME_WAIT on its side)');
      r.socket.end();
      await once(r.socket, 'close');
    }
    assert.ok(upstreamConnections - before <= 1, `${upstreamConnections - before} upstream connections for three client connections: one (or one kept from before) serves them all`);
  });

  const smuggling: [string, string][] = [
    ['Content-Length and Transfer-Encoding', 'POST /public/a HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: d\r\n\r\n'],
    ['two Content-Lengths', 'POST /public/a HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\nGET /admin HTTP/1.1\r\nHost: d\r\n\r\n'],
    ['conflicting Content-Length', 'POST /public/a HTTP/1.1\r\nHost: d\r\nContent-Length: 0, 30\r\n\r\n'],
    ['obs-fold', 'GET /public/a HTTP/1.1\r\nHost: d\r\nX-Allow: no\r\n yes\r\n\r\n'],
    ['an invalid header name', 'GET /public/a HTTP/1.1\r\nHost: d\r\nX Allow: yes\r\n\r\n'],
    ['two Hosts', 'GET /public/a HTTP/1.1\r\nHost: d\r\nHost: admin\r\n\r\n'],
    ['an absolute-form target for another host', 'GET http://admin/public/a HTTP/1.1\r\nHost: d\r\n\r\n'],
    ['a Transfer-Encoding that is not chunked', 'POST /public/a HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: xchunked\r\n\r\n'],
    ['an encoded slash', 'GET /public%2f..%2fadmin HTTP/1.1\r\nHost: d\r\n\r\n'],
    ['a header too large', `GET /public/a HTTP/1.1\r\nHost: d\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
  ];
  for (const [what, bytes] of smuggling) {
    test(`refused with 400, nothing forwarded: ${what}`, async () => {
      const before = seen.length;
      const r = await exchange([bytes], (t) => t.includes('\r\n\r\n'));
      assert.match(r.text, /^HTTP\/1\.1 400 /, `${what}: ${r.text.slice(0, 80)}`);
      await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(seen.slice(before), [], `${what}: the upstream saw nothing`);
      r.socket.destroy();
    });
  }

  test('the rule judges the resolved path, and the upstream receives it', async () => {
    const before = seen.length;
    const r = await exchange(['GET /public/../admin HTTP/1.1\r\nHost: d\r\n\r\n', 'GET /x/../public//a/./b HTTP/1.1\r\nHost: d\r\n\r\n'], (t) => responses(t) === 2);
    assert.deepEqual((r.text.match(/HTTP\/1\.1 (\d{3})/g) ?? []).map((x) => x.slice(9)), ['403', '200']);
    assert.deepEqual(seen.slice(before), ['GET /public/a/b']);
    r.socket.destroy();
  });

  test('Expect: 100-continue is judged before the body is asked for', async () => {
    const denied = await exchange(['POST /nope HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n'], (t) => t.includes('Access denied'));
    assert.match(denied.text, /^HTTP\/1\.1 403/);
    assert.doesNotMatch(denied.text, /100 Continue/);
    denied.socket.destroy();
    const ok = await exchange(['PUT /body HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n'], (t) => t.includes('100 Continue'));
    assert.match(ok.text, /^HTTP\/1\.1 100 Continue/);
    const rest = await exchange(['hello'], (t) => t.includes('hello PUT'), ok.socket);
    assert.match(rest.text, /200 OK[\s\S]*hello PUT \/body/);
    ok.socket.destroy();
  });

  test('Upgrade is judged at the upgrade request, then spliced', async () => {
    const denied = await exchange(['GET /ws HTTP/1.1\r\nHost: d\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n'], (t) => t.includes('Access denied'));
    assert.match(denied.text, /^HTTP\/1\.1 403/);
    const ok = await exchange(['GET /public/ws HTTP/1.1\r\nHost: d\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n'], (t) => t.includes('\r\n\r\n'));
    assert.match(ok.text, /^HTTP\/1\.1 101/);
    const echoed = await exchange(['not http at all'], (t) => t.includes('not http at all'), ok.socket);
    assert.match(echoed.text, /not http at all/);
    ok.socket.destroy();
  });

  test('an upstream that refuses: 503; one that never answers: 504', async () => {
    const keep = target;
    try {
      target = () => ({ ip: '127.0.0.1', port: 1 });
      const r503 = await exchange(['GET /public/a HTTP/1.1\r\nHost: d\r\n\r\n'], (t) => t.includes('\r\n\r\n'));
      assert.match(r503.text, /^HTTP\/1\.1 503/);
      r503.socket.destroy();
      target = () => ({ ip: '127.0.0.1', port: (silent.address() as AddressInfo).port });
      const r504 = await exchange(['GET /public/a HTTP/1.1\r\nHost: d\r\n\r\n'], (t) => t.includes('\r\n\r\n'));
      assert.match(r504.text, /^HTTP\/1\.1 504/);
      r504.socket.destroy();
    } finally {
      target = keep;
    }
  });

  test('256 MiB streamed through with bounded memory (chunked)', async () => {
    const socket = connect((proxy.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('PUT /upload HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const head = Buffer.from(`${chunk.length.toString(16)}\r\n`);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    for (let i = 0; i < 256; i++) {
      if (!socket.write(Buffer.concat([head, chunk, Buffer.from('\r\n')]))) await once(socket, 'drain');
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    socket.write('0\r\n\r\n');
    for (let i = 0; i < 100 && !answer.includes('got'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(answer, /got 268435456/);
    assert.ok(peak - rssBefore < 128 * 1024 * 1024, `memory grew by ${((peak - rssBefore) / 1048576).toFixed(0)} MiB for a 256 MiB body`);
    socket.destroy();
  });

  test('events redact secrets at capture', async () => {
    const r = await exchange(['GET /public/s HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer sekrit\r\nCookie: a=b\r\nX-Trace: 7\r\n\r\n'], (t) => responses(t) === 1);
    r.socket.destroy();
    await new Promise((res) => setTimeout(res, 50));
    const e = events.find((x) => x.url === '/public/s')!;
    assert.deepEqual(e.requestHeaders.filter(([n]) => n !== 'Host'), [['Authorization', '[redacted]'], ['Cookie', '[redacted]'], ['X-Trace', '7']]);
    assert.equal(e.code, 200);
    assert.equal(e.verdict, 'FORWARDED');
    assert.ok(e.latencyNs > 0);
  });
});
