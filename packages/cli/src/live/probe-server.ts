/**
 * The server side of `membrane policy test --live`: the container command of
 * each scratch pod (`node probe-server.js '<ports>'`, run by the private
 * agent in the pod's network namespace).
 * Every TCP port echoes what it receives, unless the connection opens with
 * an HTTP request line: then it is answered as HTTP/1.1 (200, body
 * HTTP_PROBE_BODY, keep-alive), request after request. Every UDP port
 * answers each datagram with the same bytes. Prints SERVER_READY once all ports are bound;
 * exits on SIGTERM.
 *
 * Arguments: one JSON ServerPorts ({"tcp": [80], "udp": [53]}).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { HTTP_PROBE_BODY, SERVER_READY, type ServerPorts } from './probe-protocol.js';

const ports = JSON.parse(process.argv[2] ?? '{"tcp":[],"udp":[]}') as ServerPorts;
const tcp: Server[] = [];
const udp: UdpSocket[] = [];
const conns = new Set<Socket>();
/** The start of an HTTP/1.x request line. */
const HTTP_START = /^[A-Z]{3,10} [^ ]/;

async function main(): Promise<void> {
  for (const port of ports.tcp) {
    const s = createServer((c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => c.destroy());
      c.once('data', (first: Buffer) => {
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
    s.on('message', (msg, from) => s.send(msg, from.port, from.address));
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
