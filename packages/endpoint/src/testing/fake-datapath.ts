/**
 * An in-memory datapath for unit tests of regeneration and the agent's
 * controllers (no root, no kernel): it keeps endpoints, the ipcache and each
 * endpoint's policy map as plain maps, records every operation in order, and
 * fails an operation on demand (`failOn`), as the kernel would with ENOSPC
 * or E2BIG.
 */
import type { Endpoint, PolicyMapWrite, PreparedPolicy } from '@membrane/datapath';
import type { EndpointDatapath } from '../endpoint-manager.js';

export type FakeOp = 'prepare' | 'install' | 'release' | 'remove-policy' | 'set-endpoint' | 'delete-endpoint' | 'ipcache-upsert' | 'ipcache-delete' | 'attach' | 'detach';

export class FakeDatapath implements EndpointDatapath {
  readonly endpoints = new Map<number, Endpoint>();
  readonly ipcache = new Map<string, { identity: number; epId: number }>();
  /** Endpoint id → the writes of the map in force. */
  readonly policies = new Map<number, readonly PolicyMapWrite[]>();
  readonly attached = new Set<number>();
  readonly log: { op: FakeOp; id: number | string }[] = [];
  /** Open prepared maps (a test checks none leak). */
  readonly open = new Map<number, readonly PolicyMapWrite[]>();
  private nextFd = 100;
  /** Throw on the next matching operation (op and endpoint id / cidr). */
  failOn?: { op: FakeOp; id?: number | string; error?: string };

  private check(op: FakeOp, id: number | string): void {
    this.log.push({ op, id });
    const f = this.failOn;
    if (f && f.op === op && (f.id === undefined || f.id === id)) {
      this.failOn = undefined;
      const e = new Error(f.error ?? `${op} ${id}: E2BIG`) as Error & { code: string };
      e.code = 'E2BIG';
      throw e;
    }
  }

  setEndpoint(ifindex: number, ep: Endpoint): void {
    this.check('set-endpoint', ep.ep_id);
    this.endpoints.set(ifindex, { ...ep });
  }
  getEndpoint(ifindex: number): Endpoint | undefined {
    return this.endpoints.get(ifindex);
  }
  deleteEndpoint(ifindex: number): boolean {
    this.check('delete-endpoint', ifindex);
    return this.endpoints.delete(ifindex);
  }
  preparePolicy(epId: number, writes: readonly PolicyMapWrite[]): PreparedPolicy {
    this.check('prepare', epId);
    const fd = this.nextFd++;
    this.open.set(fd, writes);
    return { epId, fd, entries: writes.length };
  }
  installPolicy(p: PreparedPolicy): void {
    this.check('install', p.epId);
    const w = this.open.get(p.fd);
    if (!w) throw new Error(`install of a closed map (fd ${p.fd})`);
    this.policies.set(p.epId, w);
  }
  releasePolicy(p: PreparedPolicy): void {
    this.log.push({ op: 'release', id: p.epId });
    this.open.delete(p.fd);
  }
  removePolicy(epId: number): boolean {
    this.check('remove-policy', epId);
    return this.policies.delete(epId);
  }
  ipcacheUpsert(cidr: string, identity: number, epId = 0): void {
    this.check('ipcache-upsert', cidr);
    this.ipcache.set(cidr, { identity, epId });
  }
  ipcacheDelete(cidr: string): boolean {
    this.check('ipcache-delete', cidr);
    return this.ipcache.delete(cidr);
  }
  attach(ifindex: number): void {
    this.check('attach', ifindex);
    this.attached.add(ifindex);
  }
  detach(ifindex: number): void {
    this.check('detach', ifindex);
    this.attached.delete(ifindex);
  }
  lostEvents(): bigint {
    return 0n;
  }
}
