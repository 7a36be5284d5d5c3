/**
 * Hubble's metric families, with Hubble's names and labels, counted from
 * every flow the observer makes (and every loss it counts), for Prometheus
 * to scrape (`/metrics`, prom-client):
 *   hubble_flows_processed_total{type,subtype,verdict}
 *   hubble_drop_total{reason,protocol}
 *   hubble_tcp_flags_total{flag,family}
 *   hubble_port_distribution_total{protocol,port}
 *   hubble_policy_verdicts_total{direction,match,action}
 *   hubble_http_requests_total{method,protocol,reporter}
 *   hubble_http_responses_total{method,status,reporter}
 *   hubble_http_request_duration_seconds{method,reporter}
 *   hubble_dns_queries_total{rcode,qtypes,ips_returned}
 *   hubble_dns_responses_total{rcode,qtypes,ips_returned}
 *   hubble_lost_events_total{source}
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { flow as pb } from '@membrane/proto';
import { flowType } from './flow-printer.js';

const MATCH = ['none', 'l3-only', 'l3-l4', 'l4-only', 'all', 'l3-proto', 'proto-only'];
const RCODE = ['No Error', 'Format Error', 'Server Failure', 'Non-Existent Domain', 'Not Implemented', 'Query Refused'];

export class FlowMetrics {
  readonly registry: Registry;
  private readonly flows: Counter;
  private readonly drops: Counter;
  private readonly tcpFlags: Counter;
  private readonly ports: Counter;
  private readonly verdicts: Counter;
  private readonly httpRequests: Counter;
  private readonly httpResponses: Counter;
  private readonly httpDuration: Histogram;
  private readonly dnsQueries: Counter;
  private readonly dnsResponses: Counter;
  private readonly lost: Counter;

  constructor(registry = new Registry()) {
    this.registry = registry;
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: [registry] });
    this.flows = counter('hubble_flows_processed_total', 'Total number of flows processed', ['type', 'subtype', 'verdict']);
    this.drops = counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol']);
    this.tcpFlags = counter('hubble_tcp_flags_total', 'TCP flag occurrences', ['flag', 'family']);
    this.ports = counter('hubble_port_distribution_total', 'Numbers of packets distributed by destination port', ['protocol', 'port']);
    this.verdicts = counter('hubble_policy_verdicts_total', 'Total number of policy verdicts', ['direction', 'match', 'action']);
    this.httpRequests = counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'reporter']);
    this.httpResponses = counter('hubble_http_responses_total', 'Count of HTTP responses', ['method', 'status', 'reporter']);
    this.httpDuration = new Histogram({ name: 'hubble_http_request_duration_seconds', help: 'Quantiles of HTTP request duration in seconds', labelNames: ['method', 'reporter'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
    this.dnsQueries = counter('hubble_dns_queries_total', 'Number of DNS queries observed', ['rcode', 'qtypes', 'ips_returned']);
    this.dnsResponses = counter('hubble_dns_responses_total', 'Number of DNS responses observed', ['rcode', 'qtypes', 'ips_returned']);
    this.lost = counter('hubble_lost_events_total', 'Number of lost events', ['source']);
  }

  observe(f: pb.Flow): void {
    const verdict = pb.Verdict[f.verdict] ?? 'VERDICT_UNKNOWN';
    const l7 = f.l7?.record;
    const type = f.l7 ? 'L7' : 'L3_L4';
    const subtype = l7?.case === 'http' ? 'HTTP' : l7?.case === 'dns' ? 'DNS' : flowType(f);
    this.flows.inc({ type, subtype, verdict });
    const l4 = f.l4?.protocol;
    const proto = l4?.case ?? 'unknown';
    if (f.verdict === pb.Verdict.DROPPED && !f.l7) this.drops.inc({ reason: pb.DropReason[f.dropReasonDesc] ?? String(f.dropReasonDesc), protocol: proto });
    if (l4?.case === 'TCP' && l4.value.flags) {
      for (const k of ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'] as const) if (l4.value.flags[k]) this.tcpFlags.inc({ flag: k, family: 'IPv4' });
    }
    if (l4 && (l4.case === 'TCP' || l4.case === 'UDP' || l4.case === 'SCTP') && !f.l7 && f.isReply !== true) this.ports.inc({ protocol: proto, port: String(l4.value.destinationPort) });
    if (f.eventType?.type === 5 || (f.eventType?.type === 1 && (f.dropReasonDesc === pb.DropReason.POLICY_DENIED || f.dropReasonDesc === pb.DropReason.POLICY_DENY))) {
      const action = f.verdict === pb.Verdict.DROPPED ? 'dropped' : f.verdict === pb.Verdict.REDIRECTED ? 'redirected' : 'forwarded';
      this.verdicts.inc({ direction: f.trafficDirection === pb.TrafficDirection.EGRESS ? 'egress' : 'ingress', match: MATCH[f.policyMatchType] ?? 'none', action });
    }
    if (l7?.case === 'http') {
      const reporter = f.trafficDirection === pb.TrafficDirection.INGRESS ? 'server' : 'client';
      this.httpRequests.inc({ method: l7.value.method, protocol: l7.value.protocol, reporter });
      if (f.l7!.type === pb.L7FlowType.RESPONSE || f.verdict === pb.Verdict.DROPPED) {
        this.httpResponses.inc({ method: l7.value.method, status: String(l7.value.code), reporter });
        if (f.l7!.type === pb.L7FlowType.RESPONSE) this.httpDuration.observe({ method: l7.value.method, reporter }, Number(f.l7!.latencyNs) / 1e9);
      }
    }
    if (l7?.case === 'dns') {
      const labels = { rcode: RCODE[l7.value.rcode] ?? String(l7.value.rcode), qtypes: l7.value.qtypes.join(','), ips_returned: String(l7.value.ips.length) };
      this.dnsQueries.inc({ ...labels, rcode: '' });
      if (f.l7!.type === pb.L7FlowType.RESPONSE || f.verdict === pb.Verdict.DROPPED) this.dnsResponses.inc(labels);
    }
  }

  lostEvents(source: pb.LostEventSource, n: number): void {
    this.lost.inc({ source: pb.LostEventSource[source] ?? 'UNKNOWN_LOST_EVENT_SOURCE' }, n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
