// The applier on a memory store, a fake datapath and a fake pod network:
// all-or-nothing apply and delete, the delete cascade, Deployment
// reconcile, retries of pods that could not start, and what regeneration
// writes — without root.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MembraneError } from '@membrane/api';
import { docs, pod, rig } from '../test/fakes.js';

const rule1 = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'rule1', namespace: 'default' },
  spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
};

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<MembraneError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MembraneError, `a MembraneError, not ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('Applier', () => {
  test('a file whose third pod cannot be plumbed: nothing of it is in force, store and kernel as before, the error names the pod', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('first', { org: 'empire' })));
    const storeBefore = (await r.store.list('Pod')).map((o) => o.name);
    const kernelBefore = { policies: new Map(r.dp.policies), endpoints: new Map(r.dp.endpoints), ipcache: new Map(r.dp.ipcache) };
    r.net.failAddAfter = 3;
    await rejects(r.applier.apply(docs(rule1, pod('a', { class: 'deathstar' }), pod('b'), pod('c'))), 'MEMBRANE_E_IP_EXHAUSTED', /pod default\/c: no free address left/);
    assert.deepEqual((await r.store.list('Pod')).map((o) => o.name), storeBefore);
    assert.equal(await r.store.get({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }), undefined);
    assert.deepEqual(r.dp.policies, kernelBefore.policies);
    assert.deepEqual(r.dp.endpoints, kernelBefore.endpoints);
    assert.deepEqual(r.dp.ipcache, kernelBefore.ipcache);
    assert.equal(r.net.pods.size, 1, 'the two pods plumbed for the file were taken down again');
    assert.equal(r.dp.open.size, 1, 'no prepared policy map left open');
    // The same file applies once there is room.
    const ok = await r.applier.apply(docs(rule1, pod('a', { class: 'deathstar' }), pod('b'), pod('c')));
    assert.deepEqual(ok.results.map((x) => x.action), ['created', 'created', 'created', 'created']);
  });

  test('regeneration that fails for one endpoint: the apply is refused and every endpoint keeps its previous policy', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('deathstar', { class: 'deathstar' }), pod('tiefighter', { org: 'empire' })));
    const before = new Map(r.dp.policies);
    const ds = r.pods.get('default', 'deathstar')!;
    r.dp.failOn = { op: 'prepare', id: ds.state.epId };
    await rejects(r.applier.apply(docs(rule1)), 'MEMBRANE_E_DATAPATH', /default\/deathstar/);
    assert.deepEqual(r.dp.policies, before);
    assert.equal(await r.store.get({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }), undefined);
    assert.equal(r.endpoints.enforcement(ds.state.epId).ingress, false);
  });

  test('a swap the kernel refuses after the store committed: the store is put back', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('deathstar', { class: 'deathstar' })));
    const ds = r.pods.get('default', 'deathstar')!;
    r.dp.failOn = { op: 'install', id: ds.state.epId };
    await rejects(r.applier.apply(docs(rule1)), 'MEMBRANE_E_DATAPATH', /the kernel refused the change \(nothing changed\)/);
    assert.equal(await r.store.get({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }), undefined);
    assert.equal(r.endpoints.enforcement(ds.state.epId).ingress, false);
  });

  test('every invalid document is reported, not only the first', async () => {
    const r = await rig();
    const bad = (name: string) => ({ ...rule1, metadata: { name, namespace: 'default' }, spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 'http-alt!' }] }] }] } });
    const e = await rejects(r.applier.apply(docs(bad('one'), pod('ok'), bad('two'))), 'MEMBRANE_E_POLICY_INVALID', /document 1/);
    assert.equal(e.details.length, 2);
    assert.match(e.details[1]!, /document 3 \(CiliumNetworkPolicy default\/two\)/);
    assert.equal((await r.store.list('Pod')).length, 0);
  });

  test('a changed pod: its replacement runs before the old one is taken down', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('web', { v: '1' })));
    const old = r.pods.get('default', 'web')!;
    r.dp.log.length = 0;
    const res = await r.applier.apply(docs(pod('web', { v: '2' })));
    assert.equal(res.results[0]!.action, 'configured');
    const now = r.pods.get('default', 'web')!;
    assert.notEqual(now.state.epId, old.state.epId);
    const ops = r.dp.log.map((l) => `${l.op} ${l.id}`);
    assert.ok(ops.indexOf(`install ${now.state.epId}`) < ops.indexOf(`detach ${old.ifindex}`), ops.join(', '));
    assert.equal(r.runner.of(old.netns).length, 0, 'old processes stopped');
    assert.equal(r.runner.of(now.netns).length, 1);
    assert.equal(r.dp.endpoints.has(old.ifindex), false);
  });

  test('a pod that cannot start is Failed with the reason, and the next apply of the same file starts it again', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('broken', {}, { restartPolicy: 'Never', containers: [{ name: 'c', command: ['no-such-thing'] }] })));
    const rt = r.pods.get('default', 'broken')!;
    assert.equal(rt.state.phase, 'Failed');
    assert.equal(rt.state.reason, 'ContainerCannotRun');
    assert.match(rt.state.message!, /executable file not found/);
    r.runner.known.add('no-such-thing');
    const again = await r.applier.apply(docs(pod('broken', {}, { restartPolicy: 'Never', containers: [{ name: 'c', command: ['no-such-thing'] }] })));
    assert.equal(again.results[0]!.action, 'restarted');
    assert.equal(r.pods.get('default', 'broken')!.state.phase, 'Running');
    const unchanged = await r.applier.apply(docs(pod('broken', {}, { restartPolicy: 'Never', containers: [{ name: 'c', command: ['no-such-thing'] }] })));
    assert.equal(unchanged.results[0]!.action, 'unchanged');
  });

  test('delete cascade: a namespace takes its pods and policies; what the kernel kept is reported', async () => {
    const r = await rig();
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'galaxy' } };
    await r.applier.apply(docs(ns, pod('a', {}, {}, 'galaxy'), pod('b', {}, {}, 'galaxy'), { ...rule1, metadata: { name: 'rule1', namespace: 'galaxy' } }));
    const b = r.pods.get('galaxy', 'b')!;
    r.net.failRemove.add(b.state.podId);
    const res = await r.applier.delete({ refs: [{ kind: 'Namespace', name: 'galaxy' }] });
    assert.deepEqual(res.results.map((x) => `${x.kind} ${x.name}`).sort(), ['CiliumNetworkPolicy rule1', 'Namespace galaxy', 'Pod a', 'Pod b']);
    assert.equal(res.problems?.length, 1);
    assert.match(res.problems![0]!, /pod galaxy\/b: remove its network namespace mbrt_pod_\w+ and veth .*Device or resource busy/);
    assert.equal(r.pods.list().length, 0);
    assert.equal((await r.store.list('Pod')).length, 0);
    assert.equal(r.dp.endpoints.size, 0);
    await rejects(r.applier.delete({ refs: [{ kind: 'Namespace', name: 'default' }] }), 'MEMBRANE_E_CONFLICT', /cannot be deleted/);
    await rejects(r.applier.delete({ refs: [{ kind: 'Pod', name: 'nope' }] }), 'MEMBRANE_E_NOT_FOUND', /not found: Pod default\/nope/);
  });

  test('Deployment: replicas made, scaled, a deleted pod replaced, all gone with the Deployment', async () => {
    const r = await rig();
    const deploy = (replicas: number) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'deathstar', namespace: 'default' },
      spec: { replicas, selector: { matchLabels: { class: 'deathstar' } }, template: { metadata: { labels: { class: 'deathstar' } }, spec: { containers: [{ name: 'c', command: ['sleep', 'infinity'] }] } } },
    });
    await r.applier.apply(docs(deploy(2)));
    const owned = () => r.pods.ownedBy('Deployment default/deathstar').map((p) => p.state.name);
    assert.equal(owned().length, 2);
    assert.equal((await r.store.list('Pod')).length, 2, 'its pods are stored objects');
    await r.applier.apply(docs(deploy(3)));
    assert.equal(owned().length, 3);
    const [victim, ...others] = owned();
    await r.applier.delete({ refs: [{ kind: 'Pod', name: victim! }] });
    assert.equal(owned().length, 3);
    assert.ok(!owned().includes(victim!));
    for (const o of others) assert.ok(owned().includes(o), `${o} is kept: only the deleted pod is replaced`);
    await rejects(r.applier.apply(docs(pod(owned()[0]!))), 'MEMBRANE_E_CONFLICT', /belongs to Deployment default\/deathstar/);
    await r.applier.delete({ refs: [{ kind: 'Deployment', name: 'deathstar' }] });
    assert.equal(owned().length, 0);
    assert.equal((await r.store.list('Pod')).length, 0);
  });

  test('identities stay the same size across 100 re-applies of one policy (no leaked CIDR references)', async () => {
    const r = await rig();
    await r.applier.apply(docs(pod('a', { app: 'a' })));
    for (let i = 0; i < 100; i++) {
      const cidr = { ...rule1, spec: { endpointSelector: {}, egress: [{ toCIDR: ['198.51.100.0/24'] }] }, metadata: { name: 'cidr', namespace: 'default', labels: { round: String(i % 2) } } };
      await r.applier.apply(docs(cidr));
    }
    const ids = r.endpoints.identities.list().filter((i) => i.id >= 256);
    assert.equal(ids.length, 3, "one endpoint identity, the DNS server's, one CIDR identity");
    assert.ok(ids.every((i) => r.endpoints.identities.refs(i.id) === 1));
  });
});
