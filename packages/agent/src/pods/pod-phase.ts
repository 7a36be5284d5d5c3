/**
 * A pod's phase and readiness from its containers, as the kubelet computes
 * them (pure). Kubernetes: Pending until a container runs; Running while one
 * runs or restarts; Succeeded when all terminated with 0 and none will
 * restart; Failed when all terminated, one not with 0, and none will
 * restart. A container that cannot be started at all (no command, no such
 * executable) fails the pod at once with reason ContainerCannotRun. Ready
 * means Running with every container running and passing its readiness
 * probe (a container without one is ready once it runs).
 */
import type { Container } from '@membrane/api';
import type { ContainerState, PodState } from './pod-state.js';

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface PodPhase {
  phase: PodState['phase'];
  reason?: string;
  ready: boolean;
}

export function podPhase(
  containers: readonly ContainerState[],
  specs: readonly Pick<Container, 'name' | 'readinessProbe'>[],
  restartPolicy: RestartPolicy,
  probeOk: ReadonlyMap<string, boolean>,
  previous: PodState['phase'] = 'Pending',
): PodPhase {
  let phase = previous;
  let reason: string | undefined;
  if (containers.some((c) => c.reason === 'ContainerCannotRun')) {
    phase = 'Failed';
    reason = 'ContainerCannotRun';
  } else if (containers.length > 0 && containers.every((c) => c.state === 'terminated') && !containers.some((c) => willRestart(restartPolicy, c.exitCode))) {
    phase = containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
    reason = phase === 'Failed' ? 'Error' : 'Completed';
  } else if (containers.some((c) => c.state === 'running')) {
    phase = 'Running';
  } else if (phase !== 'Running') {
    phase = 'Pending';
  }
  const ready =
    phase === 'Running' &&
    containers.every((c) => c.state === 'running' && (!specs.find((s) => s.name === c.name)?.readinessProbe || probeOk.get(c.name) === true));
  return { phase, ...(reason ? { reason } : {}), ready };
}

/** Whether a container that exited with this code is started again. */
export function willRestart(policy: RestartPolicy, exitCode: number | undefined): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/** The kubelet's back-off before restart number `restarts + 1`: 1 s doubling, at most 30 s here (Kubernetes: 10 s to 5 min). */
export function restartDelayMs(restarts: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.min(restarts, 5));
}

/** The exit code a shell reports for a process: its own code, or 128 + the signal that killed it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null, signals: Readonly<Record<string, number>>): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (signals[signal] ?? 0);
  return 255;
}
