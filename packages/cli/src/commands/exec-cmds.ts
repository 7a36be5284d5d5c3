/**
 * `membrane exec POD -- CMD...` and `membrane logs POD [-f]`. exec runs the
 * command in the pod's network namespace itself (it needs root), passing
 * stdin/stdout/stderr through and returning the command's exit code; its own
 * failures use docker exec's codes: 125 (no such pod, agent down), 126 (not
 * executable), 127 (not found).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MembraneError, type ExecTarget } from '@membrane/api';
import { boolFlag, flag, parseArgs, usage } from '../args.js';
import { call, stream } from '../client.js';
import type { Io } from '../io.js';

export const execHelp = `Usage: membrane exec POD [-n NS] -- CMD [ARGS...]`;

function findExecutable(cmd: string): 'ok' | 126 | 127 {
  const candidates = cmd.includes('/') ? [cmd] : (process.env['PATH'] ?? '').split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  let denied = false;
  for (const c of candidates) {
    try {
      if (statSync(c).isDirectory()) {
        denied = true;
        continue;
      }
      accessSync(c, constants.X_OK);
      return 'ok';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  return denied ? 126 : 127;
}

export async function exec(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'namespace', short: 'n', value: true }, { name: 'stdin', short: 'i' }, { name: 'tty', short: 't' }]);
  if (p.positionals.length !== 1 || p.rest.length === 0) throw usage('exec needs POD -- CMD [ARGS...]');
  const ns = flag(p, 'namespace') ?? 'default';
  let target: ExecTarget;
  try {
    target = await call<ExecTarget>('GET', `/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(p.positionals[0]!)}/exec`);
  } catch (e) {
    if (e instanceof MembraneError) {
      io.err(`membrane: ${e.toLine()}\n`);
      return 125;
    }
    throw e;
  }
  const found = findExecutable(p.rest[0]!);
  if (found !== 'ok') {
    io.err(`membrane: exec: "${p.rest[0]}": ${found === 127 ? 'executable file not found in $PATH' : 'permission denied'}\n`);
    return found;
  }
  const child = spawn('ip', ['netns', 'exec', target.netns, ...p.rest], { stdio: 'inherit' });
  return new Promise((res) => {
    child.on('exit', (code, signal) => res(code ?? (signal ? 128 + 15 : 1)));
    child.on('error', () => res(125));
  });
}

export const logsHelp = `Usage: membrane logs POD [-n NS] [-c CONTAINER] [-f]`;

export async function logs(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'namespace', short: 'n', value: true }, { name: 'container', short: 'c', value: true }, { name: 'follow', short: 'f' }]);
  if (p.positionals.length !== 1) throw usage('logs needs POD');
  const ns = flag(p, 'namespace') ?? 'default';
  const q = new URLSearchParams();
  if (flag(p, 'container')) q.set('container', flag(p, 'container')!);
  if (boolFlag(p, 'follow')) q.set('follow', 'true');
  await stream(`/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(p.positionals[0]!)}/logs?${q}`, (c) => io.out(c.toString('utf8')));
  return 0;
}
