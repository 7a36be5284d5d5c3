/**
 * Datapath: the loaded endpoint programs and their pinned maps, and every
 * operation the agent performs on them. Maps are pinned under the pin root
 * (default /sys/fs/bpf/membrane) and reused on the next load, so a restarted
 * agent finds conntrack, ipcache and policies as it left them while the
 * programs, attached to the veths, kept enforcing.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { POLICY_FIXED_BITS, Direction as Dir, EndpointFlags, METRICS_ENTRIES, METRICS_LOST_EVENTS, configCodec, macToNumber, numberToIPv4, numberToMac, type Config, ctKeyCodec, ctValueCodec, endpointCodec, eventCodec, ipcacheKeyCodec, ipcacheValueCodec, ipv4ToNumber, metricsValueCodec, policyKeyCodec, policyValueCodec, type CTKey, type CTValue, type DatapathEvent, type Endpoint } from './codecs.js';
import { native, BPF_ANY, BPF_F_NO_PREALLOC, type BpfObjectHandle, type NativeBinding, type RingBufferHandle } from './native.js';
import { splitRecords } from './ringbuf-records.js';
import { MembraneError } from '@membrane/api';
import { DatapathError, requireRoot } from './datapath-error.js';
import { requireKernelFeatures } from './kernel-features.js';
import { detachPinnedSockPrograms, sockProgramPins } from './sock-programs.js';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/membrane';
export const LXC_OBJECT = fileURLToPath(new URL('../dist/bpf/bpf_lxc.o', import.meta.url));
const POLICY_INNER_MAX = 65536;

export interface DatapathOptions {
  /** Where maps are pinned (a directory on a bpf filesystem). */
  pinRoot?: string;
  objectPath?: string;
  /** Wake the event reader once this much event data waits (0: never force; the reader polls). */
  wakeupBytes?: number;
  /**
   * Map name → max entries, overriding the object's sizes (tests: a small ring
   * or conntrack table). libbpf refuses to reuse a map pinned with another size.
   */
  maxEntries?: Record<string, number>;
  /**
   * Capacity of each endpoint's policy map (default 65,536 entries). Tests
   * make it small to drive a real "map full" failure of one endpoint.
   */
  policyMapMaxEntries?: number;
}

/**
 * An endpoint's policy map filled and ready, not yet in force: installing it
 * is one update of mbr_policy; releasing it closes the map (the kernel frees
 * it once nothing else holds it).
 */
export interface PreparedPolicy {
  readonly epId: number;
  readonly fd: number;
  readonly entries: number;
}

/** One policy-map entry as the kernel holds it. */
export interface PolicyMapWrite {
  identity: number;
  direction: 'ingress' | 'egress';
  proto: number;
  port: number;
  /** Fixed leading bits over protocol and port: 0 (every protocol), 8 (one protocol), 8 + n (a port block). */
  prefix: number;
  deny: boolean;
  l7: number;
  proxyPort: number;
  cookie: number;
}

/**
 * Where the L7 redirect delivers (abi.h struct mbr_config, bpf/lib/proxy.h):
 * the pod network's router link (`<prefix>r`, which holds the pods' gateway;
 * from_hairpin runs at its tc ingress, see attachHairpin) and the address the
 * proxy's listeners are bound to (IPv4, in the host namespace).
 */
export interface ProxyConfig {
  routerIfindex: number;
  /** "02:ab:cd:ef:01:23" */
  routerMac: string;
  /** "127.0.0.1" */
  listenerIP: string;
}

export interface EndpointState {
  epId: number;
  ipv4: string;
  identity: number;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  ingressDefaultDeny: boolean;
  egressDefaultDeny: boolean;
}

