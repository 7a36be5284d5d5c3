/**
 * Datapath events and the proxies' L7 events → Hubble's flow.Flow, filled
 * as Hubble fills it, from what the agent knows (FlowContext): endpoints by
 * id and address, identities' labels, the names the DNS proxy saw, Services,
 * and the rules behind a policy-map entry (its cookie). Every verdict is
 * attributed: allowed and denied flows by the rules of the entry that
 * decided them (egress/ingress_allowed_by, _denied_by), and a default-deny
 * drop, which Hubble leaves unattributed, by the policies that put the
 * endpoint's direction into default deny (membrane.v1.FlowExtension in
 * flow.extensions).
 *
 * The event shapes are declared here (structurally the datapath's
 * DatapathEvent and the proxies' events): the observer imports neither.
 */
import { create } from '@bufbuild/protobuf';
import { anyPack, timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { DatapathEventRecord, DnsEvent, L7HttpEvent, RuleRef } from '@membrane/api';
import type { PolicyRef, RuleOrigin } from '@membrane/policy';
import { flow as pb, membranev1 } from '@membrane/proto';

export type { DatapathEventRecord };

/** The proxies' events (their contract lives in @membrane/api). */
export type HttpEventRecord = L7HttpEvent;
export type DnsEventRecord = DnsEvent;

export interface EndpointInfo {
  id: number;
  identity: number;
  namespace: string;
  podName: string;
  /** `source:key=value` */
  labels: string[];
  workloads?: { name: string; kind: string }[];
}

export interface FlowContext {
  nodeName: string;
  endpoint(epId: number): EndpointInfo | undefined;
  endpointByIP(ip: string): EndpointInfo | undefined;
  identityLabels(id: number): string[] | undefined;
  /** Names the DNS proxy saw this address resolve from. */
  names(ip: string): string[];
  /** The Service an address:port is a frontend or backend of. */
  service?(ip: string, port: number): { name: string; namespace: string } | undefined;
  /** The rules behind an endpoint's policy-map entry. */
  origins(epId: number, cookie: number): RuleOrigin[];
  /** The policies that put an endpoint's direction into default deny. */
  defaultDenyBy(epId: number, direction: 'ingress' | 'egress'): PolicyRef[];
  /** How the entry matched (Cilium's policy match types: 1 L3-Only, 2 L3-L4, 3 L4-Only, 4 all); 0 none. */
  matchType?(epId: number, cookie: number): number;
}

const NO_LABELS: readonly string[] = [];
const EVENT_DROP = 2;
const DIR_EGRESS = 1;
const DROP_POLICY_DENIED = 133;
const DROP_POLICY_DENY = 181;
/** Cilium's monitor message types (Hubble's event_type.type). */
const MSG_DROP = 1;
const MSG_POLICY_VERDICT = 5;
const MSG_ACCESS_LOG = 129;

export function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** A rule's policy as Hubble names it, with Cilium's policy labels. */
export function policyOf(o: PolicyRef): pb.Policy {
  const labels = [`k8s:io.cilium.k8s.policy.derived-from=${o.kind}`, `k8s:io.cilium.k8s.policy.name=${o.name}`, ...(o.namespace ? [`k8s:io.cilium.k8s.policy.namespace=${o.namespace}`] : [])];
  return create(pb.PolicySchema, { name: o.name, namespace: o.namespace ?? '', kind: o.kind, labels });
}

function policies(origins: readonly (PolicyRef & { section?: string })[]): pb.Policy[] {
  const seen = new Map<string, pb.Policy>();
  for (const o of origins) if (o.section !== 'implicit') seen.set(`${o.kind}/${o.namespace ?? ''}/${o.name}`, policyOf(o));
  return [...seen.values()];
}

/** A rule as the policy engine names it ("CiliumNetworkPolicy default/rule1 ingress[0]"); a policy alone by kind and name. */
function ruleText(o: PolicyRef & { section?: string; index?: number; spec?: number }): string {
  const where = o.namespace ? `${o.namespace}/${o.name}` : o.name;
  if (o.section === 'implicit') return o.name;
  if (o.section === undefined) return `${o.kind} ${where}`;
  return `${o.kind} ${where} ${o.spec !== undefined ? `specs[${o.spec}].` : ''}${o.section}[${o.index}]`;
}

/** Cilium's summary of TCP flags: `SYN, ACK`, in its order. */
export function tcpFlagsSummary(f: pb.TCPFlags | undefined): string {
  if (!f) return '';
  const order: [keyof pb.TCPFlags, string][] = [['SYN', 'SYN'], ['ACK', 'ACK'], ['RST', 'RST'], ['FIN', 'FIN'], ['PSH', 'PSH'], ['URG', 'URG'], ['ECE', 'ECE'], ['CWR', 'CWR'], ['NS', 'NS']];
  return order.filter(([k]) => f[k] === true).map(([, n]) => n).join(', ');
}

/** The one-line summary Cilium's parser writes (what `hubble observe` prints in parentheses). */
export function l4Summary(l4: pb.Layer4 | undefined): string {
  switch (l4?.protocol.case) {
    case 'TCP':
      return `TCP Flags: ${tcpFlagsSummary(l4.protocol.value.flags)}`;
    case 'UDP':
      return 'UDP';
    case 'SCTP':
      return 'SCTP';
    case 'ICMPv4':
      return 'ICMPv4';
    case 'ICMPv6':
      return 'ICMPv6';
    default:
      return '';
  }
}

/*
 * Parts many flows share are made once and shared (flows are never
 * changed once made): the 256 TCP flag sets, event types, interfaces, and
 * each endpoint's message for as long as the context's EndpointInfo lives.
 */
const TCP_FLAGS = new Map<number, pb.TCPFlags>();
const EVENT_TYPES = new Map<number, pb.CiliumEventType>();
const INTERFACES = new Map<number, pb.NetworkInterface>();

function eventType(type: number, subType: number): pb.CiliumEventType {
  const key = type * 65536 + subType;
  let e = EVENT_TYPES.get(key);
  if (!e) EVENT_TYPES.set(key, (e = create(pb.CiliumEventTypeSchema, { type, subType })));
  return e;
}

function networkInterface(index: number): pb.NetworkInterface {
  let i = INTERFACES.get(index);
  if (!i) {
    if (INTERFACES.size > 4096) INTERFACES.clear();
    INTERFACES.set(index, (i = create(pb.NetworkInterfaceSchema, { index })));
  }
  return i;
}

function tcpFlags(bits: number): pb.TCPFlags {
  const cached = TCP_FLAGS.get(bits);
  if (cached) return cached;
  const f = makeTcpFlags(bits);
  TCP_FLAGS.set(bits, f);
  return f;
}

function makeTcpFlags(bits: number): pb.TCPFlags {
  return create(pb.TCPFlagsSchema, { FIN: !!(bits & 1), SYN: !!(bits & 2), RST: !!(bits & 4), PSH: !!(bits & 8), ACK: !!(bits & 16), URG: !!(bits & 32), ECE: !!(bits & 64), CWR: !!(bits & 128) });
}

function layer4(proto: number, sport: number, dport: number, flags: number): pb.Layer4 {
  switch (proto) {
    case 6:
      return create(pb.Layer4Schema, { protocol: { case: 'TCP', value: { sourcePort: sport, destinationPort: dport, flags: tcpFlags(flags) } } });
    case 17:
      return create(pb.Layer4Schema, { protocol: { case: 'UDP', value: { sourcePort: sport, destinationPort: dport } } });
    case 132:
      return create(pb.Layer4Schema, { protocol: { case: 'SCTP', value: { sourcePort: sport, destinationPort: dport } } });
    case 1:
      // The event carries the echo id, not the ICMP type.
      return create(pb.Layer4Schema, { protocol: { case: 'ICMPv4', value: {} } });
    default:
      return create(pb.Layer4Schema, {});
  }
}

export class FlowParser {
  /** Wall-clock nanoseconds minus the monotonic clock (bpf_ktime_get_ns and process.hrtime share CLOCK_MONOTONIC). */
  private offsetNs = 0n;
  private sequence = 0;
  private readonly prefix = Math.random().toString(16).slice(2, 10);
  private readonly byEndpoint = new WeakMap<EndpointInfo, pb.Endpoint>();
  private readonly byIdentity = new Map<number, { labels: readonly string[]; msg: pb.Endpoint }>();

  constructor(private readonly ctx: FlowContext) {
    this.resync();
  }

  /** Re-reads the clocks' offset (the wall clock may be stepped). */
  resync(): void {
    this.offsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  private uuid(): string {
    this.sequence++;
    return `${this.prefix}-${this.sequence.toString(16).padStart(12, '0')}`;
  }

  /** The endpoint with this address, as a flow names it: a local endpoint, else its identity (world, host, a CIDR). */
  private peer(ip: string, identity: number): pb.Endpoint {
    const e = this.ctx.endpointByIP(ip);
    if (e) return this.endpointMsg(e);
    const labels = this.ctx.identityLabels(identity) ?? NO_LABELS;
    const cached = this.byIdentity.get(identity);
    if (cached && cached.labels === labels) return cached.msg;
    if (this.byIdentity.size > 65536) this.byIdentity.clear();
    const msg = create(pb.EndpointSchema, { identity, labels: [...labels] });
    this.byIdentity.set(identity, { labels, msg });
    return msg;
  }

  private endpointMsg(e: EndpointInfo): pb.Endpoint {
    let m = this.byEndpoint.get(e);
    if (!m) this.byEndpoint.set(e, (m = create(pb.EndpointSchema, { ID: e.id, identity: e.identity, namespace: e.namespace, podName: e.podName, labels: e.labels, workloads: e.workloads ?? [] })));
    return m;
  }

  fromDatapath(ev: DatapathEventRecord): pb.Flow {
    const egress = ev.direction === DIR_EGRESS;
    const drop = ev.type === EVENT_DROP;
    const src = ipv4(ev.saddr);
    const dst = ipv4(ev.daddr);
    const self = this.ctx.endpoint(ev.ep_id);
    const me = self ? this.endpointMsg(self) : create(pb.EndpointSchema, { ID: ev.ep_id, identity: egress ? ev.src_identity : ev.dst_identity });
    const source = egress ? me : this.peer(src, ev.src_identity);
    const destination = egress ? this.peer(dst, ev.dst_identity) : me;
    const origins = ev.cookie ? this.ctx.origins(ev.ep_id, ev.cookie) : [];
    const byEntry = policies(origins);
    const direction = egress ? 'egress' : 'ingress';
    const defaultDeny = drop && ev.drop_reason === DROP_POLICY_DENIED ? this.ctx.defaultDenyBy(ev.ep_id, direction) : [];
    const redirected = !drop && ev.l7 !== 0 && ev.proxy_port !== 0;
    const f = create(pb.FlowSchema, {
      time: timestampFromMs(Number((ev.ts_ns + this.offsetNs) / 1_000_000n)),
      uuid: this.uuid(),
      verdict: drop ? pb.Verdict.DROPPED : redirected ? pb.Verdict.REDIRECTED : pb.Verdict.FORWARDED,
      dropReason: drop ? ev.drop_reason : 0,
      dropReasonDesc: drop ? (ev.drop_reason as pb.DropReason) : pb.DropReason.DROP_REASON_UNKNOWN,
      IP: { source: src, destination: dst, ipVersion: pb.IPVersion.IPv4 },
      l4: layer4(ev.proto, ev.sport, ev.dport, ev.tcp_flags),
      source,
      destination,
      Type: pb.FlowType.L3_L4,
      nodeName: this.ctx.nodeName,
      sourceNames: this.ctx.names(src),
      destinationNames: this.ctx.names(dst),
      reply: ev.is_reply !== 0,
      // A drop notification says nothing of the connection's direction (Hubble shows `<>`).
      ...(drop ? {} : { isReply: ev.is_reply !== 0 }),
      eventType: drop ? eventType(MSG_DROP, ev.drop_reason) : eventType(MSG_POLICY_VERDICT, 0),
      trafficDirection: egress ? pb.TrafficDirection.EGRESS : pb.TrafficDirection.INGRESS,
      traceObservationPoint: redirected ? pb.TraceObservationPoint.TO_PROXY : pb.TraceObservationPoint.UNKNOWN_POINT,
      interface: ev.ifindex ? networkInterface(ev.ifindex) : undefined,
      proxyPort: redirected ? ev.proxy_port : 0,
      policyMatchType: !drop && ev.cookie ? (this.ctx.matchType?.(ev.ep_id, ev.cookie) ?? 0) : 0,
    });
    f.Summary = l4Summary(f.l4);
    const svc = this.ctx.service?.(dst, ev.dport);
    if (svc) f.destinationService = create(pb.ServiceSchema, svc);
    if (drop) {
      if (ev.drop_reason === DROP_POLICY_DENY) (egress ? f.egressDeniedBy : f.ingressDeniedBy).push(...byEntry);
    } else {
      (egress ? f.egressAllowedBy : f.ingressAllowedBy).push(...byEntry);
    }
    if (origins.length || defaultDeny.length) {
      const ext = create(membranev1.FlowExtensionSchema, {
        defaultDenyBy: policies(defaultDeny),
        rules: defaultDeny.length ? defaultDeny.map(ruleText) : origins.map(ruleText),
        reason: defaultDeny.length ? `no rule allows it and ${direction} of ${self ? `${self.namespace}/${self.podName}` : `endpoint ${ev.ep_id}`} is default deny` : '',
      });
      f.extensions = anyPack(membranev1.FlowExtensionSchema, ext);
    }
    return f;
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

  /** What an L7 flow shares: egress of the client (the proxy judged both sides, the rules say which). */
  private l7Base(time: string, client: { ip: string; port: number }, server: { ip: string; port: number }, srcIdentity: number, dstIdentity: number, verdict: pb.Verdict, rules: readonly RuleRef[], reason: string): pb.Flow {
    const f = create(pb.FlowSchema, {
      time: timestampFromMs(Date.parse(time)),
      uuid: this.uuid(),
      verdict,
      IP: { source: client.ip, destination: server.ip, ipVersion: pb.IPVersion.IPv4 },
      l4: layer4(6, client.port, server.port, 0),
      source: this.peer(client.ip, srcIdentity),
      destination: this.peer(server.ip, dstIdentity),
      Type: pb.FlowType.L7,
      nodeName: this.ctx.nodeName,
      sourceNames: this.ctx.names(client.ip),
      destinationNames: this.ctx.names(server.ip),
      isReply: false,
      eventType: eventType(MSG_ACCESS_LOG, 0),
      trafficDirection: pb.TrafficDirection.EGRESS,
    });
    const ps = policies(rules);
    const ingress = rules.some((r) => r.section === 'ingress');
    if (verdict === pb.Verdict.DROPPED) (ingress ? f.ingressDeniedBy : f.egressDeniedBy).push(...ps);
    else if (verdict === pb.Verdict.FORWARDED) (ingress ? f.ingressAllowedBy : f.egressAllowedBy).push(...ps);
    if (rules.length || reason) f.extensions = anyPack(membranev1.FlowExtensionSchema, create(membranev1.FlowExtensionSchema, { rules: rules.map(ruleText), reason }));
    return f;
  }
}

const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
