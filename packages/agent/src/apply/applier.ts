/**
 * The object applier: every apply and delete goes validate → plan → commit
 * → enforce, on the agent's work queue.
 *
 *   validate  every document parsed and checked, every reference resolved;
 *             all problems reported at once.
 *   plan      the store writes; the policy repository after the change;
 *             new pods plumbed (namespace, veth, address) and Deployments
 *             reconciled; identities, ipcache and every endpoint's policy
 *             map computed and the changed maps filled (EndpointManager.plan).
 *   commit    one store transaction (objects, pod states, endpoint counter,
 *             identities).
 *   enforce   programs attached to the new pods, the kernel swapped to the
 *             plan (EndpointManager.commit). If the kernel refuses, the
 *             store is put back as it was: nothing of the change is in force.
 * A failure before enforce undoes the preparation: store and kernel are as
 * before and the error names what failed. After enforce, what is left is
 * runtime: new pods' containers start (a container that cannot start marks
 * its pod Failed, and the next apply of it tries again), retired pods stop
 * and are taken down, and what could not be removed is reported.
 */
import {
  MembraneError,
  combineErrors,
  type Service,
  type ApplyAction,
  type ApplyRequest,
  type ApplyResponse,
  type DeleteRequest,
  type DeleteResponse,
  type Deployment,
  type Namespace,
  type ObjectRef,
  type Pod,
} from '@membrane/api';
import type { EndpointManager, RegenerationPlan, VirtualEndpoint } from '@membrane/endpoint';
import { canonicalJSON, type Repository } from '@membrane/policy';
import { deploymentOwner, ownerOf, reconcileDeployment } from '../controllers/deployment-controller.js';
import { endpointSpec } from '../pods/endpoint-specs.js';
import type { ContainerSupervisor } from '../pods/container-supervisor.js';
import type { PodManager } from '../pods/pod-manager.js';
import type { PodRuntime } from '../pods/pod-runtime.js';
import type { Store, StoredObject } from '../store/index.js';
import type { ServiceManager } from '../services/service-manager.js';
import type { WorkQueue } from '../work-queue.js';
import { emptyPlan, isDeployment, isPod, type ChangePlan } from './change-plan.js';
import { CLUSTER_SCOPED, describeObject, objectKeyOf, parseDocuments, type ParsedDocument } from './validate.js';

export const SYSTEM_NAMESPACES = ['default', 'kube-system'];
const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);
const NAMESPACED_KINDS = ['Pod', 'Deployment', 'Service', 'ServiceAccount', 'CiliumNetworkPolicy', 'NetworkPolicy'];

export interface ApplierDeps {
  store: Store;
  queue: WorkQueue;
  policies: { repo: Repository };
  pods: PodManager;
  supervisor: ContainerSupervisor;
  endpoints: EndpointManager;
  services: ServiceManager;
  /** The host's own addresses (identity host). */
  hostAddresses: () => readonly string[];
  /** Endpoints without a pod network of their own (the DNS server): an identity and an address, no policy map. */
  virtualEndpoints: () => readonly VirtualEndpoint[];
  /** toFQDNs: address → names it resolved to through the DNS proxy. */
  dnsNames?: () => ReadonlyMap<string, readonly string[]>;
  /** Problems the agent reports in `status` (a regeneration that failed after a change, say). */
  problem: (what: string) => void;
}

/** A pod whose containers could not be started at all: the next apply of it starts it afresh. */
export function cannotRun(rt: PodRuntime | undefined): boolean {
  return rt?.state.containers.some((c) => c.reason === 'ContainerCannotRun') ?? false;
}

export class Applier {
  constructor(private readonly d: ApplierDeps) {}

  apply(req: ApplyRequest): Promise<ApplyResponse> {
    return this.d.queue.run(() => this.applyNow(req));
  }

  delete(req: DeleteRequest): Promise<DeleteResponse> {
    return this.d.queue.run(() => this.deleteNow(req));
  }

