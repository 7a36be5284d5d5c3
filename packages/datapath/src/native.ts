/**
 * The typed face of the membrane_bpf addon (packages/datapath/native, plain C
 * over N-API and libbpf), built by `npm ci` into build/Release.
 *
 * `native()` loads it once and wraps every function so that a failure is
 * explained: not root → MEMBRANE_E_NOT_ROOT, a kernel without a feature →
 * MEMBRANE_E_KERNEL_FEATURE saying what is missing and how to get it; any
 * other kernel error passes through unchanged (code 'EEXIST', errno -17,
 * message "attach from_container to mbr12 (ifindex 31) at tc ingress: EEXIST").
 *
 * Keys and values are the raw bytes of the C structs (codecs.ts); their sizes
 * must be the map's (the addon asks the kernel and refuses others), per-CPU
 * values being round_up(value_size, 8) bytes per possible CPU. Handles
 * (BPF objects, ring buffers) are opaque; fds are plain numbers owned by
 * whoever opened them.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { DatapathError, NOT_ROOT_MESSAGE, isNativeSystemError } from './datapath-error.js';
import { explainKernelError, type KernelErrorContext } from './kernel-features.js';

/** Where `npm ci` (node-gyp) puts the addon. */
export const ADDON_PATH = fileURLToPath(new URL('../build/Release/membrane_bpf.node', import.meta.url));

declare const handleBrand: unique symbol;
/** An opened BPF object (ELF file); release it with closeObject. */
export interface BpfObjectHandle {
  readonly kind: 'BPF object';
  readonly [handleBrand]: 'BpfObjectHandle';
}
/** A ring buffer being consumed on the event loop; release it with ringbufClose. */
export interface RingBufferHandle {
  readonly kind: 'ring buffer';
  readonly [handleBrand]: 'RingBufferHandle';
}

/** A transparent UDP socket read on the event loop; release it with udpClose. */
export interface UdpHandle {
  readonly kind: 'UDP socket';
  readonly [handleBrand]: 'UdpHandle';
}

/** bpf(2) update flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;
/** Map creation flags used by the datapath. */
export const BPF_F_NO_PREALLOC = 1;

/** cgroup attach flags (bpf_prog_attach). */
export const BPF_F_ALLOW_OVERRIDE = 1;
export const BPF_F_ALLOW_MULTI = 2;

/**
 * The cgroup attach types of the socket load balancer (enum bpf_attach_type;
 * `attachTypes` has every one by libbpf's name).
 */
export const BPF_CGROUP_INET4_CONNECT = 10;
export const BPF_CGROUP_UDP4_SENDMSG = 14;
export const BPF_CGROUP_UDP4_RECVMSG = 19;
export const BPF_CGROUP_INET4_GETPEERNAME = 29;

/** tc verdicts a classifier returns. */
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

export interface OpenObjectOptions {
  /** Directory where maps declared with `pinning = LIBBPF_PIN_BY_NAME` are pinned and reused (libbpf's default: /sys/fs/bpf). */
  pinRoot?: string;
  objectName?: string;
}

export interface LoadObjectOptions {
  /** map name → pin path: reuse the map pinned there if compatible, else create it and pin it there. */
  pinMaps?: Record<string, string>;
  /** map name → fd of an existing map to use instead of creating one. */
  reuseMaps?: Record<string, number>;
  /** map name → max entries, overriding the ELF's definition. */
  maxEntries?: Record<string, number>;
}

export interface ObjectProgram {
  name: string;
  section: string;
  type: number;
  /** libbpf's name of the program type: "sched_cls". */
  typeName: string;
  /** -1 until the object is loaded. */
  fd: number;
}

export interface ObjectMap {
  name: string;
  type: number;
  /** libbpf's name of the map type: "lpm_trie", "ringbuf". */
  typeName: string;
  /** -1 until the object is loaded. */
  fd: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  pinPath: string | null;
  pinned: boolean;
  /** .bss/.data/.rodata maps libbpf makes for globals. */
  internal: boolean;
}

