/**
 * The flow ring: the last `capacity` flows (Hubble's default 65,535), each
 * with a sequence number. Insert is O(1) (one slot overwritten); a reader
 * keeps the sequence number it has read up to, so a reader the writer has
 * overtaken learns exactly how many flows it missed (a LostEvent of source
 * HUBBLE_RING_BUFFER) instead of silently skipping them.
 */
export interface Stamped<T> {
  seq: number;
  value: T;
}

export class FlowRing<T> {
  private readonly slots: (T | undefined)[];
  /** The sequence number the next flow gets (= the number of flows ever written). */
  private next = 0;
  private readonly listeners = new Set<() => void>();

  constructor(readonly capacity = 65_535) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow ring capacity ${capacity}: a positive integer`);
    this.slots = new Array<T | undefined>(capacity);
  }

  push(v: T): void {
    this.slots[this.next % this.capacity] = v;
    this.next++;
    for (const l of this.listeners) l();
  }

  /** Flows ever written. */
  get seen(): number {
    return this.next;
  }

  /** Flows held now. */
  get size(): number {
    return Math.min(this.next, this.capacity);
  }

  /** The oldest sequence number still held. */
  get oldest(): number {
    return this.next - this.size;
  }

  /** The flow with this sequence number, if still held. */
  at(seq: number): T | undefined {
    if (seq < this.oldest || seq >= this.next) return undefined;
    return this.slots[seq % this.capacity];
  }

  /**
   * Reads from `from` on, at most `max`: the flows, the sequence number to
   * read from next, and how many the writer overwrote before they were read.
   */
  read(from: number, max = Infinity): { items: Stamped<T>[]; next: number; lost: number } {
    const start = Math.max(from, this.oldest);
    const lost = start - from;
    const end = Math.min(this.next, start + max);
    const items: Stamped<T>[] = [];
    for (let s = start; s < end; s++) items.push({ seq: s, value: this.slots[s % this.capacity]! });
    return { items, next: end, lost };
  }

  /** Told after every push (a follower wakes and reads). */
  onPush(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
