/** The runtime state the agent keeps for each pod (persisted, so a restarted agent adopts the pod). */
import type { ProcessRef } from '../workloads/container-process.js';

export interface ContainerState {
  name: string;
  process?: ProcessRef;
  state: 'waiting' | 'running' | 'terminated';
  reason?: string;
  exitCode?: number;
  restarts: number;
  startedAt?: string;
  finishedAt?: string;
}

export interface PodState {
  namespace: string;
  name: string;
  epId: number;
  podId: string;
  ip: string;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  reason?: string;
  message?: string;
  ready: boolean;
  containers: ContainerState[];
  startTime: string;
  /** The Deployment that owns the pod, if any. */
  owner?: string;
  /** For a Deployment's pod: the pod template it was made from (canonical JSON). */
  template?: string;
}

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