export interface MapInfo {
  type: number;
  typeName: string;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface ProgInfo {
  type: number;
  typeName: string;
  id: number;
  name: string;
  /** The kernel's 8-byte program tag, in hex. */
  tag: string;
}

export interface BatchResult {
  count: number;
  /** false: the map type has no batch command and entries went one by one. */
  batched: boolean;
}

export interface LookupBatchResult extends BatchResult {
  /** count keys back to back (keySize bytes each). */
  keys: Buffer;
  /** count values back to back (valueSize bytes each). */
  values: Buffer;
}

export interface MapCreateOptions {
  flags?: number;
  /** Template for the inner maps of array-of-maps / hash-of-maps. */
  innerMapFd?: number;
  mapExtra?: number | bigint;
  numaNode?: number;
}

export type TcAttachPoint = 'ingress' | 'egress';

export interface TcNetnsOption {
  /** Run in this network namespace: a path such as /run/netns/NAME. */
  netns?: string;
}

export interface TcAttachOptions extends TcNetnsOption {
  /** 0 or absent: the kernel chooses (returned). */
  handle?: number;
  priority?: number;
  /** Replace the filter with the same handle and priority instead of failing with EEXIST. */
  replace?: boolean;
  /** How error messages call the program (default: its kernel name). */
  name?: string;
}

export interface TcFilterOptions extends TcNetnsOption {
  handle: number;
  priority: number;
}

export interface TcFilter {
  handle: number;
  priority: number;
  progId: number;
}

export interface RingBufferOptions {
  /** Cut a batch once it holds this many bytes (default 1 MiB). */
  maxBatchBytes?: number;
}

/**
 * Receives one batch per wakeup: records back to back, each a little-endian
 * u32 length then that many bytes, unpadded (see ringbuf-records.ts).
 */
export type RingBufferCallback = (batch: Buffer) => void;

export interface TestRunOptions {
  /** Runs the program this many times (duration is the average). */
  repeat?: number;
  /** The context (for tc: a struct __sk_buff, see sk-buff.ts). */
  ctxIn?: Uint8Array;
  /** Default: ctxIn's length (0: no ctxOut). */
  ctxOutSize?: number;
  /** Default: packet length + 256; grown automatically when too small. */
  dataOutSize?: number;
  flags?: number;
  cpu?: number;
}

export interface TestRunResult {
  /** The program's return value (tc: TC_ACT_*). */
  retval: number;
  /** The packet after the program ran. */
  dataOut: Buffer;
  ctxOut: Buffer | null;
  /** Average ns per run. */
  duration: number;
}

export type SkBuffField =
  | 'len'
  | 'pktType'
  | 'mark'
  | 'queueMapping'
  | 'protocol'
  | 'priority'
  | 'ingressIfindex'
  | 'ifindex'
  | 'tcIndex'
  | 'cb'
  | 'hash'
  | 'tcClassid'
  | 'tstamp'
  | 'wireLen'
  | 'gsoSegs'
  | 'gsoSize'
  | 'hwtstamp';

export interface SkBuffLayout {
  size: number;
  offsets: Record<SkBuffField, number>;
}

export interface OriginalDst {
  address: string;
  port: number;
  family: 4 | 6;
}

/** Everything the addon exports. */
export interface NativeBinding {
  libbpfVersion(): string;
  numPossibleCpus(): number;
  probeMapType(type: number): boolean;
  probeProgType(type: number): boolean;
  probeHelper(progType: number, helperId: number): boolean;
  /** libbpf's names → numbers: mapTypes.lpm_trie === 11. */
  readonly mapTypes: Readonly<Record<string, number>>;
  readonly progTypes: Readonly<Record<string, number>>;
  /** libbpf's names → numbers: attachTypes.cgroup_inet4_connect === 10. */
  readonly attachTypes: Readonly<Record<string, number>>;

  openObject(path: string, options?: OpenObjectOptions): BpfObjectHandle;
  loadObject(object: BpfObjectHandle, options?: LoadObjectOptions): void;
  objectPrograms(object: BpfObjectHandle): ObjectProgram[];
  objectMaps(object: BpfObjectHandle): ObjectMap[];
  closeObject(object: BpfObjectHandle): void;

