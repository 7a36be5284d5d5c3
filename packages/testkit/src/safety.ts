/**
 * The safety rail of design.md section 8: before the first packet, the root
 * namespace gets an `unreachable` route for the pod CIDR and for each test
 * range, so a packet to an address whose pod (or test host) is not up fails
 * on this machine (EHOSTUNREACH) instead of following the default route off
 * it. Each pod's /32 route is more specific and wins.
 *
 * The routes are added, never replaced: `ip route replace` would overwrite a
 * route the machine lives on (on some hosts 192.0.2.0/24 is the uplink's own
 * subnet, and replacing it cuts the machine off). A range that already has a
 * route of the host is left alone and reported; a range that already has an
 * unreachable route (another run, `membrane up`) is covered but not ours.
 * Only the routes this run added are removed.
 */
import { ipJson, ip } from '@membrane/datapath';

export const POD_CIDR = '10.200.0.0/16';
/** The documentation ranges scenarios put outside peers on. */
export const TEST_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'] as const;

export interface SafetyRoutes {
  /** Unreachable routes this run added (and will remove). */
  installed: string[];
  /** Ranges already covered by an unreachable route someone else added. */
  alreadyCovered: string[];
  /** Ranges left without the rail, and why. */
  skipped: { prefix: string; reason: string }[];
  remove(): Promise<void>;
}

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
}

export function parsePrefix(cidr: string): { addr: number; len: number } {
  const [a, l] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
  const o = a!.split('.').map(Number);
  if (o.length !== 4 || o.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`"${cidr}" is not an IPv4 prefix`);
  const len = Number(l);
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new Error(`"${cidr}" has no valid prefix length`);
  const addr = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
  return { addr, len };
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Whether prefix `inner` lies inside prefix `outer`. */
export function prefixContains(outer: string, inner: string): boolean {
  const o = parsePrefix(outer);
  const i = parsePrefix(inner);
  return i.len >= o.len && ((i.addr & mask(o.len)) >>> 0) === ((o.addr & mask(o.len)) >>> 0);
}

function routeDst(r: RouteJson): string {
  if (r.dst === 'default') return '0.0.0.0/0';
  return r.dst.includes('/') ? r.dst : `${r.dst}/32`;
}

/** Add the rail for each prefix (default: the pod CIDR and the test ranges). */
export async function installSafetyRoutes(prefixes: readonly string[] = [POD_CIDR, ...TEST_RANGES], ownLinkPrefix = 'mbr'): Promise<SafetyRoutes> {
  const installed: string[] = [];
  const alreadyCovered: string[] = [];
  const skipped: { prefix: string; reason: string }[] = [];
  const routes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'list routes');
  for (const prefix of prefixes) {
    const exact = routes.filter((r) => routeDst(r) === prefix);
    if (exact.some((r) => r.type === 'unreachable')) {
      alreadyCovered.push(prefix);
      continue;
    }
    if (exact.length > 0) {
      const r = exact[0]!;
      skipped.push({ prefix, reason: `the host already routes ${prefix}${r.dev ? ` on ${r.dev}` : ''}${r.gateway ? ` via ${r.gateway}` : ''}; replacing that route could cut the machine off, so nothing in tests may send to this range` });
      continue;
    }
    await ip(['route', 'add', 'unreachable', prefix], `add the safety route unreachable ${prefix}`);
    installed.push(prefix);
    // More specific routes of the host inside the range still win over the rail.
    for (const r of routes) {
      const dst = routeDst(r);
      if (dst !== prefix && prefixContains(prefix, dst) && !(r.dev ?? '').startsWith(ownLinkPrefix) && r.type !== 'unreachable') {
        skipped.push({ prefix: dst, reason: `inside ${prefix} but routed by the host${r.dev ? ` on ${r.dev}` : ''}: the rail does not cover it` });
      }
    }
  }
  let removed = false;
  return {
    installed,
    alreadyCovered,
    skipped,
    async remove() {
      if (removed) return;
      removed = true;
      const errors: string[] = [];
      for (const prefix of installed) {
        try {
          await ip(['route', 'delete', 'unreachable', prefix], `delete the safety route unreachable ${prefix}`);
        } catch (e) {
          if (!/No such process/.test(String(e))) errors.push(e instanceof Error ? e.message : String(e));
        }
      }
      if (errors.length) throw new Error(errors.join('; '));
    },
  };
}

/** The unreachable routes present now for these prefixes (leak checks). */
export async function unreachableRoutes(prefixes: readonly string[]): Promise<string[]> {
  const routes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'list routes');
  return routes.filter((r) => r.type === 'unreachable' && prefixes.includes(routeDst(r))).map(routeDst);
}
