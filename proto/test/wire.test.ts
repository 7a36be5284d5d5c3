// The generated messages speak Hubble's wire format: the field numbers
// Hubble's clients decode (checked one by one against Hubble's published
// flow/observer/peer API), a binary round trip, JSON with proto field
// names (what `hubble observe -o json` prints), and Membrane's extension
// packed in flow.Flow.extensions.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create, createRegistry, fromBinary, toBinary, toJson } from '@bufbuild/protobuf';
import { anyPack, anyUnpack, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { flow, membranev1, observer, peer } from '../index.js';

const numbers = (schema: { fields: readonly { name: string; number: number }[] }) => Object.fromEntries(schema.fields.map((f) => [f.name, f.number]));

test("field numbers are Hubble's", () => {
  const f = numbers(flow.FlowSchema);
  assert.deepEqual(
    [f['Summary'], f['time'], f['uuid'], f['verdict'], f['drop_reason'], f['IP'], f['l4'], f['source'], f['destination'], f['Type'], f['node_name'], f['source_names'], f['destination_names'], f['l7'], f['reply'], f['event_type'], f['source_service'], f['destination_service'], f['traffic_direction'], f['policy_match_type'], f['trace_observation_point'], f['drop_reason_desc'], f['is_reply'], f['interface'], f['proxy_port'], f['egress_allowed_by'], f['ingress_allowed_by'], f['egress_denied_by'], f['ingress_denied_by'], f['extensions']],
    [100000, 1, 34, 2, 3, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 21001, 21002, 21004, 21005, 150000],
  );
  assert.deepEqual(numbers(flow.EndpointSchema), { ID: 1, identity: 2, namespace: 3, labels: 4, pod_name: 5, workloads: 6 });
  assert.deepEqual(numbers(flow.Layer7Schema), { type: 1, latency_ns: 2, dns: 100, http: 101 });
  assert.deepEqual(numbers(flow.HTTPSchema), { code: 1, method: 2, url: 3, protocol: 4, headers: 5 });
  assert.deepEqual(numbers(flow.DNSSchema), { query: 1, ips: 2, ttl: 3, cnames: 4, observation_source: 5, rcode: 6, qtypes: 7, rrtypes: 8 });
  assert.deepEqual(numbers(flow.LostEventSchema), { source: 1, num_events_lost: 2, cpu: 3 });
  assert.deepEqual(numbers(flow.PolicySchema), { name: 1, namespace: 2, labels: 3, revision: 4, kind: 5 });
  const ff = numbers(flow.FlowFilterSchema);
  assert.deepEqual([ff['source_pod'], ff['destination_pod'], ff['verdict'], ff['http_status_code'], ff['protocol'], ff['destination_port'], ff['source_label'], ff['http_method'], ff['http_path'], ff['traffic_direction']], [2, 4, 5, 9, 12, 14, 10, 21, 22, 30]);
  assert.deepEqual(numbers(observer.GetFlowsRequestSchema), { number: 1, first: 9, follow: 3, blacklist: 5, whitelist: 6, since: 7, until: 8 });
  assert.deepEqual(numbers(observer.GetFlowsResponseSchema), { flow: 1, node_status: 2, lost_events: 3, node_name: 1000, time: 1001 });
  assert.deepEqual(numbers(observer.ServerStatusResponseSchema), { num_flows: 1, max_flows: 2, seen_flows: 3, uptime_ns: 4, num_connected_nodes: 5, num_unavailable_nodes: 6, unavailable_nodes: 7, version: 8 });
  assert.deepEqual(numbers(peer.ChangeNotificationSchema), { name: 1, address: 2, type: 3, tls: 4 });
  assert.deepEqual(
    observer.file_observer_observer.services[0]!.methods.map((m) => [m.name, m.methodKind]),
    [['GetFlows', 'server_streaming'], ['GetNodes', 'unary'], ['GetNamespaces', 'unary'], ['ServerStatus', 'unary']],
  );
  assert.equal(observer.file_observer_observer.services[0]!.typeName, 'observer.Observer');
});

test('a dropped flow: binary round trip, JSON with proto field names, the extension unpacked', () => {
  const ext = create(membranev1.FlowExtensionSchema, { defaultDenyBy: [{ name: 'rule1', namespace: 'default', kind: 'CiliumNetworkPolicy' }], reason: 'default deny' });
  const f = create(flow.FlowSchema, {
    time: timestampFromDate(new Date('2026-12-02T10:00:00Z')),
    verdict: flow.Verdict.DROPPED,
    dropReasonDesc: flow.DropReason.POLICY_DENIED,
    IP: { source: '10.200.0.5', destination: '10.200.0.3', ipVersion: flow.IPVersion.IPv4 },
    l4: { protocol: { case: 'TCP', value: { sourcePort: 40000, destinationPort: 80, flags: { SYN: true } } } },
    source: { ID: 5, identity: 1002, namespace: 'default', podName: 'xwing', labels: ['k8s:class=xwing'] },
    destination: { ID: 3, identity: 1001, namespace: 'default', podName: 'deathstar-1', labels: ['k8s:class=deathstar'] },
    Type: flow.FlowType.L3_L4,
    trafficDirection: flow.TrafficDirection.INGRESS,
    isReply: false,
    extensions: anyPack(membranev1.FlowExtensionSchema, ext),
  });
  const back = fromBinary(flow.FlowSchema, toBinary(flow.FlowSchema, f));
  assert.equal(back.source?.podName, 'xwing');
  assert.equal(back.l4?.protocol.case, 'TCP');
  const registry = createRegistry(membranev1.FlowExtensionSchema);
  const json = toJson(flow.FlowSchema, back, { useProtoFieldName: true, registry }) as Record<string, unknown>;
  assert.equal(json['verdict'], 'DROPPED');
  assert.equal(json['drop_reason_desc'], 'POLICY_DENIED');
  assert.deepEqual(json['l4'], { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } });
  assert.equal((json['source'] as Record<string, unknown>)['pod_name'], 'xwing');
  assert.equal(json['is_reply'], false);
  assert.equal((json['extensions'] as Record<string, unknown>)['@type'], 'type.googleapis.com/membrane.v1.FlowExtension');
  const unpacked = anyUnpack(back.extensions!, membranev1.FlowExtensionSchema);
  assert.deepEqual(unpacked?.defaultDenyBy.map((p) => [p.kind, p.namespace, p.name]), [['CiliumNetworkPolicy', 'default', 'rule1']]);
  const resp = create(observer.GetFlowsResponseSchema, { responseTypes: { case: 'flow', value: back }, nodeName: 'membrane' });
  assert.equal(fromBinary(observer.GetFlowsResponseSchema, toBinary(observer.GetFlowsResponseSchema, resp)).responseTypes.case, 'flow');
});
