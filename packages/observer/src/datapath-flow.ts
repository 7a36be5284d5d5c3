/**
 * The Hubble flow of a datapath event held in the event ring, made two
 * ways from the same parts: as a flow.Flow (filters, printers, the REST
 * route) and straight into the wire bytes of a GetFlowsResponse (GetFlows'
 * stream, with no message object in between). Both say the same: the
 * tests decode the bytes with protobuf-es and compare them with the made
 * flow for every kind of event.
 *
 * Filled as Hubble fills it; every verdict is attributed: allowed and
 * denied flows by the rules of the policy-map entry that decided them (its
 * cookie → egress/ingress_allowed_by, _denied_by), and a default-deny
 * drop, which Hubble leaves unattributed, by the policies that put the
 * endpoint's direction into default deny (membrane.v1.FlowExtension in
 * flow.extensions).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack, AnySchema, type Any } from '@bufbuild/protobuf/wkt';
import { DatapathEventOffsets as O } from '@membrane/api';
import type { PolicyRef, RuleOrigin } from '@membrane/policy';
import { flow as pb, membranev1 } from '@membrane/proto';
import { ipv4, type EndpointInfo, type EndpointPolicy } from './flow-context.js';
import type { EventRing, Peer } from './event-ring.js';
import { eventType, layer4, l4Summary, networkInterface, policies, ruleText } from './flow-parts.js';
import { ProtoWriter } from './proto-writer.js';

const EVENT_DROP = 2;
const DROP_POLICY_DENIED = 133;
const DROP_POLICY_DENY = 181;
/** Cilium's monitor message types (Hubble's event_type.type). */
const MSG_DROP = 1;
const MSG_POLICY_VERDICT = 5;

/** Field numbers of flow.Flow (flow.proto). */
const F = {
  time: 1, uuid: 34, verdict: 2, dropReason: 3, IP: 5, l4: 6, source: 8, destination: 9, Type: 10, nodeName: 11, sourceNames: 13, destinationNames: 14,
  reply: 16, eventType: 19, destinationService: 21, trafficDirection: 22, policyMatchType: 23, traceObservationPoint: 24, dropReasonDesc: 25,
  isReply: 26, interface: 28, proxyPort: 29, egressAllowedBy: 21001, ingressAllowedBy: 21002, egressDeniedBy: 21004, ingressDeniedBy: 21005,
  Summary: 100000, extensions: 150000,
} as const;

/** A shared sub-message: made once, and its bytes. */
interface Part<T> {
  msg: T;
  bytes: Uint8Array;
}

/** What decided an entry: its rules and the policies Hubble names. */
interface Attribution {
  policies: Part<pb.Policy>[];
  ext?: Part<Any>;
  matchType: number;
}

const NO_LABELS: readonly string[] = [];
const NO_ATTRIBUTION: Attribution = { policies: [], matchType: 0 };

function part<T extends pb.Endpoint | pb.Policy>(schema: typeof pb.EndpointSchema | typeof pb.PolicySchema, msg: T): Part<T> {
  return { msg, bytes: toBinary(schema as never, msg as never) };
}

function extension(ext: membranev1.FlowExtension): Part<Any> {
  const msg = anyPack(membranev1.FlowExtensionSchema, ext);
  return { msg, bytes: toBinary(AnySchema, msg) };
}

/** A reusable view of one slot's fields (read once, used by both ways of making the flow). */
class SlotFields {
  slot = 0;
  seq = 0;
  drop = false;
  egress = false;
  proto = 0;
  tcpFlags = 0;
  isReply = false;
  redirected = false;
  dropReason = 0;
  proxyPort = 0;
  epId = 0;
  srcIdentity = 0;
  dstIdentity = 0;
  saddr = 0;
  daddr = 0;
  sport = 0;
  dport = 0;
  ifindex = 0;
  cookie = 0;
}

export class DatapathFlows {
  private readonly byEndpoint = new WeakMap<EndpointInfo, Part<pb.Endpoint>>();
  private readonly byLabels = new WeakMap<readonly string[], Map<number, Part<pb.Endpoint>>>();
  private readonly attributions = new WeakMap<EndpointPolicy, Map<number, Attribution>>();
  private readonly denials = new WeakMap<readonly PolicyRef[], Map<string, Part<Any>>>();
  private readonly summaries = new Map<number, string>();
  private readonly f = new SlotFields();
  /** The node_name field, encoded once. */
  private readonly nodeNameField: Uint8Array;

