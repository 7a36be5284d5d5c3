/**
 * Pods for privileged tests, plumbed as the agent plumbs them (design.md
 * section 3, host-routed):
 *
 *   root namespace                                 pod namespace mbrt<pid>-<n>
 *   <tag>r ══ <tag>rx   (veth pair that only holds the router IP 10.200.0.1)
 *   <tag>e<n>  ═══════════════ veth ═══════════════ eth0  <pod ip>/32
 *     route <pod ip>/32 dev <tag>e<n>                  route 10.200.0.1 dev eth0 scope link
 *     net.ipv4.conf.<tag>e<n>.forwarding=1             route default via 10.200.0.1 dev eth0 onlink
 *                                                      IPv6 disabled
 *
 * The host answers the pod's ARP for 10.200.0.1 (a local address) and
 * forwards between pods because forwarding is on for each input interface:
 * the global net.ipv4.ip_forward is never touched (on this kernel the
 * per-interface setting of the interface a packet arrives on decides).
 *
 * Names carry the run: links `mbr<pid base 36>-…` (≤ 15 characters),
 * namespaces `mbrt<pid>-<n>`. Every resource is registered for cleanup on the
 * line after it is made.
 */
import { Cleanup, addrAdd, ip, linkDelete, netnsAdd, netnsDelete, routeDelete, routeReplace, sysctl, vethAdd } from '@membrane/datapath';

export const ROUTER_IP = '10.200.0.1';

/** The names one run (one process) uses; leak checks look for them. */
export interface RunNames {
  /** Every link of the run starts with this. */
  linkPrefix: string;
  /** Every namespace of the run starts with this. */
  netnsPrefix: string;
  /** Pin roots of the run start with this (under /sys/fs/bpf). */
  pinPrefix: string;
}

export function runNames(pid: number = process.pid): RunNames {
  return { linkPrefix: `mbr${pid.toString(36)}-`, netnsPrefix: `mbrt${pid}-`, pinPrefix: `/sys/fs/bpf/mbr-test-live-${pid}` };
}

export interface Pod {
  /** The scenario's name for it (namespace/name), for messages. */
  name: string;
  netns: string;
  /** Host side of the veth; the endpoint programs attach here. */
  hostIf: string;
  ifindex: number;
  ip: string;
}

/** Write a per-interface IPv6 switch if IPv6 exists on this kernel at all. */
async function disableIPv6(dev: string): Promise<void> {
  await sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, '1').catch((e: Error) => {
    if (!/ENOENT/.test(e.message)) throw e;
  });
}

export class PodNetwork {
  private next = 0;
  private readonly pods = new Map<string, Pod>();

  private constructor(
    readonly names: RunNames,
    readonly routerIf: string,
  ) {}

  /**
   * The router link, registered in `cleanup`. Refuses to start when the
   * router IP is already configured (another run or agent holds it).
   */
  static async create(cleanup: Cleanup, names: RunNames = runNames()): Promise<PodNetwork> {
    const holder = (await ip(['-o', 'addr', 'show', 'to', `${ROUTER_IP}/32`], `look for ${ROUTER_IP}`)).trim();
    if (holder) throw new Error(`the router IP ${ROUTER_IP} is already configured (${holder.split(/\s+/)[1]}): another agent or test run owns the pod network`);
    const routerIf = `${names.linkPrefix}r`;
    const routerPeer = `${names.linkPrefix}rx`;
    await ip(['link', 'add', routerIf, 'type', 'veth', 'peer', 'name', routerPeer], `create the router link ${routerIf}`);
    cleanup.add(`router link ${routerIf}`, () => linkDelete(routerIf));
    await disableIPv6(routerIf);
    await disableIPv6(routerPeer);
    await addrAdd(routerIf, `${ROUTER_IP}/32`);
    await ip(['link', 'set', routerPeer, 'up'], `bring up ${routerPeer}`);
    await ip(['link', 'set', routerIf, 'up'], `bring up ${routerIf}`);
    await sysctl(`net.ipv4.conf.${routerIf}.forwarding`, '1');
    return new PodNetwork(names, routerIf);
  }

  /** A pod with `podIP`, its resources registered in `cleanup` (a scenario's own registry, say). */
  async addPod(name: string, podIP: string, cleanup: Cleanup): Promise<Pod> {
    if (podIP === ROUTER_IP) throw new Error(`pod ${name}: ${podIP} is the router IP`);
    for (const p of this.pods.values()) if (p.ip === podIP) throw new Error(`pod ${name}: ${podIP} is already the IP of pod ${p.name}`);
    const n = this.next++;
    const netns = `${this.names.netnsPrefix}${n}`;
    const hostIf = `${this.names.linkPrefix}e${n.toString(36)}`;
    if (hostIf.length > 15) throw new Error(`link name ${hostIf} is longer than 15 characters`);

    await netnsAdd(netns);
    cleanup.add(`netns ${netns}`, () => netnsDelete(netns));
    // Before eth0 exists, so it never gets an IPv6 address.
    await sysctl('net.ipv6.conf.all.disable_ipv6', '1', netns);
    await sysctl('net.ipv6.conf.default.disable_ipv6', '1', netns);
    const { hostIfindex } = await vethAdd(hostIf, netns, 'eth0');
    // Deleting the host side takes the pod side with it, at once (a namespace is freed later).
    cleanup.add(`veth ${hostIf}`, () => linkDelete(hostIf));
    this.pods.set(hostIf, { name, netns, hostIf, ifindex: hostIfindex, ip: podIP });
    cleanup.add(`pod ${name} bookkeeping`, () => void this.pods.delete(hostIf));
    await disableIPv6(hostIf);
    await sysctl(`net.ipv4.conf.${hostIf}.forwarding`, '1');

    await addrAdd('eth0', `${podIP}/32`, netns);
    await routeReplace([ROUTER_IP, 'dev', 'eth0', 'scope', 'link'], netns);
    await routeReplace(['default', 'via', ROUTER_IP, 'dev', 'eth0', 'onlink'], netns);
    await routeReplace([`${podIP}/32`, 'dev', hostIf]);
    cleanup.add(`route ${podIP}/32 dev ${hostIf}`, () => routeDelete([`${podIP}/32`, 'dev', hostIf]));
    return this.pods.get(hostIf)!;
  }

  list(): Pod[] {
    return [...this.pods.values()];
  }
}
