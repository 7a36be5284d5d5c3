/**
 * `membrane agent`, `membrane up`, `membrane down`, `membrane status`.
 * The CLI does not import the agent (package rules): it runs the agent's
 * entry point as its own process, as a user would.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MembraneError, type StatusResponse } from '@membrane/api';
import { flag, outputFormat, parseArgs } from '../args.js';
import { call, socketPath } from '../client.js';
import type { Io } from '../io.js';

export const AGENT_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../agent/dist/main.js');

function stateDir(): string {
  return process.env['MEMBRANE_STATE_DIR'] ?? '/var/lib/membrane';
}

function requireRoot(what: string): void {
  if (process.geteuid?.() !== 0) throw new MembraneError('MEMBRANE_E_NOT_ROOT', `${what} needs root (CAP_BPF/CAP_NET_ADMIN): run as root`);
}

const AGENT_FLAGS = [
  { name: 'state-dir', value: true },
  { name: 'pod-cidr', value: true },
  { name: 'service-cidr', value: true },
  { name: 'dns-upstream', value: true },
  { name: 'api-port', value: true },
  { name: 'timeout', value: true },
] as const;

function agentArgs(p: ReturnType<typeof parseArgs>): string[] {
  const out: string[] = [];
  for (const f of ['state-dir', 'pod-cidr', 'service-cidr', 'dns-upstream', 'api-port']) {
    const v = flag(p, f);
    if (v !== undefined) out.push(`--${f}`, v);
  }
  return out;
}

export const agentHelp = `Usage: membrane agent [--state-dir DIR] [--pod-cidr CIDR] [--api-port N]

Runs the agent in the foreground (what 'membrane up' starts in the background).`;

export async function agent(argv: readonly string[], _io: Io): Promise<number> {
  requireRoot('membrane agent');
  const p = parseArgs(argv, AGENT_FLAGS);
  const child = spawn(process.execPath, [AGENT_MAIN, ...agentArgs(p)], { stdio: 'inherit' });
  const forward = (s: NodeJS.Signals) => child.kill(s);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  return new Promise((res) => child.on('exit', (code) => res(code ?? 1)));
}

/** The L7 proxy's entry (packages/proxy: the agent starts it; the CLI does not import it). */
export const PROXY_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../proxy/dist/main.js');

export const proxyHelp = `Usage: membrane proxy --socket SOCKET --port N [--listen 127.0.0.1]

Runs the L7 proxy in the foreground. The agent starts and supervises one
itself ('membrane status' shows it); run this by hand only to debug one.`;

export async function proxy(argv: readonly string[], _io: Io): Promise<number> {
  requireRoot('membrane proxy');
  const child = spawn(process.execPath, [PROXY_MAIN, ...argv], { stdio: 'inherit' });
  const forward = (s: NodeJS.Signals) => child.kill(s);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  return new Promise((res) => child.on('exit', (code) => res(code ?? 1)));
}

export const upHelp = `Usage: membrane up [--state-dir DIR] [--pod-cidr CIDR] [--service-cidr CIDR] [--dns-upstream IP[:PORT],...] [--timeout 60s]

Starts the agent in the background if it is not running and waits until it is
ready, printing a line per step. Idempotent.`;

