import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { KubeCache, type CacheEvent, type KubeObject } from './kube-cache.js';

function fakeViews(initial: KubeObject[]) {
  const objects = new Map<string, KubeObject>(initial.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]));
  return {
    objects,
    views: {
      list: async (kind: string) => (kind === 'Pod' ? [...objects.values()] : []),
      get: async (_kind: string, ns: string, name: string) => objects.get(`${ns}/${name}`),
    },
  };
}
const pod = (name: string, rv: number, phase = 'Running'): KubeObject => ({ metadata: { name, namespace: 'default', resourceVersion: String(rv), creationTimestamp: '2026-12-02T00:00:00Z' }, status: { phase } });

test('the cache starts at the store versions and every change takes the next version', async () => {
  const f = fakeViews([pod('a', 5), pod('b', 9)]);
  const c = new KubeCache(f.views);
  await c.load();
  assert.equal(c.resourceVersion, 9);
  assert.equal(c.get('Pod', 'default', 'a')!.metadata.resourceVersion, '5');
  assert.equal(c.get('Pod', 'default', 'a')!.apiVersion, 'v1');
  assert.match(c.get('Pod', 'default', 'a')!.metadata.uid!, /^[0-9a-f]{8}-/);
  // A status change without a store write (same store version) is still a new version.
  f.objects.set('default/a', pod('a', 5, 'Failed'));
  await c.refresh('Pod', 'default', 'a');
  assert.equal(c.get('Pod', 'default', 'a')!.metadata.resourceVersion, '10');
  // A store write with a higher version is seen at that version.
  f.objects.set('default/b', pod('b', 40, 'Pending'));
  await c.refresh('Pod', 'default', 'b');
  assert.equal(c.resourceVersion, 40);
  // Nothing changed: no new version.
  await c.refresh('Pod', 'default', 'b');
  assert.equal(c.resourceVersion, 40);
});

test('a watch from a version gets exactly the changes after it, then the ones that come; too old is expired', async () => {
  const f = fakeViews([pod('a', 1)]);
  const c = new KubeCache(f.views);
  await c.load();
  f.objects.set('default/b', pod('b', 2));
  await c.refresh('Pod', 'default', 'b');
  f.objects.delete('default/a');
  await c.refresh('Pod', 'default', 'a');
  const seen: CacheEvent[] = [];
  const stop = c.watch(2, (e) => seen.push(e));
  assert.notEqual(stop, 'expired');
  assert.deepEqual(seen.map((e) => [e.type, e.object.metadata.name, e.rev]), [['DELETED', 'a', 3]]);
  f.objects.set('default/b', pod('b', 2, 'Succeeded'));
  await c.refresh('Pod', 'default', 'b');
  assert.deepEqual(seen.map((e) => e.type), ['DELETED', 'MODIFIED']);
  (stop as () => void)();
  assert.equal(c.watcherCount, 0);
  assert.equal(c.watch(0, () => {}), 'expired');
  const all: string[] = [];
  const s2 = c.watch(1, (e) => all.push(`${e.type} ${e.object.metadata.name}`));
  assert.deepEqual(all, ['ADDED b', 'DELETED a', 'MODIFIED b']);
  (s2 as () => void)();
});

test('objects held only in memory are set and removed with events', async () => {
  const c = new KubeCache(fakeViews([]).views);
  await c.load();
  const seen: string[] = [];
  c.watch(c.resourceVersion, (e) => seen.push(`${e.type} ${e.kind} ${e.object.metadata.name}`));
  await c.put('Event', 'default', 'x.1', { metadata: { name: 'x.1', namespace: 'default' }, reason: 'Started' });
  await c.put('Event', 'default', 'x.1', undefined);
  assert.deepEqual(seen, ['ADDED Event x.1', 'DELETED Event x.1']);
});
