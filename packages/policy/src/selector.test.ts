// EndpointSelector: a Kubernetes LabelSelector whose keys carry a Cilium label
// source. Sources: Kubernetes docs, "Labels and Selectors" > "Set-based
// requirement" (`NotIn` and `!key` select resources that lack the key);
// cilium/cilium pkg/policy/api/selector.go (EndpointSelector.Matches:
// `reserved:all` selects everything; IsWildcard: no requirement at all);
// pkg/labels/array.go LabelArray.Has (a key without a source = `any:`).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import type { LabelSelector } from '@membrane/api';
import { LabelSet } from './labels.js';
import { EndpointSelector, splitSelectorKey } from './selector.js';

const sel = (ls: LabelSelector, defaultSource?: string) => EndpointSelector.fromLabelSelector(ls, defaultSource);
const L = (...labels: string[]) => LabelSet.of(...labels);

describe('matchLabels (Kubernetes: requirements are AND-ed)', () => {
  const s = sel({ matchLabels: { app: 'web', tier: 'fe' } });

  test('matches only when every label is present with its value', () => {
    assert.equal(s.matches(L('k8s:app=web', 'k8s:tier=fe')), true);
    assert.equal(s.matches(L('k8s:app=web', 'k8s:tier=fe', 'k8s:extra=1')), true);
    assert.equal(s.matches(L('k8s:app=web')), false);
    assert.equal(s.matches(L('k8s:app=web', 'k8s:tier=be')), false);
    assert.equal(s.matches(L()), false);
  });

  test('a label value is compared exactly', () => {
    assert.equal(s.matches(L('k8s:app=Web', 'k8s:tier=fe')), false);
    assert.equal(sel({ matchLabels: { app: '' } }).matches(L('k8s:app')), true);
    assert.equal(sel({ matchLabels: { app: '' } }).matches(L('k8s:app=x')), false);
  });
});

describe('matchExpressions (Kubernetes set-based requirements)', () => {
  test('In: the key is present with one of the values', () => {
    const s = sel({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }] });
    assert.equal(s.matches(L('k8s:env=prod')), true);
    assert.equal(s.matches(L('k8s:env=staging')), true);
    assert.equal(s.matches(L('k8s:env=dev')), false);
    assert.equal(s.matches(L('k8s:app=web')), false, 'In never matches an absent key');
  });

  test('NotIn: matches a different value and a label set lacking the key', () => {
    const s = sel({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] });
    assert.equal(s.matches(L('k8s:env=dev')), true);
    assert.equal(s.matches(L('k8s:app=web')), true, 'absent key matches NotIn');
    assert.equal(s.matches(L()), true);
    assert.equal(s.matches(L('k8s:env=prod')), false);
  });

  test('Exists: the key is present, whatever its value (empty included)', () => {
    const s = sel({ matchExpressions: [{ key: 'env', operator: 'Exists' }] });
    assert.equal(s.matches(L('k8s:env=prod')), true);
    assert.equal(s.matches(L('k8s:env')), true);
    assert.equal(s.matches(L('k8s:app=web')), false);
  });

  test('DoesNotExist: matches a label set lacking the key', () => {
    const s = sel({ matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] });
    assert.equal(s.matches(L('k8s:app=web')), true);
    assert.equal(s.matches(L()), true);
    assert.equal(s.matches(L('k8s:env=prod')), false);
    assert.equal(s.matches(L('k8s:env')), false);
  });

  test('matchLabels and matchExpressions are AND-ed', () => {
    const s = sel({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] });
    assert.equal(s.matches(L('k8s:app=web', 'k8s:env=dev')), true);
    assert.equal(s.matches(L('k8s:app=web', 'k8s:env=prod')), false);
    assert.equal(s.matches(L('k8s:app=db', 'k8s:env=dev')), false);
  });
});

