/**
 * The L7 proxy's process (`membrane proxy`, packages/proxy): started by the
 * agent detached, its output appended to <state>/logs/proxy.log, known by
 * PID and start time (kept in the store) so that a restarted agent adopts
 * the one running instead of cutting its connections, and restarted when
 * it exits (back-off from 100 ms to 1 s, so an L7 port is served again in
 * well under two seconds). Stopped only by `membrane down`; an agent that
 * stops leaves it serving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, procStartTime, type ProcessRef } from '../workloads/container-process.js';

export interface ProxyProcessConfig {
  /** The proxy's entry (packages/proxy/dist/main.js). */
  main: string;
  /** The arguments it is started with (socket, listener address and port). */
  args: string[];
  logDir: string;
  /** The process the last agent started (from the store), to adopt. */
  previous?: ProcessRef;
  /** Saves the process now serving (to the store). */
  save: (ref: ProcessRef) => Promise<void>;
  problem: (p: string) => void;
  progress?: (msg: string) => void;
}

export interface ProxyProcessStatus {
  pid?: number;
  state: 'running' | 'restarting' | 'stopped';
  /** Started by this agent or adopted from the previous one. */
  origin?: 'started' | 'adopted';
  restarts: number;
  lastExit?: string;
}

const POLL_MS = 200;
/** A proxy that served this long before it ended is restarted after the shortest back-off again. */
const STABLE_MS = 10_000;

function looksLikeProxy(pid: number, main: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(main);
  } catch {
    return false;
  }
}

export class ProxySupervisor {
  private ref?: ProcessRef;
  private origin?: 'started' | 'adopted';
  private restarts = 0;
  private lastExit?: string;
  private backoffMs = 100;
  /** When the process now serving was started (a long run earns a fast restart again). */
  private startedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private stopped = false;
  private child: ChildProcess | undefined;

  constructor(private readonly c: ProxyProcessConfig) {}

  async start(): Promise<void> {
    const p = this.c.previous;
    if (p && isAlive(p) && looksLikeProxy(p.pid, this.c.main)) {
      this.ref = p;
      this.origin = 'adopted';
      this.c.progress?.(`adopted the L7 proxy (pid ${p.pid})`);
    } else {
      await this.spawn();
    }
    this.timer = setInterval(() => this.watch(), POLL_MS);
    this.timer.unref();
  }

  private async spawn(): Promise<void> {
    mkdirSync(this.c.logDir, { recursive: true });
    const fd = openSync(join(this.c.logDir, 'proxy.log'), 'a');
    try {
      const child = spawn(process.execPath, [this.c.main, ...this.c.args], { detached: true, stdio: ['ignore', fd, fd] });
      child.on('error', (e) => this.c.problem(`L7 proxy: ${e.message}`));
      // Our own child: its exit is known from Node's reaping (a zombie is not yet an exit to report).
      this.child = child;
      child.on('exit', (code, signal) => {
        this.lastExit = signal ? `signal ${signal}` : `exit code ${code}`;
        this.watch();
      });
      child.unref();
      if (child.pid === undefined) throw new Error('the L7 proxy did not start');
      this.ref = { pid: child.pid, startTime: procStartTime(child.pid) ?? '0' };
      this.startedAt = Date.now();
      this.origin = 'started';
      await this.c.save(this.ref).catch((e: unknown) => this.c.problem(`L7 proxy: save its pid: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      closeSync(fd);
    }
  }

  private watch(): void {
    if (this.stopped || !this.ref || this.restartTimer) return;
    const ours = this.child?.pid === this.ref.pid ? this.child : undefined;
    if (ours ? ours.exitCode === null && ours.signalCode === null : isAlive(this.ref)) return;
    this.lastExit ??= 'gone';
    if (Date.now() - this.startedAt > STABLE_MS) this.backoffMs = 100;
    this.c.problem(`L7 proxy (pid ${this.ref.pid}) ended (${this.lastExit}); restarting in ${this.backoffMs} ms`);
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 1000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.lastExit = undefined;
      this.spawn().catch((e: unknown) => this.c.problem(`L7 proxy: restart: ${e instanceof Error ? e.message : String(e)}`));
    }, wait);
  }

  status(): ProxyProcessStatus {
    const running = this.ref !== undefined && isAlive(this.ref);
    return {
      ...(this.ref ? { pid: this.ref.pid } : {}),
      state: this.stopped ? 'stopped' : running ? 'running' : 'restarting',
      ...(this.origin ? { origin: this.origin } : {}),
      restarts: this.restarts,
      ...(this.lastExit ? { lastExit: this.lastExit } : {}),
    };
  }

  /** Stops watching; the process keeps serving (the next agent adopts it). */
  detach(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
  }

  /** Stops watching and ends the process (`membrane down`): SIGTERM, then SIGKILL after 2 s. */
  async terminate(): Promise<void> {
    this.detach();
    const ref = this.ref;
    if (!ref || !isAlive(ref)) return;
    try {
      process.kill(ref.pid, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + 2000;
    while (isAlive(ref) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(ref)) {
      try {
        process.kill(ref.pid, 'SIGKILL');
      } catch {
        // Gone in between.
      }
    }
  }
}
