/**
 * LBTable: what mbr_lb4_svc and mbr_lb4_backend hold, mirrored in memory,
 * and the changes that turn it into what the agent asks for. Pure: it plans
 * (lb-slot-plan.ts gives the order) and records what was written; the
 * ServiceDatapath writes to the kernel and tells the table after each write
 * that succeeded, so the mirror is the kernel's content even when a change
 * stops half-way.
 *
 * Backend ids are the table's: one per backend address (ip, port, protocol),
 * shared by every frontend that names it (as Cilium shares them), deleted
 * when no slot names it any more. A new id is always the next unused one
 * counting up (wrapping at 2^32), never one freed a moment ago: a program
 * that read a slot just before its backend was deleted must not find
 * another service's backend under the same id.
 */
import { IPPROTO_TCP, IPPROTO_UDP, ipv4ToNumber, numberToIPv4, type LB4Backend, type LB4Key, type LB4Service } from './codecs.js';
import { compareFrontends, frontendName, type InstalledService, type ServiceBackend, type ServiceFrontend, type ServiceProtocol, type ServiceSpec } from './lb-map.js';
import { liveSlots, planDelete, planUpsert, slotProblems, type FrontendSlots, type LBWrite } from './lb-slot-plan.js';

export interface BackendAddress extends ServiceBackend {
  protocol: ServiceProtocol;
}

interface FrontendState extends FrontendSlots {
  frontend: ServiceFrontend;
  master?: { count: number; serviceId: number; flags: number };
  slots: Map<number, number>;
}

/** The writes of one frontend (or, with no frontend, of orphan backends only), in order. */
export interface LBChange {
  frontend?: ServiceFrontend;
  /** The master entry the writes lead to (put-master and put-slot values). */
  serviceId: number;
  flags: number;
  writes: LBWrite[];
  /** The address of each backend a put-backend writes. */
  backends: ReadonlyMap<number, BackendAddress>;
  /** Why the change is made, when it is a repair (open after a crash). */
  reason?: string;
}

export function protocolNumber(p: ServiceProtocol): number {
  return p === 'TCP' ? IPPROTO_TCP : IPPROTO_UDP;
}

export function protocolName(n: number): ServiceProtocol | undefined {
  return n === IPPROTO_TCP ? 'TCP' : n === IPPROTO_UDP ? 'UDP' : undefined;
}

function backendKey(b: BackendAddress): string {
  return `${b.ip}:${b.port}/${b.protocol}`;
}

const MAX_ID = 0xffffffff;

export class LBTable {
  private readonly frontends = new Map<string, FrontendState>();
  private readonly backendsById = new Map<number, BackendAddress>();
  private readonly backendsByAddress = new Map<string, number>();
  /** Backend id → how many slot entries (of every frontend, live or not) name it. */
  private readonly refs = new Map<number, number>();
  private nextId = 1;

  /**
   * The table of what the maps hold (their entries as read with
   * mapLookupBatch). Entries of a protocol other than TCP and UDP are not
   * ours to read and are left out; `problems` names them.
   */
  static fromEntries(services: readonly { key: LB4Key; value: LB4Service }[], backends: readonly { id: number; value: LB4Backend }[]): { table: LBTable; problems: string[] } {
    const t = new LBTable();
    const problems: string[] = [];
    for (const { id, value } of backends) {
      const protocol = protocolName(value.proto);
      if (!protocol) {
        problems.push(`backend ${id} has protocol ${value.proto}, not TCP or UDP`);
        continue;
      }
      t.addBackend(id, { ip: numberToIPv4(value.address), port: value.port, protocol });
    }
    for (const { key, value } of services) {
      const protocol = protocolName(key.proto);
      if (!protocol) {
        problems.push(`frontend ${numberToIPv4(key.address)}:${key.dport} has protocol ${key.proto}, not TCP or UDP`);
        continue;
      }
      const f = t.state({ ip: numberToIPv4(key.address), port: key.dport, protocol });
      if (key.backend_slot === 0) f.master = { count: value.count, serviceId: value.service_id, flags: value.flags };
      else t.setSlot(f, key.backend_slot, value.backend_id);
    }
    for (const f of t.frontends.values()) if (!f.master && f.slots.size === 0) t.frontends.delete(frontendName(f.frontend));
    return { table: t, problems };
  }