  /** null when the key is absent. */
  mapLookup(fd: number, key: Uint8Array, flags?: number): Buffer | null;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** false when the key was absent. */
  mapDelete(fd: number, key: Uint8Array): boolean;
  /** The key after `key` (the first with null); null at the end. */
  mapGetNextKey(fd: number, key: Uint8Array | null): Buffer | null;
  /** Every entry, with the kernel's batch command when the map type has one. */
  mapLookupBatch(fd: number, options?: { batchSize?: number }): LookupBatchResult;
  /** On failure err.count says how many entries went in first. */
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, flags?: number): BatchResult;
  /** Keys that are not in the map are skipped; count is what was deleted. */
  mapDeleteBatch(fd: number, keys: Uint8Array): BatchResult;
  mapCreate(type: number, name: string | null, keySize: number, valueSize: number, maxEntries: number, options?: MapCreateOptions): number;
  mapInfo(fd: number): MapInfo;
  progInfo(fd: number): ProgInfo;
  objPin(fd: number, path: string): void;
  objGet(path: string, options?: { readOnly?: boolean; writeOnly?: boolean }): number;
  closeFd(fd: number): void;

  tcAttach(ifindex: number, attachPoint: TcAttachPoint, progFd: number, options?: TcAttachOptions): TcFilter;
  /** false when no such filter was attached. */
  tcDetach(ifindex: number, attachPoint: TcAttachPoint, options: TcFilterOptions): boolean;
  /** null when no such filter is attached. */
  tcQuery(ifindex: number, attachPoint: TcAttachPoint, options: TcFilterOptions): TcFilter | null;
  /** Removes the clsact qdisc (every tc filter on both points); false when there was none. */
  tcHookDestroy(ifindex: number, options?: TcNetnsOption): boolean;

  ringbufOpen(mapFd: number, callback: RingBufferCallback, options?: RingBufferOptions): RingBufferHandle;
  /** Delivers what is pending through the callback now; returns the number of records. */
  ringbufConsume(ring: RingBufferHandle): number;
  ringbufClose(ring: RingBufferHandle): void;

  progTestRun(progFd: number, data: Uint8Array, options?: TestRunOptions): TestRunResult;
  readonly skBuffLayout: SkBuffLayout;

  setIpTransparent(fd: number, on: boolean): void;
  getIpTransparent(fd: number): boolean;
  setSoMark(fd: number, mark: number): void;
  getSoMark(fd: number): number;
  getOriginalDst(fd: number): OriginalDst;

  /**
   * A nonblocking IPv4 TCP listener with IP_TRANSPARENT set before bind (it
   * accepts what the datapath assigns it, for any destination), bound to
   * address:port and listening (backlog default 511). Root. The fd is the
   * caller's: see proxy-sockets.ts for handing it to a net.Server.
   */
  createTransparentListener(address: string, port: number, options?: { backlog?: number }): number;
  /**
   * A nonblocking, unconnected IPv4 TCP socket with IP_TRANSPARENT and
   * SO_MARK = mark, bound to sourceAddress (which need not be local) and
   * port 0 (chosen at connect). Root. See proxy-sockets.ts for connecting it.
   */
  createTransparentSocket(sourceAddress: string, mark: number): number;

  /**
   * A nonblocking IPv4 UDP socket with IP_TRANSPARENT and IP_RECVORIGDSTADDR
   * (SO_MARK when options.mark is set), bound to address:port (which need
   * not be local; port 0: the kernel picks). Each datagram is handed to
   * onMessage with its source and its original destination. Root.
   */
  udpOpen(address: string, port: number, options: { mark?: number } | undefined, onMessage: (data: Buffer, address: string, port: number, destAddress: string, destPort: number) => void): UdpHandle;
  udpLocalPort(h: UdpHandle): number;
  udpSend(h: UdpHandle, data: Uint8Array, address: string, port: number): number;
  udpClose(h: UdpHandle): void;
  /** One UDP datagram from srcAddress:srcPort (any address: a raw socket), to dstAddress:dstPort. Root. */
  udpSendFrom(srcAddress: string, srcPort: number, dstAddress: string, dstPort: number, data: Uint8Array): number;