export async function up(argv: readonly string[], io: Io): Promise<number> {
  requireRoot('membrane up');
  const p = parseArgs(argv, AGENT_FLAGS);
  const dir = flag(p, 'state-dir') ?? stateDir();
  const sock = join(dir, 'agent.sock');
  try {
    const s = await call<StatusResponse>('GET', '/v1/status', undefined, { socket: sock, timeoutMs: 3000 });
    io.out(`membrane agent is already running (pid ${s.agent.pid}, state ${s.agent.stateDir})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof MembraneError) || e.code !== 'MEMBRANE_E_AGENT_DOWN') throw e;
  }
  if (!existsSync(AGENT_MAIN)) throw new MembraneError('MEMBRANE_E_INTERNAL', `the agent is not built (${AGENT_MAIN}): run \`npm run build\``);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logFile = join(dir, 'agent.log');
  const start = existsSync(logFile) ? statSync(logFile).size : 0;
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, [AGENT_MAIN, ...agentArgs(p), ...(flag(p, 'state-dir') ? [] : ['--state-dir', dir])], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  io.out(`starting the membrane agent (pid ${child.pid}, log ${logFile})\n`);
  const timeoutMs = parseDuration(flag(p, 'timeout') ?? '120s');
  const deadline = Date.now() + timeoutMs;
  let shown = start;
  let exited: number | null = null;
  child.on('exit', (c) => (exited = c ?? 1));
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const fresh = Buffer.from(text, 'utf8').subarray(shown).toString('utf8');
    for (const line of fresh.split('\n').filter(Boolean)) io.out(`  ${line.replace(/^\S+ /, '')}\n`);
    shown = Buffer.byteLength(text, 'utf8');
    if (/ ready \(pid/.test(fresh)) {
      io.out(`membrane is up (socket ${sock})\n`);
      return 0;
    }
    if (exited !== null) throw new MembraneError('MEMBRANE_E_INTERNAL', `the agent exited (${exited}) before it was ready; see ${logFile}`);
    if (Date.now() > deadline) throw new MembraneError('MEMBRANE_E_INTERNAL', `the agent was not ready within ${timeoutMs / 1000}s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new MembraneError('MEMBRANE_E_USAGE', `"${s}" is not a duration (e.g. 30s, 500ms, 2m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export const downHelp = `Usage: membrane down

Stops the agent and removes every pod, namespace, veth, BPF program, pinned
map and route it created. The store (applied objects) stays in the state
directory; the next 'membrane up' starts them again.`;

export async function down(argv: readonly string[], io: Io): Promise<number> {
  requireRoot('membrane down');
  parseArgs(argv, []);
  let pid: number;
  try {
    pid = (await call<StatusResponse>('GET', '/v1/status')).agent.pid;
  } catch (e) {
    if (e instanceof MembraneError && e.code === 'MEMBRANE_E_AGENT_DOWN') {
      io.out('membrane agent is not running\n');
      return 0;
    }
    throw e;
  }
  await call('POST', '/v1/shutdown', { teardown: true });
  io.out(`stopping the membrane agent (pid ${pid}) and removing what it created\n`);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      io.out('membrane is down\n');
      return 0;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new MembraneError('MEMBRANE_E_INTERNAL', `the agent (pid ${pid}) did not stop within 120s`);
}

export const statusHelp = `Usage: membrane status [-o json]

Like 'cilium status'. Exits 1 when the agent is down.`;

export async function status(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  let s: StatusResponse;
  try {
    s = await call<StatusResponse>('GET', '/v1/status', undefined, { timeoutMs: 5000 });
  } catch (e) {
    if (e instanceof MembraneError && e.code === 'MEMBRANE_E_AGENT_DOWN') {
      if (fmt === 'json') io.out(JSON.stringify({ agent: { state: 'down', socket: socketPath() } }) + '\n');
      else io.out(`Agent:        down (${e.message})\n`);
      return 1;
    }
    throw e;
  }
  if (fmt === 'json') {
    io.out(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const rows: [string, string][] = [
    ['Agent', `Ok   pid ${s.agent.pid}, state ${s.agent.stateDir}, up since ${s.agent.startedAt}`],
    ['Datapath', `Ok   BPF (${s.datapath.programs}), maps ${s.datapath.pinRoot}, pod CIDR ${s.datapath.podCIDR}`],
    ['Endpoints', `${s.endpoints.ready}/${s.endpoints.total} ready`],
    ['Policies', `${s.policies.total} (revision ${s.policies.revision})`],
    ['Identities', `${s.identities.total}`],
    ['Observer', `Current/Max Flows: ${s.observer.flows ?? 0}/${s.observer.bufferSize}, Flows seen: ${s.observer.flowsSeen}, lost events: ${s.observer.lost ? `${s.observer.lost.kernel} in the kernel ring, ${s.observer.lost.observer} in the observer` : s.observer.lostEvents}`],
    ['Proxy', s.proxy.state],
    ['Versions', `membrane ${s.versions.membrane}, node ${s.versions.node}, kernel ${s.versions.kernel}, libbpf ${s.versions.libbpf}`],
  ];
  for (const p of s.problems ?? []) rows.push(['Problem', p]);
  for (const [k, v] of rows) io.out(`${(k + ':').padEnd(14)}${v}\n`);
  return 0;
}
