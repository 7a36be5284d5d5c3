/**
 * The policy routing of the L7 redirect (bpf/lib/proxy.h): a packet the
 * programs mark MBR_MARK_TO_PROXY is delivered on this host, to the proxy's
 * socket the program assigned (or the one TCP finds), whatever its
 * destination address — Cilium's TPROXY routing:
 *
 *   ip rule add fwmark 0x0a00/0xffff lookup <table> pref <priority>
 *   ip route add local 0.0.0.0/0 dev lo table <table>
 *
 * The caller chooses table and priority (an agent derives them from its
 * names, so two agents on one machine never remove each other's). Both are
 * added only when absent and never replace anything: a priority holding
 * another rule, or a table holding another route or looked up by another
 * rule, is refused. Membrane's rule and route carry PROXY_ROUTING_PROTOCOL,
 * so removal names exactly them and nothing of someone else's goes.
 *
 * The hairpin of the ingress redirect re-enters the host stack on the router
 * link with a pod's source address that is routed through another link: the
 * reverse-path filter would drop it. rp_filter is set to 0 on the router link
 * (per interface), and the global switch is checked, never changed: the
 * kernel applies the larger of net.ipv4.conf.all.rp_filter and the link's.
 */
import { MembraneError } from '@membrane/api';
import type { Cleanup } from './cleanup.js';
import { MARK_MASK, MARK_TO_PROXY } from './codecs.js';
import { NetlinkError, ip, ipJson, sysctl, sysctlGet } from './netlink.js';
import { SAFETY_ROUTE_PROTOCOL } from './safety-routes.js';

/** The routing protocol number of Membrane's rule and route (the safety routes' 77: every route Membrane adds carries it). */
export const PROXY_ROUTING_PROTOCOL = SAFETY_ROUTE_PROTOCOL;

export interface ProxyRoutingOptions {
  /** A table of its own: 1 to 2^31 - 1, not 253, 254, 255 (default, main, local). */
  table: number;
  /** The rule's preference: 1 to 32765, so it comes before the main table's rule. */
  priority: number;
  /** The pod network's router link (`<prefix>r`): its rp_filter is set to 0. */
  routerIf?: string;
  /** Registers the removal of the rule and the route once they are added. */
  cleanup?: Cleanup;
}

export interface ProxyRoutingReport {
  /** `ip rule … fwmark 0x0a00/0xffff lookup <table> pref <priority>`. */
  rule: 'added' | 'present' | 'removed' | 'absent';
  /** `local 0.0.0.0/0 dev lo table <table>`. */
  route: 'added' | 'present' | 'removed' | 'absent';
  /** The router link's rp_filter: set to 0 now, or 0 already (install with routerIf only). */
  rpFilter?: 'set' | 'unchanged';
  /** What will still make the redirect fail, a sentence each (empty when nothing). */
  warnings: string[];
}

interface RuleJson {
  priority: number;
  table?: string;
  fwmark?: string;
  fwmask?: string;
  protocol?: string;
  [k: string]: unknown;
}

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
  protocol?: string;
}

const FWMARK = `0x${MARK_TO_PROXY.toString(16)}`;
const FWMASK = `0x${MARK_MASK.toString(16)}`;

function check(o: Pick<ProxyRoutingOptions, 'table' | 'priority'>): void {
  if (!Number.isInteger(o.table) || o.table < 1 || o.table > 0x7fffffff || (o.table >= 253 && o.table <= 255)) {
    throw new MembraneError('MEMBRANE_E_USAGE', `proxy routing: table ${o.table} must be an integer from 1 to 2147483647 other than 253, 254 and 255 (default, main, local)`);
  }
  if (!Number.isInteger(o.priority) || o.priority < 1 || o.priority > 32765) {
    throw new MembraneError('MEMBRANE_E_USAGE', `proxy routing: priority ${o.priority} must be an integer from 1 to 32765 (before the main table's rule at 32766)`);
  }
}

