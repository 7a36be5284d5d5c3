/**
 * ClusterIPs and frontend ids. Every Service gets an address of the service
 * CIDR — the one its manifest asks for, or the next free one — and each of
 * its ports a frontend id (what `service list` shows, stable across
 * restarts). As in Kubernetes the first address is reserved (the API
 * server's `kubernetes` Service) and the tenth is kube-dns's; a ClusterIP
 * is immutable once given. The state is copied for planning (clone) and
 * kept only when the change commits.
 */
import { MembraneError, type Service } from '@membrane/api';
import { formatIP, parsePrefix } from '@membrane/policy';

export interface ServiceAddress {
  clusterIP: string;
  /** One per spec.ports entry, in order. */
  frontendIds: number[];
}

export interface AddressingSnapshot {
  services: Record<string, ServiceAddress>;
  nextId: number;
}

function u32(ip: string): number | undefined {
  const p = parsePrefix(`${ip}/32`);
  if (typeof p === 'string' || p.family !== 4) return undefined;
  return ((p.bytes[0]! << 24) | (p.bytes[1]! << 16) | (p.bytes[2]! << 8) | p.bytes[3]!) >>> 0;
}

function text(n: number): string {
  return formatIP(4, new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]));
}

export class ServiceAddressing {
  readonly cidr: string;
  private readonly network: number;
  private readonly broadcast: number;
  private services = new Map<string, ServiceAddress>();
  private nextId = 1;

  constructor(cidr: string, snapshot?: AddressingSnapshot) {
    const p = parsePrefix(cidr);
    if (typeof p === 'string' || p.family !== 4) throw new MembraneError('MEMBRANE_E_USAGE', `service CIDR "${cidr}": not an IPv4 CIDR`);
    if (p.bits > 28) throw new MembraneError('MEMBRANE_E_USAGE', `service CIDR "${cidr}" is too small (at most /28: the tenth address is kube-dns's)`);
    this.cidr = cidr;
    this.network = u32(formatIP(4, p.bytes))!;
    this.broadcast = this.network + 2 ** (32 - p.bits) - 1;
    for (const [k, v] of Object.entries(snapshot?.services ?? {})) this.services.set(k, { clusterIP: v.clusterIP, frontendIds: [...v.frontendIds] });
    this.nextId = snapshot?.nextId ?? 1;
  }

  /** The kube-dns Service's address: the tenth of the CIDR (10.96.0.10 for 10.96.0.0/16). */
  get dnsIP(): string {
    return text(this.network + 10);
  }

  /** The first address, reserved as Kubernetes reserves it. */
  get firstIP(): string {
    return text(this.network + 1);
  }

  clone(): ServiceAddressing {
    return new ServiceAddressing(this.cidr, this.snapshot());
  }

  snapshot(): AddressingSnapshot {
    return { services: Object.fromEntries([...this.services].map(([k, v]) => [k, { clusterIP: v.clusterIP, frontendIds: [...v.frontendIds] }])), nextId: this.nextId };
  }

  get(key: string): ServiceAddress | undefined {
    return this.services.get(key);
  }

  /**
   * The address of a Service (namespace/name), assigned if new. Throws,
   * naming the field, for a ClusterIP outside the CIDR, taken by another
   * Service, reserved, or changed after it was given.
   */
  assign(key: string, svc: Service, where: string): ServiceAddress {
    const want = svc.spec.clusterIP;
    const old = this.services.get(key);
    if (old) {
      if (want && want !== old.clusterIP) throw this.invalid(where, `spec.clusterIP: field is immutable (the Service has ${old.clusterIP}; delete it to get another)`);
      while (old.frontendIds.length < svc.spec.ports.length) old.frontendIds.push(this.nextId++);
      old.frontendIds.length = svc.spec.ports.length;
      return old;
    }
    let ip: string;
    if (want) {
      const n = u32(want);
      if (n === undefined) throw this.invalid(where, `spec.clusterIP: "${want}" is not an IPv4 address`);
      if (n <= this.network || n >= this.broadcast) throw this.invalid(where, `spec.clusterIP: ${want} is not inside the service CIDR ${this.cidr}`);
      if (want === this.firstIP) throw this.invalid(where, `spec.clusterIP: ${want} is reserved (the first address of the service CIDR)`);
      if (want === this.dnsIP && key !== 'kube-system/kube-dns') throw this.invalid(where, `spec.clusterIP: ${want} is reserved for kube-system/kube-dns`);
      const holder = [...this.services].find(([, v]) => v.clusterIP === want);
      if (holder) throw new MembraneError('MEMBRANE_E_CONFLICT', `${where}: spec.clusterIP: ${want} is already allocated to Service ${holder[0]}`);
      ip = want;
    } else {
      ip = key === 'kube-system/kube-dns' ? this.dnsIP : this.free(where);
    }
    const a = { clusterIP: ip, frontendIds: svc.spec.ports.map(() => this.nextId++) };
    this.services.set(key, a);
    return a;
  }

  release(key: string): void {
    this.services.delete(key);
  }

  private free(where: string): string {
    const taken = new Set([...this.services.values()].map((v) => u32(v.clusterIP)));
    for (let n = this.network + 2; n < this.broadcast; n++) {
      if (n === this.network + 10 || taken.has(n)) continue;
      return text(n);
    }
    throw new MembraneError('MEMBRANE_E_IP_EXHAUSTED', `${where}: no free address left in the service CIDR ${this.cidr}`);
  }

  private invalid(where: string, reason: string): MembraneError {
    return new MembraneError('MEMBRANE_E_MANIFEST_INVALID', `${where}: ${reason}`);
  }
}
