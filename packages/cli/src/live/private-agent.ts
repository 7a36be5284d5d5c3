/**
 * The scratch space of `membrane policy test --live`: a private agent the
 * command starts (its own state directory, pin root, kernel-object name
 * prefix, pod CIDR and a free API port) and always tears down, so the user's
 * agent, pods and namespaces are never touched. The CLI does not import the
 * agent (package rules): it runs the agent's entry point and drives it
 * through its API socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MembraneError, type StatusResponse } from '@membrane/api';
import { call } from '../client.js';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A port on 127.0.0.1 free for both TCP and UDP just now. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const tcp = createServer();
    const port = await new Promise<number>((res, rej) => {
      tcp.once('error', rej);
      tcp.listen(0, '127.0.0.1', () => res((tcp.address() as { port: number }).port));
    });
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((res) => {
      udp.once('error', () => res(false));
      udp.bind(port, '127.0.0.1', () => res(true));
    });
    await new Promise<void>((r) => tcp.close(() => r()));
    if (free) await new Promise<void>((r) => udp.close(() => r()));
    if (free) return port;
  }
  throw new MembraneError('MEMBRANE_E_INTERNAL', 'no port on 127.0.0.1 is free for both TCP and UDP');
}

export const LIVE_POD_CIDR = '10.250.0.0/16';
export const LIVE_SERVICE_CIDR = '10.251.0.0/16';

export interface PrivateAgentOptions {
  /** The agent's entry point (packages/agent/dist/main.js). */
  agentMain: string;
  startTimeoutMs?: number;
}

export class PrivateAgent {
  private child: ChildProcess | undefined;
  private exited = false;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    readonly socket: string,
    readonly pinRoot: string,
    /** Every link and network namespace of the scratch space starts with this. */
    readonly namePrefix: string,
  ) {}

  static create(): PrivateAgent {
    const tag = randomBytes(3).readUIntBE(0, 3).toString(36).padStart(4, '0').slice(-4);
    const dir = mkdtempSync(join(tmpdir(), `membrane-live-${tag}-`));
    return new PrivateAgent(dir, join(dir, 'agent.sock'), `/sys/fs/bpf/mbr-live-${process.pid}-${tag}`, `mbrl${tag}`);
  }

  get logFile(): string {
    return join(this.dir, 'agent.log');
  }

  async start(opts: PrivateAgentOptions): Promise<void> {
    if (!existsSync(opts.agentMain)) throw new MembraneError('MEMBRANE_E_INTERNAL', `the agent is not built (${opts.agentMain}): run \`npm run build\``);
    // Proxy ports of its own (free now on 127.0.0.1 for TCP and UDP), never the user's agent's.
    const proxyPort = await freePort();
    const dnsProxyPort = await freePort();
    const fd = openSync(this.logFile, 'a', 0o600);
    const env = { ...process.env, MEMBRANE_PROXY_PORT: String(proxyPort), MEMBRANE_DNS_PROXY_PORT: String(dnsProxyPort), MEMBRANE_HUBBLE_PORT: '0', MEMBRANE_METRICS_PORT: '0', MEMBRANE_UI_PORT: '0', MEMBRANE_KUBE_PORT: '0', MEMBRANE_STATE_DIR: this.dir, MEMBRANE_SOCKET: this.socket, MEMBRANE_PIN_ROOT: this.pinRoot, MEMBRANE_NAME_PREFIX: this.namePrefix, MEMBRANE_POD_CIDR: LIVE_POD_CIDR, MEMBRANE_SERVICE_CIDR: LIVE_SERVICE_CIDR };
    // Its own process group: a Ctrl-C at the terminal reaches this command,
    // which then tears the agent down through its API (not half-way by signal).
    const child = spawn(process.execPath, [opts.agentMain, '--state-dir', this.dir, '--pod-cidr', LIVE_POD_CIDR, '--service-cidr', LIVE_SERVICE_CIDR, '--api-port', '0'], { env, detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.child = child;
    child.on('exit', () => (this.exited = true));
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (this.exited) throw new MembraneError('MEMBRANE_E_INTERNAL', `the private agent exited before it was ready: ${this.logTail()}`);
      try {
        const s = await call<StatusResponse>('GET', '/v1/status', undefined, { socket: this.socket, timeoutMs: 2000 });
        if (s.agent.state === 'ready') return;
      } catch (e) {
        if (!(e instanceof MembraneError) || e.code !== 'MEMBRANE_E_AGENT_DOWN') throw e;
      }
      if (Date.now() > deadline) throw new MembraneError('MEMBRANE_E_INTERNAL', `the private agent was not ready within ${(opts.startTimeoutMs ?? 60_000) / 1000}s: ${this.logTail()}`);
      await sleep(100);
    }
  }

  call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    return call<T>(method, path, body, { socket: this.socket, timeoutMs: 120_000 });
  }

  private logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return `(no log at ${this.logFile})`;
    }
  }

  /**
   * Stops the agent with teardown (pods, namespaces, links, programs, pins,
   * routes), kills it by pid if it does not stop in time, then removes its
   * state directory and pin root. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    const child = this.child;
    if (child && !this.exited) {
      try {
        await call('POST', '/v1/shutdown', { teardown: true }, { socket: this.socket, timeoutMs: 60_000 });
      } catch {
        // Not answering: the kill below.
      }
      const deadline = Date.now() + 90_000;
      while (!this.exited && Date.now() < deadline) await sleep(100);
      if (!this.exited && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(this.pinRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
