// Regeneration without a kernel: what EndpointManager writes, that a plan
// failing for one endpoint changes nothing, that a failed swap puts every
// endpoint back on its previous policy, and that identities never leak.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { parsePolicyDocument, type Rule } from '@membrane/policy';
import { EndpointManager, type EndpointSpec } from './endpoint-manager.js';
import { FakeDatapath } from './testing/fake-datapath.js';

function rules(...docs: unknown[]): Rule[] {
  return docs.flatMap((d, i) => parsePolicyDocument(d, { source: 'test', label: `document ${i + 1}` }).rules);
}

const rule1 = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'rule1', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { class: 'deathstar' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
    egress: [{ toCIDR: ['192.0.2.0/24'] }],
  },
};

function ep(epId: number, labels: Record<string, string>, ports: EndpointSpec['namedPorts'] = []): EndpointSpec {
  return { name: `default/pod${epId}`, epId, ifindex: 100 + epId, ipv4: `10.9.0.${epId + 1}`, namespace: 'default', podLabels: labels, namespaceLabels: {}, serviceAccount: 'default', namedPorts: ports };
}

const world = [ep(1, { org: 'empire', class: 'deathstar' }), ep(2, { org: 'empire', class: 'tiefighter' }), ep(3, { org: 'alliance', class: 'xwing' })];

