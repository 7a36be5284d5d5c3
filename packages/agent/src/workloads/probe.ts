/**
 * Readiness probes as Kubernetes runs them, from the host to the pod (the
 * datapath always lets the host in: allow-localhost): tcpSocket connects,
 * httpGet wants a status from 200 to 399, exec runs in the pod's network
 * namespace and wants exit 0.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Container, Probe } from '@membrane/api';

function port(p: number | string, c: Container): number | undefined {
  if (typeof p === 'number') return p;
  return c.ports?.find((x) => x.name === p)?.containerPort;
}

export function runProbe(probe: Probe, c: Container, podIP: string, netns: string): Promise<boolean> {
  const timeout = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.tcpSocket) {
    const p = port(probe.tcpSocket.port, c);
    if (p === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const s = connect({ host: podIP, port: p, timeout });
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('timeout', () => {
        s.destroy();
        resolve(false);
      });
      s.on('error', () => resolve(false));
    });
  }
  if (probe.httpGet) {
    const p = port(probe.httpGet.port, c);
    if (p === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const r = request({ host: podIP, port: p, path: probe.httpGet!.path ?? '/', timeout }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      r.on('timeout', () => r.destroy());
      r.on('error', () => resolve(false));
      r.end();
    });
  }
  if (probe.exec) {
    return new Promise((resolve) => {
      const ch = spawn('ip', ['netns', 'exec', netns, ...probe.exec!.command], { stdio: 'ignore' });
      const t = setTimeout(() => ch.kill('SIGKILL'), timeout);
      ch.on('exit', (code) => {
        clearTimeout(t);
        resolve(code === 0);
      });
      ch.on('error', () => resolve(false));
    });
  }
  return Promise.resolve(false);
}
