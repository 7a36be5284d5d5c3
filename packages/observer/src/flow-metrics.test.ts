import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { flow as pb } from '@membrane/proto';
import { FlowMetrics } from './flow-metrics.js';

test("Hubble's families and labels, counted from flows and losses", async () => {
  const m = new FlowMetrics();
  m.observe(create(pb.FlowSchema, { verdict: pb.Verdict.DROPPED, dropReasonDesc: pb.DropReason.POLICY_DENIED, eventType: { type: 1, subType: 133 }, trafficDirection: pb.TrafficDirection.INGRESS, l4: { protocol: { case: 'TCP', value: { destinationPort: 80, flags: { SYN: true } } } } }));
  m.observe(create(pb.FlowSchema, { verdict: pb.Verdict.FORWARDED, eventType: { type: 5 }, policyMatchType: 2, trafficDirection: pb.TrafficDirection.EGRESS, isReply: false, l4: { protocol: { case: 'UDP', value: { destinationPort: 53 } } } }));
  m.observe(create(pb.FlowSchema, { verdict: pb.Verdict.FORWARDED, Type: pb.FlowType.L7, trafficDirection: pb.TrafficDirection.EGRESS, l7: { type: pb.L7FlowType.RESPONSE, latencyNs: 2_000_000n, record: { case: 'http', value: { method: 'GET', code: 200, protocol: 'HTTP/1.1' } } } }));
  m.observe(create(pb.FlowSchema, { verdict: pb.Verdict.FORWARDED, Type: pb.FlowType.L7, l7: { type: pb.L7FlowType.RESPONSE, record: { case: 'dns', value: { rcode: 0, qtypes: ['A'], ips: ['203.0.113.1'] } } } }));
  m.lostEvents(pb.LostEventSource.PERF_EVENT_RING_BUFFER, 7);
  const t = await m.text();
  for (const line of [
    'hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"} 1',
    'hubble_tcp_flags_total{flag="SYN",family="IPv4"} 1',
    'hubble_port_distribution_total{protocol="UDP",port="53"} 1',
    'hubble_policy_verdicts_total{direction="ingress",match="none",action="dropped"} 1',
    'hubble_policy_verdicts_total{direction="egress",match="l3-l4",action="forwarded"} 1',
    'hubble_http_requests_total{method="GET",protocol="HTTP/1.1",reporter="client"} 1',
    'hubble_http_responses_total{method="GET",status="200",reporter="client"} 1',
    'hubble_http_request_duration_seconds_count{method="GET",reporter="client"} 1',
    'hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="1"} 1',
    'hubble_flows_processed_total{type="L7",subtype="DNS",verdict="FORWARDED"} 1',
    'hubble_lost_events_total{source="PERF_EVENT_RING_BUFFER"} 7',
  ]) assert.ok(t.split('\n').includes(line), `${line}\n---\n${t}`);
});
