/**
 * The proxies' events → Hubble L7 flows: an HTTP request the proxy judged
 * (REQUEST when denied, RESPONSE with its latency when forwarded) and a DNS
 * query the DNS proxy answered or refused, each attributed to the rules
 * that decided it. They arrive seldom (one per request), so they are made
 * as they come; the observer's ring keeps them made.
 */
import { create } from '@bufbuild/protobuf';
import { anyPack, timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { DnsEvent, L7HttpEvent, RuleRef } from '@membrane/api';
import { flow as pb, membranev1 } from '@membrane/proto';
import { ipv4Number, type FlowContext } from './flow-context.js';
import type { DatapathFlows } from './datapath-flow.js';
import { eventType, layer4, policies, ruleText } from './flow-parts.js';

/** The proxies' events (their contract lives in @membrane/api). */
export type HttpEventRecord = L7HttpEvent;
export type DnsEventRecord = DnsEvent;

/** Cilium's monitor message type of an L7 access log record. */
const MSG_ACCESS_LOG = 129;

export class L7Flows {
  constructor(
    private readonly ctx: FlowContext,
    private readonly parts: DatapathFlows,
  ) {}

  /** A peer by address: a local endpoint, else its identity and the identity's labels. */
  private peer(ip: string, identity: number): pb.Endpoint {
    const local = this.ctx.endpointAt(ipv4Number(ip));
    return local ? this.parts.endpointPart(local).msg : this.parts.identityPart(identity, this.ctx.identityLabels(identity) ?? []).msg;
  }

  fromHttp(ev: HttpEventRecord): pb.Flow {
    const denied = ev.verdict === 'DENIED';
    const f = this.l7Base(ev.time, ev.source, ev.destination, ev.srcIdentity, ev.dstIdentity, denied ? pb.Verdict.DROPPED : ev.verdict === 'ERROR' ? pb.Verdict.ERROR : pb.Verdict.FORWARDED, ev.rules, ev.reason);
    f.l7 = create(pb.Layer7Schema, {
      type: denied ? pb.L7FlowType.REQUEST : pb.L7FlowType.RESPONSE,
      latencyNs: BigInt(Math.max(0, Math.round(ev.latencyNs))),
      record: { case: 'http', value: { code: ev.code, method: ev.method, url: `http://${ev.host}${ev.url}`, protocol: ev.protocol, headers: ev.requestHeaders.map(([key, value]) => ({ key, value })) } },
    });
    const url = `http://${ev.host}${ev.url}`;
    f.Summary = denied ? `${ev.protocol} ${ev.method} ${url}` : `${ev.protocol} ${ev.code} ${Math.round(ev.latencyNs / 1e6)}ms (${ev.method} ${url})`;
    return f;
  }

  fromDns(ev: DnsEventRecord): pb.Flow {
    const refused = ev.verdict === 'refused';
    const f = this.l7Base(ev.time, ev.client, ev.server, ev.srcIdentity, ev.dstIdentity, refused ? pb.Verdict.DROPPED : ev.verdict === 'error' ? pb.Verdict.ERROR : pb.Verdict.FORWARDED, ev.rules, ev.reason);
    f.l7 = create(pb.Layer7Schema, {
      type: refused ? pb.L7FlowType.REQUEST : pb.L7FlowType.RESPONSE,
      latencyNs: BigInt(Math.max(0, Math.round(ev.latencyMs * 1e6))),
      record: { case: 'dns', value: { query: ev.query.endsWith('.') ? ev.query : `${ev.query}.`, ips: ev.ips, ttl: ev.ttl ?? 0, rcode: RCODES[ev.rcode] ?? 0, qtypes: [ev.qtype], observationSource: 'proxy' } },
    });
    f.l4 = layer4(ev.protocol === 'udp' ? 17 : 6, ev.client.port, ev.server.port, 0);
    const q = ev.query.endsWith('.') ? ev.query : `${ev.query}.`;
    f.Summary = refused || ev.ips.length === 0 ? `DNS Query ${q} ${ev.qtype}` : `DNS Answer "${ev.ips.join(',')}" TTL: ${ev.ttl ?? 0} (Proxy ${q} ${ev.qtype})`;
    return f;
  }

  /** What an L7 flow shares. */
  private l7Base(time: string, client: { ip: string; port: number }, server: { ip: string; port: number }, srcIdentity: number, dstIdentity: number, verdict: pb.Verdict, rules: readonly RuleRef[], reason: string): pb.Flow {
    const ingress = rules.some((r) => r.section === 'ingress');
    const f = create(pb.FlowSchema, {
      time: timestampFromMs(Date.parse(time)),
      uuid: '',
      verdict,
      IP: { source: client.ip, destination: server.ip, ipVersion: pb.IPVersion.IPv4 },
      l4: layer4(6, client.port, server.port, 0),
      source: this.peer(client.ip, srcIdentity),
      destination: this.peer(server.ip, dstIdentity),
      Type: pb.FlowType.L7,
      nodeName: this.ctx.nodeName,
      sourceNames: [...this.ctx.names(ipv4Number(client.ip))],
      destinationNames: [...this.ctx.names(ipv4Number(server.ip))],
      isReply: false,
      eventType: eventType(MSG_ACCESS_LOG, 0),
      // The side whose rules judged it: the server's ingress or the client's egress (as Cilium's proxy reports it).
      trafficDirection: ingress ? pb.TrafficDirection.INGRESS : pb.TrafficDirection.EGRESS,
    });
    const ps = policies(rules);
    if (verdict === pb.Verdict.DROPPED) (ingress ? f.ingressDeniedBy : f.egressDeniedBy).push(...ps);
    else if (verdict === pb.Verdict.FORWARDED) (ingress ? f.ingressAllowedBy : f.egressAllowedBy).push(...ps);
    if (rules.length || reason) f.extensions = anyPack(membranev1.FlowExtensionSchema, create(membranev1.FlowExtensionSchema, { rules: rules.map(ruleText), reason }));
    return f;
  }
}

const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