describe('EndpointManager', () => {
  test('onChange is told after each commit and removal, with what is in force then; never for a plan aborted', () => {
    const dp = new FakeDatapath();
    const seen: number[][] = [];
    const m: EndpointManager = new EndpointManager(dp, { onChange: () => seen.push(m.ipcache().filter((e) => e.endpointId !== undefined).map((e) => e.endpointId!).sort()) });
    m.abort(m.plan({ endpoints: world, rules: rules(rule1), hostAddresses: [] }));
    assert.deepEqual(seen, []);
    m.commit(m.plan({ endpoints: world, rules: rules(rule1), hostAddresses: [] }));
    assert.deepEqual(seen, [[1, 2, 3]]);
    m.remove(3);
    m.remove(3);
    assert.equal(seen.length, 2, 'once per removal of an endpoint that was there');
  });

  test('a committed plan writes ipcache, endpoint entries and every policy map; nothing stays open but the maps in force', () => {
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    const plan = m.plan({ endpoints: world, rules: rules(rule1), hostAddresses: ['192.0.2.2'] });
    assert.equal(dp.policies.size, 0, 'nothing is in force before commit');
    m.commit(plan);
    assert.deepEqual([...dp.policies.keys()].sort(), [1, 2, 3]);
    assert.equal(dp.endpoints.get(101)?.ep_id, 1);
    assert.equal(dp.ipcache.get('192.0.2.2/32')?.identity, 1, 'host address is identity host');
    assert.ok(dp.ipcache.get('192.0.2.0/24')!.identity >= 1 << 24, 'the CIDR has a local identity');
    assert.equal(dp.ipcache.get('10.9.0.2/32')?.epId, 1);
    assert.equal(m.enforcement(1).ingress, true);
    assert.equal(m.enforcement(2).ingress, false);
    assert.equal(dp.open.size, 3, 'one open map per endpoint (the one in force)');
    // Install happens strictly after every prepare.
    const firstInstall = dp.log.findIndex((l) => l.op === 'install');
    const lastPrepare = dp.log.map((l) => l.op).lastIndexOf('prepare');
    assert.ok(lastPrepare < firstInstall);
  });

  test('re-planning the same world 100 times keeps the identities and their references as they were', () => {
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    for (let i = 0; i < 100; i++) m.commit(m.plan({ endpoints: world, rules: rules(rule1), hostAddresses: [] }));
    const ids = m.identities.list().filter((i) => i.id >= 256);
    assert.equal(ids.length, 4, 'three label sets and one CIDR');
    for (const i of ids) assert.equal(m.identities.refs(i.id), i.id >= 1 << 24 ? 1 : 1, `identity ${i.id} holds one reference`);
    assert.equal(dp.log.filter((l) => l.op === 'install').length, 3, 'an unchanged policy is not swapped again');
  });

  test('a policy map that cannot be filled for one endpoint: the error names it, every endpoint keeps its policy, nothing leaks', () => {
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    m.commit(m.plan({ endpoints: world, rules: [], hostAddresses: [] }));
    const before = new Map(dp.policies);
    const idsBefore = m.identities.snapshot();
    dp.failOn = { op: 'prepare', id: 1 };
    assert.throws(() => m.plan({ endpoints: world, rules: rules(rule1), hostAddresses: [] }), /default\/pod1: prepare 1: E2BIG/);
    assert.deepEqual(dp.policies, before);
    assert.equal(dp.open.size, 3, 'the maps prepared before the failure were closed');
    assert.deepEqual(m.identities.snapshot(), idsBefore, 'identities as before');
  });

  test('a swap that fails half-way puts the endpoints already swapped back on their previous map', () => {
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    m.commit(m.plan({ endpoints: world, rules: [], hostAddresses: [] }));
    const before = new Map(dp.policies);
    const everyone = { ...rule1, metadata: { name: 'everyone', namespace: 'default' }, spec: { ...rule1.spec, endpointSelector: {} } };
    const plan = m.plan({ endpoints: world, rules: rules(everyone), hostAddresses: [] });
    assert.equal(plan.changed, 3);
    dp.failOn = { op: 'install', id: 3 };
    assert.throws(() => m.commit(plan), /E2BIG/);
    assert.deepEqual(dp.policies, before, 'every endpoint is on its previous policy');
    assert.deepEqual(dp.log.filter((l) => l.op === 'install').slice(-5).map((l) => l.id), [1, 2, 3, 2, 1], 'swapped 1 and 2, 3 failed, then 2 and 1 put back');
    assert.equal(m.enforcement(1).ingress, false);
    assert.equal(dp.open.size, 3);
  });

  test('an endpoint that leaves the world loses its entry, its map and its address; its identity is freed', () => {
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    m.commit(m.plan({ endpoints: world, rules: [], hostAddresses: [] }));
    const xwing = m.identityOf(3)!.id;
    m.commit(m.plan({ endpoints: world.slice(0, 2), rules: [], hostAddresses: [] }));
    assert.equal(dp.endpoints.has(103), false);
    assert.equal(dp.policies.has(3), false);
    assert.equal(dp.ipcache.has('10.9.0.4/32'), false);
    assert.equal(m.identities.get(xwing), undefined);
    assert.equal(dp.open.size, 2);
  });

  test('named ports: ingress against the endpoint, egress against the peer that has the name', () => {
    const named = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'named', namespace: 'default' },
      spec: {
        endpointSelector: { matchLabels: { class: 'tiefighter' } },
        ingress: [{ toPorts: [{ ports: [{ port: 'http' }] }] }],
        egress: [{ toEndpoints: [{ matchLabels: { class: 'deathstar' } }], toPorts: [{ ports: [{ port: 'http' }] }] }],
      },
    };
    const eps = [ep(1, { class: 'deathstar' }, [{ name: 'http', port: 8080, proto: 6 }]), ep(2, { class: 'tiefighter' }, [{ name: 'http', port: 9090, proto: 6 }]), ep(3, { class: 'xwing' }, [{ name: 'http', port: 7070, proto: 6 }])];
    const dp = new FakeDatapath();
    const m = new EndpointManager(dp);
    m.commit(m.plan({ endpoints: eps, rules: rules(named), hostAddresses: [] }));
    const w = dp.policies.get(2)!.filter((x) => x.identity !== 0xffffffff && !x.deny);
    const ports = (dir: string) => [...new Set(w.filter((x) => x.direction === dir && x.identity !== 1).map((x) => x.port))].sort();
    assert.deepEqual(ports('ingress'), [9090], 'ingress: its own container port named http');
    assert.deepEqual(ports('egress'), [8080], "egress: the deathstar's port named http, not the xwing's");
  });
});
