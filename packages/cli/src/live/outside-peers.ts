/**
 * Outside peers of a scenario made live: each gets a test host at its
 * documentation address; a peer given as the world entity (or cluster, all:
 * the simulator judges them as world) gets one at a documentation address no
 * policy of the scenario names, so the datapath sees world as the simulator
 * does. The host and the other reserved entities cannot be played by a test
 * host, nor can an address outside the documentation ranges (the machine's
 * real neighbours live there). Shared by `policy test --live` and the
 * testkit's live runner.
 */
import type { Scenario } from '@membrane/policy';

export const SKIP_HOST = 'the host entity is not probed live (the host is no test host)';
export const skipEntity = (e: string) => `the ${e} entity is not probed live (nothing on one machine has that identity)`;
export const skipAddress = (ip: string) => `${ip} is not a documentation address: test hosts live only in 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24`;
/** World entities get a test host at the first of these no policy of the scenario names. */
export const WORLD_CANDIDATES = Array.from({ length: 14 }, (_, i) => `198.51.100.${240 + i}`);

export function isDocumentationAddress(ip: string): boolean {
  return /^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/.test(ip);
}

/** The address a world entity's test host gets: a documentation address no CIDR of the scenario covers. */
export function worldAddress(s: Scenario): string | undefined {
  const cidrs = JSON.stringify(s.policies.map((p) => p.manifest));
  const covered = (ip: string) => {
    const n = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
    for (const m of cidrs.matchAll(/(\d+\.\d+\.\d+\.\d+)\/(\d+)/g)) {
      const base = m[1]!.split('.').reduce((a, b) => a * 256 + Number(b), 0);
      const size = 2 ** (32 - Number(m[2]));
      if (n >= base - (base % size) && n < base - (base % size) + size) return true;
    }
    return s.outside.some((o) => o.ip === ip);
  };
  return WORLD_CANDIDATES.find((ip) => !covered(ip));
}

/** The address of an outside peer's test host, or why it has none. */
export function outsideAddress(s: Scenario, name: string): { ip: string } | { skip: string } {
  const o = s.outside.find((x) => x.name === name)!;
  if (o.entity === 'host') return { skip: SKIP_HOST };
  if (o.entity && !['world', 'all', 'cluster'].includes(o.entity)) return { skip: skipEntity(o.entity) };
  if (o.entity) {
    const ip = worldAddress(s);
    return ip ? { ip } : { skip: 'no documentation address is left that no policy names, for the world entity' };
  }
  if (!o.ip || !isDocumentationAddress(o.ip)) return { skip: skipAddress(o.ip ?? '(none)') };
  return { ip: o.ip };
}
