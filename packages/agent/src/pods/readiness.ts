/**
 * Readiness probing: every tick, the probes that are due (each container's
 * own periodSeconds, after its initialDelaySeconds) run from the host to the
 * pod; a result that differs from the last one goes through the work queue
 * and updates the pod's readiness.
 */
import type { Container, Probe } from '@membrane/api';
import type { WorkQueue } from '../work-queue.js';
import type { PodRuntime } from './pod-runtime.js';

export type ProbeFn = (probe: Probe, container: Container, podIP: string, netns: string) => Promise<boolean>;

export const PROBE_TICK_MS = 500;

/** Whether a container's probe is due at this tick (pure). */
export function probeDue(probe: Probe, tick: number, secondsSinceStart: number, tickMs = PROBE_TICK_MS): boolean {
  const periodTicks = Math.max(1, Math.round(((probe.periodSeconds ?? 10) * 1000) / tickMs));
  return secondsSinceStart >= (probe.initialDelaySeconds ?? 0) && tick % periodTicks === 0;
}

export class ReadinessProber {
  private tick = 0;
  private running = false;

  constructor(
    private readonly probe: ProbeFn,
    private readonly queue: WorkQueue,
    /** Called on the queue when a container's result changed. */
    private readonly changed: (rt: PodRuntime) => Promise<void>,
  ) {}

  /** Run the due probes of these pods (one round at a time: a slow probe skips ticks, it does not pile them up). */
  async round(pods: readonly PodRuntime[], now = Date.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.tick++;
    try {
      await Promise.all(
        pods.flatMap((rt) =>
          rt.manifest.spec.containers.map(async (c) => {
            const cs = rt.state.containers.find((x) => x.name === c.name);
            if (!c.readinessProbe || cs?.state !== 'running' || rt.stopping) return;
            const since = cs.startedAt ? (now - Date.parse(cs.startedAt)) / 1000 : 0;
            if (!probeDue(c.readinessProbe, this.tick, since)) return;
            const ok = await this.probe(c.readinessProbe, c, rt.state.ip, rt.netns).catch(() => false);
            if (rt.probeOk.get(c.name) === ok) return;
            await this.queue.run(async () => {
              if (rt.stopping) return;
              rt.probeOk.set(c.name, ok);
              await this.changed(rt);
            });
          }),
        ),
      );
    } finally {
      this.running = false;
    }
  }
}
