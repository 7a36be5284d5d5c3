#!/usr/bin/env node
// Traffic for bench/datapath, run inside a pod's network namespace.
//   server PORT                      TCP echo server (prints "ready")
//   rr HOST PORT COUNT               one connection, COUNT 1-byte round trips; prints JSON {rtt_us: [...]} summary
//   connrate HOST PORT SECONDS       open+close connections for SECONDS; prints JSON {connections, seconds}
//   udpflood HOST PORT SECONDS       datagrams from one socket, back to back
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { count: s.length, mean_us: s.reduce((a, b) => a + b, 0) / s.length, p50_us: q(0.5), p99_us: q(0.99) };
}

if (mode === 'server') {
  const srv = net.createServer((c) => {
    c.setNoDelay(true);
    c.on('data', (d) => c.write(d));
    c.on('error', () => {});
  });
  srv.listen(Number(args[0]), '0.0.0.0', () => console.log('ready'));
} else if (mode === 'rr') {
  const [host, port, count] = [args[0], Number(args[1]), Number(args[2])];
  const c = net.connect(port, host);
  c.setNoDelay(true);
  const rtts = [];
  let t0 = 0n;
  let n = 0;
  const warm = Math.min(200, Math.floor(count / 10));
  c.on('connect', () => {
    t0 = process.hrtime.bigint();
    c.write('x');
  });
  c.on('data', () => {
    const t = process.hrtime.bigint();
    if (n >= warm) rtts.push(Number(t - t0) / 1000);
    n++;
    if (n >= count + warm) {
      console.log(JSON.stringify(summary(rtts)));
      c.destroy();
      return;
    }
    t0 = process.hrtime.bigint();
    c.write('x');
  });
  c.on('error', (e) => {
    console.error(`rr: ${e.message}`);
    process.exit(1);
  });
} else if (mode === 'connrate') {
  const [host, port, seconds] = [args[0], Number(args[1]), Number(args[2])];
  const end = Date.now() + seconds * 1000;
  let connections = 0;
  const start = process.hrtime.bigint();
  const one = () => {
    if (Date.now() >= end) {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      console.log(JSON.stringify({ connections, seconds: secs, per_s: connections / secs }));
      return;
    }
    const c = net.connect(port, host, () => {
      connections++;
      // Close with RST: no TIME_WAIT, so the client's ephemeral ports never run out
      // (with FIN the rate collapses after ~28k connections, with or without programs).
      c.resetAndDestroy();
      setImmediate(one);
    });
    c.on('error', (e) => {
      console.error(`connrate: ${e.message}`);
      process.exit(1);
    });
  };
  one();
} else if (mode === 'udpflood') {
  // Datagrams from one socket as fast as the loop allows, until SECONDS pass or stdin closes.
  const dgram = await import('node:dgram');
  const [host, port, seconds] = [args[0], Number(args[1]), Number(args[2])];
  const s = dgram.createSocket('udp4');
  const end = Date.now() + seconds * 1000;
  let sent = 0;
  const msg = Buffer.from('x');
  const tick = () => {
    if (Date.now() >= end) {
      console.log(JSON.stringify({ sent }));
      s.close();
      return;
    }
    s.send(msg, port, host, () => {
      sent++;
      setImmediate(tick);
    });
  };
  s.on('error', () => {});
  console.log('ready');
  tick();
} else {
  console.error('usage: datapath-traffic.mjs server PORT | rr HOST PORT COUNT | connrate HOST PORT SECONDS');
  process.exit(2);
}
