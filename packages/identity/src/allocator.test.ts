import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FIRST_CLUSTER_IDENTITY, FIRST_LOCAL_IDENTITY, LabelSet, ReservedIdentity, endpointIdentityLabels, parsePrefix, type Prefix } from '@membrane/policy';
import { IdentityAllocator } from './allocator.js';
import { IPCache } from './ipcache.js';

const pod = (ns: string, app: string) => endpointIdentityLabels({ namespace: ns, podLabels: { app } });

// Cilium: equal label sets share one security identity; reserved identities are fixed (pkg/identity/numericidentity.go).
test('equal label sets share an identity; cluster identities start at 256', () => {
  const a = new IdentityAllocator();
  const x = a.allocate(pod('default', 'web'));
  const y = a.allocate(pod('default', 'web'));
  const z = a.allocate(pod('prod', 'web'));
  assert.equal(x.id, FIRST_CLUSTER_IDENTITY);
  assert.equal(y.id, x.id);
  assert.equal(z.id, FIRST_CLUSTER_IDENTITY + 1);
  assert.equal(a.refs(x.id), 2);
  assert.equal(a.get(ReservedIdentity.world)?.labels.toString(), 'reserved:world');
});

test('an identity is freed with its last reference; reserved ones never', () => {
  const a = new IdentityAllocator();
  const x = a.allocate(pod('default', 'web'));
  a.allocate(pod('default', 'web'));
  assert.equal(a.release(x.id), false);
  assert.equal(a.release(x.id), true);
  assert.equal(a.get(x.id), undefined);
  assert.equal(a.release(ReservedIdentity.host), false);
  assert.ok(a.get(ReservedIdentity.host));
});

test('CIDR identities are local (from 2^24) and carry the prefix and reserved:world', () => {
  const a = new IdentityAllocator();
  const c = a.allocateCIDR(parsePrefix('198.51.100.0/24') as Prefix);
  assert.equal(c.id, FIRST_LOCAL_IDENTITY);
  assert.equal(c.labels.toString(), 'cidr:198.51.100.0/24,reserved:world');
  assert.equal(c.prefix?.bits, 24);
});

test('a snapshot restores the same numbers, and new allocations do not collide', () => {
  const a = new IdentityAllocator();
  const x = a.allocate(pod('default', 'web'));
  const c = a.allocateCIDR(parsePrefix('203.0.113.0/24') as Prefix);
  const b = new IdentityAllocator(a.snapshot());
  assert.equal(b.allocate(pod('default', 'web')).id, x.id);
  assert.equal(b.allocate(LabelSet.of('cidr:203.0.113.0/24', 'reserved:world')).id, c.id);
  assert.equal(b.allocate(pod('default', 'db')).id, x.id + 1);
  assert.equal(b.allocateCIDR(parsePrefix('192.0.2.0/24') as Prefix).id, c.id + 1);
});

test('ipcache: longest prefix wins; unknown addresses are world', () => {
  const ipc = new IPCache();
  ipc.upsert({ prefix: parsePrefix('198.51.100.0/24') as Prefix, identity: FIRST_LOCAL_IDENTITY, source: 'policy' });
  ipc.upsert({ prefix: parsePrefix('198.51.100.128/25') as Prefix, identity: FIRST_LOCAL_IDENTITY + 1, source: 'policy' });
  ipc.upsert({ prefix: parsePrefix('10.200.0.5/32') as Prefix, identity: 300, endpointId: 7, source: 'endpoint' });
  assert.equal(ipc.lookup('198.51.100.5').identity, FIRST_LOCAL_IDENTITY);
  assert.equal(ipc.lookup('198.51.100.200').identity, FIRST_LOCAL_IDENTITY + 1);
  assert.equal(ipc.lookup('10.200.0.5').endpointId, 7);
  assert.equal(ipc.lookup('192.0.2.1').identity, ReservedIdentity.world);
  assert.equal(ipc.lookup('192.0.2.1').prefix.bits, 0);
});
