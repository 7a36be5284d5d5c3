/**
 * Network namespaces, veth pairs, addresses, routes and per-interface sysctls
 * through iproute2 (`ip -json`). Every name the project creates starts with
 * `mbr`; the functions refuse others, so a bug cannot touch a foreign link.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MembraneError } from '@membrane/api';

const run = promisify(execFile);

export class NetlinkError extends MembraneError {
  constructor(
    readonly what: string,
    readonly stderr: string,
  ) {
    super('MEMBRANE_E_POD_NETWORK', `${what}: ${stderr.trim() || 'failed'}`);
    this.name = 'NetlinkError';
  }
}

function assertOurs(kind: string, name: string): void {
  if (!/^mbr[a-z0-9_.-]*$/i.test(name)) throw new Error(`refusing to touch ${kind} "${name}": Membrane only manages names starting with "mbr"`);
  if (kind !== 'netns' && name.length > 15) throw new Error(`${kind} name "${name}" is longer than 15 characters`);
}

export async function ip(args: readonly string[], what: string, netns?: string): Promise<string> {
  const argv = netns ? ['-n', netns, ...args] : [...args];
  try {
    const { stdout } = await run('ip', argv, { encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; code?: string | number };
    if (err.code === 'ENOENT') throw new NetlinkError(what, 'the ip command is missing (apt-get install iproute2)');
    throw new NetlinkError(what, err.stderr ?? String(e));
  }
}

export async function ipJson<T>(args: readonly string[], what: string, netns?: string): Promise<T> {
  const out = await ip(['-json', ...args], what, netns);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

export async function netnsExists(name: string): Promise<boolean> {
  const list = await ipJson<{ name: string }[]>(['netns', 'list'], 'list network namespaces');
  return list.some((n) => n.name === name);
}

export async function netnsAdd(name: string): Promise<void> {
  assertOurs('netns', name);
  await ip(['netns', 'add', name], `create network namespace ${name}`);
  await ip(['link', 'set', 'lo', 'up'], `bring up lo in ${name}`, name);
}

export async function netnsDelete(name: string): Promise<void> {
  assertOurs('netns', name);
  if (!(await netnsExists(name))) return;
  await ip(['netns', 'delete', name], `delete network namespace ${name}`);
}

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  address?: string;
  operstate?: string;
  /** Administrative and carrier flags (UP, LOWER_UP ...). */
  flags?: string[];
  /** A veth's peer: its ifindex (in the namespace link_netnsid names, when it is elsewhere). */
  link_index?: number;
  link_netnsid?: number;
}

export async function linkShow(name: string, netns?: string): Promise<LinkInfo | undefined> {
  try {
    const l = await ipJson<LinkInfo[]>(['link', 'show', 'dev', name], `show link ${name}`, netns);
    return l[0];
  } catch (e) {
    if (e instanceof NetlinkError && /does not exist|Cannot find device/.test(e.stderr)) return undefined;
    throw e;
  }
}

export async function links(netns?: string): Promise<LinkInfo[]> {
  return ipJson<LinkInfo[]>(['link', 'show'], 'list links', netns);
}

/**
 * A veth pair: `host` stays in the root namespace, `peer` moves into `netns`
 * and is renamed `peerName` there (e.g. eth0).
 */
export async function vethAdd(host: string, netns: string, peerName = 'eth0'): Promise<{ hostIfindex: number; peerIfindex: number }> {
  assertOurs('link', host);
  assertOurs('netns', netns);
  const tmp = `${host}p`.slice(0, 15);
  await ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', tmp, 'netns', netns], `create veth ${host}`);
  await ip(['link', 'set', tmp, 'name', peerName], `rename ${tmp} to ${peerName} in ${netns}`, netns);
  await ip(['link', 'set', peerName, 'up'], `bring up ${peerName} in ${netns}`, netns);
  await ip(['link', 'set', host, 'up'], `bring up ${host}`);
  const h = await linkShow(host);
  const p = await linkShow(peerName, netns);
  return { hostIfindex: h!.ifindex, peerIfindex: p!.ifindex };
}

export async function linkDelete(name: string, netns?: string): Promise<void> {
  if (!netns) assertOurs('link', name);
  if (!(await linkShow(name, netns))) return;
  await ip(['link', 'delete', name], `delete link ${name}`, netns);
}

export async function addrAdd(dev: string, cidr: string, netns?: string): Promise<void> {
  await ip(['addr', 'replace', cidr, 'dev', dev], `add address ${cidr} to ${dev}`, netns);
}

export async function routeReplace(args: readonly string[], netns?: string): Promise<void> {
  await ip(['route', 'replace', ...args], `route ${args.join(' ')}`, netns);
}

export async function routeDelete(args: readonly string[], netns?: string): Promise<void> {
  try {
    await ip(['route', 'delete', ...args], `delete route ${args.join(' ')}`, netns);
  } catch (e) {
    if (e instanceof NetlinkError && /No such process|not found/i.test(e.stderr)) return;
    throw e;
  }
}

/** Reads a sysctl of the root namespace (trimmed), or undefined when it does not exist. */
export async function sysctlGet(key: string): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    return (await readFile(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NetlinkError(`read sysctl ${key}`, (e as Error).message);
  }
}

/** Per-interface sysctl (never a global one), in the root namespace or a netns. */
export async function sysctl(key: string, value: string, netns?: string): Promise<void> {
  const args = netns ? ['netns', 'exec', netns, 'sysctl', '-q', '-w', `${key}=${value}`] : [];
  if (netns) {
    await ip(args, `sysctl ${key}=${value} in ${netns}`);
    return;
  }
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`/proc/sys/${key.replace(/\./g, '/')}`, value).catch((e: Error) => {
    throw new NetlinkError(`sysctl ${key}=${value}`, e.message);
  });
}
