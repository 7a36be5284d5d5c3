// The L7 proxy end to end, through the datapath, from a pod (issue "L7:
// ...", done-when tests): request smuggling and bypass shapes sent as raw
// bytes get 400 and never reach the server; a 1 GiB streamed upload passes
// with the proxy's memory bounded; a kept-alive L7 connection carries on,
// allowed and denied requests alike, across a kill -9 of the agent (and the
// next agent adopts the proxy); a pod that connects straight to the proxy's
// ports never reaches them (not over the router, not with a crafted packet
// to 127.0.0.1).
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { CliAgent } from './cli-agent.js';
import { requireRoot } from './privileged.js';

/** The server pod: every request logged as a line, uploads counted, everything else answered "ok PATH". */
const SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  console.log(req.method + ' ' + req.url);
  let n = 0;
  req.on('data', (c) => (n += c.length));
  req.on('end', () => res.end(req.url === '/upload' ? 'got ' + n : 'ok ' + req.url));
}).listen(8080, '0.0.0.0');
require('node:net').createServer((c) => { c.on('error', () => {}); c.pipe(c); }).listen(8081, '0.0.0.0');`;

/** The client, in the client pod's namespace: one JSON command per stdin line, one JSON answer per stdout line. */
const CLIENT = `
const net = require('node:net');
let kept;
const out = (o) => console.log(JSON.stringify(o));
function readResponse(s, done) {
  let buf = '';
  const t = setTimeout(() => done({ outcome: 'timeout', text: buf }), 5000);
  const onData = (d) => {
    buf += d.toString('latin1');
    const end = buf.indexOf('\\r\\n\\r\\n');
    if (end < 0) return;
    const len = Number((/content-length:\\s*(\\d+)/i.exec(buf.slice(0, end)) || [])[1] || 0);
    if (buf.length < end + 4 + len) return;
    clearTimeout(t);
    s.off('data', onData);
    done({ outcome: 'ok', status: Number(buf.slice(9, 12)), body: buf.slice(end + 4, end + 4 + len), text: buf });
  };
  s.on('data', onData);
  s.once('close', () => { clearTimeout(t); done({ outcome: 'closed', status: Number(buf.slice(9, 12)) || 0, text: buf }); });
}
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const c = JSON.parse(l);
  if (c.op === 'raw') {
    const s = net.connect(c.port, c.host, () => s.write(Buffer.from(c.bytes, 'latin1')));
    let sent = false;
    readResponse(s, (r) => { if (!sent) { sent = true; s.destroy(); out(r); } });
    s.on('error', (e) => { if (!sent) { sent = true; out({ outcome: e.code }); } });
  } else if (c.op === 'open') {
    kept = net.connect(c.port, c.host, () => out({ outcome: 'open', port: kept.localPort }));
    kept.on('error', (e) => out({ outcome: e.code }));
  } else if (c.op === 'send') {
    let sent = false;
    readResponse(kept, (r) => { if (!sent) { sent = true; out(r); } });
    kept.write(c.method + ' ' + c.path + ' HTTP/1.1\\r\\nHost: server\\r\\nContent-Length: 0\\r\\n\\r\\n');
  } else if (c.op === 'upload') {
    const s = net.connect(c.port, c.host);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const head = Buffer.from(chunk.length.toString(16) + '\\r\\n');
    let left = c.mib;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!s.write(Buffer.concat([head, chunk, Buffer.from('\\r\\n')]))) return s.once('drain', pump);
      }
      s.write('0\\r\\n\\r\\n');
    };
    s.on('connect', () => { s.write('POST /upload HTTP/1.1\\r\\nHost: server\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n'); pump(); });
    let sent = false;
    readResponse(s, (r) => { if (!sent) { sent = true; s.destroy(); out(r); } });
    s.on('error', (e) => out({ outcome: e.code }));
  } else if (c.op === 'sopen') {
    globalThis.stream = net.connect(c.port, c.host, () => out({ outcome: 'open' }));
    globalThis.stream.on('error', (e) => out({ outcome: e.code }));
  } else if (c.op === 'secho') {
    const t = setTimeout(() => out({ outcome: 'timeout' }), 2000);
    globalThis.stream.once('data', (d) => { clearTimeout(t); out({ outcome: String(d) === c.text ? 'echoed' : 'garbled' }); });
    globalThis.stream.write(c.text);
  } else if (c.op === 'connect') {
    const s = net.connect(c.port, c.host);
    const t = setTimeout(() => { s.destroy(); out({ outcome: 'timeout' }); }, 1500);
    s.on('connect', () => { clearTimeout(t); s.destroy(); out({ outcome: 'connected' }); });
    s.on('error', (e) => { clearTimeout(t); out({ outcome: e.code }); });
  } else if (c.op === 'udp') {
    const s = require('node:dgram').createSocket('udp4');
    const t = setTimeout(() => { s.close(); out({ outcome: 'timeout' }); }, 1500);
    s.on('message', () => { clearTimeout(t); s.close(); out({ outcome: 'answered' }); });
    s.on('error', (e) => { clearTimeout(t); out({ outcome: e.code }); });
    s.send(Buffer.from('hello'), c.port, c.host);
  }
});
out({ outcome: 'ready' });`;

/** A SYN to 127.0.0.1:PORT, written as a raw Ethernet frame to the router's MAC; prints whether anything answered. */
const CRAFTED_SYN = `
import socket, struct, sys, time
ifname, src, dst_mac, port = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(':', '')), int(sys.argv[4])
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
saddr, daddr = socket.inet_aton(src), socket.inet_aton('127.0.0.1')
tcp = struct.pack('!HHIIBBHHH', 40123, port, 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack('!H', csum(saddr + daddr + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, saddr, daddr)
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0))
src_mac = s.getsockname()[4]
s.send(dst_mac + src_mac + b'\\x08\\x00' + ip + tcp)
s.settimeout(0.2)
end = time.time() + 1.5
while time.time() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if len(f) >= 54 and f[23] == 6 and struct.unpack('!H', f[36:38])[0] == 40123:
        print('answered'); sys.exit(0)
