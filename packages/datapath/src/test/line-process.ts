/**
 * A process of a privileged test, in a pod's network namespace (or the root
 * one), read line by line from its stdout and fed lines on its stdin.
 * Registered with the test's Cleanup and stopped (SIGKILL) by it, or by
 * stopLineProcesses() in an `after` hook when a test fails half-way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Cleanup } from '../cleanup.js';

export interface LineProcess {
  child: ChildProcess;
  /** The next line the process prints (rejects after timeoutMs). */
  line(timeoutMs?: number): Promise<string>;
  send(line: string): void;
}

const running = new Set<ChildProcess>();

/** Starts argv inside netns (`ip netns exec`, which execs in place: the PID is the program's own), or here when netns is undefined. */
export function lineProcess(netns: string | undefined, argv: readonly string[], cleanup: Cleanup, defaultTimeoutMs = 5000): LineProcess {
  const where = netns ?? 'the root namespace';
  const child = netns ? spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] }) : spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  if (child.pid === undefined) throw new Error(`could not start a process in ${where}`);
  running.add(child);
  child.on('exit', () => running.delete(child));
  cleanup.add(`process ${child.pid} in ${where}`, () => stopProcess(child));
  const queue: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => (waiters.length ? waiters.shift()!(l) : queue.push(l)));
  return {
    child,
    line: (timeoutMs = defaultTimeoutMs) =>
      new Promise<string>((resolve, reject) => {
        if (queue.length) return resolve(queue.shift()!);
        const timer = setTimeout(() => reject(new Error(`no line from process ${child.pid} in ${where} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((l) => {
          clearTimeout(timer);
          resolve(l);
        });
      }),
    send: (l) => void child.stdin!.write(`${l}\n`),
  };
}

/** A Node script given inline (`node -e`), in netns. */
export function nodeScript(netns: string, script: string, cleanup: Cleanup): LineProcess {
  return lineProcess(netns, [process.execPath, '-e', script], cleanup);
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  try {
    process.kill(child.pid!, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  await exited;
}

/** Every process lineProcess started that is still running, stopped. */
export async function stopLineProcesses(): Promise<void> {
  for (const c of [...running]) await stopProcess(c);
}

/** The PIDs of the processes lineProcess started that still run (a leak check). */
export function runningLineProcesses(): number[] {
  return [...running].map((c) => c.pid!);
}
