/**
 * Outside test hosts: "the world" for live runs and tests, without a packet
 * leaving the machine. A test host is a network namespace of the project's
 * own holding one documentation address (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24) as a /32 on its eth0, reached through the host's routing
 * like anything beyond the node:
 *
 *   root namespace                                  test host <netnsPrefix><n>
 *   unreachable <ip>/32 metric 4000 (the rail)
 *   <ip>/32 dev <linkPrefix>t<n>  ══ veth ══  eth0 <ip>/32
 *   forwarding on <linkPrefix>t<n>              default via <router> dev eth0 onlink
 *
 * The rail goes in before the host exists and stays until the run ends, so
 * a packet for the address while its host is not (yet, or any more) up fails
 * here; the host's own /32 route has the default metric and wins while it
 * exists. No endpoint programs run on a test host's veth: it has no identity
 * of its own but what the ipcache gives its address (world, or the CIDR
 * identity of a prefix a policy names).
 *
 * An address the machine itself uses (its own, its gateways, its resolvers)
 * is refused: a test host there would capture the machine's own traffic.
 */
import { readFileSync } from 'node:fs';
import { MembraneError } from '@membrane/api';
import { parsePrefix, prefixContains, type Prefix } from '@membrane/policy';
import { addrAdd, ip, ipJson, linkDelete, netnsAdd, netnsDelete, routeReplace, sysctl, vethAdd } from './netlink.js';
import { TEST_RANGES, installSafetyRoutes, testHostRails, type SafetyRoutes } from './safety-routes.js';

export interface TestHostNames {
  /** Host-side links are `<linkPrefix>t<n>`. */
  linkPrefix: string;
  /** Namespaces are `<netnsPrefix><n>`. */
  netnsPrefix: string;
}

export interface TestHost {
  name: string;
  ip: string;
  netns: string;
  hostIf: string;
}

/** Addresses this machine uses: its own, its gateways, its resolvers. */
export async function machineAddresses(resolvConf = '/etc/resolv.conf'): Promise<Set<string>> {
  const out = new Set<string>();
  for (const l of await ipJson<{ addr_info?: { local: string }[] }[]>(['-4', 'addr', 'show'], 'list addresses')) for (const a of l.addr_info ?? []) out.add(a.local);
  for (const r of await ipJson<{ gateway?: string }[]>(['-4', 'route', 'show', 'table', 'all'], 'list routes')) if (r.gateway) out.add(r.gateway);
  try {
    for (const l of readFileSync(resolvConf, 'utf8').split('\n')) {
      const m = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)/.exec(l);
      if (m) out.add(m[1]!);
    }
  } catch {
    // No resolv.conf: no resolvers to protect.
  }
  return out;
}

const RANGES: Prefix[] = TEST_RANGES.map((r) => parsePrefix(r) as Prefix);

/** Why an address cannot be a test host, or undefined when it can. */
export function testHostRefusal(addr: string, machine: ReadonlySet<string>): string | undefined {
  const p = parsePrefix(`${addr}/32`);
  if (typeof p === 'string' || p.family !== 4) return `"${addr}" is not an IPv4 address`;
  if (!RANGES.some((r) => prefixContains(r, p))) return `${addr} is not in a documentation range (${TEST_RANGES.join(', ')}): test hosts live only there`;
  if (machine.has(addr)) return `${addr} is an address this machine uses (its own, a gateway or a resolver): a test host there would capture the machine's own traffic`;
  return undefined;
}

export class TestHosts {
  private readonly hosts = new Map<string, TestHost>();
  private readonly rails = new Map<string, SafetyRoutes>();
  private counter = 0;

  constructor(
    readonly names: TestHostNames,
    /** The router IP pods and test hosts route through (the pod network's). */
    readonly routerIP: string,
  ) {
    if (!/^mbr/.test(names.linkPrefix) || !/^mbr/.test(names.netnsPrefix)) throw new MembraneError('MEMBRANE_E_USAGE', 'test host names must start with "mbr"');
  }

  list(): TestHost[] {
    return [...this.hosts.values()];
  }

  get(addr: string): TestHost | undefined {
    return this.hosts.get(addr);
  }

  /** Make a test host at `addr` (idempotent for the same address). */
  async add(addr: string, name = addr): Promise<TestHost> {
    const have = this.hosts.get(addr);
    if (have) return have;
    const why = testHostRefusal(addr, await machineAddresses());
    if (why) throw new MembraneError('MEMBRANE_E_USAGE', `test host ${name}: ${why}`);
    // The rail before anything can send to the address.
    if (!this.rails.has(addr)) this.rails.set(addr, await installSafetyRoutes(testHostRails([addr])));
    const n = this.counter++;
    const h: TestHost = { name, ip: addr, netns: `${this.names.netnsPrefix}${n}`, hostIf: `${this.names.linkPrefix}t${n}` };
    try {
      await netnsAdd(h.netns);
      await sysctl('net.ipv6.conf.all.disable_ipv6', '1', h.netns);
      await vethAdd(h.hostIf, h.netns, 'eth0');
      await sysctl(`net.ipv4.conf.${h.hostIf}.forwarding`, '1');
      await addrAdd('eth0', `${addr}/32`, h.netns);
      await routeReplace([this.routerIP, 'dev', 'eth0', 'scope', 'link'], h.netns);
      await routeReplace(['default', 'via', this.routerIP, 'dev', 'eth0', 'onlink'], h.netns);
      await ip(['route', 'add', `${addr}/32`, 'dev', h.hostIf], `route ${addr}/32 dev ${h.hostIf}`);
    } catch (e) {
      await this.takeDown(h).catch(() => undefined);
      throw new MembraneError('MEMBRANE_E_POD_NETWORK', `test host ${name} at ${addr}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    this.hosts.set(addr, h);
    return h;
  }

  private async takeDown(h: TestHost): Promise<void> {
    // The host link takes its route and its peer with it; the rail stays until removeAll.
    await linkDelete(h.hostIf);
    await netnsDelete(h.netns);
  }

  /** Take one test host down (its rail stays: the run may still send there). */
  async remove(addr: string): Promise<void> {
    const h = this.hosts.get(addr);
    if (!h) return;
    await this.takeDown(h);
    this.hosts.delete(addr);
  }

  /** Every test host and every rail of this set (end of a run). Every step runs; failures are reported together. */
  async removeAll(): Promise<void> {
    const errors: string[] = [];
    for (const h of [...this.hosts.values()]) {
      try {
        await this.takeDown(h);
        this.hosts.delete(h.ip);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    for (const [addr, r] of [...this.rails]) {
      try {
        await r.remove();
        this.rails.delete(addr);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (errors.length) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `removing test hosts: ${errors.join('; ')}`);
  }
}