  private state(frontend: ServiceFrontend): FrontendState {
    const name = frontendName(frontend);
    let f = this.frontends.get(name);
    if (!f) {
      f = { frontend: { ip: frontend.ip, port: frontend.port, protocol: frontend.protocol }, slots: new Map() };
      this.frontends.set(name, f);
    }
    return f;
  }

  private addBackend(id: number, b: BackendAddress): void {
    this.backendsById.set(id, b);
    if (!this.backendsByAddress.has(backendKey(b))) this.backendsByAddress.set(backendKey(b), id);
    if (id >= this.nextId) this.nextId = id === MAX_ID ? 1 : id + 1;
  }

  private removeBackend(id: number): void {
    const b = this.backendsById.get(id);
    if (!b) return;
    this.backendsById.delete(id);
    if (this.backendsByAddress.get(backendKey(b)) === id) {
      this.backendsByAddress.delete(backendKey(b));
      // Another id with the same address (only ever after a crash) takes over.
      for (const [other, a] of this.backendsById) if (backendKey(a) === backendKey(b)) this.backendsByAddress.set(backendKey(b), other);
    }
  }

  private setSlot(f: FrontendState, slot: number, id: number | undefined): void {
    const old = f.slots.get(slot);
    if (old !== undefined) {
      const n = (this.refs.get(old) ?? 1) - 1;
      if (n === 0) this.refs.delete(old);
      else this.refs.set(old, n);
    }
    if (id === undefined) f.slots.delete(slot);
    else {
      f.slots.set(slot, id);
      this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
    }
  }

  private allocateId(taken: ReadonlySet<number>): number {
    for (let tries = 0; tries <= MAX_ID; tries++) {
      const id = this.nextId;
      this.nextId = id === MAX_ID ? 1 : id + 1;
      if (!this.backendsById.has(id) && !this.refs.has(id) && !taken.has(id)) return id;
    }
    throw new Error('every backend id is in use');
  }

  /** Of the ids f's slots name, those no other slot names: deleted once f stops naming them. */
  private releasable(f: FrontendState, keep: ReadonlySet<number>): number[] {
    const own = new Map<number, number>();
    for (const id of f.slots.values()) own.set(id, (own.get(id) ?? 0) + 1);
    const out: number[] = [];
    for (const [id, n] of own) if (!keep.has(id) && (this.refs.get(id) ?? 0) === n && this.backendsById.has(id)) out.push(id);
    return out.sort((a, b) => a - b);
  }

  /** The change that makes the frontend hold exactly svc (no writes when it does already). The spec must be valid (checkServiceSpec). */
  planUpsert(svc: ServiceSpec): LBChange {
    const existing = this.frontends.get(frontendName(svc.frontend));
    const f: FrontendSlots = existing ?? { slots: new Map() };
    const backends = new Map<number, BackendAddress>();
    const ids: number[] = [];
    const create: number[] = [];
    for (const b of svc.backends) {
      const addr: BackendAddress = { ip: b.ip, port: b.port, protocol: svc.frontend.protocol };
      let id = this.backendsByAddress.get(backendKey(addr));
      if (id === undefined) {
        id = this.allocateId(new Set(ids));
        create.push(id);
        backends.set(id, addr);
      }
      ids.push(id);
    }
    const release = existing ? this.releasable(existing, new Set(ids)) : [];
    const writes = planUpsert(f, { serviceId: svc.id, flags: 0, backendIds: ids, create, release });
    return { frontend: svc.frontend, serviceId: svc.id, flags: 0, writes, backends };
  }

  /** The change that removes the frontend; undefined when it is none. */
  planDelete(frontend: ServiceFrontend): LBChange | undefined {
    const f = this.frontends.get(frontendName(frontend));
    if (!f) return undefined;
    return { frontend: f.frontend, serviceId: f.master?.serviceId ?? 0, flags: f.master?.flags ?? 0, writes: planDelete(f, this.releasable(f, new Set())), backends: new Map() };
  }

