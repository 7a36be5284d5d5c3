/**
 * Every version of a policy that was put in force (created, configured) or
 * taken out (deleted), with its manifest as applied, newest last: what the
 * console's editor shows as history, diffs against and rolls back to (a
 * rollback is an ordinary apply of an old version, through the same
 * all-or-nothing applier). Kept in the store's agent state, at most `max`
 * versions (the oldest go first).
 */
import type { ApplyResponse, DeleteResponse, ObjectRef, PolicyVersion } from '@membrane/api';
import type { Store } from '../store/index.js';

const KEY = 'policy-history';
export const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

export class PolicyHistory {
  private versions: PolicyVersion[] = [];
  private nextId = 1;

  constructor(
    private readonly store: Store,
    private readonly max = 500,
  ) {}

  async load(): Promise<void> {
    this.versions = (await this.store.getState<PolicyVersion[]>(KEY)) ?? [];
    this.nextId = (this.versions.at(-1)?.id ?? 0) + 1;
  }

  /** Versions, newest first; of one policy when a ref is given. */
  list(ref?: Partial<ObjectRef>): PolicyVersion[] {
    return this.versions.filter((v) => (!ref?.kind || v.kind === ref.kind) && (ref?.namespace === undefined || v.namespace === ref.namespace) && (!ref?.name || v.name === ref.name)).reverse();
  }

  /** After an apply: the policies it created or changed, as stored now. */
  async applied(r: Pick<ApplyResponse, "results">): Promise<void> {
    const add: PolicyVersion[] = [];
    for (const x of r.results) {
      if (!POLICY_KINDS.has(x.kind) || (x.action !== 'created' && x.action !== 'configured')) continue;
      const o = await this.store.get({ kind: x.kind, namespace: x.namespace ?? '', name: x.name });
      if (o) add.push(this.version(x, x.action, o.body, o.resourceVersion));
    }
    await this.save(add);
  }

  /** After a delete: the policies it removed. */
  async deleted(r: DeleteResponse): Promise<void> {
    await this.save(r.results.filter((x) => POLICY_KINDS.has(x.kind) && x.action === 'deleted').map((x) => this.version(x, 'deleted', null, 0)));
  }

  private version(ref: ObjectRef, action: PolicyVersion['action'], body: unknown, resourceVersion: number): PolicyVersion {
    return { id: this.nextId++, time: new Date().toISOString(), kind: ref.kind, namespace: ref.namespace ?? '', name: ref.name, action, body, resourceVersion };
  }

  private async save(add: PolicyVersion[]): Promise<void> {
    if (add.length === 0) return;
    this.versions.push(...add);
    if (this.versions.length > this.max) this.versions.splice(0, this.versions.length - this.max);
    await this.store.setState(KEY, this.versions);
  }
}
