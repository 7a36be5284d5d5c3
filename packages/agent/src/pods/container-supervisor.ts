/**
 * Container supervision: starts a pod's containers as host processes in its
 * network namespace, notices when they exit (their exit status when this
 * agent started them; by polling /proc for processes adopted from an
 * earlier agent), restarts them as the pod's restartPolicy says with a
 * growing back-off, and recomputes the pod's phase after every change.
 * Every reaction runs on the agent's work queue.
 */
import { constants } from 'node:os';
import { join } from 'node:path';
import type { WorkQueue } from '../work-queue.js';
import type { ProcessRunner } from '../ports.js';
import { exitCodeOf, podPhase, restartDelayMs, willRestart, type RestartPolicy } from './pod-phase.js';
import type { PodRuntime } from './pod-runtime.js';
import type { ContainerState } from './pod-state.js';

export interface SupervisorDeps {
  runner: ProcessRunner;
  queue: WorkQueue;
  /** Where container logs go: `<dir>/<namespace>_<pod>_<container>.log`. */
  logDir: string;
  /** Called after every change of a pod's containers or phase (persist it, update readiness users). */
  changed(rt: PodRuntime): Promise<void>;
}

export function containerLogPath(logDir: string, namespace: string, pod: string, container: string): string {
  return join(logDir, `${namespace}_${pod}_${container}.log`);
}

export class ContainerSupervisor {
  constructor(private readonly deps: SupervisorDeps) {}

  /** Start every container of a pod (after its policy is in force). */
  async startAll(rt: PodRuntime): Promise<void> {
    for (const c of rt.manifest.spec.containers) this.start(rt, c.name);
    await this.settle(rt);
  }

  private start(rt: PodRuntime, name: string): void {
    if (rt.stopping) return;
    const spec = rt.manifest.spec.containers.find((c) => c.name === name)!;
    const cs = rt.state.containers.find((c) => c.name === name)!;
    const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: rt.state.name,
      POD_NAME: rt.state.name,
      POD_NAMESPACE: rt.state.namespace,
      POD_IP: rt.state.ip,
    };
    for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
    if (argv.length === 0) {
      this.cannotRun(rt, cs, "no command: Membrane runs a container's command and args as host processes (the image is informational)", 128);
      return;
    }
    const exe = this.deps.runner.resolveExecutable(argv[0]!, env['PATH']!, spec.workingDir ?? '/');
    if ('error' in exe) {
      this.cannotRun(rt, cs, exe.error, exe.code);
      return;
    }
    let started;
    try {
      started = this.deps.runner.start({ netns: rt.netns, argv, env, ...(spec.workingDir ? { cwd: spec.workingDir } : {}), logFile: containerLogPath(this.deps.logDir, rt.state.namespace, rt.state.name, name) });
    } catch (e) {
      this.cannotRun(rt, cs, `start failed: ${e instanceof Error ? e.message : String(e)}`, 128);
      return;
    }
    cs.process = started.ref;
    cs.state = 'running';
    delete cs.reason;
    delete cs.exitCode;
    cs.startedAt = new Date().toISOString();
    const ref = started.ref;
    started.exit.then((st) => {
      this.deps.queue.post(`container ${rt.state.namespace}/${rt.state.name}/${name} exit`, () => {
        // A later start of the same container has its own exit watch.
        if (cs.process !== ref) return;
        return this.exited(rt, cs, exitCodeOf(st.code, st.signal, constants.signals));
      });
    });
  }

  private cannotRun(rt: PodRuntime, cs: ContainerState, message: string, code: number): void {
    cs.state = 'terminated';
    cs.reason = 'ContainerCannotRun';
    cs.exitCode = code;
    cs.finishedAt = new Date().toISOString();
    rt.state.message = `container ${cs.name}: ${message}`;
  }

  /** A container ended (code undefined: an adopted process, whose status nobody can read). */
  async exited(rt: PodRuntime, cs: ContainerState, code: number | undefined): Promise<void> {
    if (cs.state !== 'running' || rt.stopping) return;
    cs.state = 'terminated';
    cs.exitCode = code ?? 255;
    cs.reason = code === 0 ? 'Completed' : 'Error';
    cs.finishedAt = new Date().toISOString();
    this.scheduleRestart(rt, cs);
    await this.settle(rt);
  }

  private scheduleRestart(rt: PodRuntime, cs: ContainerState): void {
    const policy = (rt.manifest.spec.restartPolicy ?? 'Always') as RestartPolicy;
    if (!willRestart(policy, cs.exitCode)) return;
    cs.reason = 'CrashLoopBackOff';
    const t = setTimeout(() => {
      rt.timers.delete(t);
      this.deps.queue.post(`restart ${rt.state.namespace}/${rt.state.name}/${cs.name}`, async () => {
        if (rt.stopping) return;
        cs.restarts++;
        this.start(rt, cs.name);
        await this.settle(rt);
      });
    }, restartDelayMs(cs.restarts));
    t.unref();
    rt.timers.add(t);
  }

  /** Recompute the phase and tell the owner. */
  async settle(rt: PodRuntime): Promise<void> {
    const p = podPhase(rt.state.containers, rt.manifest.spec.containers, (rt.manifest.spec.restartPolicy ?? 'Always') as RestartPolicy, rt.probeOk, rt.state.phase);
    rt.state.phase = p.phase;
    if (p.reason) rt.state.reason = p.reason;
    else delete rt.state.reason;
    rt.state.ready = p.ready;
    await this.deps.changed(rt);
  }

  /** Adopted processes are not our children: find the ones that are gone (every poll). */
  async poll(pods: Iterable<PodRuntime>): Promise<void> {
    for (const rt of pods) {
      for (const c of rt.state.containers) {
        if (c.state === 'running' && c.process && !this.deps.runner.isAlive(c.process)) await this.exited(rt, c, undefined);
      }
    }
  }

  /** Stop a pod's containers: SIGTERM, SIGKILL after its grace period. */
  async stopAll(rt: PodRuntime): Promise<void> {
    rt.stopping = true;
    for (const t of rt.timers) clearTimeout(t);
    rt.timers.clear();
    const grace = rt.manifest.spec.terminationGracePeriodSeconds ?? 30;
    await Promise.all(rt.state.containers.filter((c) => c.process).map((c) => this.deps.runner.stop(c.process!, grace)));
  }

  /** Forget timers without touching processes (the agent stops; pods carry on). */
  detach(rt: PodRuntime): void {
    for (const t of rt.timers) clearTimeout(t);
    rt.timers.clear();
  }
}
