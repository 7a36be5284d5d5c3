/**
 * The server side of `membrane policy test --live`: the container command of
 * each scratch pod (`node probe-server.js '<ports>'`, run by the private
 * agent in the pod's network namespace).
 * Every TCP port echoes what it receives, unless the connection opens with
 * an HTTP request line: then it is answered as HTTP/1.1 (200, body
 * HTTP_PROBE_BODY, keep-alive), request after request. Every UDP port
 * answers each datagram with the same bytes. A DNS port (ports.dns) answers
 * what decodes as a DNS query (over UDP, and over TCP with its length
 * prefix) with the A records of ports.names, or NXDOMAIN; anything else sent
 * there is echoed as on any port. Prints SERVER_READY once all ports are bound;
 * exits on SIGTERM.
 *
 * Arguments: one JSON ServerPorts ({"tcp": [80], "udp": [53]}).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { HTTP_PROBE_BODY, SERVER_READY, type ServerPorts } from './probe-protocol.js';

const ports = JSON.parse(process.argv[2] ?? '{"tcp":[],"udp":[]}') as ServerPorts;
const tcp: Server[] = [];
const udp: UdpSocket[] = [];
const conns = new Set<Socket>();
/** The start of an HTTP/1.x request line. */
const HTTP_START = /^[A-Z]{3,10} [^ ]/;
const dnsPorts = new Set(ports.dns ?? []);
const names = new Map(Object.entries(ports.names ?? {}).map(([n, ips]) => [n.toLowerCase().replace(/\.$/, ''), ips]));

/** The answer to a DNS query, or undefined when msg is not one (then it is echoed). */
function dnsAnswer(msg: Buffer): Buffer | undefined {
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  const question = q.questions?.[0];
  if (q.type !== 'query' || !question) return undefined;
  const ips = question.type === 'A' ? names.get(question.name.toLowerCase().replace(/\.$/, '')) : undefined;
  const rcode = ips || names.has(question.name.toLowerCase().replace(/\.$/, '')) ? 0 : 3;
  return dnsPacket.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
    questions: q.questions ?? [],
    answers: (ips ?? []).map((data) => ({ type: 'A' as const, name: question.name, ttl: 60, data })),
  });
}

/** DNS over TCP: length-prefixed queries answered in order; a connection that does not start with a query is echoed. */
function serveDnsTcp(c: Socket, first: Buffer): boolean {
  if (first.length < 2 || !dnsAnswer(first.subarray(2, 2 + first.readUInt16BE(0)))) return false;
  let buf = first;
  const serve = () => {
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0);
      const a = dnsAnswer(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
      if (!a) return void c.destroy();
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(a.length);
      c.write(Buffer.concat([prefix, a]));
    }
  };
  serve();
  c.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    serve();
  });
  return true;
}

async function main(): Promise<void> {
  for (const port of ports.tcp) {
    const s = createServer((c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => c.destroy());
      c.once('data', (first: Buffer) => {
        if (dnsPorts.has(port) && serveDnsTcp(c, first)) return;
        if (!HTTP_START.test(first.subarray(0, 16).toString('latin1'))) {
          c.write(first);
          c.pipe(c);
          return;
        }
        let buf = first.toString('latin1');
        const serve = () => {
          for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
            const head = buf.slice(0, end);
            const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
            if (buf.length < end + 4 + length) return;
            buf = buf.slice(end + 4 + length);
            // A HEAD answer says how long the body would be, and sends none.
            const body = head.startsWith('HEAD ') ? '' : HTTP_PROBE_BODY;
            c.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${HTTP_PROBE_BODY.length}\r\n\r\n${body}`);
          }
        };
        serve();
        c.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          serve();
        });
      });
    });
    s.listen(port, '0.0.0.0');
    await once(s, 'listening');
    tcp.push(s);
  }
  for (const port of ports.udp) {
    const s = createSocket('udp4');
    s.on('message', (msg, from) => s.send((dnsPorts.has(port) && dnsAnswer(msg)) || msg, from.port, from.address));
    s.on('error', (e) => console.error(`udp ${port}: ${e.message}`));
    s.bind(port, '0.0.0.0');
    await once(s, 'listening');
    udp.push(s);
  }
  console.log(SERVER_READY);
  // Stay up even with no port to serve (a pod that only sends probes).
  setInterval(() => undefined, 1 << 30);
}

function stop(): void {
  for (const c of conns) c.destroy();
  for (const s of tcp) s.close();
  for (const s of udp) s.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((e: unknown) => {
  console.error(`probe-server: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