print('nothing')`;

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-edge, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http:
        - {method: POST, path: /upload}
        - {method: GET, path: "/public/.*"}
    - ports: [{port: "8081", protocol: TCP}]
`;

const SMUGGLING: [string, string][] = [
  ['Content-Length and Transfer-Encoding', 'POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: s\r\n\r\n'],
  ['two Content-Lengths', 'POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\nGET /admin HTTP/1.1\r\nHost: s\r\n\r\n'],
  ['a conflicting Content-Length', 'POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 0, 36\r\n\r\nGET /admin HTTP/1.1\r\nHost: s\r\n\r\n'],
  ['obs-fold', 'GET /public/a HTTP/1.1\r\nHost: s\r\nX-A: b\r\n c\r\n\r\n'],
  ['an invalid header name', 'GET /public/a HTTP/1.1\r\nHost: s\r\nX A: b\r\n\r\n'],
  ['two Hosts', 'GET /public/a HTTP/1.1\r\nHost: s\r\nHost: admin\r\n\r\n'],
  ['an absolute-form URL for another host', 'GET http://admin/public/a HTTP/1.1\r\nHost: s\r\n\r\n'],
  ['an encoded slash', 'GET /public/..%2fadmin HTTP/1.1\r\nHost: s\r\n\r\n'],
  ['a chunk size that is not hex', 'POST /upload HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /admin HTTP/1.1\r\n\r\n'],
];