describe('label sources in selector keys (pkg/labels/array.go Has)', () => {
  const labels = L('k8s:app=web', 'container:role=x', 'reserved:host');

  test('`k8s:` matches only Kubernetes labels', () => {
    assert.equal(sel({ matchLabels: { 'k8s:app': 'web' } }).matches(labels), true);
    assert.equal(sel({ matchLabels: { 'k8s:role': 'x' } }).matches(labels), false);
  });

  test('no source and `any:` both match a label of any source', () => {
    assert.equal(sel({ matchLabels: { app: 'web' } }).matches(labels), true);
    assert.equal(sel({ matchLabels: { role: 'x' } }).matches(labels), true);
    assert.equal(sel({ matchLabels: { 'any:role': 'x' } }).matches(labels), true);
    assert.equal(sel({ matchLabels: { 'any:app': 'web' } }).matches(labels), true);
  });

  test('`reserved:` matches only reserved labels', () => {
    assert.equal(sel({ matchLabels: { 'reserved:host': '' } }).matches(labels), true);
    assert.equal(sel({ matchLabels: { 'reserved:host': '' } }).matches(L('k8s:host')), false);
    assert.equal(sel({ matchLabels: { 'reserved:world': '' } }).matches(labels), false);
  });

  test('NotIn/DoesNotExist with a source ignore labels of other sources', () => {
    assert.equal(sel({ matchExpressions: [{ key: 'k8s:role', operator: 'DoesNotExist' }] }).matches(labels), true);
    assert.equal(sel({ matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }).matches(labels), false);
  });

  test('a default source applies to keys written without one (NetworkPolicy: k8s)', () => {
    const s = sel({ matchLabels: { role: 'x' } }, 'k8s');
    assert.equal(s.matches(labels), false);
    assert.equal(s.matches(L('k8s:role=x')), true);
  });

  test('splitSelectorKey', () => {
    assert.deepEqual(splitSelectorKey('k8s:app'), { source: 'k8s', key: 'app' });
    assert.deepEqual(splitSelectorKey('app'), { source: 'any', key: 'app' });
    assert.deepEqual(splitSelectorKey('app', 'k8s'), { source: 'k8s', key: 'app' });
    assert.deepEqual(splitSelectorKey('app.kubernetes.io/name'), { source: 'any', key: 'app.kubernetes.io/name' });
  });
});

describe('wildcards (pkg/policy/api/selector.go Matches, IsWildcard)', () => {
  test('`{}` selects every label set', () => {
    const s = sel({});
    assert.equal(s.isWildcard, true);
    assert.equal(s.matches(L()), true);
    assert.equal(s.matches(L('reserved:world')), true);
    assert.equal(s.toString(), '{}');
  });

  test('`reserved:all` selects everything, even alongside other requirements', () => {
    const s = sel({ matchLabels: { 'reserved:all': '' } });
    assert.equal(s.isWildcard, true);
    assert.equal(s.matches(L()), true);
    assert.equal(s.matches(L('reserved:world')), true);
    assert.equal(s.matches(L('k8s:app=web')), true);
    assert.equal(sel({ matchLabels: { 'reserved:all': '', app: 'db' } }).matches(L('k8s:app=web')), true);
  });

  test('a selector with requirements is not a wildcard', () => {
    assert.equal(sel({ matchLabels: { app: 'web' } }).isWildcard, false);
    assert.equal(sel({ matchLabels: { 'any:all': '' } }).isWildcard, false);
  });
});

describe('canonical form (the SelectorCache key)', () => {
  test('equal selectors give equal strings regardless of order', () => {
    const a = sel({
      matchLabels: { app: 'web', 'k8s:tier': 'fe' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['prod', 'dev'] },
        { key: 'x', operator: 'DoesNotExist' },
      ],
    });
    const b = sel({
      matchExpressions: [
        { key: 'x', operator: 'DoesNotExist' },
        { key: 'env', operator: 'In', values: ['dev', 'prod'] },
      ],
      matchLabels: { 'k8s:tier': 'fe', app: 'web' },
    });
    assert.equal(a.toString(), b.toString());
    assert.equal(a.toString(), '!any:x,any:app=web,any:env in (dev,prod),k8s:tier=fe');
  });

  test('every operator has its own form', () => {
    const s = sel({
      matchExpressions: [
        { key: 'k8s:a', operator: 'NotIn', values: ['2', '1'] },
        { key: 'k8s:b', operator: 'Exists' },
      ],
    });
    assert.equal(s.toString(), 'k8s:a notin (1,2),k8s:b');
  });

  test('different sources give different strings', () => {
    assert.notEqual(sel({ matchLabels: { app: 'web' } }).toString(), sel({ matchLabels: { 'k8s:app': 'web' } }).toString());
  });

  test('and() adds requirements without changing the original', () => {
    const s = sel({ matchLabels: { app: 'web' } });
    const t = s.and({ source: 'k8s', key: 'io.kubernetes.pod.namespace', operator: 'In', values: ['prod'] });
    assert.equal(s.toString(), 'any:app=web');
    assert.equal(t.toString(), 'any:app=web,k8s:io.kubernetes.pod.namespace=prod');
    assert.equal(t.matches(L('k8s:app=web', 'k8s:io.kubernetes.pod.namespace=prod')), true);
    assert.equal(t.matches(L('k8s:app=web', 'k8s:io.kubernetes.pod.namespace=dev')), false);
  });

  test('hasKey / hasKeyPrefix / hasSource look through `any:`', () => {
    const s = sel({ matchLabels: { 'io.kubernetes.pod.namespace': 'x', 'k8s:io.cilium.k8s.namespace.labels.team': 'a', 'reserved:host': '' } });
    assert.equal(s.hasKey('k8s', 'io.kubernetes.pod.namespace'), true);
    assert.equal(s.hasKey('k8s', 'app'), false);
    assert.equal(s.hasKeyPrefix('k8s', 'io.cilium.k8s.namespace.labels.'), true);
    assert.equal(s.hasSource('reserved'), true);
    assert.equal(s.hasSource('cidr'), false);
  });
});
