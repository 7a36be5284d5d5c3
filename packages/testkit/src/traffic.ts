/**
 * Traffic agents in pods: real processes started the way a user starts a
 * workload (`ip netns exec <ns> node <script>`) and stopped by their PID.
 * `ip netns exec` execs the command in place, so the PID spawn returns is
 * node's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from '@membrane/datapath';
import { SERVER_READY, type LiveOutcome, type LiveProbe, type ServerPorts } from '@membrane/cli/live';
import type { Pod } from './pods.js';

// The traffic agents are the CLI's (`membrane policy test --live` runs the same ones).
export const PROBE_SERVER = fileURLToPath(new URL('../../cli/dist/live/probe-server.js', import.meta.url));
export const PROBE_CLIENT = fileURLToPath(new URL('../../cli/dist/live/probe-client.js', import.meta.url));

/** Every agent PID this process started (leak checks look for survivors). */
const started = new Set<number>();

export function startedAgentPids(): number[] {
  return [...started];
}

/** PIDs started here that still run one of the agents. */
export function runningAgents(): number[] {
  return [...started].filter((pid) => {
    const path = `/proc/${pid}/cmdline`;
    if (!existsSync(path)) return false;
    try {
      const cmd = readFileSync(path, 'utf8');
      return cmd.includes(PROBE_SERVER) || cmd.includes(PROBE_CLIENT);
    } catch {
      return false;
    }
  });
}

function startAgent(pod: Pod, script: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${script} in ${pod.netns}`);
  started.add(child.pid);
  return child;
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopAgent(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(child.pid!, sig);
    } catch (e) {
      // Exited between the check and the signal: nothing left to stop.
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  };
  signal('SIGTERM');
  const t = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) signal('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(t);
}

export interface ProbeServer {
  pod: Pod;
  pid: number;
  ports: ServerPorts;
}

/** A server echoing on `ports` in the pod; resolves once every port is bound. */
export async function startProbeServer(pod: Pod, ports: ServerPorts, cleanup: Cleanup, timeoutMs = 10_000): Promise<ProbeServer> {
  const child = startAgent(pod, PROBE_SERVER, [JSON.stringify(ports)]);
  cleanup.add(`probe server in ${pod.netns} (pid ${child.pid})`, () => stopAgent(child));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe server in ${pod.netns} (${pod.name}) not ready after ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(SERVER_READY)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`probe server in ${pod.netns} (${pod.name}) exited (${signal ?? code}) before it was ready: ${err.trim()}`));
    });
  });
  return { pod, pid: child.pid!, ports };
}

/** Make `probes` from the pod, all at once in one process; one outcome per probe, in order. */
export async function runProbeClient(pod: Pod, probes: readonly LiveProbe[], cleanup: Cleanup, timeoutMs = 30_000): Promise<LiveOutcome[]> {
  if (probes.length === 0) return [];
  const child = startAgent(pod, PROBE_CLIENT, []);
  cleanup.add(`probe client in ${pod.netns} (pid ${child.pid})`, () => stopAgent(child, 100));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.stdin!.end(JSON.stringify(probes));
  const timer = setTimeout(() => void stopAgent(child, 100), timeoutMs);
  const [code, signal] = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`probe client in ${pod.netns} (${pod.name}) exited (${signal ?? code}): ${err.trim()}`);
  const outcomes = JSON.parse(out) as LiveOutcome[];
  const byId = new Map(outcomes.map((o) => [o.id, o]));
  return probes.map((p) => {
    const o = byId.get(p.id);
    if (!o) throw new Error(`probe client in ${pod.netns}: no outcome for probe ${p.id}`);
    return o;
  });
}
