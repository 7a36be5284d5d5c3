/**
 * What the Kubernetes API serves, as the apiserver's watch cache holds it:
 * every object of the served kinds as the API shows it (apiVersion, kind,
 * a uid, status from what the agent runs), one resourceVersion counter for
 * all of them, and a log of recent changes that watches start from.
 *
 * The counter is the cache's own, not the store's: a pod's status changes
 * (Ready, restarts) without a store write, and a watcher must see that as a
 * MODIFIED with a newer resourceVersion. Invariants: the counter never goes
 * back; it stays at or above every store resourceVersion seen (so an object
 * loaded at start shows its store version and later versions are newer);
 * each change takes the next value, and an object's resourceVersion is the
 * value of its last change. A watch from version V gets exactly the logged
 * changes after V; V older than the log's start is 410 Expired, as the
 * apiserver answers it (clients then list again).
 *
 * Changes are computed one at a time (refresh is serialised), so the log's
 * order is the order the views were taken in.
 */
import { createHash } from 'node:crypto';
import { canonicalJSON } from '@membrane/policy';
import { RESOURCES, type KubeResource } from './kube-resources.js';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; creationTimestamp?: string; uid?: string; [k: string]: unknown };
  [k: string]: unknown;
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface CacheEvent {
  rev: number;
  kind: string;
  type: WatchEventType;
  object: KubeObject;
}

/** Where views come from: the agent's stored objects with their status (views/object-view.ts). */
export interface KubeViews {
  list(kind: string): Promise<KubeObject[]>;
  get(kind: string, namespace: string, name: string): Promise<KubeObject | undefined>;
}

const LOG_SIZE = 50_000;

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** A uid that stays the object's for its life (a new object under the same name gets another). */
export function objectUid(kind: string, o: KubeObject): string {
  const h = createHash('sha256').update(`${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}/${o.metadata.creationTimestamp ?? ''}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function resourceOf(kind: string): KubeResource {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new Error(`kind ${kind} is not served`);
  return r;
}

export class KubeCache {
  private revision = 0;
  private readonly objects = new Map<string, Map<string, { object: KubeObject; content: string }>>();
  private readonly log: CacheEvent[] = [];
  private logStart = 0;
  private readonly watchers = new Set<(e: CacheEvent) => void>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly views: KubeViews) {
    for (const r of RESOURCES) this.objects.set(r.kind, new Map());
  }

  /** The first load: every stored object at its store resourceVersion. */
  async load(): Promise<void> {
    for (const r of RESOURCES) {
      for (const o of await this.views.list(r.kind)) {
        const rv = Number(o.metadata.resourceVersion ?? 0);
        this.revision = Math.max(this.revision, rv);
        this.objects.get(r.kind)!.set(key(o.metadata.namespace, o.metadata.name), { object: this.decorate(r, o, rv), content: contentOf(o) });
      }
    }
    this.logStart = this.revision;
  }

  get resourceVersion(): number {
    return this.revision;
  }

  list(kind: string, namespace?: string): KubeObject[] {
    const all = [...this.objects.get(kind)!.values()].map((x) => x.object);
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(kind)!.get(key(namespace, name))?.object;
  }

  /** Take the object's view again; a change is logged and sent to watchers. Resolves when it has been. */
  refresh(kind: string, namespace: string, name: string): Promise<void> {
    if (!this.objects.has(kind)) return Promise.resolve();
    const run = this.chain.then(async () => this.set(kind, namespace, name, await this.views.get(kind, namespace, name)));
    this.chain = run.catch(() => {});
    return run;
  }

  /** An object the agent holds only in memory (Events, the agent's own pod): set, or removed with undefined. */
  put(kind: string, namespace: string, name: string, object: KubeObject | undefined): Promise<void> {
    const run = this.chain.then(() => this.set(kind, namespace, name, object));
    this.chain = run.catch(() => {});
    return run;
  }

  /** Resolves when every refresh asked for so far is done (a write answers after its own change is visible). */
  settled(): Promise<void> {
    return this.chain.then(() => {});
  }

  /**
   * Changes after `from`, then every later one as it happens; 'expired' when
   * the log no longer reaches back to `from`. Answers the function that stops.
   */
  watch(from: number, send: (e: CacheEvent) => void): (() => void) | 'expired' {
    if (from < this.logStart) return 'expired';
    for (const e of this.log) if (e.rev > from) send(e);
    this.watchers.add(send);
    return () => this.watchers.delete(send);
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  private set(kind: string, namespace: string, name: string, view: KubeObject | undefined): void {
    const r = resourceOf(kind);
    const objects = this.objects.get(kind)!;
    const k = key(r.namespaced ? namespace : undefined, name);
    const before = objects.get(k);
    if (!view) {
      if (!before) return;
      objects.delete(k);
      const rev = ++this.revision;
      this.publish({ rev, kind, type: 'DELETED', object: { ...before.object, metadata: { ...before.object.metadata, resourceVersion: String(rev) } } });
      return;
    }
    const content = contentOf(view);
    if (before && before.content === content) return;
    const rev = (this.revision = Math.max(this.revision + 1, Number(view.metadata.resourceVersion ?? 0)));
    const object = this.decorate(r, view, rev);
    objects.set(k, { object, content });
    this.publish({ rev, kind, type: before ? 'MODIFIED' : 'ADDED', object });
  }

  private publish(e: CacheEvent): void {
    this.log.push(e);
    if (this.log.length > LOG_SIZE) this.logStart = this.log.splice(0, this.log.length - LOG_SIZE).at(-1)!.rev;
    for (const w of this.watchers) w(e);
  }

  private decorate(r: KubeResource, o: KubeObject, rev: number): KubeObject {
    const metadata = { ...o.metadata, uid: o.metadata.uid ?? objectUid(r.kind, o), resourceVersion: String(rev) };
    return { apiVersion: r.group ? `${r.group}/${r.version}` : r.version, kind: r.kind, ...o, metadata };
  }
}

/** What a change is: everything but the resourceVersion (which the store moves on every write). */
function contentOf(o: KubeObject): string {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  return canonicalJSON({ ...o, metadata });
}
