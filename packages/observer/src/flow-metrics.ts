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
 *
 * Datapath events come by the million a second: each is counted under a
 * number that holds every field its labels depend on (tally()), and the
 * counters are brought up to date when they are read (a scrape), from one
 * recipe per distinct number, made from the first flow that had it.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { flow as pb } from '@membrane/proto';
import { flowType } from './flow-printer.js';

type Increment = [Counter, Record<string, string>];

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
    // Each family is brought up to date with the tally before it is read.
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: [registry], collect: () => this.flush() });
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

  private readonly recipes = new Map<number, Increment[]>();
  private readonly pending = new Map<number, number>();

  /** Counts a datapath flow by its key; `make` makes it when the key is new. */
  tally(key: number, make: () => pb.Flow): void {
    const n = this.pending.get(key);
    if (n !== undefined) {
      this.pending.set(key, n + 1);
      return;
    }
    if (!this.recipes.has(key)) {
      if (this.recipes.size >= 65536) {
        this.flush();
        this.recipes.clear();
      }
      this.recipes.set(key, this.recipe(make()));
    }
    this.pending.set(key, 1);
  }

  /** Brings the counters up to date with what tally() counted. */
  flush(): void {
    for (const [key, n] of this.pending) for (const [c, labels] of this.recipes.get(key)!) c.inc(labels, n);
    this.pending.clear();
  }

  observe(f: pb.Flow): void {
    for (const [c, labels] of this.recipe(f)) c.inc(labels, 1);
    const l7 = f.l7?.record;
    if (l7?.case === 'http' && f.l7!.type === pb.L7FlowType.RESPONSE) {
      this.httpDuration.observe({ method: l7.value.method, reporter: f.trafficDirection === pb.TrafficDirection.INGRESS ? 'server' : 'client' }, Number(f.l7!.latencyNs) / 1e9);
    }
  }

  /** The counters a flow increments, with their labels. */
  private recipe(f: pb.Flow): Increment[] {
    const out: Increment[] = [];
    const inc = (c: Counter, labels: Record<string, string>) => out.push([c, labels]);
    const verdict = pb.Verdict[f.verdict] ?? 'VERDICT_UNKNOWN';
    const l7 = f.l7?.record;
    const type = f.l7 ? 'L7' : 'L3_L4';
    const subtype = l7?.case === 'http' ? 'HTTP' : l7?.case === 'dns' ? 'DNS' : flowType(f);
    inc(this.flows, { type, subtype, verdict });
    const l4 = f.l4?.protocol;
    const proto = l4?.case ?? 'unknown';
    if (f.verdict === pb.Verdict.DROPPED && !f.l7) inc(this.drops, { reason: pb.DropReason[f.dropReasonDesc] ?? String(f.dropReasonDesc), protocol: proto });
    if (l4?.case === 'TCP' && l4.value.flags) {
      for (const k of ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'] as const) if (l4.value.flags[k]) inc(this.tcpFlags, { flag: k, family: 'IPv4' });
    }
    if (l4 && (l4.case === 'TCP' || l4.case === 'UDP' || l4.case === 'SCTP') && !f.l7 && f.isReply !== true) inc(this.ports, { protocol: proto, port: String(l4.value.destinationPort) });
    if (f.eventType?.type === 5 || (f.eventType?.type === 1 && (f.dropReasonDesc === pb.DropReason.POLICY_DENIED || f.dropReasonDesc === pb.DropReason.POLICY_DENY))) {
      const action = f.verdict === pb.Verdict.DROPPED ? 'dropped' : f.verdict === pb.Verdict.REDIRECTED ? 'redirected' : 'forwarded';
      inc(this.verdicts, { direction: f.trafficDirection === pb.TrafficDirection.EGRESS ? 'egress' : 'ingress', match: MATCH[f.policyMatchType] ?? 'none', action });
    }
    if (l7?.case === 'http') {
      const reporter = f.trafficDirection === pb.TrafficDirection.INGRESS ? 'server' : 'client';
      inc(this.httpRequests, { method: l7.value.method, protocol: l7.value.protocol, reporter });
      if (f.l7!.type === pb.L7FlowType.RESPONSE || f.verdict === pb.Verdict.DROPPED) {
        inc(this.httpResponses, { method: l7.value.method, status: String(l7.value.code), reporter });
      }
    }
    if (l7?.case === 'dns') {
      const labels = { rcode: RCODE[l7.value.rcode] ?? String(l7.value.rcode), qtypes: l7.value.qtypes.join(','), ips_returned: String(l7.value.ips.length) };
      inc(this.dnsQueries, { ...labels, rcode: '' });
      if (f.l7!.type === pb.L7FlowType.RESPONSE || f.verdict === pb.Verdict.DROPPED) inc(this.dnsResponses, labels);
    }
    return out;
  }

  lostEvents(source: pb.LostEventSource, n: number): void {
    this.lost.inc({ source: pb.LostEventSource[source] ?? 'UNKNOWN_LOST_EVENT_SOURCE' }, n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
