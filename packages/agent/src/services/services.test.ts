// Services through the applier, on the fakes: ClusterIPs given and kept,
// the load balancer following pods (ready or not, deleted, replaced),
// targetPort by name, the cluster names for DNS, and bad input refused with
// nothing half-applied.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MembraneError } from '@membrane/api';
import { docs, pod, rig } from '../test/fakes.js';

const svc = (name: string, spec: Record<string, unknown>, namespace = 'default') => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec });
const web = (name: string, extra: Record<string, unknown> = {}) =>
  pod(name, { app: 'web' }, { containers: [{ name: 'c', command: ['sleep', 'infinity'], ports: [{ name: 'http', containerPort: 8080 }] }], ...extra });

async function refused(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MembraneError);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

describe('Services', () => {
  test('a Service over three pods: a ClusterIP from the CIDR, every ready pod a backend at its named port, names for DNS', async () => {
    const r = await rig();
    await r.applier.apply(docs(web('w1'), web('w2'), web('w3'), svc('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] })));
    const st = r.services.status('default', 'web');
    assert.equal(st.clusterIP, '10.96.0.2', 'the first free address (.1 is reserved, .10 is kube-dns)');
    const fe = r.lb.services.get('10.96.0.2:80/TCP')!;
    assert.deepEqual(fe.backends.map((b) => `${b.ip}:${b.port}`).sort(), ['10.9.0.2:8080', '10.9.0.3:8080', '10.9.0.4:8080']);
    assert.equal(st.condition?.status, 'True');
    assert.equal(r.services.view().services.get('web.default'), '10.96.0.2');
    // Re-applying changes nothing; the address stays.
    const again = await r.applier.apply(docs(svc('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] })));
    assert.equal(again.results[0]!.action, 'unchanged');
    assert.equal(r.services.status('default', 'web').clusterIP, '10.96.0.2');
  });

  test('backends follow pods: deleted, replaced, not ready', async () => {
    const r = await rig();
    await r.applier.apply(docs(web('w1'), web('w2'), svc('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] })));
    const ip = r.services.status('default', 'web').clusterIP!;
    const backends = () => r.lb.services.get(`${ip}:80/TCP`)!.backends.map((b) => b.ip).sort();
    assert.equal(backends().length, 2);
    const w1 = r.pods.get('default', 'w1')!.state.ip;
    await r.applier.delete({ refs: [{ kind: 'Pod', name: 'w1' }] });
    assert.ok(!backends().includes(w1));
    assert.equal(backends().length, 1);
    // A pod that is not ready gets no new connections.
    const w2 = r.pods.get('default', 'w2')!;
    w2.state.ready = false;
    await r.services.sync();
    assert.deepEqual(backends(), []);
    assert.equal(r.services.list().find((f) => f.service === 'default/web')!.backends[0]!.state, 'not-ready');
    w2.state.ready = true;
    await r.services.sync();
    assert.deepEqual(backends(), [w2.state.ip]);
    // A replaced pod: the new one is the backend, never the old.
    await r.applier.apply(docs(web('w2', { terminationGracePeriodSeconds: 1 })));
    assert.deepEqual(backends(), [r.pods.get('default', 'w2')!.state.ip]);
    assert.notEqual(r.pods.get('default', 'w2')!.state.ip, w2.state.ip);
  });

  test('a Service selecting nothing, or naming a port no pod has: a condition, no backends, the apply succeeds', async () => {
    const r = await rig();
    await r.applier.apply(docs(web('w1'), svc('nobody', { selector: { app: 'none' }, ports: [{ port: 80 }] }), svc('badport', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'grpc' }] })));
    assert.equal(r.services.status('default', 'nobody').condition?.reason, 'NoPodsSelected');
    const bad = r.services.status('default', 'badport').condition!;
    assert.equal(bad.reason, 'TargetPortNotFound');
    assert.match(bad.message, /targetPort "grpc" of port 80: pod w1 has no TCP container port of that name/);
    assert.deepEqual(r.lb.services.get(`${r.services.status('default', 'nobody').clusterIP}:80/TCP`)!.backends, []);
  });

  test('UDP ports and several ports per Service', async () => {
    const r = await rig();
    const dns = pod('dns', { app: 'dns' }, { containers: [{ name: 'c', command: ['sleep', 'infinity'], ports: [{ name: 'dns', containerPort: 5353, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 5353, protocol: 'TCP' }] }] });
    await r.applier.apply(docs(dns, svc('resolver', { selector: { app: 'dns' }, ports: [{ name: 'udp', port: 53, protocol: 'UDP', targetPort: 'dns' }, { name: 'tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' }] })));
    const ip = r.services.status('default', 'resolver').clusterIP!;
    assert.equal(r.lb.services.get(`${ip}:53/UDP`)!.backends[0]!.port, 5353);
    assert.equal(r.lb.services.get(`${ip}:53/TCP`)!.backends[0]!.port, 5353);
    const ids = r.services.list().map((f) => f.id);
    assert.equal(new Set(ids).size, ids.length, 'each frontend has an id of its own');
  });

  test('a ClusterIP asked for: kept; outside the CIDR, taken, reserved or changed: refused, nothing applied', async () => {
    const r = await rig();
    await r.applier.apply(docs(svc('a', { selector: { app: 'web' }, ports: [{ port: 80 }], clusterIP: '10.96.0.50' })));
    assert.equal(r.services.status('default', 'a').clusterIP, '10.96.0.50');
    await refused(r.applier.apply(docs(web('w9'), svc('b', { selector: { app: 'web' }, ports: [{ port: 80 }], clusterIP: '10.96.0.50' }))), 'MEMBRANE_E_CONFLICT', /spec\.clusterIP: 10\.96\.0\.50 is already allocated to Service default\/a/);
    assert.equal(r.pods.get('default', 'w9'), undefined, 'nothing of the file was applied');
    assert.equal(await r.store.get({ kind: 'Service', namespace: 'default', name: 'b' }), undefined);
    await refused(r.applier.apply(docs(svc('c', { ports: [{ port: 80 }], clusterIP: '10.97.0.5' }))), 'MEMBRANE_E_MANIFEST_INVALID', /spec\.clusterIP: 10\.97\.0\.5 is not inside the service CIDR 10\.96\.0\.0\/24/);
    await refused(r.applier.apply(docs(svc('d', { ports: [{ port: 80 }], clusterIP: '10.96.0.10' }))), 'MEMBRANE_E_MANIFEST_INVALID', /reserved for kube-system\/kube-dns/);
    await refused(r.applier.apply(docs(svc('a', { selector: { app: 'web' }, ports: [{ port: 80 }], clusterIP: '10.96.0.51' }))), 'MEMBRANE_E_MANIFEST_INVALID', /spec\.clusterIP: field is immutable/);
    await refused(r.applier.apply(docs(svc('e', { ports: [{ port: 80 }], clusterIP: 'None' }))), 'MEMBRANE_E_MANIFEST_INVALID', /headless Service/);
    await refused(r.applier.apply(docs(svc('f', { ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] }))), 'MEMBRANE_E_MANIFEST_INVALID', /duplicate port 80\/TCP/);
    // Deleting frees the address.
    await r.applier.delete({ refs: [{ kind: 'Service', name: 'a' }] });
    assert.equal(r.lb.services.has('10.96.0.50:80/TCP'), false);
    await r.applier.apply(docs(svc('b', { ports: [{ port: 80 }], clusterIP: '10.96.0.50' })));
    assert.equal(r.services.status('default', 'b').clusterIP, '10.96.0.50');
  });
});
