/**
 * A container of a pod as a host process inside the pod's network namespace,
 * started the way a user would (`ip netns exec <netns> <command> <args>`),
 * its stdout and stderr appended to a log file — never a pipe to the agent,
 * so a workload outlives an agent that dies and is adopted by the next one.
 * A process is known by PID plus its start time (from /proc), so a reused
 * PID is never mistaken for it.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export interface ProcessRef {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks since boot. */
  startTime: string;
}

export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command (field 2) may hold spaces: count fields after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function isAlive(ref: ProcessRef): boolean {
  const st = procStartTime(ref.pid);
  if (st === undefined || st !== ref.startTime) return false;
  try {
    const state = readFileSync(`/proc/${ref.pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Find an executable as execvp would (PATH for bare names). Returns the reason when it cannot run. */
export function resolveExecutable(cmd: string, pathEnv: string, cwd = '/'): { path: string } | { error: string; code: 126 | 127 } {
  const candidates = cmd.includes('/') ? [isAbsolute(cmd) ? cmd : join(cwd, cmd)] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  let denied: string | undefined;
  for (const c of candidates) {
    try {
      const st = statSync(c);
      if (st.isDirectory()) {
        denied ??= `${c} is a directory`;
        continue;
      }
      accessSync(c, constants.X_OK);
      return { path: c };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied ??= `${c}: permission denied`;
    }
  }
  if (denied) return { error: denied, code: 126 };
  return { error: `exec: "${cmd}": executable file not found in $PATH`, code: 127 };
}

export interface StartSpec {
  netns: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  logFile: string;
}

export interface Started {
  ref: ProcessRef;
  /** Resolves with the exit status when this agent started the process (its child). */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startContainer(spec: StartSpec): Started {
  const fd = openSync(spec.logFile, 'a', 0o600);
  try {
    const child = spawn('ip', ['netns', 'exec', spec.netns, ...spec.argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: spec.env,
      cwd: spec.cwd ?? '/',
    });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
      child.on('error', () => resolve({ code: 127, signal: null }));
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${spec.argv[0]}`);
    // Read the start time right away; ip execs the command in place, so the PID stays the workload's.
    const startTime = procStartTime(pid) ?? '0';
    return { ref: { pid, startTime }, exit };
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM the process group, then SIGKILL after the grace period. Resolves when it is gone. */
export async function stopContainer(ref: ProcessRef, graceSeconds: number): Promise<void> {
  if (!isAlive(ref)) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-ref.pid, sig);
    } catch {
      try {
        process.kill(ref.pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceSeconds * 1000;
  while (isAlive(ref) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(ref)) {
    signal('SIGKILL');
    const hard = Date.now() + 5000;
    while (isAlive(ref) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
  }
}

/** The process runner the agent uses (ports.ts ProcessRunner). */
export const defaultProcessRunner = {
  resolveExecutable,
  start: startContainer,
  stop: stopContainer,
  isAlive,
};
