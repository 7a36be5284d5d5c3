/**
 * Traffic for the socket load balancer's privileged test, run in a pod's
 * network namespace (`ip netns exec NS node service-traffic.js MODE ...`).
 *
 *   server IP TCP_PORT UDP_PORT   a backend: each TCP connection is greeted
 *                                 with "IP\n" and each line echoed as
 *                                 "IP line"; each datagram answered "IP text".
 *                                 Prints "ready".
 *   client                        a driver: one JSON command per stdin line,
 *                                 one JSON result per stdout line (Command).
 *
 * Results carry what the kernel told the socket: `peer` is getpeername()
 * (net.Socket#remoteAddress), `from` the source recvfrom() gave a datagram.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

export type Command =
  /** n connections one after the other: which backend greeted each, and what getpeername said. */
  | { op: 'spread'; host: string; port: number; n: number }
  /** A long-lived connection, kept under `tag`. */
  | { op: 'open'; tag: string; host: string; port: number }
  /** A line over connection `tag`; the reply names the backend that answered. */
  | { op: 'say'; tag: string; text: string }
  | { op: 'close'; tag: string }
  /** One connect(): its outcome (connected, or the error code) and how long it took. */
  | { op: 'connect'; host: string; port: number; timeoutMs?: number }
  /** n datagrams from one socket (unconnected: sendto; connected: connect + send), each reply's text and source. */
  | { op: 'udp'; host: string; port: number; n: number; connected?: boolean }
  /** Connections back to back for ms milliseconds, each closed with RST: how many succeeded and how many failed. */
  | { op: 'hammer'; host: string; port: number; ms: number };

const [mode, ...args] = process.argv.slice(2);

function line(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) return;
      s.off('data', onData);
      s.off('error', reject);
      resolve(buf.slice(0, i));
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

function connectOnce(host: string, port: number, timeoutMs = 3000): Promise<{ outcome: string; ms: number; socket?: Socket; peer?: string; peerPort?: number }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const s = connect(port, host);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ outcome: 'TIMEOUT', ms: ms() });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve({ outcome: 'connected', ms: ms(), socket: s, peer: s.remoteAddress!, peerPort: s.remotePort! });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ outcome: e.code ?? e.message, ms: ms() });
    });
  });
}

async function udp(c: Extract<Command, { op: 'udp' }>): Promise<unknown> {
  const s: UdpSocket = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, r));
  if (c.connected) await new Promise<void>((r, j) => s.connect(c.port, c.host, (e?: Error) => (e ? j(e) : r())));
  const replies: { text: string; from: string; fromPort: number }[] = [];
  let error: string | undefined;
  try {
    for (let i = 0; i < c.n; i++) {
      let timer: NodeJS.Timeout | undefined;
      let onMessage: ((m: Buffer, rinfo: { address: string; port: number }) => void) | undefined;
      const got = new Promise<{ text: string; from: string; fromPort: number }>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('TIMEOUT')), 2000);
        onMessage = (m, rinfo) => {
          clearTimeout(timer);
          resolve({ text: m.toString('utf8'), from: rinfo.address, fromPort: rinfo.port });
        };
        s.once('message', onMessage);
      });
      try {
        await new Promise<void>((r, j) => {
          const cb = (e: Error | null) => (e ? j(e) : r());
          if (c.connected) s.send(`ping ${i}`, cb);
          else s.send(`ping ${i}`, c.port, c.host, cb);
        });
      } catch (e) {
        // Nothing was sent: no reply to wait for.
        clearTimeout(timer);
        s.off('message', onMessage!);
        got.catch(() => undefined);
        throw e;
      }
      replies.push(await got);
    }
  } catch (e) {
    error = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  const peer = c.connected ? s.remoteAddress() : undefined;
  s.close();
  return { replies, error, peer };
}

async function hammer(c: Extract<Command, { op: 'hammer' }>): Promise<unknown> {
  const end = Date.now() + c.ms;
  let ok = 0;
  const failures: Record<string, number> = {};
  while (Date.now() < end) {
    const r = await connectOnce(c.host, c.port, 1000);
    if (r.socket) {
      ok++;
      r.socket.resetAndDestroy();
    } else failures[r.outcome] = (failures[r.outcome] ?? 0) + 1;
  }
  return { ok, failures };
}

async function client(): Promise<void> {
  const conns = new Map<string, Socket>();
  const run = async (c: Command): Promise<unknown> => {
    switch (c.op) {
      case 'spread': {
        const counts: Record<string, number> = {};
        const peers: Record<string, number> = {};
        for (let i = 0; i < c.n; i++) {
          const r = await connectOnce(c.host, c.port);
          if (!r.socket) return { error: r.outcome, after: i };
          const backend = await line(r.socket);
          counts[backend] = (counts[backend] ?? 0) + 1;
          const p = `${r.peer}:${r.peerPort}`;
          peers[p] = (peers[p] ?? 0) + 1;
          r.socket.resetAndDestroy();
        }
        return { counts, peers };
      }
      case 'open': {
        const r = await connectOnce(c.host, c.port);
        if (!r.socket) return { error: r.outcome };
        const backend = await line(r.socket);
        r.socket.on('error', () => undefined);
        conns.set(c.tag, r.socket);
        return { backend, peer: r.peer, peerPort: r.peerPort };
      }
      case 'say': {
        const s = conns.get(c.tag);
        if (!s) return { error: `no connection ${c.tag}` };
        const reply = line(s);
        s.write(`${c.text}\n`);
        return { reply: await reply };
      }
      case 'close':
        conns.get(c.tag)?.destroy();
        conns.delete(c.tag);
        return {};
      case 'connect': {
        const r = await connectOnce(c.host, c.port, c.timeoutMs);
        let backend: string | undefined;
        if (r.socket) {
          backend = await line(r.socket).catch(() => undefined);
          r.socket.resetAndDestroy();
        }
        return { outcome: r.outcome, ms: r.ms, peer: r.peer, peerPort: r.peerPort, backend };
      }
      case 'udp':
        return udp(c);
      case 'hammer':
        return hammer(c);
    }
  };
  // One command at a time, in order: results come back in the order asked.
  let chain = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (l) => {
    chain = chain.then(async () => {
      let out: unknown;
      try {
        out = await run(JSON.parse(l) as Command);
      } catch (e) {
        out = { error: e instanceof Error ? e.message : String(e) };
      }
      process.stdout.write(`${JSON.stringify(out)}\n`);
    });
  });
  console.log(JSON.stringify({ ready: true }));
}

function server(ip: string, tcpPort: number, udpPort: number): void {
  let pending = 2;
  const ready = () => --pending === 0 && console.log('ready');
  createServer((c) => {
    c.on('error', () => undefined);
    c.write(`${ip}\n`);
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        c.write(`${ip} ${buf.slice(0, i)}\n`);
        buf = buf.slice(i + 1);
      }
    });
  }).listen(tcpPort, ip, ready);
  const u = createSocket('udp4');
  u.on('message', (m, rinfo) => u.send(`${ip} ${m.toString('utf8')}`, rinfo.port, rinfo.address));
  u.bind(udpPort, ip, ready);
}

if (mode === 'server') server(args[0]!, Number(args[1]), Number(args[2]));
else if (mode === 'client') void client();
else if (mode !== undefined) {
  console.error('usage: service-traffic.js server IP TCP_PORT UDP_PORT | client');
  process.exit(2);
}
