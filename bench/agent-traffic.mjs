#!/usr/bin/env node
// The workloads of bench/agent, run as pod containers by the agent (so inside
// the pods' network namespaces, started by `membrane apply`).
//
//   server PORT LOGFILE
//     UDP on PORT. Appends "<receive time ms> <source port>" for every datagram
//     to LOGFILE (a "ready" line first) and echoes the datagram back.
//     The time is CLOCK_REALTIME with sub-millisecond digits:
//     performance.timeOrigin + performance.now(), as the bench reads its own clock.
//   client SERVER_IP PORT FIRST_SOURCE_PORT
//     Sends a datagram to SERVER_IP:PORT every millisecond from one source
//     port. When an echo comes back (the policy let that flow through, and
//     conntrack now remembers it), the port is retired: after a 20 ms pause
//     the client goes on from the next port, so a flow allowed once never
//     carries over into a later denying policy. Ports are used in sequence,
//     never twice in a run.
import dgram from 'node:dgram';
import { openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [mode, ...args] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();

if (mode === 'server') {
  const [port, logFile] = args;
  const fd = openSync(logFile, 'a');
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const t = now();
    writeSync(fd, `${t.toFixed(3)} ${rinfo.port}\n`);
    sock.send(msg, rinfo.port, rinfo.address);
  });
  sock.bind(Number(port), () => writeSync(fd, 'ready\n'));
} else if (mode === 'client') {
  const [ip, port, first] = args;
  const dport = Number(port);
  let sport = Number(first);
  const next = () => (sport = sport >= 65535 ? Number(first) : sport + 1);
  let sock;
  let sending = false;
  const open = () => {
    const s = dgram.createSocket('udp4');
    sock = s;
    s.on('error', () => {
      // The port is taken (or the socket broke): move on to the next one.
      s.close();
      next();
      setTimeout(open, 1);
    });
    s.on('message', () => {
      if (!sending || sock !== s) return;
      sending = false;
      s.close();
      next();
      setTimeout(open, 20);
    });
    s.bind(sport, () => {
      if (sock === s) sending = true;
    });
  };
  open();
  const payload = Buffer.from('membrane bench/agent');
  setInterval(() => {
    if (sending) sock.send(payload, dport, ip);
  }, 1);
  process.stdout.write(`client: ${ip}:${dport} from ports ${first} up\n`);
} else {
  process.stderr.write('usage: agent-traffic.mjs server PORT LOGFILE | client SERVER_IP PORT FIRST_SOURCE_PORT\n');
  process.exit(2);
}