test('the L7 proxy from a pod: smuggling refused, 1 GiB upload with bounded memory, keep-alive across kill -9 of the agent, its ports unreachable', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods')) return;
  const a = new CliAgent({ tag: 'l7e', podCIDR: '10.218.0.0/24', serviceCIDR: '10.228.0.0/24' });
  const dir = mkdtempSync(join(tmpdir(), 'mbr-l7e-'));
  let client: ChildProcess | undefined;
  t.after(() => {
    client?.kill('SIGKILL');
    a.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  a.up();
  writeFileSync(join(dir, 'server.js'), SERVER);
  writeFileSync(join(dir, 'client.js'), CLIENT);
  writeFileSync(
    join(dir, 'world.yaml'),
    `apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec:
  containers: [{name: main, command: [${process.execPath}, ${join(dir, 'server.js')}], readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec:
  containers: [{name: main, command: [sleep, infinity]}]
---
${POLICY}`,
  );
  a.ok('apply', '-f', join(dir, 'world.yaml'));
  a.ok('wait', '--for=condition=Ready', 'pod/server', '--timeout', '30s');
  const serverIP = a.json<{ status: { podIP: string } }>('get', 'pod', 'server').status.podIP;
  const target = await a.call<{ netns: string }>('GET', '/v1/pods/default/client/exec');
  client = spawn('ip', ['netns', 'exec', target.netns, process.execPath, join(dir, 'client.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: client.stdout! })[Symbol.asyncIterator]();
  const ask = async <T = { outcome: string; status?: number; body?: string; text?: string }>(cmd: object): Promise<T> => {
    client!.stdin!.write(JSON.stringify(cmd) + '\n');
    return JSON.parse((await lines.next()).value as string) as T;
  };
  assert.equal((await ask({})).outcome, 'ready');
  const serverLog = () => a.ok('logs', 'server');

  // Smuggling and bypass shapes: 400, and the server never sees them.
  for (const [what, bytes] of SMUGGLING) {
    const r = await ask({ op: 'raw', host: serverIP, port: 8080, bytes });
    assert.equal(r.status, 400, `${what}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  assert.equal((await ask({ op: 'raw', host: serverIP, port: 8080, bytes: 'GET /public/ok HTTP/1.1\r\nHost: s\r\n\r\n' })).status, 200);
  const log = serverLog();
  assert.doesNotMatch(log, /admin/, 'no smuggled request reached the server');
  assert.deepEqual(log.split('\n').filter(Boolean), ['GET /public/ok'], 'only the well-formed request reached the server');

  // 1 GiB streamed through, the proxy's resident memory bounded.
  const proxyPid = a.json<{ proxy: { pid: number } }>('status').proxy.pid;
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxyPid}/status`, 'utf8'))![1]) * 1024;
  const before = rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  const t0 = Date.now();
  const up = await ask({ op: 'upload', host: serverIP, port: 8080, mib: 1024 });
  clearInterval(sampler);
  const seconds = (Date.now() - t0) / 1000;
  t.diagnostic(`1 GiB through the proxy in ${seconds.toFixed(1)} s; proxy RSS ${(before / 2 ** 20).toFixed(0)} MiB, peak +${((peak - before) / 2 ** 20).toFixed(0)} MiB`);
  assert.equal(up.body, `got ${2 ** 30}`, JSON.stringify(up).slice(0, 200));
  assert.ok(peak - before < 128 * 2 ** 20, `the proxy grew by ${((peak - before) / 2 ** 20).toFixed(0)} MiB for a 1 GiB body`);

  // A kept-alive L7 connection across kill -9 of the agent: judged on, by the proxy the next agent adopts.
  assert.equal((await ask({ op: 'open', host: serverIP, port: 8080 })).outcome, 'open');
  assert.equal((await ask({ op: 'send', method: 'GET', path: '/public/1' })).body, 'ok /public/1');
  process.kill(a.pid!, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await ask({ op: 'send', method: 'GET', path: '/public/2' })).body, 'ok /public/2', 'no agent: the connection carries on');
  assert.equal((await ask({ op: 'send', method: 'DELETE', path: '/public/2' })).status, 403, 'no agent: still judged');
  a.up();
  const adopted = a.json<{ proxy: { pid: number; origin: string } }>('status').proxy;
  assert.deepEqual([adopted.pid, adopted.origin], [proxyPid, 'adopted']);
  assert.equal((await ask({ op: 'send', method: 'GET', path: '/public/3' })).body, 'ok /public/3', 'the same connection, after the new agent is up');

  // kill -9 the proxy: L7 connections refused in the gap (never let through), an L3/L4 stream untouched, L7 back within 2 s.
  assert.equal((await ask({ op: 'sopen', host: serverIP, port: 8081 })).outcome, 'open');
  assert.equal((await ask({ op: 'secho', text: 'before' })).outcome, 'echoed');
  process.kill(proxyPid, 'SIGKILL');
  const k0 = Date.now();
  const outcomes = new Map<string, number>();
  let back = false;
  while (!back && Date.now() - k0 < 10_000) {
    const r = await ask({ op: 'raw', host: serverIP, port: 8080, bytes: 'GET /public/gap HTTP/1.1\r\nHost: s\r\n\r\n' });
    const what = r.status ? `HTTP ${r.status}` : r.outcome;
    outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    back = r.status === 200;
    if (!back) assert.notEqual(r.status, 200);
  }
  const gapMs = Date.now() - k0;
  t.diagnostic(`proxy_restart_ms ${gapMs}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.ok(back && gapMs < 2000, `L7 back after ${gapMs} ms`);
  assert.ok([...outcomes.keys()].every((k) => k === 'HTTP 200' || k === 'ECONNREFUSED' || k === 'ECONNRESET'), `in the gap only refusals: ${[...outcomes.keys()]}`);
  assert.equal((await ask({ op: 'secho', text: 'after' })).outcome, 'echoed', 'the L3/L4 stream carried on');
  assert.equal(serverLog().split('\n').filter((l) => l === 'GET /public/gap').length, 1, 'nothing reached the server unchecked in the gap');
  a.noteProxy();

  // Straight to the proxy's ports: over the router (nothing listens there), to its own loopback, or with a crafted SYN to 127.0.0.1.
  const routerIP = serverIP.split('.').slice(0, 3).join('.') + '.1';
  for (const host of [routerIP, '127.0.0.1']) {
    for (const port of [a.proxyPort, a.proxyPort + 1]) {
      const r = await ask<{ outcome: string }>({ op: 'connect', host, port });
      assert.notEqual(r.outcome, 'connected', `${host}:${port}`);
    }
    assert.notEqual((await ask<{ outcome: string }>({ op: 'udp', host, port: a.proxyPort + 1 })).outcome, 'answered', `${host}:${a.proxyPort + 1}/udp`);
  }
  const routerMac = execFileSync('ip', ['netns', 'exec', target.netns, 'ip', '-j', 'neigh', 'show', routerIP], { encoding: 'utf8' });
  const mac = (JSON.parse(routerMac) as { lladdr?: string }[])[0]?.lladdr;
  assert.ok(mac, `the client knows the router's MAC: ${routerMac}`);
  const clientIP = a.json<{ status: { podIP: string } }>('get', 'pod', 'client').status.podIP;
  writeFileSync(join(dir, 'syn.py'), CRAFTED_SYN);
  const crafted = execFileSync('ip', ['netns', 'exec', target.netns, 'python3', join(dir, 'syn.py'), 'eth0', clientIP, mac!, String(a.proxyPort)], { encoding: 'utf8' }).trim();
  assert.equal(crafted, 'nothing', 'a SYN to 127.0.0.1 from a pod is dropped (a martian on the host)');

  // The test's own client process runs in the pod's namespace: it goes before `down` counts what is left there.
  const exited = new Promise((r) => client!.once('exit', r));
  client.kill('SIGTERM');
  await exited;
  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
