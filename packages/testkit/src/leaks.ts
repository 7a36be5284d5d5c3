/**
 * The final leak check of a privileged test file: nothing with the run's
 * names may remain — namespaces, links, routes through the run's links, pin
 * roots, agent processes, and the safety routes the run added.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, basename } from 'node:path';
import { ip } from '@membrane/datapath';
import type { RunNames } from './pods.js';
import { unreachableRoutes } from './safety.js';
import { runningAgents } from './traffic.js';

export async function findLeaks(names: RunNames, safetyRoutes: readonly string[] = []): Promise<string[]> {
  const leaks: string[] = [];
  for (const l of (await ip(['netns', 'list'], 'list network namespaces')).split('\n')) {
    if (l.startsWith(names.netnsPrefix)) leaks.push(`netns ${l.split(' ')[0]}`);
  }
  for (const l of (await ip(['-o', 'link', 'show'], 'list links')).split('\n')) {
    const name = l.split(':')[1]?.trim().split('@')[0];
    if (name?.startsWith(names.linkPrefix)) leaks.push(`link ${name}`);
  }
  for (const l of (await ip(['route', 'show', 'table', 'all'], 'list routes')).split('\n')) {
    if (l.includes(`dev ${names.linkPrefix}`)) leaks.push(`route ${l.trim()}`);
  }
  for (const r of await unreachableRoutes(safetyRoutes)) leaks.push(`safety route unreachable ${r}`);
  const pinDir = dirname(names.pinPrefix);
  if (existsSync(pinDir)) {
    for (const n of readdirSync(pinDir)) if (n.startsWith(basename(names.pinPrefix))) leaks.push(`pin ${pinDir}/${n}`);
  }
  for (const pid of runningAgents()) leaks.push(`agent process ${pid}`);
  return leaks;
}

/** Every process now, by pid. */
export function processSnapshot(): Set<number> {
  return new Set(readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number));
}

/**
 * Processes that did not exist in `before`, still run, and live in another
 * network namespace than this one: what a run that made pods (and removed
 * them) would have left behind. Zombies are not counted.
 */
export function newProcessesInOtherNetns(before: ReadonlySet<number>): number[] {
  const mine = netnsOf(process.pid);
  const out: number[] = [];
  for (const pid of processSnapshot()) {
    if (before.has(pid)) continue;
    const ns = netnsOf(pid);
    if (!ns || ns === mine) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    } catch {
      continue;
    }
    out.push(pid);
  }
  return out;
}

function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}
