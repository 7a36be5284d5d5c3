/**
 * ServiceDatapath: ClusterIP services load-balanced at the socket
 * (bpf/bpf_sock.c), the kernel's implementation of LBMap.
 *
 * open() loads the four programs, reusing the maps pinned under the pin
 * root (default /sys/fs/bpf/membrane, beside the endpoint programs' maps),
 * and attaches them to the root of the cgroup v2 hierarchy. Each attached
 * program is pinned as `<pinRoot>/mbr_sock_<hook>`; that pin is how an
 * agent knows its programs from anybody else's, so it only ever detaches
 * programs it finds under its own pin root.
 *
 * Restart without a gap: a new open attaches its program first, then
 * detaches the one the pin named, hook by hook. While both are attached
 * they share the maps, and a socket is translated once: after the first
 * program rewrote a frontend to a backend, the second sees a backend, which
 * is no frontend. Crash-safety comes from the order of four steps:
 *   1. pin the new program at `mbr_sock_<hook>_next`;
 *   2. attach it;
 *   3. detach whatever `mbr_sock_<hook>` and a leftover `_next` named;
 *   4. rename `_next` over `mbr_sock_<hook>`.
 * Stopped anywhere, every attached program of ours is pinned under one of
 * the two names, and the next open (or teardown) detaches it.
 *
 * Several agents: each has its pin root, so its own maps and frontends, and
 * its own pins; their programs are all attached (BPF_F_ALLOW_MULTI) and each
 * translates only what its maps hold.
 *
 * close() releases handles only: the programs stay attached and keep
 * translating while the agent is down. teardown() (`membrane down`)
 * detaches the pinned programs and removes every pin of ours.
 *
 * One writer per pin root: the maps are changed by this process only, and
 * the in-memory table (lb-table.ts) mirrors them write by write.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MembraneError } from '@membrane/api';
import { ipv4ToNumber, lb4BackendCodec, lb4KeyCodec, lb4ServiceCodec, type LB4Backend, type LB4Key, type LB4Service } from './codecs.js';
import { resolveCgroup2, type Cgroup2Root } from './cgroup2.js';
import { DatapathError, requireRoot } from './datapath-error.js';
import { DEFAULT_PIN_ROOT, openAndLoad } from './datapath.js';
import { SOCKET_LB_FEATURES, requireKernelFeatures } from './kernel-features.js';
import { checkFrontend, checkServiceSpec, frontendName, type InstalledService, type LBMap, type ServiceFrontend, type ServiceSpec } from './lb-map.js';
import { LBTable, lbKey, protocolNumber, type LBChange } from './lb-table.js';
import type { LBWrite } from './lb-slot-plan.js';
import { BPF_ANY, BPF_F_ALLOW_MULTI, native, type BpfObjectHandle, type NativeBinding } from './native.js';
import { SOCK_NEXT_SUFFIX, SOCK_PROGRAMS, detachPinnedSockPrograms, openPinnedSockPrograms, type PinnedSockProgram, type SockHook } from './sock-programs.js';

export const SOCK_OBJECT = fileURLToPath(new URL('../dist/bpf/bpf_sock.o', import.meta.url));

/** bpf_set_retval's helper id (enum bpf_func_id). */
const BPF_FUNC_SET_RETVAL = 187;

/** The maps of bpf_sock.c, pinned by name under the pin root. */
export const SOCK_MAPS = { services: 'mbr_lb4_svc', backends: 'mbr_lb4_backend', revNat: 'mbr_lb4_rev_sk' } as const;

export { SOCK_PROGRAMS, type PinnedSockProgram, type SockHook } from './sock-programs.js';

export interface ServiceDatapathOptions {
  /** Where maps and programs are pinned (a directory on a bpf filesystem). Default /sys/fs/bpf/membrane. */
  pinRoot?: string;
  /** A cgroup v2 directory. Default: the root of the cgroup v2 hierarchy (see cgroup2.ts). */
  cgroupPath?: string;
  objectPath?: string;
}