  /**
   * Attaches a program to a cgroup v2 directory (flags default
   * BPF_F_ALLOW_MULTI: after the programs already there, which stay). The
   * attachment outlives the process; EINVAL when this program is attached there already.
   */
  cgroupAttach(progFd: number, cgroupPath: string, attachType: number, flags?: number): void;
  /** Detaches exactly this program; false when it was not attached there. */
  cgroupDetach(progFd: number, cgroupPath: string, attachType: number): boolean;
  /** Ids of the programs attached to the cgroup itself, in the order they run (effective: with its ancestors'). */
  cgroupQuery(cgroupPath: string, attachType: number, options?: { effective?: boolean }): number[];
  /** Whether path is the root or a directory of a cgroup v2 filesystem (false when missing too). */
  isCgroup2(path: string): boolean;
  /** Mounts cgroup2 on path (created when missing) unless it is mounted there; mounted: this call mounted it. */
  mountCgroup2(path: string): { path: string; mounted: boolean };

  isBpffs(path?: string): boolean;
  /** mounted: this call mounted it. */
  ensureBpffs(path?: string): { path: string; mounted: boolean };
}

export type NativeFunctionName = { [K in keyof NativeBinding]: NativeBinding[K] extends (...args: never[]) => unknown ? K : never }[keyof NativeBinding];

const BUILD_HINT =
  'run `npm ci` at the repository root, which builds it with node-gyp (it needs `apt-get install build-essential libbpf-dev libelf-dev zlib1g-dev` and the `nodedir=/usr` of the root .npmrc), or `npm rebuild @membrane/datapath`';

/**
 * Loads the addon from `path` without explaining its errors (native() does).
 * Throws MEMBRANE_E_ADDON_MISSING / MEMBRANE_E_ADDON_BROKEN / MEMBRANE_E_NOT_LINUX.
 */
export function loadNative(path: string = ADDON_PATH): NativeBinding {
  if (process.platform !== 'linux') {
    throw new DatapathError(`the datapath needs Linux (eBPF, tc, netns); this is ${process.platform}`, 'MEMBRANE_E_NOT_LINUX');
  }
  if (!existsSync(path)) {
    throw new DatapathError(`the datapath addon is not built: ${path} is missing; ${BUILD_HINT}`, 'MEMBRANE_E_ADDON_MISSING');
  }
  try {
    return createRequire(import.meta.url)(path) as NativeBinding;
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const lib = /lib(bpf|elf|z)\.so[.\d]*/.exec(reason);
    const fix = lib
      ? `the shared library ${lib[0]} is missing: apt-get install ${lib[1] === 'bpf' ? 'libbpf1' : lib[1] === 'elf' ? 'libelf1' : 'zlib1g'}`
      : `rebuild it (built for another Node or libbpf?): ${BUILD_HINT}`;
    throw new DatapathError(`the datapath addon ${path} does not load (${reason}); ${fix}`, 'MEMBRANE_E_ADDON_BROKEN', { cause: e });
  }
}

export interface ExplainContext extends KernelErrorContext {
  /** The effective uid; default process.geteuid(). */
  euid?: number;
}

/**
 * Turns an addon error into the most useful one: not root, a missing kernel
 * feature, or the original kernel error unchanged.
 */
export function explainNativeError(e: unknown, ctx: ExplainContext): unknown {
  if (!isNativeSystemError(e)) return e;
  const euid = ctx.euid ?? process.geteuid?.() ?? 0;
  // Unprivileged, bpf(2) answers EPERM (and some netlink/setsockopt calls
  // EACCES): the fix is the same either way.
  if (euid !== 0 && (e.code === 'EPERM' || e.code === 'EACCES')) {
    return new DatapathError(`${NOT_ROOT_MESSAGE} (${e.message})`, 'MEMBRANE_E_NOT_ROOT', {
      errno: e.errno,
      syscall: e.syscall,
      log: e.log,
      cause: e,
    });
  }
  return explainKernelError(e, ctx) ?? e;
}

/** Wraps every function of a binding with explainNativeError. */
export function withExplainedErrors(binding: NativeBinding): NativeBinding {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(binding)) {
    if (typeof value !== 'function') {
      wrapped[name] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    wrapped[name] = (...args: unknown[]): unknown => {
      try {
        return fn(...args);
      } catch (e) {
        throw explainNativeError(e, { fn: name, args, binding });
      }
    };
  }
  return Object.freeze(wrapped) as unknown as NativeBinding;
}

let loaded: NativeBinding | undefined;

/** The addon, loaded once, with explained errors. */
export function native(): NativeBinding {
  loaded ??= withExplainedErrors(loadNative());
  return loaded;
}
