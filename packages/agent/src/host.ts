/** The host's own IPv4 addresses (traffic from them is the host identity), and the agent's state directory. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function hostAddresses(): string[] {
  try {
    const out = execFileSync('ip', ['-json', '-4', 'addr', 'show'], { encoding: 'utf8' });
    const links = JSON.parse(out) as { addr_info?: { local: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)).filter((a) => !a.startsWith('127.'));
  } catch {
    return [];
  }
}

/** Creates the state directory (root-only) and its token file on first start; answers the token. */
export function prepareStateDir(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  mkdirSync(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
  const tokenFile = join(stateDir, 'token');
  if (!existsSync(tokenFile)) writeFileSync(tokenFile, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
  return readFileSync(tokenFile, 'utf8').trim();
}

/**
 * The address of the cluster DNS server (the agent's, on the router link):
 * the last usable address of the pod CIDR, which the allocator then never
 * gives to a pod.
 */
export function dnsAddressOf(podCIDR: string): string {
  const [addr, bits] = podCIDR.split('/') as [string, string];
  const n = addr.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const last = n + 2 ** (32 - Number(bits)) - 2;
  return [last >>> 24, (last >>> 16) & 255, (last >>> 8) & 255, last & 255].join('.');
}
