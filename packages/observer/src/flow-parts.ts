/**
 * Parts of flows that many flows share, made once: policies as Hubble
 * names them, the engine's rule texts, TCP flag sets, event types,
 * interfaces, layer-4 messages, and the summaries Cilium's parser writes.
 * Flows are never changed once made, so these are shared between them.
 */
import { create } from '@bufbuild/protobuf';
import type { PolicyRef } from '@membrane/policy';
import { flow as pb } from '@membrane/proto';

/** A rule's policy as Hubble names it, with Cilium's policy labels. */
export function policyOf(o: PolicyRef): pb.Policy {
  const labels = [`k8s:io.cilium.k8s.policy.derived-from=${o.kind}`, `k8s:io.cilium.k8s.policy.name=${o.name}`, ...(o.namespace ? [`k8s:io.cilium.k8s.policy.namespace=${o.namespace}`] : [])];
  return create(pb.PolicySchema, { name: o.name, namespace: o.namespace ?? '', kind: o.kind, labels });
}

export function policies(origins: readonly (PolicyRef & { section?: string })[]): pb.Policy[] {
  const seen = new Map<string, pb.Policy>();
  for (const o of origins) if (o.section !== 'implicit') seen.set(`${o.kind}/${o.namespace ?? ''}/${o.name}`, policyOf(o));
  return [...seen.values()];
}

/** A rule as the policy engine names it ("CiliumNetworkPolicy default/rule1 ingress[0]"); a policy alone by kind and name. */
export function ruleText(o: PolicyRef & { section?: string; index?: number; spec?: number }): string {
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

export function eventType(type: number, subType: number): pb.CiliumEventType {
  const key = type * 65536 + subType;
  let e = EVENT_TYPES.get(key);
  if (!e) EVENT_TYPES.set(key, (e = create(pb.CiliumEventTypeSchema, { type, subType })));
  return e;
}

export function networkInterface(index: number): pb.NetworkInterface {
  let i = INTERFACES.get(index);
  if (!i) {
    if (INTERFACES.size > 4096) INTERFACES.clear();
    INTERFACES.set(index, (i = create(pb.NetworkInterfaceSchema, { index })));
  }
  return i;
}

export function tcpFlags(bits: number): pb.TCPFlags {
  const cached = TCP_FLAGS.get(bits);
  if (cached) return cached;
  const f = makeTcpFlags(bits);
  TCP_FLAGS.set(bits, f);
  return f;
}

function makeTcpFlags(bits: number): pb.TCPFlags {
  return create(pb.TCPFlagsSchema, { FIN: !!(bits & 1), SYN: !!(bits & 2), RST: !!(bits & 4), PSH: !!(bits & 8), ACK: !!(bits & 16), URG: !!(bits & 32), ECE: !!(bits & 64), CWR: !!(bits & 128) });
}

export function layer4(proto: number, sport: number, dport: number, flags: number): pb.Layer4 {
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