  constructor(
    private readonly ring: EventRing,
    private readonly nodeName: string,
    /** The flow's uuid, from its sequence number. */
    private readonly uuid: (seq: number) => string,
  ) {
    const w = new ProtoWriter(64);
    w.string(F.nodeName, nodeName);
    this.nodeNameField = w.take();
  }

  private read(seq: number): SlotFields {
    const r = this.ring;
    const s = r.slot(seq);
    const f = this.f;
    f.slot = s;
    f.seq = seq;
    f.drop = r.u8(s, O.type) === EVENT_DROP;
    f.egress = r.u8(s, O.direction) === 1;
    f.proto = r.u8(s, O.proto);
    f.tcpFlags = r.u8(s, O.tcp_flags);
    f.isReply = r.u8(s, O.is_reply) !== 0;
    f.proxyPort = r.u16(s, O.proxy_port);
    f.redirected = !f.drop && r.u8(s, O.l7) !== 0 && f.proxyPort !== 0;
    f.dropReason = r.u16(s, O.drop_reason);
    f.epId = r.u32(s, O.ep_id);
    f.srcIdentity = r.u32(s, O.src_identity);
    f.dstIdentity = r.u32(s, O.dst_identity);
    f.saddr = r.be32(s, O.saddr);
    f.daddr = r.be32(s, O.daddr);
    f.sport = r.be16(s, O.sport);
    f.dport = r.be16(s, O.dport);
    f.ifindex = r.u32(s, O.ifindex);
    f.cookie = r.u32(s, O.cookie);
    return f;
  }

  endpointPart(e: EndpointInfo): Part<pb.Endpoint> {
    let p = this.byEndpoint.get(e);
    if (!p) {
      p = part(pb.EndpointSchema, create(pb.EndpointSchema, { ID: e.id, identity: e.identity, namespace: e.namespace, podName: e.podName, labels: [...e.labels], workloads: (e.workloads ?? []).map((w) => ({ ...w })) }));
      this.byEndpoint.set(e, p);
    }
    return p;
  }

  /** The peer as a flow names it: a local endpoint, else its identity (world, host, a CIDR) and the identity's labels. */
  private peerPart(peer: Peer, identity: number): Part<pb.Endpoint> {
    if (peer !== undefined && !Array.isArray(peer)) return this.endpointPart(peer as EndpointInfo);
    return this.identityPart(identity, (peer ?? NO_LABELS) as readonly string[]);
  }

  /** A peer that is no local endpoint: its identity and the identity's labels. */
  identityPart(identity: number, labels: readonly string[]): Part<pb.Endpoint> {
    let byId = this.byLabels.get(labels);
    if (!byId) this.byLabels.set(labels, (byId = new Map()));
    let p = byId.get(identity);
    if (!p) {
      if (byId.size > 65536) byId.clear();
      byId.set(identity, (p = part(pb.EndpointSchema, create(pb.EndpointSchema, { identity, labels: [...labels] }))));
    }
    return p;
  }

  /** The endpoint the event is of, when the context did not know it: its id and identity. */
  private unknownSelf(f: SlotFields): Part<pb.Endpoint> {
    return part(pb.EndpointSchema, create(pb.EndpointSchema, { ID: f.epId, identity: f.egress ? f.srcIdentity : f.dstIdentity }));
  }

  private attribution(self: EndpointInfo | undefined, cookie: number): Attribution {
    const policy = self?.policy;
    if (!policy || cookie === 0) return NO_ATTRIBUTION;
    let byCookie = this.attributions.get(policy);
    if (!byCookie) this.attributions.set(policy, (byCookie = new Map()));
    let a = byCookie.get(cookie);
    if (!a) {
      const origins: readonly RuleOrigin[] = policy.origins(cookie);
      a = {
        policies: policies(origins).map((p) => part(pb.PolicySchema, p)),
        ...(origins.length ? { ext: extension(create(membranev1.FlowExtensionSchema, { rules: origins.map(ruleText) })) } : {}),
        matchType: policy.matchType(cookie),
      };
      byCookie.set(cookie, a);
    }
    return a;
  }

