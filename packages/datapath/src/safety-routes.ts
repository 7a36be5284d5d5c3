/**
 * The safety rail of design.md section 8: before the first packet, the root
 * namespace gets an `unreachable` route for each range the agent owns (the
 * pod CIDR, the service CIDR) and, for a run that targets outside test hosts,
 * for exactly those /32 addresses, so a packet to an address whose pod (or
 * test host) is not up fails on this machine (EHOSTUNREACH) instead of
 * following the default route off it. Each pod's /32 route is more specific
 * and wins; a test host's /32 route wins over its rail by its lower metric.
 *
 * The routes are added, never replaced: `ip route replace` would overwrite a
 * route the machine lives on (on some hosts 192.0.2.0/24 is the uplink's own
 * subnet, and replacing it cuts the machine off). A range that already has a
 * route of the host is left alone and reported; a range that already has an
 * unreachable route (another run, `membrane up`) is covered but not ours.
 * Only the routes this run added are removed.
 *
 * Membrane's routes carry their own routing protocol number,
 * SAFETY_ROUTE_PROTOCOL (`ip route show proto 77`), so they can be told from
 * an administrator's unreachable routes: `membrane down` finds and removes
 * the ones a previous agent left (removeMembraneSafetyRoutes), and removal
 * names the protocol, so the kernel never deletes a route of someone else.
 */
import { formatPrefix, parsePrefix, prefixContains, type Prefix } from '@membrane/policy';
import type { Cleanup } from './cleanup.js';
import { NetlinkError, ip, ipJson } from './netlink.js';
import { DEFAULT_POD_CIDR } from './pod-ip-allocator.js';

/**
 * The documentation ranges scenarios put outside peers (test hosts) on. No
 * rail ever covers a whole one: on these machines the uplink lives in
 * 192.0.2.0/24 and the package registries resolve into 203.0.113.0/24. A run
 * that targets test hosts rails exactly their addresses (testHostRails).
 */
export const TEST_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'] as const;

/**
 * The routing protocol number on every safety route Membrane adds (rtnetlink
 * `rtm_protocol`; the kernel does not interpret values above 4, and 77 is in
 * none of iproute2's reserved names).
 */
export const SAFETY_ROUTE_PROTOCOL = 77;

/**
 * The metric of every safety route: high, so a route of the same prefix
 * with the default metric 0 (a test host's /32 at the address the rail
 * guards) wins over it while it exists, and the rail takes over again when
 * that route goes.
 */
export const SAFETY_ROUTE_METRIC = 4000;

/** The prefixes an agent rails: the ranges it owns (its pod CIDR, its service CIDR), and nothing else. */
export function safetyPrefixes(podCidr: string = DEFAULT_POD_CIDR, ...owned: string[]): string[] {
  return [podCidr, ...owned];
}

/** The rails of a run that targets these outside addresses: one /32 each, never their range. */
export function testHostRails(addresses: Iterable<string>): string[] {
  return [...new Set([...addresses].map((a) => `${a}/32`))];
}

export interface SafetyRoutes {
  /** Unreachable routes this run added (and will remove). */
  installed: string[];
  /** Ranges already covered by an unreachable route someone else added. */
  alreadyCovered: string[];
  /** Ranges left without the rail, and why. */
  skipped: { prefix: string; reason: string }[];
  /** Removes the routes of `installed` (only those, only once). */
  remove(): Promise<void>;
}

export interface InstallSafetyRoutesOptions {
  /**
   * Routes through links starting with this are the project's own (pods'
   * /32 routes): they are not reported as holes in the rail. Default `mbr`.
   */
  ownLinkPrefix?: string;
  /** Registers the removal of every route on the line after it is added. */
  cleanup?: Cleanup;
}

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
}

/** A canonical IPv4 prefix; throws on anything else (IPv6, host bits set, a bare address). */
function canonicalPrefix(cidr: string): string {
  const p = parsePrefix(cidr);
  if (typeof p === 'string') throw new Error(`safety route: ${p}`);
  if (p.family !== 4) throw new Error(`safety route: "${cidr}" is not IPv4 (the rail covers IPv4 ranges only)`);
  const c = formatPrefix(p);
  if (c !== cidr) throw new Error(`safety route: "${cidr}" has host bits set (did you mean ${c}?)`);
  return c;
}

/** A route's destination as a prefix (`default` is 0.0.0.0/0, a bare address a /32). */
function routePrefix(r: RouteJson): Prefix | undefined {
  const p = parsePrefix(r.dst === 'default' ? '0.0.0.0/0' : r.dst, { allowBare: true });
  return typeof p === 'string' ? undefined : p;
}

function routeDst(r: RouteJson): string {
  const p = routePrefix(r);
  return p ? formatPrefix(p) : r.dst;
}

async function mainRoutes(): Promise<RouteJson[]> {
  return ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'list routes');
}

