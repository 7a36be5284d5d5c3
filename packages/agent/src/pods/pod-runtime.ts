/** What the agent holds for a pod while it exists: its persisted state, its manifest and its plumbing. */
import type { Pod } from '@membrane/api';
import type { PodState } from './pod-state.js';

export interface PodRuntime {
  state: PodState;
  manifest: Pod;
  netns: string;
  hostIf: string;
  ifindex: number;
  /** Per container: the last readiness probe result (a container without a probe is ready when running). */
  probeOk: Map<string, boolean>;
  /** Set once the pod is being taken down: nothing restarts it, nothing saves its state. */
  stopping: boolean;
  /** Restart back-off timers. */
  timers: Set<NodeJS.Timeout>;
}

export function newRuntime(state: PodState, manifest: Pod, plumbing: { netns: string; hostIf: string; ifindex: number }): PodRuntime {
  return { state, manifest, ...plumbing, probeOk: new Map(), stopping: false, timers: new Set() };
}

export function runtimeKey(rt: PodRuntime): string {
  return `${rt.state.namespace}/${rt.state.name}`;
}
