/**
 * A change being carried out: what the store will hold, what the kernel
 * will hold, the pods made for it and the pods it retires. Everything in it
 * is prepared before the store commits; `rollback` undoes the preparation
 * (prepared pods removed, prepared policy maps closed) when any step before
 * the kernel commit fails, so a failed change leaves store and kernel as
 * they were.
 */
import type { Deployment, Pod } from '@membrane/api';
import type { RegenerationPlan } from '@membrane/endpoint';
import type { Repository } from '@membrane/policy';
import type { StoredObject } from '../store/index.js';
import type { PodRuntime } from '../pods/pod-runtime.js';
import type { ServiceAddressing } from '../services/service-addressing.js';

export interface StoreWrite {
  kind: string;
  namespace: string;
  name: string;
  /** The new body; undefined deletes the object. */
  body?: unknown;
  /** What the store held before (to put back if the kernel refuses the change). */
  previous?: StoredObject;
}

export interface ChangePlan {
  writes: StoreWrite[];
  /** The policy repository once the change is in force. */
  repo: Repository;
  /** Namespace labels once the change is in force (identities derive from them). */
  namespaceLabels: Map<string, Record<string, string>>;
  /** New pods, plumbed, not in force yet. */
  created: PodRuntime[];
  /** Pods that leave (deleted, replaced by one in `created`, or removed by their Deployment). */
  retired: PodRuntime[];
  regeneration?: RegenerationPlan;
  /** ClusterIPs once the change is in force (set when the change touches a Service). */
  addressing?: ServiceAddressing;
}

export function emptyPlan(repo: Repository, namespaceLabels: Map<string, Record<string, string>>): ChangePlan {
  return { writes: [], repo, namespaceLabels, created: [], retired: [] };
}

export function isDeployment(m: { kind: string }): m is Deployment {
  return m.kind === 'Deployment';
}

export function isPod(m: { kind: string }): m is Pod {
  return m.kind === 'Pod';
}