export function endpointFlags(s: Pick<EndpointState, 'ingressEnforced' | 'egressEnforced' | 'ingressDefaultDeny' | 'egressDefaultDeny'>): number {
  return (
    (s.ingressEnforced ? EndpointFlags.INGRESS_ENFORCED : 0) |
    (s.egressEnforced ? EndpointFlags.EGRESS_ENFORCED : 0) |
    (s.ingressDefaultDeny ? EndpointFlags.INGRESS_DEFAULT_DENY : 0) |
    (s.egressDefaultDeny ? EndpointFlags.EGRESS_DEFAULT_DENY : 0)
  );
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export function encodePolicyKey(w: Pick<PolicyMapWrite, 'identity' | 'direction' | 'proto' | 'port' | 'prefix'>): Buffer {
  return policyKeyCodec.encode({
    prefixlen: POLICY_FIXED_BITS + w.prefix,
    identity: w.identity,
    direction: w.direction === 'ingress' ? Dir.INGRESS : Dir.EGRESS,
    proto: w.prefix === 0 ? 0 : w.proto,
    dport: w.prefix <= 8 ? 0 : w.port,
  });
}

export function encodePolicyValue(w: Pick<PolicyMapWrite, 'deny' | 'l7' | 'proxyPort' | 'cookie'>): Buffer {
  return policyValueCodec.encode({ deny: w.deny ? 1 : 0, l7: w.deny ? 0 : w.l7, proxy_port: w.proxyPort, cookie: w.cookie });
}

/**
 * Open and load a BPF object. The verifier gives up with EAGAIN when a
 * signal arrives while it works (a profiler's SIGPROF, a terminal's
 * SIGWINCH): that is no verdict on the program, so the object is opened and
 * loaded again, a few times (libbpf cannot load the same object twice).
 */
export function openAndLoad(nb: NativeBinding, path: string, open: Parameters<NativeBinding['openObject']>[1], load: Parameters<NativeBinding['loadObject']>[1]): BpfObjectHandle {
  for (let attempt = 1; ; attempt++) {
    const obj = nb.openObject(path, open);
    try {
      nb.loadObject(obj, load);
      return obj;
    } catch (e) {
      nb.closeObject(obj);
      if ((e as { code?: string }).code !== 'EAGAIN' || attempt >= 5) throw e;
    }
  }
}

export class Datapath {
  private ring?: RingBufferHandle;
  private pollTimer?: NodeJS.Timeout;
  private closed = false;
  private policyMapMax = POLICY_INNER_MAX;

  private constructor(
    readonly nb: NativeBinding,
    readonly pinRoot: string,
    private readonly object: BpfObjectHandle,
    readonly progs: { fromContainer: number; toContainer: number; fromHairpin: number; fromOutside: number },
    readonly maps: { endpoints: number; ipcache: number; policy: number; ct: number; events: number; metrics: number; config: number },
  ) {}

  /** Load the endpoint programs, reusing the maps pinned under the pin root (creating them the first time). */
  static open(opts: DatapathOptions = {}): Datapath {
    requireRoot('load the datapath');
    const path = opts.objectPath ?? LXC_OBJECT;
    if (!existsSync(path)) {
      throw new DatapathError(
        `the endpoint programs are not built (${path} is missing): run \`npm run build\`, which compiles them with clang (apt-get install clang llvm libbpf-dev)`,
        'MEMBRANE_E_NOT_BUILT',
      );
    }
    const nb = native();
    requireKernelFeatures(nb);
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const bpffs = pinRoot.split('/').slice(0, 4).join('/');
    nb.ensureBpffs(bpffs.startsWith('/sys/fs/bpf') ? '/sys/fs/bpf' : bpffs);
    mkdirSync(pinRoot, { recursive: true });
    const obj = openAndLoad(nb, path, { pinRoot }, opts.maxEntries ? { maxEntries: opts.maxEntries } : {});
    try {
      const progs = Object.fromEntries(nb.objectPrograms(obj).map((p) => [p.name, p.fd]));
      const maps = Object.fromEntries(nb.objectMaps(obj).map((m) => [m.name, m.fd]));
      const need = (name: string, table: Record<string, number>) => {
        const fd = table[name];
        if (fd === undefined || fd < 0) throw new Error(`${path} has no ${name}`);
        return fd;
      };
      const dp = new Datapath(
        nb,
        pinRoot,
        obj,
        { fromContainer: need('from_container', progs), toContainer: need('to_container', progs), fromHairpin: need('from_hairpin', progs), fromOutside: need('from_outside', progs) },
        {
          endpoints: need('mbr_endpoints', maps),
          ipcache: need('mbr_ipcache', maps),
          policy: need('mbr_policy', maps),
          ct: need('mbr_ct', maps),
          events: need('mbr_events', maps),
          metrics: need('mbr_metrics', maps),
          config: need('mbr_config', maps),
        },
      );
      dp.setConfig({ flags: 0, wakeup_bytes: opts.wakeupBytes ?? 64 * 1024 });
      if (opts.policyMapMaxEntries !== undefined) {
        if (!Number.isInteger(opts.policyMapMaxEntries) || opts.policyMapMaxEntries < 1 || opts.policyMapMaxEntries > POLICY_INNER_MAX) {
          throw new Error(`policy map size ${opts.policyMapMaxEntries}: must be an integer from 1 to ${POLICY_INNER_MAX}`);
        }
        dp.policyMapMax = opts.policyMapMaxEntries;
      }
      return dp;
    } catch (e) {
      nb.closeObject(obj);
      throw e;
    }
  }

  /**
   * Remove every pinned map (`membrane down`, test cleanup). Programs go with
   * their tc filters. The socket load balancer's programs, attached to the
   * cgroup rather than to a link, are detached first: without their pins
   * nobody could find them again (sock-programs.ts).
   */
  static unpinAll(pinRoot: string = DEFAULT_PIN_ROOT): void {
    if (!existsSync(pinRoot)) return;
    if (sockProgramPins(pinRoot).some((p) => existsSync(p))) {
      const r = detachPinnedSockPrograms(native(), pinRoot);
      if (r.errors.length > 0) throw new MembraneError('MEMBRANE_E_DATAPATH', `unpin ${pinRoot}: the socket load balancer's programs could not all be detached, so nothing is unpinned: ${r.errors.join('; ')}`);
    }
    for (const name of readdirSync(pinRoot)) {
      if (!name.startsWith('mbr')) continue;
      rmSync(`${pinRoot}/${name}`, { force: true, recursive: true });
    }
    rmSync(pinRoot, { recursive: true, force: true });
  }

  /** The config as the programs read it (pinned: it outlives the agent). */
  config(): Config {
    const v = this.nb.mapLookup(this.maps.config, u32(0));
    return configCodec.decode(v ?? Buffer.alloc(configCodec.size));
  }

  /** Sets flags and wakeup_bytes; the rest of the config (the proxy's) stays as it is. */
  setConfig(c: { flags: number; wakeup_bytes: number }): void {
    this.writeConfig({ ...this.config(), flags: c.flags, wakeup_bytes: c.wakeup_bytes });
  }

  private writeConfig(c: Config): void {
    this.nb.mapUpdate(this.maps.config, u32(0), configCodec.encode(c));
  }

  /**
   * Turns the L7 redirect on (bpf/lib/proxy.h): a TCP connection an L7
   * entry allows is assigned to the proxy's listener on
   * {listenerIP, proxy port} (egress), or hairpinned through the router link
   * to from_hairpin, which does the same (ingress); without a listener it is
   * refused with a reset. Before this, L7 connections are only marked. Takes
   * effect for the next packet; attach from_hairpin (attachHairpin) and
   * install the policy routing (installProxyRouting) first.
   */
  setProxyConfig(p: ProxyConfig): void {
    const where = 'the proxy config';
    if (!Number.isInteger(p.routerIfindex) || p.routerIfindex < 1 || p.routerIfindex > 0xffffffff) {
      throw new MembraneError('MEMBRANE_E_USAGE', `${where}: routerIfindex ${p.routerIfindex} is not an interface index`);
    }
    let mac: number;
    let listener: number;
    try {
      mac = macToNumber(p.routerMac);
      listener = ipv4ToNumber(p.listenerIP);
    } catch (e) {
      throw new MembraneError('MEMBRANE_E_USAGE', `${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (listener === 0) throw new MembraneError('MEMBRANE_E_USAGE', `${where}: listenerIP 0.0.0.0 would turn the redirect off; use clearProxyConfig`);
    this.writeConfig({ ...this.config(), router_ifindex: p.routerIfindex, router_mac: mac, pad: 0, proxy_listener: listener });
  }

  /** The proxy config in force, or undefined when L7 connections are only marked. */
  proxyConfig(): ProxyConfig | undefined {
    const c = this.config();
    if (c.proxy_listener === 0) return undefined;
    return { routerIfindex: c.router_ifindex, routerMac: numberToMac(c.router_mac), listenerIP: numberToIPv4(c.proxy_listener) };
  }

  /** Back to marking only (the proxy is gone for good, `membrane down`). */
  clearProxyConfig(): void {
    this.writeConfig({ ...this.config(), router_ifindex: 0, router_mac: 0, pad: 0, proxy_listener: 0 });
  }

  /** Attach from_container (tc ingress) and to_container (tc egress) to an endpoint's host-side veth. */
  attach(ifindex: number, name = `ifindex ${ifindex}`): void {
    this.nb.tcAttach(ifindex, 'ingress', this.progs.fromContainer, { handle: 1, priority: 1, replace: true, name: `from-container to ${name}` });
    this.nb.tcAttach(ifindex, 'egress', this.progs.toContainer, { handle: 1, priority: 1, replace: true, name: `to-container to ${name}` });
  }

  /** Detach both programs; an interface without them, or gone, is left as it is. */
  detach(ifindex: number): void {
    for (const point of ['ingress', 'egress'] as const) {
      try {
        this.nb.tcDetach(ifindex, point, { handle: 1, priority: 1 });
      } catch (e) {
        // The interface is gone (a filter on an interface without one is reported as false).
        if ((e as { code?: string }).code !== 'ENODEV') throw e;
      }
    }
  }

  /**
   * Attach from_hairpin at tc ingress of the pod network's router link (the
   * second half of the ingress L7 redirect). The filter goes with the link;
   * detachHairpin removes it before.
   */
  attachHairpin(ifindex: number, name = `ifindex ${ifindex}`): void {
    this.nb.tcAttach(ifindex, 'ingress', this.progs.fromHairpin, { handle: 1, priority: 1, replace: true, name: `from-hairpin to ${name}` });
  }

  /**
   * Attach from_outside at tc ingress of a test host's veth (host side): a
   * connection from outside to a pod whose ingress rule is L7 goes to the
   * proxy before the host forwards it (bpf/lib/proxy.h). Detach with
   * detachHairpin (the same slot), or let the link take it.
   */
  attachOutside(ifindex: number, name = `ifindex ${ifindex}`): void {
    this.nb.tcAttach(ifindex, 'ingress', this.progs.fromOutside, { handle: 1, priority: 1, replace: true, name: `from-outside to ${name}` });
  }

  /** Detach from_hairpin (or from_outside); an interface without it, or gone, is left as it is. */
  detachHairpin(ifindex: number): void {
    try {
      this.nb.tcDetach(ifindex, 'ingress', { handle: 1, priority: 1 });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENODEV') throw e;
    }
  }

  setEndpoint(ifindex: number, ep: Endpoint): void {
    this.nb.mapUpdate(this.maps.endpoints, u32(ifindex), endpointCodec.encode(ep));
  }

  getEndpoint(ifindex: number): Endpoint | undefined {
    const v = this.nb.mapLookup(this.maps.endpoints, u32(ifindex));
    return v ? endpointCodec.decode(v) : undefined;
  }

  deleteEndpoint(ifindex: number): boolean {
    return this.nb.mapDelete(this.maps.endpoints, u32(ifindex));
  }

  listEndpoints(): { ifindex: number; endpoint: Endpoint }[] {
    const r = this.nb.mapLookupBatch(this.maps.endpoints);
    const out: { ifindex: number; endpoint: Endpoint }[] = [];
    for (let i = 0; i < r.count; i++) {
      out.push({ ifindex: r.keys.readUInt32LE(i * 4), endpoint: endpointCodec.decode(r.values, i * endpointCodec.size) });
    }
    return out;
  }

  ipcacheUpsert(cidr: string, identity: number, epId = 0): void {
    const [addr, len] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
    this.nb.mapUpdate(this.maps.ipcache, ipcacheKeyCodec.encode({ prefixlen: Number(len), addr: ipv4ToNumber(addr!) }), ipcacheValueCodec.encode({ identity, ep_id: epId }));
  }

  ipcacheDelete(cidr: string): boolean {
    const [addr, len] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
    return this.nb.mapDelete(this.maps.ipcache, ipcacheKeyCodec.encode({ prefixlen: Number(len), addr: ipv4ToNumber(addr!) }));
  }

  ipcacheLookup(ip: string): { identity: number; ep_id: number } | undefined {
    const v = this.nb.mapLookup(this.maps.ipcache, ipcacheKeyCodec.encode({ prefixlen: 32, addr: ipv4ToNumber(ip) }));
    return v ? ipcacheValueCodec.decode(v) : undefined;
  }

  /**
   * Fill a new policy map for an endpoint without putting it in force (the
   * first half of a swap: every endpoint of a change is prepared before any
   * is installed, so a failure leaves every endpoint on its old policy).
   */
  preparePolicy(epId: number, writes: readonly PolicyMapWrite[]): PreparedPolicy {
    if (writes.length > this.policyMapMax) {
      throw new MembraneError('MEMBRANE_E_DATAPATH', `endpoint ${epId}: ${writes.length} policy entries exceed its policy map's ${this.policyMapMax}`);
    }
    const inner = this.nb.mapCreate(this.nb.mapTypes['lpm_trie']!, `mbr_pol_${epId}`.slice(0, 15), policyKeyCodec.size, policyValueCodec.size, this.policyMapMax, { flags: BPF_F_NO_PREALLOC });
    try {
      if (writes.length > 0) {
        const keys = Buffer.concat(writes.map(encodePolicyKey));
        const values = Buffer.concat(writes.map(encodePolicyValue));
        this.nb.mapUpdateBatch(inner, keys, values, BPF_ANY);
      }
    } catch (e) {
      this.nb.closeFd(inner);
      throw new MembraneError('MEMBRANE_E_DATAPATH', `endpoint ${epId}: fill its policy map (${writes.length} entries): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return { epId, fd: inner, entries: writes.length };
  }

  /**
   * Put a prepared map in force with one update of mbr_policy: every packet
   * is judged by the old entries or by the new ones, never by a mixture.
   * The prepared map stays open (release it): a caller may swap back.
   */
  installPolicy(p: PreparedPolicy): void {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(p.fd);
    try {
      this.nb.mapUpdate(this.maps.policy, u32(p.epId), v, BPF_ANY);
    } catch (e) {
      throw new MembraneError('MEMBRANE_E_DATAPATH', `endpoint ${p.epId}: install its policy map: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  /** Close a prepared map (installed or not: once installed, mbr_policy holds its own reference). */
  releasePolicy(p: PreparedPolicy): void {
    this.nb.closeFd(p.fd);
  }

  /** Prepare, install and release in one call (tests, benchmarks). */
  replacePolicy(epId: number, writes: readonly PolicyMapWrite[]): void {
    const p = this.preparePolicy(epId, writes);
    try {
      this.installPolicy(p);
    } finally {
      this.releasePolicy(p);
    }
  }

  removePolicy(epId: number): boolean {
    return this.nb.mapDelete(this.maps.policy, u32(epId));
  }

  hasPolicy(epId: number): boolean {
    return this.nb.mapLookup(this.maps.policy, u32(epId)) !== null;
  }

  /** Per-reason counters summed over CPUs: index = reason * 2 + direction. */
  metrics(): Map<number, { packets: bigint; bytes: bigint }> {
    const out = new Map<number, { packets: bigint; bytes: bigint }>();
    const cpus = this.nb.numPossibleCpus();
    for (let i = 0; i < METRICS_ENTRIES; i++) {
      const v = this.nb.mapLookup(this.maps.metrics, u32(i));
      if (!v) continue;
      let packets = 0n;
      let bytes = 0n;
      // A per-CPU value holds one (8-byte aligned) slot per possible CPU.
      for (let c = 0; c < cpus; c++) {
        const m = metricsValueCodec.decode(v, c * metricsValueCodec.size);
        packets += m.packets;
        bytes += m.bytes;
      }
      if (packets > 0n) out.set(i, { packets, bytes });
    }
    return out;
  }

  lostEvents(): bigint {
    return this.metrics().get(METRICS_LOST_EVENTS)?.packets ?? 0n;
  }

  /**
   * Deliver datapath events: the reader is woken by the kernel once
   * wakeupBytes of data wait, and polls every pollMs otherwise.
   */
  onEvents(cb: (events: DatapathEvent[]) => void, pollMs = 50): void {
    this.onEventBatches((batch) => cb(splitRecords(batch).map((r) => eventCodec.decode(r))), pollMs);
  }

  /**
   * Deliver datapath events as the reader copies them out of the kernel's
   * ring buffer: one batch per wakeup, records back to back, each after its
   * u32 length (ringbuf-records.ts), each laid out as eventCodec says.
   */
  onEventBatches(cb: (batch: Uint8Array) => void, pollMs = 50): void {
    if (this.ring) throw new Error('events are already being read');
    this.ring = this.nb.ringbufOpen(this.maps.events, cb);
    this.pollTimer = setInterval(() => {
      if (this.ring) this.nb.ringbufConsume(this.ring);
    }, pollMs);
    this.pollTimer.unref();
  }

  /** Stop reading events (what comes meanwhile waits in the kernel ring, or is lost and counted there). */
  closeEvents(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    if (this.ring) this.nb.ringbufClose(this.ring);
    this.ring = undefined;
  }

  /** Read what is pending now (tests). */
  drainEvents(): void {
    if (this.ring) this.nb.ringbufConsume(this.ring);
  }

  ctEntries(): { key: CTKey; value: CTValue }[] {
    const r = this.nb.mapLookupBatch(this.maps.ct);
    const out: { key: CTKey; value: CTValue }[] = [];
    for (let i = 0; i < r.count; i++) {
      out.push({ key: ctKeyCodec.decode(r.keys, i * ctKeyCodec.size), value: ctValueCodec.decode(r.values, i * ctValueCodec.size) });
    }
    return out;
  }

  /** Delete expired conntrack entries; returns how many. `now` is CLOCK_MONOTONIC in ns (bpf_ktime_get_ns). */
  ctGc(now: bigint = process.hrtime.bigint()): number {
    const expired = this.ctEntries().filter((e) => e.value.expires_ns <= now);
    if (expired.length === 0) return 0;
    return this.nb.mapDeleteBatch(this.maps.ct, Buffer.concat(expired.map((e) => ctKeyCodec.encode(e.key)))).count;
  }

  /**
   * Collect expired conntrack entries every intervalMs (Cilium's agent runs
   * the same sweep; the LRU map also evicts under pressure). Returns a stop function.
   */
  startCtGc(intervalMs = 30_000, onSweep?: (deleted: number) => void): () => void {
    const timer = setInterval(() => {
      if (this.closed) return;
      const n = this.ctGc();
      onSweep?.(n);
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Delete every conntrack entry (tests and benchmarks: make the next packet of each flow a new connection). */
  ctFlush(): number {
    const all = this.ctEntries();
    if (all.length === 0) return 0;
    return this.nb.mapDeleteBatch(this.maps.ct, Buffer.concat(all.map((e) => ctKeyCodec.encode(e.key)))).count;
  }

  /** Close our handles. Pinned maps and attached programs stay: enforcement continues. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeEvents();
    this.nb.closeObject(this.object);
  }
}
