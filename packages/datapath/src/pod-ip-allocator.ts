/**
 * Addresses of the pod CIDR (design.md section 8: 10.200.0.0/16 unless
 * `--pod-cidr` says otherwise). The network address, the broadcast address
 * and the router IP (by default the first address, 10.200.0.1) are never
 * handed out. An allocator can be seeded with the addresses already in use —
 * the pods a restarted agent adopts, the addresses its store remembers — so
 * no address is ever given to two pods.
 *
 * Allocation is next-fit: the search goes on after the last address handed
 * out and wraps around, so an address just released is the last one to be
 * given again (a new pod does not inherit conntrack entries or peers' caches
 * of the pod that had it a moment ago).
 *
 * The CIDR code is @membrane/policy's (parsePrefix, prefixContains,
 * formatPrefix); only the arithmetic on 32-bit numbers is here.
 */
import { MembraneError } from '@membrane/api';
import { formatPrefix, parseIP, parsePrefix, type Prefix } from '@membrane/policy';

export const DEFAULT_POD_CIDR = '10.200.0.0/16';

/** A parsed IPv4 pod CIDR with its first and last address as numbers. */
export interface PodCidr {
  /** Canonical text, e.g. 10.200.0.0/16. */
  cidr: string;
  prefix: Prefix;
  bits: number;
  /** The network address (all host bits zero). */
  network: number;
  /** The broadcast address (all host bits one). */
  broadcast: number;
}

function u32(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** An IPv4 address as a number; throws with `what` in the message when `ip` is not one. */
function addressNumber(ip: string, what: string): number {
  const p = parseIP(ip);
  if (!p || p.family !== 4) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `${what}: "${ip}" is not an IPv4 address`);
  return u32(p.bytes);
}

/**
 * Parses a pod CIDR: IPv4, written canonically (host bits zero), with room
 * for the router and at least one pod (prefix length at most 30).
 */
export function parsePodCidr(cidr: string): PodCidr {
  const p = parsePrefix(cidr);
  if (typeof p === 'string') throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod CIDR ${p}`);
  if (p.family !== 4) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod CIDR "${cidr}": only IPv4 pod CIDRs are supported`);
  const canonical = formatPrefix(p);
  if (canonical !== cidr) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod CIDR "${cidr}" has host bits set (did you mean ${canonical}?)`);
  if (p.bits > 30) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `pod CIDR "${cidr}" is too small: a /${p.bits} has no room for the router and a pod (at most /30)`);
  const network = u32(p.bytes);
  const size = 2 ** (32 - p.bits);
  return { cidr: canonical, prefix: p, bits: p.bits, network, broadcast: network + size - 1 };
}

/** The router IP a pod CIDR gets by default: its first address (10.200.0.1 for 10.200.0.0/16). */
export function defaultRouterIP(cidr: string = DEFAULT_POD_CIDR): string {
  return text(parsePodCidr(cidr).network + 1);
}

/** Whether `ip` is an IPv4 address inside `cidr` (network and broadcast included). */
export function cidrContainsIP(cidr: string, ip: string): boolean {
  const c = parsePodCidr(cidr);
  const p = parseIP(ip);
  if (!p || p.family !== 4) return false;
  const n = u32(p.bytes);
  return n >= c.network && n <= c.broadcast;
}

export interface PodIPAllocatorOptions {
  /** Default 10.200.0.0/16. */
  cidr?: string;
  /** Default: the first address of the CIDR. Never handed out. */
  routerIP?: string;
  /** Addresses already given to pods (seed of a restarted agent). */
  inUse?: Iterable<string>;
}

export class PodIPAllocator {
  readonly cidr: string;
  readonly routerIP: string;
  private readonly range: PodCidr;
  private readonly router: number;
  private readonly used = new Set<number>();
  /** The next address the search starts from. */
  private cursor: number;

  constructor(opts: PodIPAllocatorOptions = {}) {
    this.range = parsePodCidr(opts.cidr ?? DEFAULT_POD_CIDR);
    this.cidr = this.range.cidr;
    this.routerIP = opts.routerIP ?? text(this.range.network + 1);
    this.router = addressNumber(this.routerIP, `router IP of ${this.cidr}`);
    if (this.router <= this.range.network || this.router >= this.range.broadcast) {
      throw new MembraneError('MEMBRANE_E_POD_NETWORK', `router IP ${this.routerIP} is not a usable address of ${this.cidr} (the network and broadcast addresses are not)`);
    }
    this.cursor = this.range.network + 1;
    for (const ip of opts.inUse ?? []) this.markInUse(ip);
  }

  /** Addresses pods can get: the CIDR without network, broadcast and router. */
  get capacity(): number {
    return this.range.broadcast - this.range.network - 2;
  }

  /** How many addresses are still free. */
  get available(): number {
    return this.capacity - this.used.size;
  }

  /** Why `ip` can never be a pod's address here, or undefined when it can. */
  unusableReason(ip: string): string | undefined {
    const p = parseIP(ip);
    if (!p || p.family !== 4) return `"${ip}" is not an IPv4 address`;
    const n = u32(p.bytes);
    if (n < this.range.network || n > this.range.broadcast) return `${ip} is outside the pod CIDR ${this.cidr}`;
    if (n === this.range.network) return `${ip} is the network address of ${this.cidr}`;
    if (n === this.range.broadcast) return `${ip} is the broadcast address of ${this.cidr}`;
    if (n === this.router) return `${ip} is the router IP`;
    return undefined;
  }

  private usable(ip: string): number {
    const why = this.unusableReason(ip);
    if (why) throw new MembraneError('MEMBRANE_E_POD_NETWORK', why);
    return addressNumber(ip, 'pod IP');
  }

  /** The next free address; throws when none is left. */
  allocate(): string {
    const first = this.range.network + 1;
    const last = this.range.broadcast - 1;
    let n = this.cursor;
    for (let tried = 0; tried <= last - first; tried++) {
      if (n > last) n = first;
      if (n !== this.router && !this.used.has(n)) {
        this.used.add(n);
        this.cursor = n + 1;
        return text(n);
      }
      n++;
    }
    throw new MembraneError('MEMBRANE_E_IP_EXHAUSTED', `no free address left in the pod CIDR ${this.cidr} (${this.capacity} addresses, all in use)`);
  }

  /** Takes a given address; throws when it is not usable or already in use. */
  claim(ip: string): void {
    const n = this.usable(ip);
    if (this.used.has(n)) throw new MembraneError('MEMBRANE_E_POD_NETWORK', `${ip} is already in use`);
    this.used.add(n);
  }

  /** Records an address as in use (seeding); idempotent. Throws when it is not usable. */
  markInUse(ip: string): void {
    this.used.add(this.usable(ip));
  }

  /** Frees an address; false when it was not in use (or is not an address of the CIDR). */
  release(ip: string): boolean {
    if (this.unusableReason(ip)) return false;
    return this.used.delete(addressNumber(ip, 'pod IP'));
  }

  isInUse(ip: string): boolean {
    const p = parseIP(ip);
    return !!p && p.family === 4 && this.used.has(u32(p.bytes));
  }

  /** The addresses in use, in numeric order. */
  inUse(): string[] {
    return [...this.used].sort((a, b) => a - b).map(text);
  }
}
