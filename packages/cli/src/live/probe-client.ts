/**
 * The client side of `membrane policy test --live`, run inside a scratch
 * pod's namespace: `ip netns exec <ns> node probe-client.js < probes.json`. Makes every probe
 * at once (each on its own socket or process, so their verdicts cannot mix)
 * and prints one JSON array of LiveOutcome on stdout.
 *
 *   TCP   one connection attempt; allowed = connected and the payload came
 *         back, denied = no connection within TCP_CONNECT_TIMEOUT_MS (a
 *         dropped SYN gives a timeout, never a refusal);
 *   HTTP  one request on one connection: allowed = the probe server's 200,
 *         denied = the L7 proxy's 403 "Access denied", or no connection
 *         (dropped at L3/L4);
 *   UDP   a datagram (resent every UDP_RESEND_MS) and its echo;
 *   DNS   one query for an A record over UDP (resent likewise) or TCP:
 *         allowed = the server's answer (NOERROR or NXDOMAIN), denied =
 *         REFUSED (the DNS proxy's) or nothing back (dropped at L3/L4);
 *   ICMP  type 8 with `ping -c 1 -W 1`; type 13 (timestamp) through a raw
 *         socket in python3, waiting for the kernel's timestamp reply (14).
 * A refusal, an unreachable error or a half-answered exchange is `error`.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import { HTTP_PROBE_BODY, ICMP_TIMEOUT_S, TCP_CONNECT_TIMEOUT_MS, UDP_RESEND_MS, UDP_TIMEOUT_MS, type LiveOutcome, type LiveProbe } from './probe-protocol.js';

function outcome(p: LiveProbe, start: number, verdict: LiveOutcome['verdict'], detail: string, code?: string): LiveOutcome {
  return { id: p.id, verdict, detail, ...(code ? { code } : {}), ms: Math.round(performance.now() - start) };
}

type Finish = (verdict: LiveOutcome['verdict'], detail: string, code?: string) => void;

/** One TCP connection carrying one request: how its answer is judged. */
interface Exchange {
  request: Buffer;
  /** Everything received so far: finish once it decides. */
  received(all: Buffer, finish: Finish): void;
  /** Connected, but no decision within TCP_CONNECT_TIMEOUT_MS of sending. */
  quiet(all: Buffer, finish: Finish): void;
  /** The peer closed before a decision. */
  closed(all: Buffer, finish: Finish): void;
}

/** Connect (no connection within TCP_CONNECT_TIMEOUT_MS is a drop: denied), send the request, judge what comes back. */
function tcpExchange(p: LiveProbe, x: Exchange): Promise<LiveOutcome> {
  const start = performance.now();
  return new Promise((resolve) => {
    let all = Buffer.alloc(0);
    let connected = false;
    let finished = false;
    const s = connect({ host: p.ip, port: p.port! });
    const finish: Finish = (verdict, detail, code) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve(outcome(p, start, verdict, detail, code));
    };
    let timer = setTimeout(() => finish('denied', `no connection within ${TCP_CONNECT_TIMEOUT_MS} ms`), TCP_CONNECT_TIMEOUT_MS);
    s.on('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => x.quiet(all, finish), TCP_CONNECT_TIMEOUT_MS);
      s.write(x.request);
    });
    s.on('data', (d: Buffer) => {
      all = Buffer.concat([all, d]);
      x.received(all, finish);
    });
    s.on('error', (e: NodeJS.ErrnoException) => finish('error', `${connected ? 'after connecting' : 'connect'}: ${e.message}`, e.code));
    s.on('close', () => x.closed(all, finish));
  });
}

function tcpProbe(p: LiveProbe): Promise<LiveOutcome> {
  const payload = randomBytes(p.bytes ?? 32);
  return tcpExchange(p, {
    request: payload,
    received: (all, finish) => {
      if (all.length < payload.length) return;
      if (all.equals(payload)) finish('allowed', `connected; ${payload.length} bytes sent and echoed`);
      else finish('error', `connected, but the echo differs from the ${payload.length} bytes sent`);
    },
    quiet: (all, finish) => finish('error', `connected, but ${all.length} of ${payload.length} bytes came back within ${TCP_CONNECT_TIMEOUT_MS} ms`),
    closed: (all, finish) => finish('error', `closed by the peer after ${all.length} of ${payload.length} bytes`),
  });
}

