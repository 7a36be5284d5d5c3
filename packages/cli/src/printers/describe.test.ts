import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { describe } from './describe.js';

// The shape of `kubectl describe cnp` (shared/seed: the Star Wars walkthrough).
test('describe prints a CiliumNetworkPolicy as kubectl describe cnp does', () => {
  const text = describe({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'rule1', namespace: 'default', creationTimestamp: '2022-09-28T11:27:31Z', resourceVersion: '7' },
    spec: {
      description: 'L3-L4 policy to restrict deathstar access to empire ships only',
      endpointSelector: { matchLabels: { class: 'deathstar', org: 'empire' } },
      ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
    },
  });
  assert.equal(
    text,
    `Name:         rule1
Namespace:    default
Labels:       <none>
Annotations:  <none>
API Version:  cilium.io/v2
Kind:         CiliumNetworkPolicy
Metadata:
  Creation Timestamp:  2022-09-28T11:27:31Z
  Resource Version:    7
Spec:
  Description:  L3-L4 policy to restrict deathstar access to empire ships only
  Endpoint Selector:
    Match Labels:
      Class:  deathstar
      Org:    empire
  Ingress:
    From Endpoints:
      Match Labels:
        Org:  empire
    To Ports:
      Ports:
        Port:      80
        Protocol:  TCP
Events:            <none>
`,
  );
});