function isOurRule(r: RuleJson, o: Pick<ProxyRoutingOptions, 'table' | 'priority'>): boolean {
  return (
    r.priority === o.priority &&
    r.table === String(o.table) &&
    r.fwmark === FWMARK &&
    r.fwmask === FWMASK &&
    r.protocol === String(PROXY_ROUTING_PROTOCOL) &&
    // Nothing else narrows it (from, to, iif, oif, ...).
    Object.keys(r).every((k) => ['priority', 'src', 'table', 'fwmark', 'fwmask', 'protocol', 'flags'].includes(k)) &&
    (r['src'] === undefined || r['src'] === 'all')
  );
}

/** RTN_LOCAL, as `ip -N` prints it (numbers for names). */
const RTN_LOCAL = '2';

function isOurRoute(r: RouteJson): boolean {
  return (r.type === 'local' || r.type === RTN_LOCAL) && r.dst === 'default' && r.dev === 'lo' && r.protocol === String(PROXY_ROUTING_PROTOCOL);
}

function describeRule(r: RuleJson): string {
  const { priority, ...rest } = r;
  return `${priority}: ${Object.entries(rest).map(([k, v]) => `${k} ${String(v)}`).join(' ')}`;
}

function describeRoute(r: RouteJson): string {
  return [r.type, r.dst, r.dev && `dev ${r.dev}`, r.protocol && `proto ${r.protocol}`].filter(Boolean).join(' ');
}

async function rules(): Promise<RuleJson[]> {
  return ipJson<RuleJson[]>(['-N', 'rule', 'show'], 'list routing rules');
}

async function tableRoutes(table: number): Promise<RouteJson[]> {
  try {
    return await ipJson<RouteJson[]>(['-N', 'route', 'show', 'table', String(table)], `list the routes of table ${table}`);
  } catch (e) {
    // A table without any route does not exist for the kernel.
    if (e instanceof NetlinkError && /table does not exist/i.test(e.stderr)) return [];
    throw e;
  }
}

const RULE_ARGS = (o: Pick<ProxyRoutingOptions, 'table' | 'priority'>) => ['fwmark', `${FWMARK}/${FWMASK}`, 'lookup', String(o.table), 'pref', String(o.priority), 'protocol', String(PROXY_ROUTING_PROTOCOL)];
const ROUTE_ARGS = (table: number) => ['local', '0.0.0.0/0', 'dev', 'lo', 'table', String(table), 'proto', String(PROXY_ROUTING_PROTOCOL)];

/**
 * What makes the hairpin fail on this machine: the global rp_filter (the
 * kernel applies the larger of it and the link's). Empty when nothing.
 */
export async function proxyRoutingWarnings(routerIf?: string): Promise<string[]> {
  const all = await sysctlGet('net.ipv4.conf.all.rp_filter');
  if (all === undefined || all === '0') return [];
  const link = routerIf ?? 'the router link';
  return [
    `net.ipv4.conf.all.rp_filter is ${all}: the kernel applies the larger of it and ${link}'s, so a connection hairpinned to the proxy through ${link} (its source, a pod, is routed through the pod's own link) fails the reverse-path check and is dropped, and ingress L7 redirects time out; set net.ipv4.conf.all.rp_filter=0 (Membrane never changes a global sysctl)`,
  ];
}

/** A table and a rule priority of an agent's own, from its name prefix (stable across restarts, apart for two agents). */
export function proxyRoutingSlot(namePrefix: string): { table: number; priority: number } {
  let h = 2166136261;
  for (const ch of namePrefix) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return { table: 0x6d620000 + (h & 0xffff), priority: 9000 + (h % 9000) };
}