/** One program as open() left it. */
export interface AttachedSockProgram {
  hook: SockHook;
  attachType: number;
  pin: string;
  progId: number;
  /** Ids of our programs this open detached (a previous agent's, or a leftover of a crash). */
  replaced: number[];
}

export interface ServiceTeardownReport {
  cgroup: Cgroup2Root;
  /** Program ids detached from the cgroup. */
  detached: number[];
  /** Pins removed. */
  unpinned: string[];
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class ServiceDatapath implements LBMap {
  private closed = false;

  private constructor(
    private readonly nb: NativeBinding,
    readonly pinRoot: string,
    readonly cgroup: Cgroup2Root,
    private readonly object: BpfObjectHandle,
    private readonly maps: { services: number; backends: number; revNat: number },
    private table: LBTable,
    readonly programs: readonly AttachedSockProgram[],
    /** What open() found half-done (a crash during a change) and cleaned. */
    readonly repairs: readonly string[],
  ) {}

  /**
   * Loads the socket load balancer, reusing the maps pinned under the pin
   * root, and puts its programs in force on the cgroup: each new program is
   * attached before the one it replaces is detached.
   */
  static open(opts: ServiceDatapathOptions = {}): ServiceDatapath {
    requireRoot('load the socket load balancer');
    const path = opts.objectPath ?? SOCK_OBJECT;
    if (!existsSync(path)) {
      throw new DatapathError(
        `the socket load balancer is not built (${path} is missing): run \`npm run build\`, which compiles it with clang (apt-get install clang llvm libbpf-dev)`,
        'MEMBRANE_E_NOT_BUILT',
      );
    }
    const nb = native();
    requireKernelFeatures(nb, SOCKET_LB_FEATURES);
    if (!nb.probeHelper(nb.progTypes['cgroup_sock_addr']!, BPF_FUNC_SET_RETVAL)) {
      throw new DatapathError('kernel lacks the BPF helper bpf_set_retval for cgroup socket-address programs (a frontend without backends could not refuse with ECONNREFUSED): boot Linux 5.18 or newer', 'MEMBRANE_E_KERNEL_FEATURE');
    }
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const bpffs = pinRoot.split('/').slice(0, 4).join('/');
    nb.ensureBpffs(bpffs.startsWith('/sys/fs/bpf') ? '/sys/fs/bpf' : bpffs);
    mkdirSync(pinRoot, { recursive: true });
    const cgroup = resolveCgroup2(nb, opts.cgroupPath);

    const obj = openAndLoad(nb, path, { pinRoot }, {});
    try {
      const progs = new Map(nb.objectPrograms(obj).map((p) => [p.name, p.fd]));
      const mapFds = new Map(nb.objectMaps(obj).map((m) => [m.name, m.fd]));
      const need = (table: Map<string, number>, name: string): number => {
        const fd = table.get(name);
        if (fd === undefined || fd < 0) throw new Error(`${path} has no ${name}`);
        return fd;
      };
      const maps = { services: need(mapFds, SOCK_MAPS.services), backends: need(mapFds, SOCK_MAPS.backends), revNat: need(mapFds, SOCK_MAPS.revNat) };
      const attached = SOCK_PROGRAMS.map((p) => ServiceDatapath.swapIn(nb, pinRoot, cgroup.path, p, need(progs, p.program)));
      const { table, problems } = LBTable.fromEntries(readServices(nb, maps.services), readBackends(nb, maps.backends));
      const repairs = [...problems];
      const dp = new ServiceDatapath(nb, pinRoot, cgroup, obj, maps, table, attached, repairs);
      for (const change of table.planRepairs()) {
        dp.write(change);
        repairs.push(change.reason ?? 'repaired');
      }
      return dp;
    } catch (e) {
      nb.closeObject(obj);
      throw e;
    }
  }

  /**
   * Puts one program in force in place of the one pinned for its hook (the
   * order of the file comment: pin next, attach, detach the old, rename).
   */
  private static swapIn(nb: NativeBinding, pinRoot: string, cgroupPath: string, p: (typeof SOCK_PROGRAMS)[number], fd: number): AttachedSockProgram {
    const pin = `${pinRoot}/${p.pin}`;
    const next = `${pin}${SOCK_NEXT_SUFFIX}`;
    const old = openPinnedSockPrograms(nb, pinRoot).filter((o) => o.hook === p.hook);
    const progId = nb.progInfo(fd).id;
    const replaced: number[] = [];
    let attached = false;
    try {
      rmSync(next, { force: true });
      nb.objPin(fd, next);
      nb.cgroupAttach(fd, cgroupPath, p.attachType, BPF_F_ALLOW_MULTI);
      attached = true;
      for (const o of old) if (nb.cgroupDetach(o.fd, cgroupPath, p.attachType)) replaced.push(o.progId);
      renameSync(next, pin);
    } catch (e) {
      // Not attached: its pin would only mislead. Attached: the pin is what finds it again.
      if (!attached) rmSync(next, { force: true });
      throw new MembraneError('MEMBRANE_E_DATAPATH', `put the socket load balancer's ${p.hook} program in force on cgroup ${cgroupPath}: ${message(e)}`, { cause: e });
    } finally {
      for (const o of old) nb.closeFd(o.fd);
    }
    return { hook: p.hook, attachType: p.attachType, pin, progId, replaced };
  }

  /** The programs pinned under a pin root (attached or not), `_next` leftovers included. */
  static pinnedPrograms(pinRoot: string = DEFAULT_PIN_ROOT): PinnedSockProgram[] {
    const nb = native();
    return openPinnedSockPrograms(nb, pinRoot).map(({ fd, ...rest }) => {
      nb.closeFd(fd);
      return rest;
    });
  }

  /**
   * `membrane down`: detaches the programs pinned under the pin root from
   * the cgroup (the one open used: by default the hierarchy's root) and
   * removes every pin of the socket load balancer; the pin root itself goes
   * when nothing else is left in it. Nothing of ours there is not an error.
   */
  static teardown(pinRoot: string = DEFAULT_PIN_ROOT, cgroupPath?: string): ServiceTeardownReport {
    requireRoot('remove the socket load balancer');
    const nb = native();
    if (!existsSync(pinRoot)) return { cgroup: resolveCgroup2(nb, cgroupPath), detached: [], unpinned: [] };
    const { errors, ...report } = detachPinnedSockPrograms(nb, pinRoot, cgroupPath);
    for (const name of Object.values(SOCK_MAPS)) {
      const pin = `${pinRoot}/${name}`;
      if (!existsSync(pin)) continue;
      rmSync(pin, { force: true });
      report.unpinned.push(pin);
    }
    if (errors.length > 0) throw new MembraneError('MEMBRANE_E_DATAPATH', `tear down the socket load balancer under ${pinRoot}: ${errors.join('; ')}`);
    if (readdirSync(pinRoot).length === 0) rmdirSync(pinRoot);
    return report;
  }

  private assertOpen(): void {
    if (this.closed) throw new MembraneError('MEMBRANE_E_USAGE', `the socket load balancer under ${this.pinRoot} is closed`);
  }

  upsertService(svc: ServiceSpec): void {
    this.assertOpen();
    checkServiceSpec(svc);
    const before = this.table.list().find((s) => frontendName(s.frontend) === frontendName(svc.frontend));
    this.writeOrRestore(this.table.planUpsert(svc), before, `service ${svc.id} (${frontendName(svc.frontend)})`);
  }

  deleteService(frontend: ServiceFrontend): boolean {
    this.assertOpen();
    checkFrontend(frontend);
    const change = this.table.planDelete(frontend);
    if (!change) return false;
    const before = this.table.list().find((s) => frontendName(s.frontend) === frontendName(frontend));
    this.writeOrRestore(change, before, `delete ${frontendName(frontend)}`);
    return true;
  }

  /** Read from the kernel's maps, not from the table this process keeps. */
  listServices(): InstalledService[] {
    this.assertOpen();
    return LBTable.fromEntries(readServices(this.nb, this.maps.services), readBackends(this.nb, this.maps.backends)).table.list();
  }

  /** Releases handles. The programs stay attached and the maps pinned: translation goes on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.nb.closeObject(this.object);
  }

  /**
   * Applies a change; when a write fails, puts the frontend back as it was
   * (every step of either way keeps the invariant of lb-slot-plan.ts) and
   * throws what failed.
   */
  private writeOrRestore(change: LBChange, before: InstalledService | undefined, what: string): void {
    try {
      this.write(change);
    } catch (e) {
      const frontend = change.frontend!;
      try {
        const back = before ? this.table.planUpsert({ id: before.id, frontend, backends: before.backends.map((b) => ({ ip: b.ip, port: b.port })) }) : this.table.planDelete(frontend);
        if (back) this.write(back);
      } catch (undo) {
        // The table no longer knows what the kernel holds: read it again.
        this.table = LBTable.fromEntries(readServices(this.nb, this.maps.services), readBackends(this.nb, this.maps.backends)).table;
        throw new MembraneError('MEMBRANE_E_DATAPATH', `${what}: ${message(e)} (and putting it back as it was failed: ${message(undo)}; every frontend still resolves only to backends that exist)`, { cause: e });
      }
      throw new MembraneError('MEMBRANE_E_DATAPATH', `${what}: ${message(e)} (nothing changed)`, { cause: e });
    }
  }

  /** Writes a change to the maps in its order, recording each write in the table once the kernel took it. */
  private write(change: LBChange): void {
    for (const w of change.writes) {
      this.kernelWrite(change, w);
      this.table.apply(change, w);
    }
  }

  private kernelWrite(change: LBChange, w: LBWrite): void {
    const svcValue = (v: Partial<LB4Service>): Buffer => lb4ServiceCodec.encode({ backend_id: 0, service_id: change.serviceId, count: 0, flags: 0, pad: 0, ...v });
    const key = (slot: number): Buffer => lb4KeyCodec.encode(lbKey(change.frontend!, slot));
    switch (w.op) {
      case 'put-backend': {
        const b = change.backends.get(w.backendId)!;
        const v: LB4Backend = { address: ipv4ToNumber(b.ip), port: b.port, proto: protocolNumber(b.protocol), flags: 0 };
        this.nb.mapUpdate(this.maps.backends, u32(w.backendId), lb4BackendCodec.encode(v), BPF_ANY);
        return;
      }
      case 'delete-backend':
        this.nb.mapDelete(this.maps.backends, u32(w.backendId));
        return;
      case 'put-slot':
        this.nb.mapUpdate(this.maps.services, key(w.slot), svcValue({ backend_id: w.backendId }), BPF_ANY);
        return;
      case 'delete-slot':
        this.nb.mapDelete(this.maps.services, key(w.slot));
        return;
      case 'put-master':
        this.nb.mapUpdate(this.maps.services, key(0), svcValue({ count: w.count, flags: change.flags }), BPF_ANY);
        return;
      case 'delete-master':
        this.nb.mapDelete(this.maps.services, key(0));
        return;
    }
  }
}

function readServices(nb: NativeBinding, fd: number): { key: LB4Key; value: LB4Service }[] {
  const r = nb.mapLookupBatch(fd);
  return Array.from({ length: r.count }, (_, i) => ({ key: lb4KeyCodec.decode(r.keys, i * lb4KeyCodec.size), value: lb4ServiceCodec.decode(r.values, i * lb4ServiceCodec.size) }));
}

function readBackends(nb: NativeBinding, fd: number): { id: number; value: LB4Backend }[] {
  const r = nb.mapLookupBatch(fd);
  return Array.from({ length: r.count }, (_, i) => ({ id: r.keys.readUInt32LE(i * 4), value: lb4BackendCodec.decode(r.values, i * lb4BackendCodec.size) }));
}