  /** Bring the kernel to the current world (start-up, after pods left). Call on the queue. */
  async regenerate(): Promise<void> {
    const plan = this.d.endpoints.plan(this.regenerationInput(this.d.pods.endpoints(), this.d.policies.repo, await this.namespaceLabels()));
    this.d.endpoints.commit(plan);
    await this.d.store.setState('identities', this.d.endpoints.identities.snapshot());
  }

  /** Give stored Services that have none a ClusterIP (the kube-dns Service on first start). Call on the queue. */
  async assignClusterIPs(): Promise<void> {
    const next = this.d.services.addressing.clone();
    let changed = false;
    for (const o of await this.d.store.list<Service>('Service')) {
      const key = `${o.namespace}/${o.name}`;
      if (next.get(key)) continue;
      try {
        next.assign(key, o.body, `stored Service ${key}`);
        changed = true;
      } catch (e) {
        this.d.problem(`stored Service ${key} has no ClusterIP: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (!changed) return;
    await this.d.store.setState('services', next.snapshot());
    this.d.services.addressing = next;
  }

  // ---- apply ---------------------------------------------------------------------------

  private async applyNow(req: ApplyRequest): Promise<ApplyResponse> {
    const t0 = process.hrtime.bigint();
    const docs = parseDocuments(req.documents, req.defaultNamespace);
    await this.checkReferences(docs);

    const namespaces = await this.namespaceLabels();
    const plan = emptyPlan(this.d.policies.repo.clone(), namespaces);
    const results: ApplyResponse['results'] = [];
    try {
      const changedPolicies = [];
      const deployments: { d: Deployment; retry: boolean }[] = [];
      for (const doc of sortForApply(docs)) {
        const previous = await this.d.store.get({ kind: doc.kind, namespace: doc.namespace, name: doc.name });
        const same = previous !== undefined && canonicalJSON(previous.body) === canonicalJSON(doc.manifest);
        let action: ApplyAction = previous === undefined ? 'created' : same ? 'unchanged' : 'configured';
        if (!same) plan.writes.push({ kind: doc.kind, namespace: doc.namespace, name: doc.name, body: doc.manifest, ...(previous ? { previous } : {}) });
        if (doc.policy && !same) changedPolicies.push(doc.policy);
        if (doc.kind === 'Namespace' && !same) namespaces.set(doc.name, (doc.manifest as Namespace).metadata.labels ?? {});
        if (doc.kind === 'Service' && (!same || !this.d.services.addressing.get(`${doc.namespace}/${doc.name}`))) {
          plan.addressing ??= this.d.services.addressing.clone();
          plan.addressing.assign(`${doc.namespace}/${doc.name}`, doc.manifest as Service, `${doc.where} (${describeObject(doc.kind, doc.namespace, doc.name)})`);
        }
        if (isPod(doc.manifest)) {
          const rt = this.d.pods.get(doc.namespace, doc.name);
          if (!same || !rt || cannotRun(rt)) {
            if (same) action = 'restarted';
            plan.created.push(await this.d.pods.prepare(doc.manifest));
            if (rt) plan.retired.push(rt);
          }
        }
        if (isDeployment(doc.manifest)) {
          const retry = this.d.pods.ownedBy(deploymentOwner(doc.namespace, doc.name)).some(cannotRun);
          if (!same || retry) deployments.push({ d: doc.manifest, retry: same });
          if (same && retry) action = 'restarted';
        }
        results.push({ kind: doc.kind, ...(doc.namespace ? { namespace: doc.namespace } : {}), name: doc.name, action });
      }
      if (changedPolicies.length) plan.repo.apply(changedPolicies);
      for (const { d } of deployments) await this.planDeployment(plan, d);
      await this.planRegeneration(plan);
    } catch (e) {
      await this.rollback(plan);
      throw e;
    }
    await this.commitAndEnforce(plan);
    const enforcedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await this.afterEnforce(plan);
    return { results, enforcedMs };
  }

  /** Namespaces must exist (or come in the same apply); a Deployment's pods are its own. */
  private async checkReferences(docs: readonly ParsedDocument[]): Promise<void> {
    const errors: MembraneError[] = [];
    const batchNamespaces = new Set(docs.filter((p) => p.kind === 'Namespace').map((p) => p.name));
    for (const p of docs) {
      if (CLUSTER_SCOPED.has(p.kind)) continue;
      if (!batchNamespaces.has(p.namespace) && !(await this.d.store.get({ kind: 'Namespace', namespace: '', name: p.namespace }))) {
        errors.push(new MembraneError('MEMBRANE_E_NOT_FOUND', `${p.where} (${describeObject(p.kind, p.namespace, p.name)}): namespace "${p.namespace}" not found (apply a Namespace first)`));
      }
      if (p.kind === 'Pod') {
        const owner = this.d.pods.get(p.namespace, p.name)?.state.owner;
        if (owner) errors.push(new MembraneError('MEMBRANE_E_CONFLICT', `${p.where}: pod ${p.namespace}/${p.name} belongs to ${owner}`));
      }
    }
    if (errors.length) throw combineErrors(errors);
  }

  /** A Deployment's pods: new ones plumbed and stored with it, surplus and outdated ones retired. */
  private async planDeployment(plan: ChangePlan, d: Deployment): Promise<void> {
    const ns = d.metadata.namespace ?? 'default';
    const owner = deploymentOwner(ns, d.metadata.name);
    const owned = this.d.pods.ownedBy(owner).filter((rt) => !plan.retired.includes(rt));
    const r = reconcileDeployment(
      d,
      owned.map((rt) => ({ name: rt.state.name, ...(rt.state.template !== undefined ? { template: rt.state.template } : {}), cannotRun: cannotRun(rt) })),
      (name) => this.d.pods.get(ns, name) !== undefined,
    );
    for (const name of r.remove) {
      const rt = owned.find((x) => x.state.name === name)!;
      plan.retired.push(rt);
      const previous = await this.d.store.get({ kind: 'Pod', namespace: ns, name });
      plan.writes.push({ kind: 'Pod', namespace: ns, name, ...(previous ? { previous } : {}) });
    }
    for (const pod of r.create) {
      plan.created.push(await this.d.pods.prepare(pod, { owner, template: r.template }));
      plan.writes.push({ kind: 'Pod', namespace: ns, name: pod.metadata.name, body: pod });
    }
  }

  /** Identities, ipcache and policy maps for the world after the change, retiring pods still in it. */
  private async planRegeneration(plan: ChangePlan): Promise<void> {
    const pods = [...this.d.pods.endpoints(), ...plan.created];
    plan.regeneration = this.d.endpoints.plan(this.regenerationInput(pods, plan.repo, plan.namespaceLabels));
  }

  private regenerationInput(pods: readonly PodRuntime[], repo: Repository, namespaces: ReadonlyMap<string, Record<string, string>>) {
    return {
      endpoints: pods.map((rt) => endpointSpec(rt, namespaces)),
      rules: repo.rules(),
      hostAddresses: [...this.d.hostAddresses(), ...this.routerAddresses()],
      virtualEndpoints: this.d.virtualEndpoints(),
      ...(this.d.dnsNames ? { dnsNames: this.d.dnsNames() } : {}),
    };
  }

  private routerAddresses(): string[] {
    return this.d.pods.routerIP ? [this.d.pods.routerIP] : [];
  }

  private async rollback(plan: ChangePlan): Promise<void> {
    if (plan.regeneration) this.d.endpoints.abort(plan.regeneration);
    for (const rt of [...plan.created].reverse()) {
      await this.d.pods.discard(rt).catch((e: unknown) => this.d.problem(`undo pod ${rt.state.namespace}/${rt.state.name}: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  /** One store transaction, then the kernel; if the kernel refuses, the store is put back. */
  private async commitAndEnforce(plan: ChangePlan): Promise<void> {
    const regen = plan.regeneration!;
    try {
      await this.d.store.transaction(async (tx) => {
        for (const w of plan.writes) {
          if (w.body === undefined) {
            await tx.delete(w);
            await tx.deleteState(`pod/${w.namespace}/${w.name}`);
          } else await tx.put({ kind: w.kind, namespace: w.namespace, name: w.name, body: w.body });
        }
        for (const rt of plan.created) await tx.setState(`pod/${rt.state.namespace}/${rt.state.name}`, rt.state);
        await tx.setState('nextEndpointId', this.d.pods.nextEpId);
        if (plan.addressing) await tx.setState('services', plan.addressing.snapshot());
        if (regen.identities) await tx.setState('identities', regen.identities.snapshot());
      });
    } catch (e) {
      await this.rollback(plan);
      throw new MembraneError(e instanceof MembraneError ? e.code : 'MEMBRANE_E_STORE_IO', `the change was not stored (nothing changed): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const activated: PodRuntime[] = [];
    try {
      for (const rt of plan.created) {
        this.d.pods.attach(rt);
        activated.push(rt);
      }
      this.d.endpoints.commit(regen);
    } catch (e) {
      for (const rt of activated) this.d.pods.detachPrograms(rt);
      await this.rollback(plan);
      await this.restoreStore(plan);
      throw new MembraneError(e instanceof MembraneError ? e.code : 'MEMBRANE_E_DATAPATH', `the kernel refused the change (nothing changed): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    this.d.policies.repo = plan.repo;
    if (plan.addressing) this.d.services.addressing = plan.addressing;
    for (const rt of plan.created) this.d.pods.activate(rt);
    for (const rt of plan.retired) this.d.pods.retire(rt);
  }

  /** Put the objects of a failed change back as they were. */
  private async restoreStore(plan: ChangePlan): Promise<void> {
    try {
      await this.d.store.transaction(async (tx) => {
        for (const w of plan.writes) {
          if (w.previous) await tx.put({ kind: w.kind, namespace: w.namespace, name: w.name, body: w.previous.body });
          else await tx.delete(w);
        }
        for (const rt of plan.created) await tx.deleteState(`pod/${rt.state.namespace}/${rt.state.name}`);
        for (const rt of plan.retired) await tx.setState(`pod/${rt.state.namespace}/${rt.state.name}`, rt.state);
        await tx.setState('identities', this.d.endpoints.identities.snapshot());
        await tx.setState('services', this.d.services.addressing.snapshot());
      });
    } catch (e) {
      this.d.problem(`restoring the store after a refused change failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Runtime: start the new pods, bring the Services to them, take the retired ones down, regenerate without them. */
  private async afterEnforce(plan: ChangePlan): Promise<string[]> {
    for (const rt of plan.created) await this.d.supervisor.startAll(rt);
    const problems: string[] = [...(await this.d.services.sync())];
    for (const rt of plan.retired) problems.push(...(await this.d.pods.destroy(rt)));
    if (plan.retired.length) {
      try {
        await this.regenerate();
      } catch (e) {
        problems.push(`regeneration after removing pods: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const p of problems) this.d.problem(p);
    return problems;
  }

  // ---- delete --------------------------------------------------------------------------

  private async deleteNow(req: DeleteRequest): Promise<DeleteResponse> {
    const refs: ObjectRef[] = [...(req.refs ?? [])];
    for (const doc of req.documents?.length ? parseDocuments(req.documents, req.defaultNamespace) : []) {
      refs.push({ kind: doc.kind, ...(doc.namespace ? { namespace: doc.namespace } : {}), name: doc.name });
    }
    const missing: ObjectRef[] = [];
    const found: StoredObject[] = [];
    for (const r of refs) {
      const k = objectKeyOf(r.kind, r.namespace, r.name);
      const o = await this.d.store.get(k);
      if (o) found.push(o);
      else missing.push({ kind: k.kind, ...(k.namespace ? { namespace: k.namespace } : {}), name: k.name });
    }
    if (missing.length && !req.ignoreNotFound) {
      throw new MembraneError('MEMBRANE_E_NOT_FOUND', `not found: ${missing.map((m) => describeObject(m.kind, m.namespace ?? '', m.name)).join(', ')}`);
    }
    for (const o of found) {
      if (o.kind === 'Namespace' && SYSTEM_NAMESPACES.includes(o.name)) throw new MembraneError('MEMBRANE_E_CONFLICT', `namespace ${o.name} cannot be deleted`);
    }
    // Namespaces take their objects with them; Deployments their pods.
    const gone = new Map(found.map((o) => [`${o.kind}/${o.namespace}/${o.name}`, o]));
    for (const o of found.filter((x) => x.kind === 'Namespace')) {
      for (const kind of NAMESPACED_KINDS) for (const x of await this.d.store.list(kind, { namespace: o.name })) gone.set(`${x.kind}/${x.namespace}/${x.name}`, x);
    }
    for (const o of [...gone.values()].filter((x) => x.kind === 'Deployment')) {
      for (const rt of this.d.pods.ownedBy(deploymentOwner(o.namespace, o.name))) {
        const x = await this.d.store.get({ kind: 'Pod', namespace: rt.state.namespace, name: rt.state.name });
        if (x) gone.set(`Pod/${x.namespace}/${x.name}`, x);
      }
    }

    const namespaces = await this.namespaceLabels();
    const plan = emptyPlan(this.d.policies.repo.clone(), namespaces);
    const results: DeleteResponse['results'] = [];
    try {
      const policyRefs = [];
      for (const o of gone.values()) {
        plan.writes.push({ kind: o.kind, namespace: o.namespace, name: o.name, previous: o });
        if (POLICY_KINDS.has(o.kind)) policyRefs.push({ kind: o.kind, ...(o.namespace ? { namespace: o.namespace } : {}), name: o.name });
        if (o.kind === 'Service') {
          if (o.namespace === 'kube-system' && o.name === 'kube-dns') throw new MembraneError('MEMBRANE_E_CONFLICT', 'Service kube-system/kube-dns cannot be deleted (it is the cluster DNS)');
          plan.addressing ??= this.d.services.addressing.clone();
          plan.addressing.release(`${o.namespace}/${o.name}`);
        }
        if (o.kind === 'Pod') {
          const rt = this.d.pods.get(o.namespace, o.name);
          if (rt) plan.retired.push(rt);
        }
        results.push({ kind: o.kind, ...(o.namespace ? { namespace: o.namespace } : {}), name: o.name, action: 'deleted' });
      }
      plan.repo.delete(policyRefs);
      // A Deployment that stays replaces the pods of its own that were deleted.
      const owners = new Set(plan.retired.map((rt) => rt.state.owner).filter((x): x is string => !!x));
      for (const o of await this.d.store.list<Deployment>('Deployment')) {
        if (owners.has(deploymentOwner(o.namespace, o.name)) && !gone.has(`Deployment/${o.namespace}/${o.name}`)) await this.planDeployment(plan, o.body);
      }
      await this.planRegeneration(plan);
    } catch (e) {
      await this.rollback(plan);
      throw e;
    }
    await this.commitAndEnforce(plan);
    for (const m of missing) results.push({ ...m, action: 'not found' });
    const problems = await this.afterEnforce(plan);
    return { results, ...(problems.length ? { problems } : {}) };
  }

  // ---- helpers -------------------------------------------------------------------------

  private async namespaceLabels(): Promise<Map<string, Record<string, string>>> {
    return new Map((await this.d.store.list<Namespace>('Namespace')).map((n) => [n.name, n.body.metadata.labels ?? {}]));
  }
}

/** Namespaces first, pods last (APPLY_ORDER), the documents' own order otherwise. */
function sortForApply(docs: readonly ParsedDocument[]): ParsedDocument[] {
  const order = ['Namespace', 'ServiceAccount', 'CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy', 'NetworkPolicy', 'Service', 'Deployment', 'Pod'];
  return [...docs].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
}

export type { Pod, RegenerationPlan };
export { ownerOf };
