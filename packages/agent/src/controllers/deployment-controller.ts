/**
 * The Deployment controller: a Deployment keeps `replicas` pods made from
 * its template. Pods of an older template are replaced, extra pods go,
 * missing ones are made (named `<deployment>-<5 random characters>`, as the
 * ReplicaSet controller names them). It returns a plan; the applier carries
 * it out with the rest of the change, all-or-nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Deployment, Pod } from '@membrane/api';
import { canonicalJSON } from '@membrane/policy';

export interface OwnedPod {
  name: string;
  /** The template it was made from (canonicalJSON); undefined for pods adopted without one. */
  template?: string;
  /** Its containers could not start (it is retried: replaced by a fresh pod). */
  cannotRun: boolean;
}

export interface DeploymentPlan {
  owner: string;
  template: string;
  create: Pod[];
  remove: string[];
}

export function deploymentOwner(namespace: string, name: string): string {
  return `Deployment ${namespace}/${name}`;
}

/** `Deployment ns/name` for a pod a Deployment made (its ownerReferences), else undefined. */
export function ownerOf(pod: Pod): string | undefined {
  const refs = (pod.metadata as { ownerReferences?: { kind: string; name: string }[] }).ownerReferences;
  const d = refs?.find((r) => r.kind === 'Deployment');
  return d ? deploymentOwner(pod.metadata.namespace ?? 'default', d.name) : undefined;
}

function suffix(): string {
  return randomBytes(4).readUInt32BE(0).toString(36).padStart(5, '0').slice(-5);
}

/** What it takes to bring a Deployment's pods to its spec (pure but for the random names). */
export function reconcileDeployment(d: Deployment, owned: readonly OwnedPod[], taken: (name: string) => boolean = () => false, makeSuffix: () => string = suffix): DeploymentPlan {
  const ns = d.metadata.namespace ?? 'default';
  const owner = deploymentOwner(ns, d.metadata.name);
  // Key order is not meaning: the store gives bodies back with sorted keys.
  const template = canonicalJSON(d.spec.template);
  const remove: string[] = [];
  const keep: OwnedPod[] = [];
  for (const p of owned) {
    if ((p.template !== undefined && p.template !== template) || p.cannotRun) remove.push(p.name);
    else keep.push(p);
  }
  while (keep.length > d.spec.replicas) remove.push(keep.pop()!.name);
  const create: Pod[] = [];
  const names = new Set(owned.map((p) => p.name));
  while (keep.length + create.length < d.spec.replicas) {
    let name: string;
    do name = `${d.metadata.name}-${makeSuffix()}`;
    while (names.has(name) || taken(name));
    names.add(name);
    create.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels: { ...d.spec.template.metadata.labels }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name }] } as Pod['metadata'],
      spec: { ...d.spec.template.spec, restartPolicy: 'Always' },
    });
  }
  return { owner, template, create, remove };
}
