/**
 * The final leak check of a privileged test file: nothing with the run's
 * names may remain — namespaces, links, routes through the run's links, pin
 * roots, agent processes, and the safety routes the run added.
 */
import { existsSync, readdirSync } from 'node:fs';
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
