/**
 * The endpoint programs (bpf_lxc.o) under BPF_PROG_TEST_RUN, for tests: a
 * Datapath whose maps are pinned under a test pin root, and one call that
 * runs a packet through from_container or to_container and returns the
 * verdict, the skb mark after the run and the events that run emitted.
 *
 * The programs find their endpoint by skb->ifindex. A test run without a
 * context puts the skb on lo, and a context must name a device of this netns,
 * so the endpoint under test is always the one seeded at LO_IFINDEX.
 */
import { existsSync, readdirSync } from 'node:fs';
import { ctKeyCodec, type DatapathEvent } from '../codecs.js';
import { Datapath, type DatapathOptions } from '../datapath.js';
import { decodeSkBuff, encodeSkBuff, type SkBuffInput } from '../sk-buff.js';
import { buildPacket, type PacketSpec } from './packets.js';

export const LO_IFINDEX = 1;

export type LxcProgram = 'from_container' | 'to_container' | 'from_outside';

export interface LxcRunOptions {
  /**
   * Run with a struct __sk_buff context (its ifindex defaults to lo) and
   * read the mark back from the context the kernel returns. Without it the
   * kernel builds the skb itself and no mark is returned.
   */
  ctx?: SkBuffInput;
}

export interface LxcRun {
  /** TC_ACT_OK (0) or TC_ACT_SHOT (2). */
  retval: number;
  /** skb->mark after the run; only with a context. */
  mark?: number;
  dataOut: Buffer;
  /** The events this run emitted, in order. */
  events: DatapathEvent[];
}

export class LxcHarness {
  private readonly pending: DatapathEvent[] = [];

  private constructor(readonly dp: Datapath) {}

  /** Loads bpf_lxc.o with its maps pinned under opts.pinRoot; close() unpins them all. */
  static open(opts: DatapathOptions & { pinRoot: string }): LxcHarness {
    const dp = Datapath.open(opts);
    const h = new LxcHarness(dp);
    try {
      // Read synchronously by run(); the timer only exists because onEvents has one.
      dp.onEvents((events) => h.pending.push(...events), 3_600_000);
    } catch (e) {
      h.close();
      throw e;
    }
    return h;
  }

  run(prog: LxcProgram, packet: PacketSpec | Buffer, opts: LxcRunOptions = {}): LxcRun {
    // Whatever earlier runs left in the ring is not this run's.
    this.drain();
    const data = Buffer.isBuffer(packet) ? packet : buildPacket(packet);
    const fd = { from_container: this.dp.progs.fromContainer, to_container: this.dp.progs.toContainer, from_outside: this.dp.progs.fromOutside }[prog];
    const layout = this.dp.nb.skBuffLayout;
    const ctxIn = opts.ctx ? encodeSkBuff({ ifindex: LO_IFINDEX, ...opts.ctx }, layout) : undefined;
    const r = this.dp.nb.progTestRun(fd, data, ctxIn ? { ctxIn } : {});
    const events = this.drain();
    return { retval: r.retval, dataOut: r.dataOut, events, ...(r.ctxOut ? { mark: decodeSkBuff(r.ctxOut, layout).mark } : {}) };
  }

  /** The events waiting in the ring buffer now (for runs made without run()). */
  drain(): DatapathEvent[] {
    this.dp.drainEvents();
    return this.pending.splice(0);
  }

  /** Deletes every conntrack entry, so the next packet opens a new connection; returns how many. */
  clearConntrack(): number {
    const all = this.dp.ctEntries();
    if (all.length === 0) return 0;
    return this.dp.nb.mapDeleteBatch(this.dp.maps.ct, Buffer.concat(all.map((e) => ctKeyCodec.encode(e.key)))).count;
  }

  /** Closes the Datapath and removes its pin root (idempotent). */
  close(): void {
    this.dp.close();
    Datapath.unpinAll(this.dp.pinRoot);
  }
}

/** The pin roots under /sys/fs/bpf whose names start with prefix (a leak check). */
export function leftoverPins(prefix: string): string[] {
  return existsSync('/sys/fs/bpf') ? readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(prefix)) : [];
}
