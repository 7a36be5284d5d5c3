// Labels as Cilium models them: `source:key=value`.
// Sources: cilium/cilium pkg/labels/labels.go (Label, ParseLabel: a label
// without a source gets LabelSourceUnspec), pkg/labels/array.go (LabelArray.Has:
// a key of source `any` matches a label of any source, not the reverse).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { LabelSet, formatLabel, parseLabel } from './labels.js';

describe('parseLabel / formatLabel (pkg/labels/labels.go ParseLabel)', () => {
  test('splits source, key and value', () => {
    assert.deepEqual(parseLabel('k8s:app=web'), { source: 'k8s', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('reserved:host'), { source: 'reserved', key: 'host', value: '' });
    assert.deepEqual(parseLabel('k8s:app.kubernetes.io/name=db'), { source: 'k8s', key: 'app.kubernetes.io/name', value: 'db' });
    assert.deepEqual(parseLabel('cidr:10.0.0.0/8'), { source: 'cidr', key: '10.0.0.0/8', value: '' });
  });

  test('a label without a source is unspec', () => {
    assert.deepEqual(parseLabel('app=web'), { source: 'unspec', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('app'), { source: 'unspec', key: 'app', value: '' });
  });

  test('the value may itself contain ":" and "="', () => {
    assert.deepEqual(parseLabel('k8s:app=a:b=c'), { source: 'k8s', key: 'app', value: 'a:b=c' });
  });

  test('formatLabel omits "=" for an empty value and round-trips parseLabel', () => {
    assert.equal(formatLabel({ source: 'reserved', key: 'world', value: '' }), 'reserved:world');
    assert.equal(formatLabel({ source: 'k8s', key: 'app', value: 'web' }), 'k8s:app=web');
    for (const s of ['k8s:app=web', 'reserved:host', 'k8s:io.kubernetes.pod.namespace=prod', 'cidr:192.0.2.0/24']) {
      assert.equal(formatLabel(parseLabel(s)), s);
    }
  });
});

describe('LabelSet', () => {
  test('sorts by source then key and keeps one label per source:key (the last)', () => {
    const ls = new LabelSet([
      { source: 'k8s', key: 'b', value: '1' },
      { source: 'k8s', key: 'a', value: '1' },
      { source: 'container', key: 'a', value: '2' },
      { source: 'k8s', key: 'a', value: '3' },
    ]);
    assert.deepEqual(ls.toStrings(), ['container:a=2', 'k8s:a=3', 'k8s:b=1']);
    assert.equal(ls.toString(), 'container:a=2,k8s:a=3,k8s:b=1');
  });

  test('equal sets give equal canonical strings whatever the input order', () => {
    const x = LabelSet.of('k8s:tier=fe', 'k8s:app=web', 'reserved:init');
    const y = LabelSet.of('reserved:init', 'k8s:app=web', 'k8s:tier=fe');
    assert.equal(x.toString(), y.toString());
    assert.equal(x.toString(), 'k8s:app=web,k8s:tier=fe,reserved:init');
    assert.notEqual(x.toString(), LabelSet.of('k8s:app=web', 'k8s:tier=be', 'reserved:init').toString());
  });

  test('find/has/get: a named source matches only itself, `any` matches every source', () => {
    const ls = LabelSet.of('k8s:app=web', 'container:app=other', 'reserved:host');
    assert.deepEqual(ls.find('k8s', 'app'), [{ source: 'k8s', key: 'app', value: 'web' }]);
    assert.deepEqual(
      ls.find('any', 'app').map(formatLabel),
      ['container:app=other', 'k8s:app=web'],
    );
    assert.equal(ls.get('k8s', 'app'), 'web');
    assert.equal(ls.get('container', 'app'), 'other');
    assert.equal(ls.get('k8s', 'missing'), undefined);
    assert.equal(ls.has('reserved', 'host'), true);
    assert.equal(ls.has('k8s', 'host'), false);
    assert.equal(ls.has('any', 'host'), true);
    assert.equal(ls.hasSource('reserved'), true);
    assert.equal(ls.hasSource('cidr'), false);
  });
});
