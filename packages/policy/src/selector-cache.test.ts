// SelectorCache and peer matching. Sources: cilium/cilium
// pkg/policy/selectorcache.go (one selection per distinct selector),
// pkg/policy/api/entity.go (EntitySelectorMapping: world, cluster = host,
// remote-node, init, ingress, health, unmanaged, kube-apiserver and the
// cluster's pods; all = everything), Cilium docs "Layer 3 policies > DNS
// based" (toFQDNs selects the IPs the names resolved to).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { FIRST_LOCAL_IDENTITY, cidrIdentity, endpointIdentityLabels, reservedIdentities, reservedIdentity, type Identity } from './identity.js';
import { compileDnsMatcher } from './l7/dns.js';
import type { PeerSelector } from './rule.js';
import { SelectorCache, entityMatches, peerKey, peerMatches } from './selector-cache.js';
import { EndpointSelector } from './selector.js';

const pod: Identity = { id: 300, labels: endpointIdentityLabels({ namespace: 'default', podLabels: { app: 'web' } }) };
const remotePod: Identity = { id: 301, labels: endpointIdentityLabels({ namespace: 'default', podLabels: { app: 'web' }, clusterName: 'east' }) };
const ext4 = cidrIdentity(FIRST_LOCAL_IDENTITY, '203.0.113.5')!;
const ext6 = cidrIdentity(FIRST_LOCAL_IDENTITY + 1, '2001:db8::5')!;
const R = (n: Parameters<typeof reservedIdentity>[0]) => reservedIdentity(n);

describe('entityMatches (pkg/policy/api/entity.go)', () => {
  test('world: outside the cluster only', () => {
    assert.equal(entityMatches('world', R('world')), true);
    assert.equal(entityMatches('world', ext4), true);
    assert.equal(entityMatches('world', pod), false);
    assert.equal(entityMatches('world', R('host')), false);
  });

  test('world-ipv4 / world-ipv6 split by family', () => {
    assert.equal(entityMatches('world-ipv4', ext4), true);
    assert.equal(entityMatches('world-ipv4', ext6), false);
    assert.equal(entityMatches('world-ipv6', ext6), true);
    assert.equal(entityMatches('world-ipv6', ext4), false);
  });

  test('cluster: the reserved in-cluster identities and this cluster\'s pods, not world', () => {
    for (const n of ['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'] as const) {
      assert.equal(entityMatches('cluster', R(n)), true, n);
    }
    assert.equal(entityMatches('cluster', pod), true);
    assert.equal(entityMatches('cluster', remotePod), false, 'a pod of another cluster');
    assert.equal(entityMatches('cluster', remotePod, 'east'), true);
    assert.equal(entityMatches('cluster', R('world')), false);
    assert.equal(entityMatches('cluster', ext4), false);
  });

  test('all matches everything; a reserved name matches its identity', () => {
    for (const id of [pod, ext4, ...reservedIdentities()]) assert.equal(entityMatches('all', id), true);
    assert.equal(entityMatches('host', R('host')), true);
    assert.equal(entityMatches('host', R('remote-node')), false);
    assert.equal(entityMatches('kube-apiserver', R('kube-apiserver')), true);
  });
});

describe('peerMatches for toFQDNs', () => {
  const fqdn: PeerSelector = { kind: 'fqdn', matcher: compileDnsMatcher({ matchPattern: '*.example.com' }) };
  const dnsNames = new Map([['203.0.113.5', ['api.example.com']], ['2001:db8::5', ['other.org']]]);

  test('selects the IPs that matching names resolved to', () => {
    assert.equal(peerMatches(fqdn, ext4, { identities: [], dnsNames }), true);
    assert.equal(peerMatches(fqdn, ext6, { identities: [], dnsNames }), false);
  });

  test('nothing before a lookup, nothing for pods', () => {
    assert.equal(peerMatches(fqdn, ext4, { identities: [] }), false);
    assert.equal(peerMatches(fqdn, ext4, { identities: [], dnsNames: new Map() }), false);
    assert.equal(peerMatches(fqdn, pod, { identities: [], dnsNames }), false);
  });
});

describe('SelectorCache', () => {
  const identities = [...reservedIdentities(), pod, ext4, ext6];

  test('wildcards select "any" without computing a list', () => {
    const c = new SelectorCache({ identities });
    assert.equal(c.select({ kind: 'wildcard' }), 'any');
    assert.equal(c.select({ kind: 'entity', name: 'all' }), 'any');
    assert.equal(c.select({ kind: 'endpoints', selector: EndpointSelector.wildcard }), 'any');
    assert.equal(c.select({ kind: 'endpoints', selector: EndpointSelector.fromLabelSelector({ matchLabels: { 'reserved:all': '' } }) }), 'any');
    assert.equal(c.size, 0);
  });

  test('a selection lists matching identity numbers and is computed once per distinct selector', () => {
    const c = new SelectorCache({ identities });
    const world1: PeerSelector = { kind: 'entity', name: 'world' };
    assert.deepEqual(c.select(world1), [2, FIRST_LOCAL_IDENTITY, FIRST_LOCAL_IDENTITY + 1]);
    const s1 = EndpointSelector.fromLabelSelector({ matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': 'default' } });
    const s2 = EndpointSelector.fromLabelSelector({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default', app: 'web' } });
    const first = c.select({ kind: 'endpoints', selector: s1 });
    assert.deepEqual(first, [300]);
    assert.equal(c.select({ kind: 'endpoints', selector: s2 }), first, 'the same cached array');
    assert.equal(c.select({ kind: 'entity', name: 'world' }), c.select(world1));
    assert.equal(c.size, 2);
  });

  test('peerKey names the selector', () => {
    assert.equal(peerKey({ kind: 'wildcard' }), '*');
    assert.equal(peerKey({ kind: 'entity', name: 'host' }), 'entity:host');
    assert.equal(peerKey({ kind: 'endpoints', selector: EndpointSelector.fromLabelSelector({ matchLabels: { app: 'x' } }) }), 'ep:any:app=x');
    assert.equal(peerKey({ kind: 'fqdn', matcher: compileDnsMatcher({ matchName: 'a.io' }) }), 'fqdn:matchName: a.io');
  });
});
