// Workload manifests: what the agent accepts, with the defaults Kubernetes
// applies, and clear errors (document, field, reason) for what it refuses.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ValidationError } from './errors.js';
import { parseManifests } from './manifest.js';

const parse = (yaml: string) => parseManifests(yaml, 'w.yaml');
const fails = (yaml: string, message: string) =>
  assert.throws(() => parse(yaml), (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.message, message);
    return true;
  });

test('a pod with command, args, env, ports and a readiness probe; namespace defaults to default', () => {
  const [p] = parse(`
apiVersion: v1
kind: Pod
metadata: {name: deathstar, labels: {org: empire, class: deathstar}}
spec:
  containers:
  - name: main
    image: docker.io/cilium/starwars
    command: [node, server.js]
    args: ["--port", "80"]
    env: [{name: MODE, value: prod}]
    ports: [{containerPort: 80, name: http}]
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
`);
  assert.equal(p!.manifest.kind, 'Pod');
  assert.equal(p!.manifest.metadata.namespace, 'default');
  assert.deepEqual(p!.ref, { source: 'w.yaml', label: 'document 1', object: 'Pod default/deathstar' });
});

test('namespaces are cluster-scoped; deployments default to one replica; services validate ports', () => {
  const docs = parse(`
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, command: [sleep, "1000"]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
`);
  assert.deepEqual(docs.map((d) => d.manifest.kind), ['Namespace', 'Deployment', 'Service']);
  assert.equal((docs[1]!.manifest as { spec: { replicas: number } }).spec.replicas, 1);
});

test('errors name the document, the field and the reason', () => {
  fails('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n', 'w.yaml: document 1 (Pod default/p): spec.containers: must have at least one container');
  fails('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}], hostNetwork: true}\n', 'w.yaml: document 1 (Pod default/p): spec.hostNetwork: hostNetwork (every pod gets its own network namespace) is not supported by Membrane yet');
  fails('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, env: [{name: X, valueFrom: {}}]}]}\n', 'w.yaml: document 1 (Pod default/p): spec.containers[0].env[0].valueFrom: env valueFrom is not supported by Membrane yet');
  fails('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: b}}, spec: {containers: [{name: c}]}}}\n', 'w.yaml: document 1 (Deployment default/d): spec.template.metadata.labels: do not match the selector (selector needs app=a)');
  fails('apiVersion: v1\nkind: Namespace\nmetadata: {name: Prod}\n', 'w.yaml: document 1 (Namespace Prod): metadata.name: "Prod" must consist of lower case alphanumeric characters, \'-\' or \'.\', and start and end with an alphanumeric character');
  fails('apiVersion: apps/v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n', 'w.yaml: document 1 (Pod default/p): apiVersion: "apps/v1" does not serve kind Pod (use v1)');
  fails('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, readinessProbe: {periodSeconds: 1}}]}\n', 'w.yaml: document 1 (Pod default/p): spec.containers[0].readinessProbe: must specify exactly one of tcpSocket, httpGet or exec');
});