function httpProbe(p: LiveProbe): Promise<LiveOutcome> {
  const h = p.http!;
  // A HEAD answer has no body: its status says it all.
  const head = h.method.toUpperCase() === 'HEAD';
  const headers = Object.entries(h.headers ?? {})
    .filter(([k]) => k.toLowerCase() !== 'host')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const request = `${h.method} ${h.path} HTTP/1.1\r\nhost: ${h.host ?? `${p.ip}:${p.port}`}\r\n${headers}connection: close\r\ncontent-length: 0\r\n\r\n`;
  const judge = (all: Buffer, finish: Finish) => {
    const text = all.toString('latin1');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    if (status === '200' && (head || body.startsWith(HTTP_PROBE_BODY))) finish('allowed', `${h.method} ${h.path}: 200 from the server`);
    else if (status === '403' && (head || body.startsWith('Access denied'))) finish('denied', `${h.method} ${h.path}: 403 Access denied (the L7 proxy)`);
    else finish('error', `${h.method} ${h.path}: ${status ? `status ${status}: ${body.trim().slice(0, 80)}` : `no HTTP answer (${text.length} bytes)`}`);
  };
  return tcpExchange(p, {
    request: Buffer.from(request, 'latin1'),
    received: (all, finish) => {
      const text = all.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1] ?? -1);
      if (head || (length >= 0 && text.length >= end + 4 + length)) judge(all, finish);
    },
    quiet: judge,
    closed: judge,
  });
}

/** How a DNS probe reads an answer: REFUSED is the DNS proxy's denial, any other answer the server's. */
function judgeDns(p: LiveProbe, answer: Buffer, id: number, finish: Finish): void {
  let a: dnsPacket.DecodedPacket;
  try {
    a = dnsPacket.decode(answer);
  } catch {
    return finish('error', `${p.dns!.query}: an answer that does not decode`);
  }
  if (a.id !== id || a.type !== 'response') return finish('error', `${p.dns!.query}: an answer to another query`);
  const rcode = (a.flags ?? 0) & 0xf;
  if (rcode === 5) return finish('denied', `${p.dns!.query}: REFUSED (the DNS proxy)`);
  if (rcode === 0 || rcode === 3) return finish('allowed', `${p.dns!.query}: ${rcode === 0 ? 'NOERROR' : 'NXDOMAIN'} from the server`);
  finish('error', `${p.dns!.query}: rcode ${rcode}`);
}

function dnsQuery(p: LiveProbe): { id: number; wire: Buffer } {
  const id = randomBytes(2).readUInt16BE(0);
  return { id, wire: dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: p.dns!.query }] }) };
}

function tcpDnsProbe(p: LiveProbe): Promise<LiveOutcome> {
  const q = dnsQuery(p);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(q.wire.length);
  const framedAnswer = (all: Buffer) => (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0) ? all.subarray(2, 2 + all.readUInt16BE(0)) : undefined);
  return tcpExchange(p, {
    request: Buffer.concat([len, q.wire]),
    received: (all, finish) => {
      const a = framedAnswer(all);
      if (a) judgeDns(p, a, q.id, finish);
    },
    quiet: (all, finish) => finish('error', `${p.dns!.query}: connected, but no answer (${all.length} bytes) within ${TCP_CONNECT_TIMEOUT_MS} ms`),
    closed: (all, finish) => finish('error', `${p.dns!.query}: closed by the peer after ${all.length} bytes`),
  });
}

function udpProbe(p: LiveProbe): Promise<LiveOutcome> {
  const start = performance.now();
  const q = p.dns ? dnsQuery(p) : undefined;
  const payload = q?.wire ?? randomBytes(p.bytes ?? 32);
  // An echo probe's payload never reads as a DNS query (the QR bit is set), so a DNS port echoes it.
  if (!q && payload.length > 2) payload[2]! |= 0x80;
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    let sent = 0;
    let finished = false;
    let resend: NodeJS.Timeout | undefined;
    const finish = (verdict: LiveOutcome['verdict'], detail: string, code?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearInterval(resend);
      s.close();
      resolve(outcome(p, start, verdict, detail, code));
    };
    const timer = setTimeout(() => finish('denied', `no ${q ? 'answer' : 'echo'} within ${UDP_TIMEOUT_MS} ms (${sent} datagrams sent)`), UDP_TIMEOUT_MS);
    const send = () => {
      sent++;
      s.send(payload);
    };
    s.on('message', (msg) => {
      if (q) judgeDns(p, msg, q.id, finish);
      else if (msg.equals(payload)) finish('allowed', `datagram echoed (${sent} sent)`);
      else finish('error', 'a datagram came back that is not the echo of the one sent');
    });
    // On a connected socket an ICMP error (port unreachable ...) surfaces here.
    s.on('error', (e: NodeJS.ErrnoException) => finish('error', `udp: ${e.message}`, e.code));
    s.connect(p.port!, p.ip, () => {
      send();
      resend = setInterval(send, UDP_RESEND_MS);
    });
  });
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

