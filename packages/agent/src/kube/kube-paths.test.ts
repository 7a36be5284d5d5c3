import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { aggregatedDiscovery, resourceList } from './kube-resources.js';
import { labelMatcher, parsePath } from './kube-server.js';
import { humanDuration } from './kube-tables.js';

test('paths name a resource, a namespace and an object as the apiserver reads them', () => {
  const t = (p: string) => {
    const x = parsePath(p);
    return x && [x.resource.resource, x.namespace ?? null, x.name ?? null];
  };
  assert.deepEqual(t('/api/v1/namespaces/default/pods'), ['pods', 'default', null]);
  assert.deepEqual(t('/api/v1/namespaces/default/pods/xwing'), ['pods', 'default', 'xwing']);
  assert.deepEqual(t('/api/v1/pods'), ['pods', null, null]);
  assert.deepEqual(t('/api/v1/namespaces/default'), ['namespaces', null, 'default']);
  assert.deepEqual(t('/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/rule1'), ['ciliumnetworkpolicies', 'default', 'rule1']);
  assert.deepEqual(t('/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies'), ['ciliumclusterwidenetworkpolicies', null, null]);
  assert.equal(t('/apis/cilium.io/v2/namespaces/default/ciliumclusterwidenetworkpolicies'), undefined, 'a cluster-scoped kind has no namespace');
  assert.equal(t('/api/v1/widgets'), undefined);
});

test("ages as kubectl prints them, label selectors, and discovery's short names", () => {
  assert.deepEqual([5e3, 119e3, 125e3, 600e3, 3 * 3600e3 - 1, 5 * 3600e3 + 60e3, 30 * 3600e3, 3 * 86400e3 + 3600e3, 400 * 86400e3].map(humanDuration), ['5s', '119s', '2m5s', '10m', '179m', '5h1m', '30h', '3d1h', '400d']);
  const m = labelMatcher('class=xwing,org!=empire,app')!;
  assert.equal(m({ class: 'xwing', org: 'alliance', app: 'x' }), true);
  assert.equal(m({ class: 'xwing', org: 'empire', app: 'x' }), false);
  assert.equal(m({ class: 'xwing' }), false);
  assert.equal(labelMatcher('a in (b'), undefined);
  const cilium = aggregatedDiscovery(false).items.find((g) => g.metadata.name === 'cilium.io')!;
  assert.deepEqual(cilium.versions[0]!.resources.find((r) => r.resource === 'ciliumnetworkpolicies')?.shortNames, ['cnp', 'ciliumnp']);
  assert.ok(resourceList('', 'v1')!.resources.some((r) => r.name === 'pods/exec'));
});
