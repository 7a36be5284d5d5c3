// Identities and the labels behind them.
// Sources: cilium/cilium pkg/identity/numericidentity.go (reserved identities
// 1-8, cluster identities from 256, local CIDR identities from 2^24);
// pkg/k8s/apis/cilium.io/const.go and pkg/k8s/utils (namespace, namespace
// labels, service account and cluster labels of a pod); pkg/labelsfilter/filter.go
// (defaultLabelPrefixCfg and filterLabels: the longest include beats the
// shortest ignore); CVE-2023-39347 (a pod's own labels cannot set its
// namespace or namespace labels).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import {
  FIRST_CLUSTER_IDENTITY,
  FIRST_LOCAL_IDENTITY,
  ReservedIdentity,
  cidrIdentity,
  endpointIdentityLabels,
  isIdentityLabelKey,
  isReservedIdentity,
  reservedIdentities,
  reservedIdentity,
} from './identity.js';
import { formatPrefix } from './cidr.js';
import { EndpointSelector } from './selector.js';

describe('endpointIdentityLabels (pod labels + system labels)', () => {
  test('adds namespace, namespace labels (incl. kubernetes.io/metadata.name), service account and cluster', () => {
    const ls = endpointIdentityLabels({ namespace: 'prod', podLabels: { app: 'web' }, namespaceLabels: { team: 'a' }, serviceAccount: 'sa1' });
    assert.deepEqual(ls.toStrings(), [
      'k8s:app=web',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=prod',
      'k8s:io.cilium.k8s.namespace.labels.team=a',
      'k8s:io.cilium.k8s.policy.cluster=default',
      'k8s:io.cilium.k8s.policy.serviceaccount=sa1',
      'k8s:io.kubernetes.pod.namespace=prod',
    ]);
  });

  test('service account and cluster default to "default"; a cluster name is used when given', () => {
    const ls = endpointIdentityLabels({ namespace: 'ns1', podLabels: {}, clusterName: 'east' });
    assert.equal(ls.get('k8s', 'io.cilium.k8s.policy.serviceaccount'), 'default');
    assert.equal(ls.get('k8s', 'io.cilium.k8s.policy.cluster'), 'east');
    assert.equal(endpointIdentityLabels({ namespace: 'ns1', podLabels: {} }).get('k8s', 'io.cilium.k8s.policy.cluster'), 'default');
  });

  test('the namespace name label always names the real namespace', () => {
    const ls = endpointIdentityLabels({ namespace: 'prod', podLabels: {}, namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' } });
    assert.equal(ls.get('k8s', 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name'), 'prod');
  });

  test('CVE-2023-39347: pod labels cannot override namespace, namespace labels or service account', () => {
    const ls = endpointIdentityLabels({
      namespace: 'tenant',
      podLabels: {
        app: 'x',
        'io.kubernetes.pod.namespace': 'kube-system',
        'io.cilium.k8s.namespace.labels.team': 'admins',
        'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'kube-system',
        'io.cilium.k8s.policy.serviceaccount': 'root',
      },
      namespaceLabels: { team: 'guests' },
    });
    assert.equal(ls.get('k8s', 'io.kubernetes.pod.namespace'), 'tenant');
    assert.equal(ls.get('k8s', 'io.cilium.k8s.namespace.labels.team'), 'guests');
    assert.equal(ls.get('k8s', 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name'), 'tenant');
    assert.equal(ls.get('k8s', 'io.cilium.k8s.policy.serviceaccount'), 'default');
    const kubeSystem = EndpointSelector.fromLabelSelector({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system' } });
    assert.equal(kubeSystem.matches(ls), false);
    const admins = EndpointSelector.fromLabelSelector({ matchLabels: { 'k8s:io.cilium.k8s.namespace.labels.team': 'admins' } });
    assert.equal(admins.matches(ls), false);
  });

  test("Cilium's label filter drops bookkeeping labels and keeps app.kubernetes.io", () => {
    const ls = endpointIdentityLabels({
      namespace: 'prod',
      podLabels: {
        app: 'web',
        'pod-template-hash': '5d9f',
        'kubernetes.io/foo': 'bar',
        'app.kubernetes.io/name': 'shop',
        'controller-revision-hash': 'abc',
        'statefulset.kubernetes.io/pod-name': 'db-0',
      },
    });
    assert.equal(ls.get('k8s', 'app'), 'web');
    assert.equal(ls.get('k8s', 'app.kubernetes.io/name'), 'shop');
    assert.equal(ls.has('k8s', 'pod-template-hash'), false);
    assert.equal(ls.has('k8s', 'kubernetes.io/foo'), false);
    assert.equal(ls.has('k8s', 'controller-revision-hash'), false);
    assert.equal(ls.has('k8s', 'statefulset.kubernetes.io/pod-name'), false);
  });
});

describe('isIdentityLabelKey (pkg/labelsfilter/filter.go defaultLabelPrefixCfg)', () => {
  test('keeps ordinary labels and the included prefixes', () => {
    for (const k of [
      'app',
      'tier',
      'app.kubernetes.io/name',
      'app.kubernetes.io/part-of',
      'io.kubernetes.pod.namespace',
      'io.cilium.k8s.namespace.labels.team',
      'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name',
      'io.cilium.k8s.policy.cluster',
      'io.cilium.k8s.policy.serviceaccount',
      'example.com/owner',
    ]) {
      assert.equal(isIdentityLabelKey(k), true, k);
    }
  });

  test('drops the ignored prefixes', () => {
    for (const k of [
      'pod-template-hash',
      'pod-template-generation',
      'controller-revision-hash',
      'kubernetes.io/foo',
      'io.kubernetes.container.name',
      'statefulset.kubernetes.io/pod-name',
      'apps.kubernetes.io/pod-index',
      'batch.kubernetes.io/job-completion-index',
      'beta.kubernetes.io/arch',
      'failure-domain.beta.kubernetes.io/zone',
      'k8s.io/cluster-service',
      'annotation.foo',
      'etcd_node',
    ]) {
      assert.equal(isIdentityLabelKey(k), false, k);
    }
  });
});

describe('reserved and CIDR identities (pkg/identity/numericidentity.go)', () => {
  test('reserved identity numbers', () => {
    assert.deepEqual(
      reservedIdentities().map((i) => [i.id, i.labels.toString()]),
      [
        [1, 'reserved:host'],
        [2, 'reserved:world'],
        [3, 'reserved:unmanaged'],
        [4, 'reserved:health'],
        [5, 'reserved:init'],
        [6, 'reserved:remote-node'],
        [7, 'reserved:kube-apiserver'],
        [8, 'reserved:ingress'],
      ],
    );
    assert.equal(ReservedIdentity.host, 1);
    assert.equal(FIRST_CLUSTER_IDENTITY, 256);
    assert.equal(FIRST_LOCAL_IDENTITY, 16777216);
  });

  test('world stands for 0.0.0.0/0; other reserved identities have no prefix', () => {
    const world = reservedIdentity('world');
    assert.ok(world.prefix);
    assert.equal(formatPrefix(world.prefix), '0.0.0.0/0');
    assert.equal(reservedIdentity('host').prefix, undefined);
  });

  test('isReservedIdentity', () => {
    assert.equal(isReservedIdentity(0), false);
    assert.equal(isReservedIdentity(1), true);
    assert.equal(isReservedIdentity(255), true);
    assert.equal(isReservedIdentity(256), false);
    assert.equal(isReservedIdentity(FIRST_LOCAL_IDENTITY), false);
  });

  test('a CIDR identity carries cidr:<prefix> and reserved:world', () => {
    const v4 = cidrIdentity(FIRST_LOCAL_IDENTITY, '192.0.2.7');
    assert.ok(v4?.prefix);
    assert.deepEqual(v4.labels.toStrings(), ['cidr:192.0.2.7/32', 'reserved:world']);
    assert.equal(formatPrefix(v4.prefix), '192.0.2.7/32');
    const v6 = cidrIdentity(FIRST_LOCAL_IDENTITY + 1, '2001:db8::1');
    assert.ok(v6?.prefix);
    assert.deepEqual(v6.labels.toStrings(), ['cidr:2001:db8::1/128', 'reserved:world']);
    assert.equal(v6.prefix.bits, 128);
    assert.equal(cidrIdentity(FIRST_LOCAL_IDENTITY, 'not-an-ip'), undefined);
  });
});
