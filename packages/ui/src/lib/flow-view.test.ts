import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create, createRegistry, fromJson, type JsonValue } from '@bufbuild/protobuf';
import { anyPack, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { flow as pb, membranev1, observer as obs } from '@membrane/proto';
import { exportJson, exportJsonpb, flowPolicies, flowRow } from './flow-view.js';

const put = create(pb.FlowSchema, {
  uuid: 'u1',
  time: timestampFromMs(Date.parse('2026-12-02T10:00:00.123Z')),
  verdict: pb.Verdict.DROPPED,
  nodeName: 'node1',
  source: { namespace: 'default', podName: 'tiefighter', identity: 257 },
  destination: { namespace: 'default', podName: 'deathstar-1', identity: 259 },
  IP: { source: '10.200.0.2', destination: '10.200.0.4' },
  l4: { protocol: { case: 'TCP', value: { sourcePort: 41000, destinationPort: 80 } } },
  l7: { type: pb.L7FlowType.REQUEST, record: { case: 'http', value: { method: 'PUT', url: 'http://deathstar/v1/exhaust-port<script>', code: 403 } } },
  ingressDeniedBy: [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }],
  extensions: anyPack(membranev1.FlowExtensionSchema, create(membranev1.FlowExtensionSchema, { rules: ['CiliumNetworkPolicy default/rule1 ingress[0]'], reason: 'no HTTP rule matches' })),
});

test("a flow's row, its policies and rules, as text", () => {
  assert.deepEqual(flowRow(put), { source: 'default/tiefighter:41000', destination: 'default/deathstar-1:80', port: '80/TCP', l7: 'PUT http://deathstar/v1/exhaust-port<script> → 403', verdict: 'DROPPED', time: 'Dec  2 10:00:00.123' });
  const p = flowPolicies(put);
  assert.deepEqual(p.policies, [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', role: 'ingress denied' }]);
  assert.deepEqual([p.rules, p.reason], [['CiliumNetworkPolicy default/rule1 ingress[0]'], 'no HTTP rule matches']);
});

test('exports: a JSON array, and jsonpb lines that read back as GetFlowsResponses', () => {
  const arr = JSON.parse(exportJson([put, put])) as { uuid: string; l7: { http: { code: number } } }[];
  assert.deepEqual([arr.length, arr[0]!.uuid, arr[0]!.l7.http.code], [2, 'u1', 403]);
  const lines = exportJsonpb([put]).trim().split('\n');
  const back = fromJson(obs.GetFlowsResponseSchema, JSON.parse(lines[0]!) as JsonValue, { ignoreUnknownFields: true, registry: createRegistry(membranev1.FlowExtensionSchema) });
  assert.equal(back.responseTypes.case, 'flow');
  assert.equal((back.responseTypes.value as pb.Flow).l7?.record.case, 'http');
  assert.equal(back.nodeName, 'node1');
});
