/**
 * The pod network of design.md section 3 (host-routed, like Cilium): a
 * router link holding the router IP, and per pod a network namespace, a veth
 * pair, a /32 address and the routes between them.
 *
 *   root namespace                                 pod namespace <netnsPrefix><id>
 *   <link>r ══ <link>rx  (veth pair that only holds the router IP, 10.200.0.1)
 *   <link>e<id>  ═════════════ veth ═════════════ eth0  <pod ip>/32
 *     route <pod ip>/32 dev <link>e<id>              route <router ip> dev eth0 scope link
 *     net.ipv4.conf.<link>e<id>.forwarding=1         route default via <router ip> dev eth0 onlink
 *                                                    IPv6 disabled
 *
 * The host answers the pod's ARP for the router IP (a local address) and
 * forwards between pods because forwarding is on for each input interface:
 * the global net.ipv4.ip_forward is never touched (on this kernel the
 * per-interface setting of the interface a packet arrives on decides).
 *
 * Names are what ownership is made of. A PodNetwork is given a name scheme
 * (PodNetworkNames: a link prefix and a netns prefix, both starting with
 * `mbr`): the agent uses AGENT_POD_NETWORK_NAMES, tests a per-run scheme.
 * `PodNetwork.open` creates the router link, or adopts it when the router IP
 * is already held by the link of the same name (an agent restarting after
 * its previous run); it refuses when any other link holds the router IP
 * (another agent or test run owns the pod network). Pods left by a previous
 * run are found by name (`discover`) and taken over as they are
 * (`adoptPod`), without a single change to them, so their processes and
 * connections carry on; their addresses are in use from `open` on, so the
 * allocator never hands them out again.
 *
 * Everything created is undone, newest first: each resource is registered on
 * the line after it is made — in the Cleanup a caller passes (tests), and in
 * the network's own bookkeeping for `removePod` and `destroy` (the agent).
 * A pod whose plumbing fails half-way is taken down again at once.
 */
import { MembraneError } from '@membrane/api';
import { Cleanup } from './cleanup.js';
import { NetlinkError, addrAdd, ip, ipJson, linkDelete, linkShow, links, netnsAdd, netnsDelete, routeDelete, routeReplace, sysctl, sysctlGet, vethAdd } from './netlink.js';
import { PodIPAllocator } from './pod-ip-allocator.js';

/** How a pod network names its kernel objects. */
export interface PodNetworkNames {
  /**
   * Every link starts with this: the router pair `<prefix>r` / `<prefix>rx`
   * and each pod's host-side veth `<prefix>e<id>` (at most 15 characters).
   * Starts with `mbr`; letters, digits, `_` and `-`.
   */
  linkPrefix: string;
  /** Every pod's network namespace is `<prefix><id>`. Starts with `mbr`. */
  netnsPrefix: string;
}

/**
 * The agent's names: router `mbr_r`, pods `mbr_e<id>` in `mbr_pod_<id>`.
 * The underscore keeps them apart from test runs, whose prefixes are
 * `mbr<pid base 36>-` (links) and `mbrt<pid>-` (namespaces).
 */
export const AGENT_POD_NETWORK_NAMES: Readonly<PodNetworkNames> = Object.freeze({ linkPrefix: 'mbr_', netnsPrefix: 'mbr_pod_' });

const POD_ID = /^[a-z0-9][a-z0-9-]*$/;

export interface Pod {
  /** The id its names derive from: netns `<netnsPrefix><id>`, host link `<linkPrefix>e<id>`. */
  id: string;
  /** The caller's name for it (namespace/name, say), for messages. */
  name: string;
  netns: string;
  /** Host side of the veth; the endpoint programs attach here. */
  hostIf: string;
  ifindex: number;
  ip: string;
  /** Found in place (a previous run made it) rather than created by this network. */
  adopted: boolean;
}

export interface PodSpec {
  /**
   * Stable id (lowercase letters, digits, `-`; short enough for the host
   * link name to fit 15 characters, see PodNetwork.maxIdLength). An agent
   * must derive it from something its store keeps, so a restart finds the
   * pod again. Default: the next free counter value in base 36.
   */
  id?: string;
  /** Default: the id. */
  name?: string;
  /** Default: the allocator's next free address. */
  ip?: string;
}