async function deleteSafetyRoute(prefix: string): Promise<void> {
  try {
    await ip(['route', 'delete', 'unreachable', prefix, 'table', 'main', 'proto', String(SAFETY_ROUTE_PROTOCOL)], `delete the safety route unreachable ${prefix}`);
  } catch (e) {
    // Gone already (someone removed it, or `membrane down` ran): nothing to undo.
    if (!(e instanceof NetlinkError && /No such process/.test(e.stderr))) throw e;
  }
}

/** Adds the rail for each prefix (default: the pod CIDR 10.200.0.0/16 and the test ranges). */
export async function installSafetyRoutes(prefixes: readonly string[] = safetyPrefixes(), opts: InstallSafetyRoutesOptions = {}): Promise<SafetyRoutes> {
  const ownLinkPrefix = opts.ownLinkPrefix ?? 'mbr';
  const wanted = prefixes.map(canonicalPrefix);
  const installed: string[] = [];
  const alreadyCovered: string[] = [];
  const skipped: { prefix: string; reason: string }[] = [];
  // Each route is removed once at most, whichever comes first (remove() or the registry):
  // a second removal could take a route another run added since for the same prefix.
  const gone = new Set<string>();
  const undo = async (prefix: string): Promise<void> => {
    if (gone.has(prefix)) return;
    gone.add(prefix);
    await deleteSafetyRoute(prefix);
  };
  const remove = async (): Promise<void> => {
    const errors: string[] = [];
    for (const prefix of [...installed].reverse()) {
      try {
        await undo(prefix);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (errors.length) throw new Error(errors.join('; '));
  };

  const routes = await mainRoutes();
  try {
    for (const prefix of wanted) {
      if (installed.includes(prefix) || alreadyCovered.includes(prefix) || skipped.some((s) => s.prefix === prefix)) continue;
      const exact = routes.filter((r) => routeDst(r) === prefix);
      if (exact.some((r) => r.type === 'unreachable')) {
        alreadyCovered.push(prefix);
        continue;
      }
      if (exact.length > 0) {
        const r = exact[0]!;
        skipped.push({ prefix, reason: `the host already routes ${prefix}${r.dev ? ` on ${r.dev}` : ''}${r.gateway ? ` via ${r.gateway}` : ''}; replacing that route could cut the machine off, so nothing may send to this range` });
        continue;
      }
      // `add`, never `replace`: it fails rather than overwrite a route that appeared meanwhile.
      await ip(['route', 'add', 'unreachable', prefix, 'table', 'main', 'proto', String(SAFETY_ROUTE_PROTOCOL), 'metric', String(SAFETY_ROUTE_METRIC)], `add the safety route unreachable ${prefix}`);
      installed.push(prefix);
      opts.cleanup?.add(`safety route unreachable ${prefix}`, () => undo(prefix));
      // More specific routes of the host inside the range still win over the rail.
      const outer = routePrefix({ dst: prefix })!;
      for (const r of routes) {
        const inner = routePrefix(r);
        if (!inner || r.type === 'unreachable' || (r.dev ?? '').startsWith(ownLinkPrefix)) continue;
        const dst = formatPrefix(inner);
        if (dst !== prefix && prefixContains(outer, inner)) {
          skipped.push({ prefix: dst, reason: `inside ${prefix} but routed by the host${r.dev ? ` on ${r.dev}` : ''}: the rail does not cover it` });
        }
      }
    }
  } catch (e) {
    // Half-way: without a caller's registry, take back what this call added.
    if (!opts.cleanup) await remove().catch(() => undefined);
    throw e;
  }
  return { installed, alreadyCovered, skipped, remove };
}

/** The unreachable routes present now for these prefixes, whoever added them (leak checks). */
export async function unreachableRoutes(prefixes: readonly string[]): Promise<string[]> {
  const wanted = new Set(prefixes.map(canonicalPrefix));
  return (await mainRoutes()).filter((r) => r.type === 'unreachable' && wanted.has(routeDst(r))).map(routeDst);
}

/** Membrane's safety routes present now (any prefix), e.g. left by an agent that did not stop cleanly. */
export async function findMembraneSafetyRoutes(): Promise<string[]> {
  const routes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main', 'type', 'unreachable', 'proto', String(SAFETY_ROUTE_PROTOCOL)], 'list the safety routes');
  return routes.map(routeDst);
}

/**
 * Removes Membrane's safety routes left by a previous run (`membrane down`):
 * all of them, or only those for `prefixes`. Unreachable routes without
 * Membrane's protocol number are never touched. Returns what was removed.
 */
export async function removeMembraneSafetyRoutes(prefixes?: readonly string[]): Promise<string[]> {
  const only = prefixes ? new Set(prefixes.map(canonicalPrefix)) : undefined;
  const removed: string[] = [];
  for (const prefix of await findMembraneSafetyRoutes()) {
    if (only && !only.has(prefix)) continue;
    await deleteSafetyRoute(prefix);
    removed.push(prefix);
  }
  return removed;
}
