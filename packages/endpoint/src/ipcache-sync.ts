/**
 * Keeps the kernel's ipcache equal to the IPCache model: entries the model
 * has are written, entries the kernel has that the model lost are deleted.
 * New and changed entries go in before stale ones leave, so an address is
 * never unknown (world) while it moves from one identity to another.
 */
import type { IPCacheEntry } from '@membrane/identity';
import { formatPrefix } from '@membrane/policy';

export interface IPCacheDatapath {
  ipcacheUpsert(cidr: string, identity: number, epId?: number): void;
  ipcacheDelete(cidr: string): boolean;
}

export class IPCacheSync {
  private readonly installed = new Map<string, { identity: number; epId: number }>();

  constructor(private readonly dp: IPCacheDatapath) {}

  /** Write one entry now unless the kernel holds it already (the additions of a sync, ahead of it). */
  upsert(e: IPCacheEntry): boolean {
    if (e.prefix.family !== 4) return false;
    const cidr = formatPrefix(e.prefix);
    const v = { identity: e.identity, epId: e.endpointId ?? 0 };
    const old = this.installed.get(cidr);
    if (old && old.identity === v.identity && old.epId === v.epId) return false;
    this.dp.ipcacheUpsert(cidr, v.identity, v.epId);
    this.installed.set(cidr, v);
    return true;
  }

  /** Delete one entry (an endpoint that left). */
  delete(cidr: string): void {
    this.dp.ipcacheDelete(cidr);
    this.installed.delete(cidr);
  }

  /** Bring the kernel to `entries` (IPv4 only: the datapath has no IPv6 yet). Returns the number of writes and deletes. */
  sync(entries: readonly IPCacheEntry[]): { written: number; deleted: number } {
    const want = new Map<string, { identity: number; epId: number }>();
    for (const e of entries) {
      if (e.prefix.family !== 4) continue;
      want.set(formatPrefix(e.prefix), { identity: e.identity, epId: e.endpointId ?? 0 });
    }
    let written = 0;
    let deleted = 0;
    for (const e of entries) if (this.upsert(e)) written++;
    for (const cidr of [...this.installed.keys()]) {
      if (want.has(cidr)) continue;
      this.dp.ipcacheDelete(cidr);
      this.installed.delete(cidr);
      deleted++;
    }
    return { written, deleted };
  }
}