  /** The policy match type of an endpoint's entry (0 none). */
  matchType(self: EndpointInfo, cookie: number): number {
    return this.attribution(self, cookie).matchType;
  }

  /** The extension of a default-deny drop: the policies behind the default deny, named. */
  private denial(self: EndpointInfo | undefined, f: SlotFields): Part<Any> | undefined {
    if (!f.drop || f.dropReason !== DROP_POLICY_DENIED || !self?.policy) return undefined;
    const direction = f.egress ? 'egress' : 'ingress';
    const by = self.policy.defaultDenyBy(direction);
    if (by.length === 0) return undefined;
    let m = this.denials.get(by);
    if (!m) this.denials.set(by, (m = new Map()));
    const key = `${direction} ${self.namespace}/${self.podName}`;
    let p = m.get(key);
    if (!p) {
      p = extension(create(membranev1.FlowExtensionSchema, { defaultDenyBy: policies(by), rules: by.map(ruleText), reason: `no rule allows it and ${direction} of ${self.namespace}/${self.podName} is default deny` }));
      if (m.size > 4096) m.clear();
      m.set(key, p);
    }
    return p;
  }

  private summary(proto: number, flags: number): string {
    const key = proto * 256 + flags;
    let s = this.summaries.get(key);
    if (s === undefined) this.summaries.set(key, (s = l4Summary(layer4(proto, 0, 0, flags))));
    return s;
  }

  /** The parts both ways share. */
  private parts(f: SlotFields) {
    const r = this.ring;
    const selfInfo = r.self[f.slot];
    const me = selfInfo ? this.endpointPart(selfInfo) : this.unknownSelf(f);
    const other = this.peerPart(r.peer[f.slot], f.egress ? f.dstIdentity : f.srcIdentity);
    const attribution = this.attribution(selfInfo, f.cookie);
    const denial = this.denial(selfInfo, f);
    const verdict = f.drop ? pb.Verdict.DROPPED : f.redirected ? pb.Verdict.REDIRECTED : pb.Verdict.FORWARDED;
    // Allowed: the entry's policies; denied by a deny rule: its policies; a default-deny drop: none (the extension names them).
    const byEntry = f.drop ? (f.dropReason === DROP_POLICY_DENY ? attribution.policies : []) : attribution.policies;
    const byField = f.drop ? (f.egress ? F.egressDeniedBy : F.ingressDeniedBy) : f.egress ? F.egressAllowedBy : F.ingressAllowedBy;
    return {
      source: f.egress ? me : other,
      destination: f.egress ? other : me,
      verdict,
      byEntry,
      byField,
      ext: denial ?? attribution.ext,
      matchType: f.drop ? 0 : attribution.matchType,
      eventType: f.drop ? MSG_DROP : MSG_POLICY_VERDICT,
      eventSubType: f.drop ? f.dropReason : 0,
    };
  }

  /** The flow as a flow.Flow message. */
  materialize(seq: number): pb.Flow {
    const f = this.read(seq);
    const r = this.ring;
    const p = this.parts(f);
    const svc = r.service[f.slot];
    const flow = create(pb.FlowSchema, {
      time: { seconds: BigInt(r.secs[f.slot]!), nanos: r.nanos[f.slot]! },
      uuid: this.uuid(seq),
      verdict: p.verdict,
      dropReason: f.drop ? f.dropReason : 0,
      dropReasonDesc: f.drop ? (f.dropReason as pb.DropReason) : pb.DropReason.DROP_REASON_UNKNOWN,
      IP: { source: ipv4(f.saddr), destination: ipv4(f.daddr), ipVersion: pb.IPVersion.IPv4 },
      l4: layer4(f.proto, f.sport, f.dport, f.tcpFlags),
      source: p.source.msg,
      destination: p.destination.msg,
      Type: pb.FlowType.L3_L4,
      nodeName: this.nodeName,
      sourceNames: [...r.srcNames[f.slot]!],
      destinationNames: [...r.dstNames[f.slot]!],
      reply: f.isReply,
      // A drop notification says nothing of the connection's direction (Hubble shows `<>`).
      ...(f.drop ? {} : { isReply: f.isReply }),
      eventType: eventType(p.eventType, p.eventSubType),
      trafficDirection: f.egress ? pb.TrafficDirection.EGRESS : pb.TrafficDirection.INGRESS,
      traceObservationPoint: f.redirected ? pb.TraceObservationPoint.TO_PROXY : pb.TraceObservationPoint.UNKNOWN_POINT,
      ...(f.ifindex ? { interface: networkInterface(f.ifindex) } : {}),
      proxyPort: f.redirected ? f.proxyPort : 0,
      policyMatchType: p.matchType,
      Summary: this.summary(f.proto, f.tcpFlags),
      ...(svc ? { destinationService: create(pb.ServiceSchema, svc) } : {}),
      ...(p.ext ? { extensions: p.ext.msg } : {}),
    });
    const list = p.byField === F.egressDeniedBy ? flow.egressDeniedBy : p.byField === F.ingressDeniedBy ? flow.ingressDeniedBy : p.byField === F.egressAllowedBy ? flow.egressAllowedBy : flow.ingressAllowedBy;
    for (const x of p.byEntry) list.push(x.msg);
    return flow;
  }

