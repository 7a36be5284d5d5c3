/**
 * Events the agent records, as kubelet and controllers record them, so
 * `kubectl describe` and `kubectl get events` show what happened to an
 * object: a pod scheduled, its containers created and started, a container
 * that could not run or keeps failing; a policy applied or refused; an
 * endpoint's policy regenerated. Events live in memory (the apiserver keeps
 * them an hour); the same reason and message for the same object again is
 * one event with a higher count, as the event correlator folds them.
 */
import { randomBytes } from 'node:crypto';
import type { PodState } from '../pods/pod-state.js';
import type { KubeCache, KubeObject } from './kube-cache.js';

export interface InvolvedObject {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  uid?: string;
}

export interface EventNote {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

const MAX_EVENTS = 2000;

export class EventRecorder {
  private readonly events = new Map<string, KubeObject>();

  constructor(
    private readonly cache: KubeCache,
    private readonly host: string,
  ) {}

  record(o: InvolvedObject, note: EventNote, component = 'membrane-agent'): void {
    const fold = `${o.kind}/${o.namespace}/${o.name}/${o.uid ?? ''}/${note.type}/${note.reason}/${note.message}`;
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const was = this.events.get(fold);
    const uid = o.uid ?? this.cache.get(o.kind, o.namespace || undefined, o.name)?.metadata.uid;
    const name = (was?.metadata.name as string | undefined) ?? `${o.name}.${randomBytes(8).toString('hex')}`;
    const event: KubeObject = {
      metadata: { name, namespace: o.namespace || 'default', creationTimestamp: (was?.metadata.creationTimestamp as string | undefined) ?? at },
      involvedObject: { kind: o.kind, namespace: o.namespace || undefined, name: o.name, uid, apiVersion: o.apiVersion },
      reason: note.reason,
      message: note.message,
      source: { component, host: this.host },
      firstTimestamp: (was?.['firstTimestamp'] as string | undefined) ?? at,
      lastTimestamp: at,
      count: ((was?.['count'] as number | undefined) ?? 0) + 1,
      type: note.type,
      eventTime: null,
      reportingComponent: component,
      reportingInstance: this.host,
    };
    this.events.delete(fold);
    this.events.set(fold, event);
    void this.cache.put('Event', event.metadata.namespace!, name, event);
    if (this.events.size > MAX_EVENTS) {
      const [oldest, gone] = this.events.entries().next().value as [string, KubeObject];
      this.events.delete(oldest);
      void this.cache.put('Event', gone.metadata.namespace!, gone.metadata.name, undefined);
    }
  }
}

type PodSnapshot = Pick<PodState, 'phase' | 'containers'> & { namespace: string; name: string };

/** What a pod's change says, kubelet's way: compare the state before (undefined: new pod) with now. */
export function podEvents(before: PodSnapshot | undefined, now: PodSnapshot, node: string): EventNote[] {
  const out: EventNote[] = [];
  if (!before) out.push({ type: 'Normal', reason: 'Scheduled', message: `Successfully assigned ${now.namespace}/${now.name} to ${node}` });
  for (const c of now.containers) {
    const was = before?.containers.find((x) => x.name === c.name);
    const started = c.state === 'running' && (was?.state !== 'running' || was.startedAt !== c.startedAt);
    if (started) {
      out.push({ type: 'Normal', reason: 'Created', message: `Created container ${c.name}` });
      out.push({ type: 'Normal', reason: 'Started', message: `Started container ${c.name}` });
    }
    if (c.reason === 'ContainerCannotRun' && was?.reason !== 'ContainerCannotRun') out.push({ type: 'Warning', reason: 'Failed', message: `Error: container ${c.name} cannot run` });
    if (c.reason === 'CrashLoopBackOff' && (was?.reason !== 'CrashLoopBackOff' || was.restarts !== c.restarts)) {
      out.push({ type: 'Warning', reason: 'BackOff', message: `Back-off restarting failed container ${c.name} in pod ${now.name}_${now.namespace}` });
    }
  }
  return out;
}

/** A copy of what podEvents compares, so later changes to the live state do not change it. */
export function podSnapshot(s: PodState): PodSnapshot {
  return { namespace: s.namespace, name: s.name, phase: s.phase, containers: s.containers.map((c) => ({ ...c })) };
}