/** Adds the rule and the route unless present (refusing a priority or table of someone else's); sets rp_filter 0 on the router link. */
export async function installProxyRouting(opts: ProxyRoutingOptions): Promise<ProxyRoutingReport> {
  check(opts);
  if (opts.routerIf !== undefined && !/^mbr[a-z0-9_.-]*$/i.test(opts.routerIf)) {
    throw new MembraneError('MEMBRANE_E_USAGE', `proxy routing: refusing to touch the rp_filter of "${opts.routerIf}": Membrane only manages links whose names start with "mbr"`);
  }
  const where = `proxy routing (table ${opts.table}, priority ${opts.priority})`;
  // Everything is checked before anything changes.
  const present = await rules();
  const ourRule = present.some((r) => isOurRule(r, opts));
  const conflicts: string[] = [];
  for (const r of present) {
    if (isOurRule(r, opts)) continue;
    if (r.priority === opts.priority) conflicts.push(`priority ${opts.priority} holds the rule ${describeRule(r)}`);
    else if (r.table === String(opts.table)) conflicts.push(`table ${opts.table} is looked up by the rule ${describeRule(r)}`);
  }
  const routes = await tableRoutes(opts.table);
  const ourRoute = routes.some(isOurRoute);
  for (const r of routes) if (!isOurRoute(r)) conflicts.push(`table ${opts.table} holds the route ${describeRoute(r)}`);
  if (conflicts.length > 0) {
    throw new MembraneError('MEMBRANE_E_CONFLICT', `${where}: used by something else: ${conflicts.join('; ')}; choose another table and priority`, { details: conflicts });
  }

  const report: ProxyRoutingReport = { rule: ourRule ? 'present' : 'added', route: ourRoute ? 'present' : 'added', warnings: [] };
  if (!ourRoute) await ip(['route', 'add', ...ROUTE_ARGS(opts.table)], `${where}: add the route local 0.0.0.0/0 dev lo`);
  if (!ourRule) {
    try {
      await ip(['rule', 'add', ...RULE_ARGS(opts)], `${where}: add the rule fwmark ${FWMARK}/${FWMASK}`);
    } catch (e) {
      if (!ourRoute) await removeRoute(opts.table).catch(() => undefined);
      throw e;
    }
  }
  if (!ourRoute || !ourRule) opts.cleanup?.add(`${where}`, async () => void (await removeProxyRouting(opts)));
  if (opts.routerIf !== undefined) {
    const key = `net.ipv4.conf.${opts.routerIf}.rp_filter`;
    const v = await sysctlGet(key);
    if (v === undefined) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `${where}: the router link ${opts.routerIf} does not exist`);
    if (v !== '0') await sysctl(key, '0');
    report.rpFilter = v === '0' ? 'unchanged' : 'set';
  }
  report.warnings = await proxyRoutingWarnings(opts.routerIf);
  return report;
}

async function removeRoute(table: number): Promise<boolean> {
  if (!(await tableRoutes(table)).some(isOurRoute)) return false;
  await ip(['route', 'del', ...ROUTE_ARGS(table)], `proxy routing (table ${table}): delete the route local 0.0.0.0/0 dev lo`);
  return true;
}

/** Removes Membrane's rule and route for this table and priority (only those: they carry PROXY_ROUTING_PROTOCOL). */
export async function removeProxyRouting(opts: Pick<ProxyRoutingOptions, 'table' | 'priority'>): Promise<ProxyRoutingReport> {
  check(opts);
  const report: ProxyRoutingReport = { rule: 'absent', route: 'absent', warnings: [] };
  if ((await rules()).some((r) => isOurRule(r, opts))) {
    await ip(['rule', 'del', ...RULE_ARGS(opts)], `proxy routing (table ${opts.table}, priority ${opts.priority}): delete the rule`);
    report.rule = 'removed';
  }
  if (await removeRoute(opts.table)) report.route = 'removed';
  return report;
}

/** Membrane's proxy rules present now (any table and priority): a leak check, or what `membrane down` finds. */
export async function findProxyRouting(): Promise<{ table: number; priority: number }[]> {
  return (await rules())
    .filter((r) => r.fwmark === FWMARK && r.fwmask === FWMASK && r.protocol === String(PROXY_ROUTING_PROTOCOL))
    .map((r) => ({ table: Number(r.table), priority: r.priority }));
}