  /** Writes the flow's fields (the body of a flow.Flow) at the writer's position. */
  write(seq: number, w: ProtoWriter): void {
    const f = this.read(seq);
    const r = this.ring;
    const p = this.parts(f);
    w.timestamp(F.time, r.secs[f.slot]!, r.nanos[f.slot]!);
    w.uint(F.verdict, p.verdict);
    w.ascii(F.uuid, this.uuid(seq));
    if (f.drop) w.uint(F.dropReason, f.dropReason);
    w.begin(F.IP);
    w.ipv4(1, f.saddr);
    w.ipv4(2, f.daddr);
    w.uint(3, pb.IPVersion.IPv4);
    w.end();
    writeLayer4(w, f);
    w.bytesField(F.source, p.source.bytes);
    w.bytesField(F.destination, p.destination.bytes);
    w.uint(F.Type, pb.FlowType.L3_L4);
    w.raw(this.nodeNameField);
    for (const n of r.srcNames[f.slot]!) w.string(F.sourceNames, n);
    for (const n of r.dstNames[f.slot]!) w.string(F.destinationNames, n);
    w.bool(F.reply, f.isReply);
    w.begin(F.eventType);
    w.uint(1, p.eventType);
    w.uint(2, p.eventSubType);
    w.end();
    const svc = r.service[f.slot];
    if (svc) {
      w.begin(F.destinationService);
      w.string(1, svc.name);
      w.string(2, svc.namespace);
      w.end();
    }
    w.uint(F.trafficDirection, f.egress ? pb.TrafficDirection.EGRESS : pb.TrafficDirection.INGRESS);
    w.uint(F.policyMatchType, p.matchType);
    if (f.redirected) w.uint(F.traceObservationPoint, pb.TraceObservationPoint.TO_PROXY);
    if (f.drop) w.uint(F.dropReasonDesc, f.dropReason);
    if (!f.drop) {
      w.begin(F.isReply);
      w.bool(1, f.isReply);
      w.end();
    }
    if (f.ifindex) {
      w.begin(F.interface);
      w.uint(1, f.ifindex);
      w.end();
    }
    if (f.redirected) w.uint(F.proxyPort, f.proxyPort);
    for (const x of p.byEntry) w.bytesField(p.byField, x.bytes);
    w.ascii(F.Summary, this.summary(f.proto, f.tcpFlags));
    if (p.ext) w.bytesField(F.extensions, p.ext.bytes);
  }
}

function writeLayer4(w: ProtoWriter, f: SlotFields): void {
  w.begin(F.l4);
  switch (f.proto) {
    case 6:
      w.begin(1);
      w.uint(1, f.sport);
      w.uint(2, f.dport);
      w.begin(3);
      for (let bit = 0; bit < 8; bit++) if (f.tcpFlags & (1 << bit)) w.bool(TCP_FLAG_FIELDS[bit]!, true);
      w.end();
      w.end();
      break;
    case 17:
      w.begin(2);
      w.uint(1, f.sport);
      w.uint(2, f.dport);
      w.end();
      break;
    case 132:
      w.begin(5);
      w.uint(1, f.sport);
      w.uint(2, f.dport);
      w.end();
      break;
    case 1:
      w.begin(3);
      w.end();
      break;
  }
  w.end();
}

/** The TCPFlags field of each bit of the TCP header's flags byte (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR). */
const TCP_FLAG_FIELDS = [1, 2, 3, 4, 5, 6, 7, 8];
