// MapState entries keyed by (identity, protocol, port range). Sources:
// cilium/cilium pkg/policy/mapstate.go and pkg/policy/types (a key with
// identity 0 applies to every peer; protocol 0 with port 0 covers every
// protocol, ICMP included; allow and deny entries are kept apart and a deny
// wins), pkg/policy/l4.go (a contribution without L7 rules to a key that has
// them makes the key L7 allow-all, whatever the order of the rules).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { compileHttpRule } from './l7/http.js';
import { DirectionPolicy, keyString } from './mapstate.js';
import { Proto } from './ports.js';
import type { RuleOrigin } from './rule.js';

const o1: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'one', section: 'ingress', index: 0 };
const o2: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'two', section: 'ingress', index: 0 };
const oDeny: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'deny', section: 'ingressDeny', index: 0 };
const k80 = { identity: 300, proto: Proto.TCP, port: 80, endPort: 80 };
const getA = compileHttpRule({ method: 'GET', path: '/a' });
const getB = compileHttpRule({ method: 'GET', path: '/b' });

describe('DirectionPolicy.add', () => {
  test('keyString', () => {
    assert.equal(keyString(k80), '300/6/80-80');
    assert.equal(keyString({ identity: 0, proto: 0, port: 0, endPort: 65535 }), '0/0/0-65535');
  });

  test('one entry per key and verdict, listing every rule behind it', () => {
    const dp = new DirectionPolicy('ingress', true, true);
    dp.add(k80, false, o1, undefined);
    dp.add(k80, false, o2, undefined);
    dp.add(k80, false, o2, undefined);
    dp.add(k80, true, oDeny, undefined);
    assert.equal(dp.entries.length, 2);
    assert.deepEqual(dp.entries[0], { ...k80, deny: false, l7: null, origins: [o1, o2] });
    assert.deepEqual(dp.entries[1], { ...k80, deny: true, l7: null, origins: [oDeny] });
  });

  test('L7 rules of several contributions accumulate with their origins', () => {
    const dp = new DirectionPolicy('ingress', true, true);
    dp.add(k80, false, o1, { http: [getA] });
    dp.add(k80, false, o2, { http: [getB] });
    assert.equal(dp.entries.length, 1);
    assert.deepEqual(dp.entries[0]!.l7, { http: [{ rule: getA, origin: o1 }, { rule: getB, origin: o2 }], dns: [] });
  });

  test('a contribution without L7 rules frees the key, in either order', () => {
    const first = new DirectionPolicy('ingress', true, true);
    first.add(k80, false, o1, { http: [getA] });
    first.add(k80, false, o2, undefined);
    assert.equal(first.entries[0]!.l7, null);
    assert.deepEqual(first.entries[0]!.origins, [o1, o2]);

    const second = new DirectionPolicy('ingress', true, true);
    second.add(k80, false, o2, undefined);
    second.add(k80, false, o1, { http: [getA] });
    assert.equal(second.entries[0]!.l7, null);
  });

  test('an L7-free entry for one peer leaves another peer\'s L7 entry alone', () => {
    const dp = new DirectionPolicy('ingress', true, true);
    dp.add(k80, false, o1, { http: [getA] });
    dp.add({ ...k80, identity: 301 }, false, o2, undefined);
    assert.deepEqual(dp.entries.map((e) => [e.identity, e.l7 === null]), [[300, false], [301, true]]);
  });
});

describe('DirectionPolicy.matching', () => {
  const dp = new DirectionPolicy('ingress', true, true);
  dp.add({ identity: 0, proto: 0, port: 0, endPort: 65535 }, false, o1, undefined);
  dp.add({ identity: 300, proto: Proto.TCP, port: 8000, endPort: 8080 }, false, o2, undefined);
  dp.add({ identity: 301, proto: Proto.UDP, port: 53, endPort: 53 }, true, oDeny, undefined);

  const names = (identity: number, proto: number, port: number) => dp.matching(identity, proto, port).map((e) => e.origins[0]!.name);

  test('the identity\'s own entries first, then the any-peer entries', () => {
    assert.deepEqual(names(300, Proto.TCP, 8000), ['two', 'one']);
    assert.deepEqual(names(999, Proto.TCP, 8000), ['one']);
  });

  test('port ranges are inclusive at both ends', () => {
    assert.deepEqual(names(300, Proto.TCP, 8080), ['two', 'one']);
    assert.deepEqual(names(300, Proto.TCP, 7999), ['one']);
    assert.deepEqual(names(300, Proto.TCP, 8081), ['one']);
  });

  test('protocol 0 covers every protocol, ICMP included; a protocol covers only itself', () => {
    assert.deepEqual(names(300, Proto.UDP, 8000), ['one']);
    assert.deepEqual(names(300, Proto.ICMP, 8), ['one']);
    assert.deepEqual(names(301, Proto.UDP, 53), ['deny', 'one']);
    assert.deepEqual(names(301, Proto.TCP, 53), ['one']);
  });

  test('a lookup for identity 0 does not scan the any-peer entries twice', () => {
    assert.deepEqual(names(0, Proto.TCP, 1), ['one']);
  });
});