/** A pod's plumbing as found in the kernel by its names. */
export interface DiscoveredPod {
  id: string;
  netns: string;
  hostIf: string;
  /** The /32 address of eth0 in the pod, when there is one. */
  ip?: string;
  /** The host link's ifindex, when the link exists. */
  ifindex?: number;
  /** What is missing or wrong; empty when the pod can be adopted as it is. */
  problems: string[];
}

export interface PodNetworkOptions {
  /** Default 10.200.0.0/16. */
  cidr?: string;
  /** Default: the first address of the CIDR (10.200.0.1). */
  routerIP?: string;
  /** Default AGENT_POD_NETWORK_NAMES; tests pass per-run names. */
  names?: PodNetworkNames;
  /** Registers what `open` creates (the router link). What it adopts is removed by `destroy`. */
  cleanup?: Cleanup;
  /** Addresses already given to pods (say, by the agent's store) besides those found in the kernel. */
  inUse?: Iterable<string>;
  /**
   * More /32 addresses of the pod CIDR on the router link, for services the
   * host runs for the pods (the cluster DNS server): pods reach them as they
   * reach the router, and the allocator never gives them to a pod.
   */
  hostAddresses?: readonly string[];
}

export class PodAdoptError extends MembraneError {
  constructor(
    readonly id: string,
    readonly problems: readonly string[],
  ) {
    super('MEMBRANE_E_POD_NETWORK', `cannot adopt pod ${id}: ${problems.join('; ')}`);
    this.name = 'PodAdoptError';
  }
}

interface PodRecord {
  pod: Pod;
  /** Set when the plumbing is complete (or was adopted). */
  ready: boolean;
  /** Set once its bookkeeping is gone; every undo registered for it is then a no-op. */
  removed: boolean;
  /** Its resources, newest last: `removePod` runs them. */
  undo: Cleanup;
}

interface AddrJson {
  ifindex: number;
  ifname: string;
  flags?: string[];
  link_index?: number;
  link_netnsid?: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
  gateway?: string;
  scope?: string;
  flags?: string[];
}

function checkNames(names: PodNetworkNames): void {
  if (!/^mbr[a-z0-9_-]*$/i.test(names.linkPrefix)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `link prefix "${names.linkPrefix}" must start with "mbr" and hold only letters, digits, "_" and "-"`);
  if (names.linkPrefix.length > 13) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `link prefix "${names.linkPrefix}" is too long: "${names.linkPrefix}rx" and the pod links must fit 15 characters`);
  if (!/^mbr[a-z0-9_.-]*$/i.test(names.netnsPrefix)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `netns prefix "${names.netnsPrefix}" must start with "mbr" and hold only letters, digits, ".", "_" and "-"`);
}

/** Write a per-interface IPv6 switch if IPv6 exists on this kernel at all. */
async function disableIPv6(dev: string): Promise<void> {
  await sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, '1').catch((e: Error) => {
    if (!/ENOENT/.test(e.message)) throw e;
  });
}

