/**
 * An agent for a privileged test, driven through the CLI as a user drives
 * it, on names of its own: state directory, socket, pin root, kernel-object
 * prefix and pod CIDR, so test files never meet each other's (or a user's)
 * agent. `leaks()` lists what of exactly those names is still there — and
 * the workload processes it saw running — after `down`.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { proxyRoutingSlot } from '@membrane/datapath';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const MEMBRANE = join(REPO_ROOT, 'bin/membrane');

export interface CliAgentOptions {
  /** A short tag (letters and digits, at most 5): names are `mbr<tag>_...`. */
  tag: string;
  podCIDR: string;
  /** A service CIDR of the test's own (never the default 10.96.0.0/16 a user's agent has). */
  serviceCIDR: string;
  env?: Record<string, string>;
}

export class CliAgent {
  readonly dir: string;
  readonly stateDir: string;
  readonly pinRoot: string;
  readonly prefix: string;
  readonly env: NodeJS.ProcessEnv;
  /** The L7 proxy's port of this agent (its own, so test files never share one). */
  readonly proxyPort: number;
  private readonly proxyPids = new Set<number>();
  private readonly workloads = new Set<number>();
  private agentPid: number | undefined;
  private readonly agentPids = new Set<number>();

  constructor(readonly opts: CliAgentOptions) {
    if (!/^[a-z0-9]{1,5}$/.test(opts.tag)) throw new Error(`tag "${opts.tag}": 1 to 5 lowercase letters or digits`);
    this.dir = mkdtempSync(join(tmpdir(), `mbr-${opts.tag}-`));
    this.stateDir = join(this.dir, 'state');
    this.prefix = `mbr${opts.tag}`;
    this.pinRoot = `/sys/fs/bpf/mbr-${opts.tag}-${process.pid}`;
    this.proxyPort = 20000 + ((process.pid * 31 + [...opts.tag].reduce((h, c) => h * 37 + c.charCodeAt(0), 0)) % 20000);
    this.env = { ...process.env, MEMBRANE_PROXY_PORT: String(this.proxyPort), MEMBRANE_DNS_PROXY_PORT: String(this.proxyPort + 1), MEMBRANE_HUBBLE_PORT: String(this.proxyPort + 2), MEMBRANE_METRICS_PORT: String(this.proxyPort + 3), MEMBRANE_UI_PORT: String(this.proxyPort + 4), MEMBRANE_KUBE_PORT: String(this.proxyPort + 5), MEMBRANE_STATE_DIR: this.stateDir, MEMBRANE_PIN_ROOT: this.pinRoot, MEMBRANE_POD_CIDR: opts.podCIDR, MEMBRANE_SERVICE_CIDR: opts.serviceCIDR, MEMBRANE_NAME_PREFIX: this.prefix, ...opts.env };
  }

  run(...args: string[]): SpawnSyncReturns<string> {
    return spawnSync(MEMBRANE, args, { env: this.env, encoding: 'utf8', timeout: 180_000 });
  }

  /** Runs a command that must succeed; answers its stdout. */
  ok(...args: string[]): string {
    const r = this.run(...args);
    if (r.status !== 0) throw new Error(`membrane ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** One request to the agent's API socket (what the CLI has no command for, e.g. test hosts). */
  call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((res, rej) => {
      const r = request({ socketPath: join(this.stateDir, 'agent.sock'), path, method, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {} }, (resp) => {
        let text = '';
        resp.setEncoding('utf8');
        resp.on('data', (d: string) => (text += d));
        resp.on('end', () => ((resp.statusCode ?? 500) < 300 ? res(JSON.parse(text || 'null') as T) : rej(new Error(`${method} ${path}: ${resp.statusCode} ${text}`))));
      });
      r.on('error', rej);
      r.end(payload);
    });
  }

  json<T>(...args: string[]): T {
    return JSON.parse(this.ok(...args, '-o', 'json')) as T;
  }

  up(): string {
    const out = this.ok('up', '--api-port', '0');
    const s = this.json<{ agent: { pid: number }; proxy: { pid?: number } }>('status');
    this.agentPid = s.agent.pid;
    this.agentPids.add(this.agentPid);
    if (s.proxy.pid) this.proxyPids.add(s.proxy.pid);
    return out;
  }

  get pid(): number | undefined {
    return this.agentPid;
  }

  /** Remember the L7 proxy's process now (a restarted one too: checked by `leaks`). */
  noteProxy(): number | undefined {
    const pid = this.json<{ proxy: { pid?: number } }>('status').proxy.pid;
    if (pid) this.proxyPids.add(pid);
    return pid;
  }

  /** The pods' network namespaces (by this agent's names). */
  netns(): string[] {
    return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith(`${this.prefix}_`));
  }

  /** Remember the processes running in this agent's pods now (checked by `leaks`). */
  noteWorkloads(): void {
    for (const ns of this.netns()) {
      for (const p of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) this.workloads.add(Number(p));
    }
  }

  /** `membrane down` (noting the workloads first), then the state directory goes. */
  down(): SpawnSyncReturns<string> {
    this.noteWorkloads();
    try {
      this.noteProxy();
    } catch {
      // No agent answers: nothing more to note.
    }
    return this.run('down');
  }

  leaks(): string[] {
    const out: string[] = [];
    for (const ns of this.netns()) out.push(`netns ${ns}`);
    for (const l of spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n')) {
      const name = l.split(': ')[1]?.split('@')[0] ?? '';
      if (name.startsWith(`${this.prefix}_`)) out.push(`link ${name}`);
    }
    const bases = [this.opts.podCIDR, this.opts.serviceCIDR].map((c) => c.split('.').slice(0, 3).join('.') + '.');
    for (const l of spawnSync('ip', ['route', 'show', 'table', 'main'], { encoding: 'utf8' }).stdout.split('\n')) {
      // Routes into the agent's ranges, through its links, and its unreachable rails around them.
      const dest = l.replace(/^(unreachable|blackhole|prohibit) /, '');
      if (bases.some((b) => dest.startsWith(b)) || l.includes(`dev ${this.prefix}_`)) out.push(`route ${l.trim()}`);
    }
    for (const l of spawnSync('ls', ['/etc/netns'], { encoding: 'utf8' }).stdout.split('\n')) if (l.startsWith(`${this.prefix}_`)) out.push(`/etc/netns/${l}`);
    if (existsSync(this.pinRoot) && readdirSync(this.pinRoot).length) out.push(`pins ${this.pinRoot}: ${readdirSync(this.pinRoot).join(', ')}`);
    const { table, priority } = proxyRoutingSlot(this.prefix);
    for (const l of spawnSync('ip', ['rule', 'show'], { encoding: 'utf8' }).stdout.split('\n')) {
      if (l.startsWith(`${priority}:`) || l.includes(`lookup ${table}`)) out.push(`rule ${l.trim()}`);
    }
    if (spawnSync('ip', ['route', 'show', 'table', String(table)], { encoding: 'utf8' }).stdout.trim()) out.push(`routes in table ${table}`);
    for (const pid of [...this.workloads, ...this.agentPids, ...this.proxyPids]) {
      if (existsSync(`/proc/${pid}`) && !readStat(pid).startsWith('Z')) out.push(`process ${pid}`);
    }
    return out;
  }

  /** Down (if still up) and remove the directory and pin root; for t.after. */
  cleanup(): void {
    this.down();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.pinRoot, { recursive: true, force: true });
  }
}

/** The process state letter and what follows it in /proc/<pid>/stat ('' when gone). */
function readStat(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2);
  } catch {
    return '';
  }
}