async function pingProbe(p: LiveProbe): Promise<LiveOutcome> {
  const start = performance.now();
  const r = await run('ping', ['-n', '-c', '1', '-W', String(ICMP_TIMEOUT_S), p.ip]);
  if (r.code === 0) return outcome(p, start, 'allowed', 'echo reply received');
  // ping exits 1 when no reply came; an ICMP error in place of the reply also exits 1.
  const unreachable = /Unreachable|\+\d+ errors/.exec(r.out);
  if (r.code === 1 && !unreachable) return outcome(p, start, 'denied', `no echo reply within ${ICMP_TIMEOUT_S} s`);
  return outcome(p, start, 'error', `ping exited ${r.code}: ${r.out.trim().split('\n').slice(-3).join(' | ')}`, unreachable ? 'EHOSTUNREACH' : undefined);
}

/*
 * Node has no raw sockets and ping sends only echo requests, so the
 * timestamp request (type 13) goes out through python3's raw socket; Linux
 * answers it itself with a timestamp reply (type 14).
 */
const ICMP_RAW_PY = `
import os, select, socket, struct, sys, time
dst, typ, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
want = {8: 0, 13: 14}[typ]
ident = os.getpid() & 0xffff
body = struct.pack('!III', int(time.time() % 86400 * 1000), 0, 0) if typ == 13 else b''
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
pkt = struct.pack('!BBHHH', typ, 0, 0, ident, 1) + body
pkt = struct.pack('!BBHHH', typ, 0, csum(pkt), ident, 1) + body
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(pkt, (dst, 0))
end = time.time() + timeout
while True:
    left = end - time.time()
    if left <= 0:
        print('timeout'); sys.exit(1)
    if not select.select([s], [], [], left)[0]:
        continue
    data, addr = s.recvfrom(2048)
    h = (data[0] & 15) * 4
    t, c, _, i = struct.unpack('!BBHH', data[h:h + 6])
    if addr[0] != dst:
        continue
    if t == want and i == ident:
        print('reply'); sys.exit(0)
    if t == 3:
        print('unreachable code %d' % c); sys.exit(2)
`;

async function rawIcmpProbe(p: LiveProbe): Promise<LiveOutcome> {
  const start = performance.now();
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = await run(python, ['-c', ICMP_RAW_PY, p.ip, String(p.icmpType), String(ICMP_TIMEOUT_S)]);
  if (r.code === 0) return outcome(p, start, 'allowed', `ICMP type ${p.icmpType} answered`);
  if (r.code === 1 && r.out.trim() === 'timeout') return outcome(p, start, 'denied', `no answer to ICMP type ${p.icmpType} within ${ICMP_TIMEOUT_S} s`);
  return outcome(p, start, 'error', `raw ICMP type ${p.icmpType}: exit ${r.code}: ${r.out.trim()}`, r.code === 2 ? 'EHOSTUNREACH' : undefined);
}

function probe(p: LiveProbe): Promise<LiveOutcome> {
  switch (p.protocol) {
    case 'TCP':
      return p.http ? httpProbe(p) : p.dns ? tcpDnsProbe(p) : tcpProbe(p);
    case 'UDP':
      return udpProbe(p);
    case 'ICMP':
      return (p.icmpType ?? 8) === 8 ? pingProbe(p) : rawIcmpProbe(p);
  }
}

const probes = JSON.parse(readFileSync(0, 'utf8')) as LiveProbe[];
Promise.all(probes.map(probe)).then(
  (outcomes) => {
    process.stdout.write(JSON.stringify(outcomes) + '\n');
  },
  (e: unknown) => {
    console.error(`probe-client: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