/** The pod's /32 route in the root namespace; gone with its link, so a missing link means nothing to do. */
async function deleteHostRoute(podIP: string, hostIf: string): Promise<void> {
  if (!(await linkShow(hostIf))) return;
  await routeDelete([`${podIP}/32`, 'dev', hostIf]);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class PodNetwork {
  private readonly records = new Map<string, PodRecord>();
  /** Ids found in the kernel at `open`: the automatic ids skip them. */
  private readonly leftovers = new Set<string>();
  private counter = 0;
  private routerRemoved = false;
  private destroyed = false;

  private constructor(
    readonly names: Readonly<PodNetworkNames>,
    readonly allocator: PodIPAllocator,
    /** True when `open` found the router link in place (a restart) instead of creating it. */
    readonly routerAdopted: boolean,
    /** What `open` had to set again on an adopted router link (empty when it was intact). */
    readonly routerRepairs: readonly string[],
  ) {}

  get cidr(): string {
    return this.allocator.cidr;
  }

  get routerIP(): string {
    return this.allocator.routerIP;
  }

  /** The router link (holds the router IP). */
  get routerIf(): string {
    return `${this.names.linkPrefix}r`;
  }

  /** The router link's veth peer (the kernel here has no dummy device). */
  get routerPeer(): string {
    return `${this.names.linkPrefix}rx`;
  }

  /** The longest pod id the link names leave room for. */
  get maxIdLength(): number {
    return 15 - this.names.linkPrefix.length - 1;
  }

  /** The names a pod with this id has (or would have). */
  podNames(id: string): { netns: string; hostIf: string } {
    return { netns: `${this.names.netnsPrefix}${id}`, hostIf: `${this.names.linkPrefix}e${id}` };
  }

  /**
   * Creates the pod network, or adopts it when the router IP is held by this
   * scheme's router link (the agent restarting). Throws when another link
   * holds the router IP. Pods found in place are not adopted here (see
   * `discover` and `adoptPod`), but their addresses are marked in use.
   */
  static async open(opts: PodNetworkOptions = {}): Promise<PodNetwork> {
    const names = Object.freeze({ linkPrefix: opts.names?.linkPrefix ?? AGENT_POD_NETWORK_NAMES.linkPrefix, netnsPrefix: opts.names?.netnsPrefix ?? AGENT_POD_NETWORK_NAMES.netnsPrefix });
    checkNames(names);
    const allocator = new PodIPAllocator({ ...(opts.cidr ? { cidr: opts.cidr } : {}), ...(opts.routerIP ? { routerIP: opts.routerIP } : {}) });
    for (const a of opts.inUse ?? []) allocator.markInUse(a);
    const routerIP = allocator.routerIP;
    const routerIf = `${names.linkPrefix}r`;
    const routerPeer = `${names.linkPrefix}rx`;

    const holders = await ipJson<AddrJson[]>(['addr', 'show', 'to', `${routerIP}/32`], `look for ${routerIP}`);
    const others = holders.filter((h) => h.ifname !== routerIf);
    if (others.length > 0) {
      throw new MembraneError('MEMBRANE_E_POD_NETWORK', `the router IP ${routerIP} is already configured on ${others.map((h) => h.ifname).join(', ')}: another agent or test run owns the pod network`);
    }

    let net: PodNetwork;
    if (holders.length > 0) {
      net = new PodNetwork(names, allocator, true, await PodNetwork.repairRouter(routerIf, routerPeer));
    } else {
      net = new PodNetwork(names, allocator, false, []);
      // A router link of ours without the router IP is a half-made one (a crash during open): start again.
      if (await linkShow(routerIf)) await linkDelete(routerIf);
      if (await linkShow(routerPeer)) await linkDelete(routerPeer);
      try {
        await ip(['link', 'add', routerIf, 'type', 'veth', 'peer', 'name', routerPeer], `create the router link ${routerIf}`);
        opts.cleanup?.add(`router link ${routerIf}`, () => net.removeRouter());
        await disableIPv6(routerIf);
        await disableIPv6(routerPeer);
        await addrAdd(routerIf, `${routerIP}/32`);
        await ip(['link', 'set', routerPeer, 'up'], `bring up ${routerPeer}`);
        await ip(['link', 'set', routerIf, 'up'], `bring up ${routerIf}`);
        await sysctl(`net.ipv4.conf.${routerIf}.forwarding`, '1');
      } catch (e) {
        if (!opts.cleanup) await net.removeRouter().catch(() => undefined);
        throw e;
      }
    }

    try {
      for (const a of opts.hostAddresses ?? []) {
        allocator.markInUse(a);
        const held = await ipJson<AddrJson[]>(['addr', 'show', 'dev', routerIf, 'to', `${a}/32`], `look for ${a} on ${routerIf}`);
        if (held.length === 0) await addrAdd(routerIf, `${a}/32`);
      }
      for (const d of await net.discover()) {
        net.leftovers.add(d.id);
        if (d.ip && !allocator.unusableReason(d.ip)) allocator.markInUse(d.ip);
      }
    } catch (e) {
      if (!net.routerAdopted && !opts.cleanup) await net.removeRouter().catch(() => undefined);
      throw e;
    }
    return net;
  }

  /**
   * Removes everything under a scheme's names without opening the network
   * (`membrane down`): every pod found by name and the router link. Works
   * whoever holds the router IP now, and when nothing is left at all.
   */
  static async teardown(opts: Pick<PodNetworkOptions, 'names' | 'cidr' | 'routerIP'> = {}): Promise<void> {
    const names = Object.freeze({ linkPrefix: opts.names?.linkPrefix ?? AGENT_POD_NETWORK_NAMES.linkPrefix, netnsPrefix: opts.names?.netnsPrefix ?? AGENT_POD_NETWORK_NAMES.netnsPrefix });
    checkNames(names);
    const allocator = new PodIPAllocator({ ...(opts.cidr ? { cidr: opts.cidr } : {}), ...(opts.routerIP ? { routerIP: opts.routerIP } : {}) });
    await new PodNetwork(names, allocator, false, []).destroy();
  }

  /** An adopted router link: set again only what differs from the plumbing (link state, forwarding). */
  private static async repairRouter(routerIf: string, routerPeer: string): Promise<string[]> {
    const repairs: string[] = [];
    const router = await linkShow(routerIf);
    const peer = await linkShow(routerPeer);
    if (!router) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `the router link ${routerIf} vanished while it was being adopted`);
    if (!peer) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `the router link ${routerIf} holds the router IP but its peer ${routerPeer} is missing: remove ${routerIf} and open again`);
    if (!peer.flags?.includes('UP')) {
      await ip(['link', 'set', routerPeer, 'up'], `bring up ${routerPeer}`);
      repairs.push(`${routerPeer} was down`);
    }
    if (!router.flags?.includes('UP')) {
      await ip(['link', 'set', routerIf, 'up'], `bring up ${routerIf}`);
      repairs.push(`${routerIf} was down`);
    }
    if ((await sysctlGet(`net.ipv4.conf.${routerIf}.forwarding`)) !== '1') {
      await sysctl(`net.ipv4.conf.${routerIf}.forwarding`, '1');
      repairs.push(`forwarding was off on ${routerIf}`);
    }
    return repairs;
  }

  private async removeRouter(): Promise<void> {
    if (this.routerRemoved) return;
    this.routerRemoved = true;
    // Deleting one side of the pair takes the other with it.
    await linkDelete(this.routerIf);
    await linkDelete(this.routerPeer);
  }

  private assertOpen(): void {
    if (this.destroyed) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `the pod network ${this.routerIf} has been destroyed`);
  }

  private checkId(id: string): void {
    if (!POD_ID.test(id)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod id "${id}" must be lowercase letters, digits and "-", starting with a letter or digit`);
    if (id.length > this.maxIdLength) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod id "${id}" is longer than ${this.maxIdLength} characters: link ${this.podNames(id).hostIf} would not fit 15`);
  }

  private nextId(): string {
    for (;;) {
      const id = (this.counter++).toString(36);
      if (!this.records.has(id) && !this.leftovers.has(id)) return id;
    }
  }

  /** Registers `undo` in the pod's bookkeeping and, guarded, in the caller's registry. */
  private track(rec: PodRecord, what: string, undo: () => Promise<void> | void, cleanup?: Cleanup): void {
    rec.undo.add(what, () => (rec.removed ? undefined : undo()));
    cleanup?.add(what, () => (rec.removed ? undefined : undo()));
  }

  private forget(rec: PodRecord): void {
    if (rec.removed) return;
    rec.removed = true;
    if (this.records.get(rec.pod.id) === rec) this.records.delete(rec.pod.id);
    if (!this.ipHolder(rec.pod.ip)) this.allocator.release(rec.pod.ip);
  }

  private ipHolder(podIP: string): PodRecord | undefined {
    for (const r of this.records.values()) if (r.pod.ip === podIP) return r;
    return undefined;
  }

  /**
   * Plumbs a new pod. Its resources are registered in `cleanup` (when given)
   * and in the network's bookkeeping (`removePod`, `destroy`); a failure
   * half-way takes down what this call made before it throws.
   */
  async addPod(spec: PodSpec = {}, cleanup?: Cleanup): Promise<Pod> {
    this.assertOpen();
    const id = spec.id ?? this.nextId();
    this.checkId(id);
    const name = spec.name ?? id;
    const taken = this.records.get(id);
    if (taken) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: id ${id} is already the id of pod ${taken.pod.name}`);
    let podIP: string;
    if (spec.ip !== undefined) {
      const why = this.allocator.unusableReason(spec.ip);
      if (why) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: ${why}`);
      const holder = this.ipHolder(spec.ip);
      if (holder) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: ${spec.ip} is already the IP of pod ${holder.pod.name}`);
      if (this.allocator.isInUse(spec.ip)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: ${spec.ip} is already in use (by a pod found in place, or given out before a restart)`);
      this.allocator.claim(spec.ip);
      podIP = spec.ip;
    } else {
      podIP = this.allocator.allocate();
    }
    const { netns, hostIf } = this.podNames(id);
    const rec: PodRecord = { pod: { id, name, netns, hostIf, ifindex: 0, ip: podIP, adopted: false }, ready: false, removed: false, undo: new Cleanup() };
    this.records.set(id, rec);
    this.track(rec, `pod ${name} bookkeeping`, () => this.forget(rec), cleanup);
    try {
      if (await linkShow(hostIf)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: the link ${hostIf} already exists (left by an earlier run? adopt or remove pod ${id})`);
      if ((await ipJson<{ name: string }[]>(['netns', 'list'], 'list network namespaces')).some((n) => n.name === netns)) {
        throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${name}: the network namespace ${netns} already exists (left by an earlier run? adopt or remove pod ${id})`);
      }
      await netnsAdd(netns);
      this.track(rec, `netns ${netns}`, () => netnsDelete(netns), cleanup);
      // Before eth0 exists, so it never gets an IPv6 address.
      await sysctl('net.ipv6.conf.all.disable_ipv6', '1', netns);
      await sysctl('net.ipv6.conf.default.disable_ipv6', '1', netns);
      // Registered before the pair exists (it did not a moment ago): vethAdd is several steps, any of which may fail.
      // Deleting the host side takes the pod side with it, at once (a namespace is freed later).
      this.track(rec, `veth ${hostIf}`, () => linkDelete(hostIf), cleanup);
      const { hostIfindex } = await vethAdd(hostIf, netns, 'eth0');
      rec.pod.ifindex = hostIfindex;
      await disableIPv6(hostIf);
      await sysctl(`net.ipv4.conf.${hostIf}.forwarding`, '1');

      await addrAdd('eth0', `${podIP}/32`, netns);
      await routeReplace([this.routerIP, 'dev', 'eth0', 'scope', 'link'], netns);
      await routeReplace(['default', 'via', this.routerIP, 'dev', 'eth0', 'onlink'], netns);
      // `add`, not `replace`: a route to this address that is not ours is an error, not something to overwrite.
      await ip(['route', 'add', `${podIP}/32`, 'dev', hostIf], `route ${podIP}/32 dev ${hostIf}`);
      this.track(rec, `route ${podIP}/32 dev ${hostIf}`, () => deleteHostRoute(podIP, hostIf), cleanup);
    } catch (e) {
      try {
        await rec.undo.run();
      } catch (u) {
        throw new MembraneError('MEMBRANE_E_POD_NETWORK', `${errorText(e)} (and undoing it failed: ${errorText(u)})`, { cause: e });
      }
      throw e;
    }
    rec.ready = true;
    return Object.freeze(rec.pod);
  }

  /**
   * The pods of this scheme present in the kernel (by their names), as they
   * are: nothing is changed and nothing is adopted.
   */
  async discover(): Promise<DiscoveredPod[]> {
    const nsList = await ipJson<{ name: string; id?: number }[]>(['netns', 'list'], 'list network namespaces');
    const netnsIds = new Map(nsList.map((n) => [n.name, n.id]));
    const ids = new Set<string>();
    for (const n of nsList) {
      if (!n.name.startsWith(this.names.netnsPrefix)) continue;
      const id = n.name.slice(this.names.netnsPrefix.length);
      if (POD_ID.test(id)) ids.add(id);
    }
    const hostPrefix = `${this.names.linkPrefix}e`;
    for (const l of await links()) {
      if (!l.ifname.startsWith(hostPrefix)) continue;
      const id = l.ifname.slice(hostPrefix.length);
      if (POD_ID.test(id)) ids.add(id);
    }
    const rootRoutes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'list routes');
    const sorted = [...ids].sort();
    const found: DiscoveredPod[] = [];
    for (let i = 0; i < sorted.length; i += 16) {
      found.push(...(await Promise.all(sorted.slice(i, i + 16).map((id) => this.inspect(id, netnsIds, rootRoutes)))));
    }
    return found;
  }

  /** One pod's plumbing as found, with everything that differs from what addPod makes. */
  async inspectPod(id: string): Promise<DiscoveredPod> {
    this.checkId(id);
    const nsList = await ipJson<{ name: string; id?: number }[]>(['netns', 'list'], 'list network namespaces');
    const rootRoutes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'list routes');
    return this.inspect(id, new Map(nsList.map((n) => [n.name, n.id])), rootRoutes);
  }

  private async inspect(id: string, netnsIds: Map<string, number | undefined>, rootRoutes: RouteJson[]): Promise<DiscoveredPod> {
    const { netns, hostIf } = this.podNames(id);
    const problems: string[] = [];
    const d: DiscoveredPod = { id, netns, hostIf, problems };
    const host = await linkShow(hostIf);
    if (!host) problems.push(`no host link ${hostIf}`);
    else {
      d.ifindex = host.ifindex;
      if (!host.flags?.includes('UP')) problems.push(`${hostIf} is down`);
      if ((await sysctlGet(`net.ipv4.conf.${hostIf}.forwarding`)) !== '1') problems.push(`forwarding is off on ${hostIf}`);
    }
    if (!netnsIds.has(netns)) {
      problems.push(`no network namespace ${netns}`);
      return d;
    }
    let eth0: AddrJson | undefined;
    try {
      eth0 = (await ipJson<AddrJson[]>(['addr', 'show', 'dev', 'eth0'], `show eth0 in ${netns}`, netns))[0];
    } catch (e) {
      if (!(e instanceof NetlinkError && /does not exist|Cannot find device/.test(e.stderr))) throw e;
    }
    if (!eth0) {
      problems.push(`no eth0 in ${netns}`);
      return d;
    }
    if (!eth0.flags?.includes('UP')) problems.push(`eth0 in ${netns} is down`);
    const v4 = (eth0.addr_info ?? []).filter((a) => a.family === 'inet');
    if (v4.length !== 1) problems.push(`eth0 in ${netns} has ${v4.length} IPv4 addresses (${v4.map((a) => `${a.local}/${a.prefixlen}`).join(', ') || 'none'}), not one`);
    else {
      const a = v4[0]!;
      d.ip = a.local;
      if (a.prefixlen !== 32) problems.push(`eth0 in ${netns} has ${a.local}/${a.prefixlen}, not a /32`);
      const why = this.allocator.unusableReason(a.local);
      if (why) problems.push(`the address of eth0 in ${netns}: ${why}`);
    }
    const nsid = netnsIds.get(netns);
    if (host && (host.link_index !== eth0.ifindex || (nsid !== undefined && host.link_netnsid !== nsid))) {
      problems.push(`${hostIf} is not the veth peer of eth0 in ${netns}`);
    }
    const podRoutes = await ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], `list routes in ${netns}`, netns);
    if (!podRoutes.some((r) => r.dst === this.routerIP && r.dev === 'eth0' && r.scope === 'link')) problems.push(`no route ${this.routerIP} dev eth0 scope link in ${netns}`);
    if (!podRoutes.some((r) => r.dst === 'default' && r.gateway === this.routerIP && r.dev === 'eth0')) problems.push(`no default route via ${this.routerIP} in ${netns}`);
    if (d.ip && !rootRoutes.some((r) => (r.dst === d.ip || r.dst === `${d.ip}/32`) && r.dev === hostIf && r.type === undefined)) {
      problems.push(`no route ${d.ip}/32 dev ${hostIf} in the root namespace`);
    }
    return d;
  }

  /**
   * Takes over a pod a previous run left, exactly as it is (nothing in the
   * kernel is changed): from now on it is part of this network, its address
   * is in use, `removePod` and `destroy` take it down. Throws PodAdoptError
   * when its plumbing is incomplete or not what addPod makes (remove it and
   * add it again), or when its address is not `expect.ip`.
   */
  async adoptPod(id: string, expect: { name?: string; ip?: string } = {}, cleanup?: Cleanup): Promise<Pod> {
    this.assertOpen();
    this.checkId(id);
    const existing = this.records.get(id);
    if (existing?.ready) return existing.pod;
    if (existing) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${existing.pod.name}: still being set up`);
    const d = await this.inspectPod(id);
    if (expect.ip !== undefined && d.ip !== undefined && d.ip !== expect.ip) d.problems.push(`its address is ${d.ip}, not ${expect.ip}`);
    const holder = d.ip !== undefined ? this.ipHolder(d.ip) : undefined;
    if (holder && holder.pod.id !== id) d.problems.push(`its address ${d.ip} is already the IP of pod ${holder.pod.name}`);
    if (d.problems.length > 0) throw new PodAdoptError(id, d.problems);
    const again = this.records.get(id);
    if (again?.ready) return again.pod;
    if (again) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${again.pod.name}: still being set up`);

    const podIP = d.ip!;
    this.allocator.markInUse(podIP);
    const rec: PodRecord = {
      pod: Object.freeze({ id, name: expect.name ?? id, netns: d.netns, hostIf: d.hostIf, ifindex: d.ifindex!, ip: podIP, adopted: true }),
      ready: true,
      removed: false,
      undo: new Cleanup(),
    };
    this.records.set(id, rec);
    // In the order addPod creates them, so they are undone in the same order as a created pod's.
    this.track(rec, `pod ${rec.pod.name} bookkeeping`, () => this.forget(rec), cleanup);
    this.track(rec, `netns ${d.netns}`, () => netnsDelete(d.netns), cleanup);
    this.track(rec, `veth ${d.hostIf}`, () => linkDelete(d.hostIf), cleanup);
    this.track(rec, `route ${podIP}/32 dev ${d.hostIf}`, () => deleteHostRoute(podIP, d.hostIf), cleanup);
    return rec.pod;
  }

  /**
   * Takes a pod down: its route, its veth pair, its namespace; its address is
   * free again. A pod this network does not hold (left over, not adopted) is
   * removed by its names. Nothing to remove is not an error.
   */
  async removePod(pod: string | Pod): Promise<void> {
    const id = typeof pod === 'string' ? pod : pod.id;
    this.checkId(id);
    const rec = this.records.get(id);
    if (rec) {
      if (!rec.ready) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod ${rec.pod.name}: still being set up`);
      await rec.undo.run();
      return;
    }
    const d = await this.inspectPod(id);
    if (d.ip) await deleteHostRoute(d.ip, d.hostIf);
    await linkDelete(d.hostIf);
    await netnsDelete(d.netns);
    this.leftovers.delete(id);
    if (d.ip && !this.ipHolder(d.ip)) this.allocator.release(d.ip);
  }

  /** A pod of this network (created or adopted). */
  get(id: string): Pod | undefined {
    const r = this.records.get(id);
    return r?.ready ? r.pod : undefined;
  }

  /** The pods of this network (created or adopted). */
  list(): Pod[] {
    return [...this.records.values()].filter((r) => r.ready).map((r) => r.pod);
  }

  /**
   * Takes down everything under this network's names: its pods, the pods of
   * the scheme left in the kernel without being adopted, and the router
   * link (`membrane down`). Every step runs; failures are reported together.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const errors: string[] = [];
    for (const rec of [...this.records.values()]) {
      try {
        await rec.undo.run();
      } catch (e) {
        errors.push(errorText(e));
      }
    }
    try {
      for (const d of await this.discover()) {
        try {
          await this.removePod(d.id);
        } catch (e) {
          errors.push(`pod ${d.id}: ${errorText(e)}`);
        }
      }
    } catch (e) {
      errors.push(errorText(e));
    }
    try {
      await this.removeRouter();
    } catch (e) {
      errors.push(`router link ${this.routerIf}: ${errorText(e)}`);
    }
    if (errors.length > 0) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `destroying the pod network ${this.routerIf} failed: ${errors.join('; ')}`);
  }
}