  /**
   * What a crash half-way through a change can leave, and the changes that
   * clean it: slots without a master, slots beyond the count, live slots
   * that are missing or name a missing backend (compacted away), backends
   * no slot names.
   */
  planRepairs(): LBChange[] {
    const changes: LBChange[] = [];
    for (const f of this.frontends.values()) {
      const name = frontendName(f.frontend);
      if (!f.master) {
        changes.push({ frontend: f.frontend, serviceId: 0, flags: 0, writes: planDelete(f, this.releasable(f, new Set())), backends: new Map(), reason: `${name}: ${f.slots.size} slot(s) without a master entry` });
        continue;
      }
      const problems = slotProblems(f, (id) => this.backendsById.has(id));
      const beyond = [...f.slots.keys()].filter((s) => s > f.master!.count).length;
      if (problems.length === 0 && beyond === 0) continue;
      const valid = [...new Set(liveSlots(f).filter((id): id is number => id !== undefined && this.backendsById.has(id)))];
      const release = this.releasable(f, new Set(valid));
      const writes = planUpsert(f, { serviceId: f.master.serviceId, flags: f.master.flags, backendIds: valid, release });
      const why = [...problems, ...(beyond ? [`${beyond} slot(s) beyond its count of ${f.master.count}`] : [])];
      changes.push({ frontend: f.frontend, serviceId: f.master.serviceId, flags: f.master.flags, writes, backends: new Map(), reason: `${name}: ${why.join('; ')}` });
    }
    // Orphans are judged after the frontends' repairs: those release their own.
    const released = new Set(changes.flatMap((c) => c.writes.flatMap((w) => (w.op === 'delete-backend' ? [w.backendId] : []))));
    const orphans = [...this.backendsById.keys()].filter((id) => !this.refs.has(id) && !released.has(id)).sort((a, b) => a - b);
    if (orphans.length > 0) {
      changes.push({ serviceId: 0, flags: 0, writes: orphans.map((backendId) => ({ op: 'delete-backend', backendId })), backends: new Map(), reason: `backend(s) ${orphans.join(', ')} named by no slot` });
    }
    return changes;
  }

  /** Records one write of `change` as done (the kernel took it). */
  apply(change: LBChange, w: LBWrite): void {
    const f = change.frontend ? this.state(change.frontend) : undefined;
    switch (w.op) {
      case 'put-backend':
        this.addBackend(w.backendId, change.backends.get(w.backendId)!);
        break;
      case 'delete-backend':
        this.removeBackend(w.backendId);
        break;
      case 'put-slot':
        this.setSlot(f!, w.slot, w.backendId);
        break;
      case 'delete-slot':
        this.setSlot(f!, w.slot, undefined);
        break;
      case 'put-master':
        f!.master = { count: w.count, serviceId: change.serviceId, flags: change.flags };
        break;
      case 'delete-master':
        delete f!.master;
        break;
    }
    if (f && !f.master && f.slots.size === 0) this.frontends.delete(frontendName(f.frontend));
  }

  /** The address of a backend id. */
  backend(id: number): BackendAddress | undefined {
    return this.backendsById.get(id);
  }

  /** How many frontends (with a master entry) and backends the table holds. */
  get size(): { frontends: number; backends: number } {
    return { frontends: [...this.frontends.values()].filter((f) => f.master).length, backends: this.backendsById.size };
  }

  /** Every frontend with its master entry, its live slots in order (sorted by frontend). */
  list(): InstalledService[] {
    const out: InstalledService[] = [];
    for (const f of this.frontends.values()) {
      if (!f.master) continue;
      const backends: InstalledService['backends'] = [];
      liveSlots(f).forEach((id, i) => {
        const b = id === undefined ? undefined : this.backendsById.get(id);
        if (b) backends.push({ ip: b.ip, port: b.port, backendId: id!, slot: i + 1 });
      });
      out.push({ id: f.master.serviceId, frontend: { ...f.frontend }, flags: f.master.flags, backends });
    }
    return out.sort((a, b) => compareFrontends(a.frontend, b.frontend));
  }

  /** The frontend's entries now (tests, and the invariant check). */
  slotsOf(frontend: ServiceFrontend): FrontendSlots | undefined {
    return this.frontends.get(frontendName(frontend));
  }
}

/** The map key of a frontend's slot (0: the master). */
export function lbKey(frontend: ServiceFrontend, slot: number): LB4Key {
  return { address: ipv4ToNumber(frontend.ip), dport: frontend.port, backend_slot: slot, proto: protocolNumber(frontend.protocol), pad1: 0, pad2: 0 };
}
