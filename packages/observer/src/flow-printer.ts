/**
 * How `hubble observe` prints a flow, line for line, so the lines our users
 * grep and paste look as they always did:
 *
 *   compact  `Dec  2 10:00:00.123: default/xwing:40000 (ID:1002) -> default/deathstar-6f7b:80 (ID:1001) Policy denied DROPPED (TCP Flags: SYN)`
 *            time (Go's StampMilli, UTC), source and its identity, the
 *            arrow (`->`, `<-` for a reply with the sides swapped, `<>`
 *            when the direction is unknown), destination and identity, the
 *            flow type (drop reason, `policy-verdict:L3-L4 INGRESS`,
 *            `http-request`, `dns-response proxy`), the verdict (ALLOWED /
 *            DENIED for policy verdicts; with policy names, `BY rule1
 *            (CiliumNetworkPolicy)`), and the summary;
 *   dict     the same fields, one per line, flows separated by a rule;
 *   table    the same fields in columns.
 * Membrane adds, with policy names asked for, the policies behind a
 * default-deny drop (which Hubble cannot name).
 */
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { flow as pb, membranev1 } from '@membrane/proto';

export interface PrintOptions {
  /** `--print-node-name`: the node in brackets after the time. */
  nodeName?: boolean;
  /** `--print-policy-names`. */
  policyNames?: boolean;
}

const RESERVED = ['', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DROP_REASONS: Record<number, string> = {
  130: 'Invalid source mac',
  131: 'Invalid destination mac',
  132: 'Invalid source ip',
  133: 'Policy denied',
  134: 'Invalid packet',
  139: 'Unsupported L3 protocol',
  142: 'Unknown L4 protocol',
  158: 'Service backend not found',
  178: 'Socket lookup failed',
  179: 'Socket assign failed',
  181: 'Policy denied by denylist',
};
const MATCH_TYPES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'];
const TRACE_POINTS: Record<number, string> = { 0: 'to-endpoint', 1: 'to-proxy', 2: 'to-host', 3: 'to-stack', 4: 'to-overlay', 5: 'from-endpoint', 6: 'from-proxy', 7: 'from-host', 8: 'from-stack', 9: 'from-overlay', 10: 'from-network', 11: 'to-network', 12: 'from-crypto', 13: 'to-crypto' };
const MSG_DROP = 1;
const MSG_TRACE = 4;
const MSG_POLICY_VERDICT = 5;

/** Go's time.StampMilli ("Jan _2 15:04:05.000") of a flow's time, in UTC as Hubble's CLI prints it; N/A without one. */
export function stampMilli(t: { seconds: bigint; nanos: number } | undefined): string {
  if (!t) return 'N/A';
  const d = new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}`;
}

function ports(f: pb.Flow): [string, string] {
  const p = f.l4?.protocol;
  if (p && (p.case === 'TCP' || p.case === 'UDP' || p.case === 'SCTP')) return [String(p.value.sourcePort), String(p.value.destinationPort)];
  return ['', ''];
}

function hostname(ip: string, port: string, ns: string, pod: string, svc: string, names: readonly string[]): string {
  let host = ip;
  if (pod) host = ns ? `${ns}/${pod}` : pod;
  else if (svc) host = ns ? `${ns}/${svc}` : svc;
  else if (names.length) host = names.join(',');
  if (port === '' || port === '0') return host;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function hostNames(f: pb.Flow): [string, string] {
  if (!f.IP) return ['', ''];
  const [sp, dp] = ports(f);
  // A Service gives its namespace and name; a pod name still wins over the Service's (as Hubble prints).
  const side = (e: pb.Endpoint | undefined, svc: pb.Service | undefined, ip: string, port: string, names: readonly string[]) =>
    hostname(ip, port, svc ? svc.namespace : (e?.namespace ?? ''), e?.podName ?? '', svc?.name ?? '', names);
  return [side(f.source, f.sourceService, f.IP.source, sp, f.sourceNames), side(f.destination, f.destinationService, f.IP.destination, dp, f.destinationNames)];
}

export function identityText(id: number): string {
  return id > 0 && id < RESERVED.length ? `(${RESERVED[id]})` : `(ID:${id})`;
}

export function flowType(f: pb.Flow): string {
  if (f.l7) {
    const t = pb.L7FlowType[f.l7.type]?.toLowerCase() ?? 'unknown_l7_type';
    switch (f.l7.record.case) {
      case 'http':
        return `http-${t}`;
      case 'dns':
        return `dns-${t} ${f.l7.record.value.observationSource}`;
      default:
        return `l7-${t}`;
    }
  }
  switch (f.eventType?.type) {
    case MSG_TRACE:
      return TRACE_POINTS[f.eventType.subType] ?? String(f.eventType.subType);
    case MSG_DROP:
      return DROP_REASONS[f.eventType.subType] ?? `${f.eventType.subType}, 0`;
    case MSG_POLICY_VERDICT:
      return `policy-verdict:${MATCH_TYPES[f.policyMatchType] ?? 'unknown'} ${pb.TrafficDirection[f.trafficDirection]}`;
  }
  return 'UNKNOWN';
}

function policyNames(list: readonly pb.Policy[]): string {
  const named = list.filter((p) => p.kind && p.name);
  return named.length ? ` BY ${named.map((p) => `${p.name} (${p.kind})`).join(', ')}` : '';
}

export function verdictText(f: pb.Flow, o: PrintOptions = {}): string {
  const verdict = pb.Verdict[f.verdict] ?? String(f.verdict);
  const egress = f.trafficDirection === pb.TrafficDirection.EGRESS;
  const verdictEvent = f.eventType?.type === MSG_POLICY_VERDICT;
  if (f.verdict === pb.Verdict.FORWARDED || f.verdict === pb.Verdict.REDIRECTED) {
    if (!verdictEvent) return verdict;
    return `ALLOWED${o.policyNames ? policyNames(egress ? f.egressAllowedBy : f.ingressAllowedBy) : ''}`;
  }
  if (f.verdict === pb.Verdict.DROPPED || f.verdict === pb.Verdict.ERROR) {
    const by = o.policyNames ? policyNames([...(egress ? f.egressDeniedBy : f.ingressDeniedBy), ...defaultDenyBy(f)]) : '';
    return `${verdictEvent ? 'DENIED' : verdict}${by}`;
  }
  if (f.verdict === pb.Verdict.AUDIT && verdictEvent) return 'AUDITED';
  return verdict;
}

/** Membrane's attribution of a default-deny drop (flow.extensions), if the flow carries one. */
export function defaultDenyBy(f: pb.Flow): pb.Policy[] {
  if (!f.extensions) return [];
  try {
    return anyUnpack(f.extensions, membranev1.FlowExtensionSchema)?.defaultDenyBy ?? [];
  } catch {
    return [];
  }
}

export function compactLine(f: pb.Flow, o: PrintOptions = {}): string {
  let [src, dst] = hostNames(f);
  let [srcId, dstId] = [identityText(f.source?.identity ?? 0), identityText(f.destination?.identity ?? 0)];
  let arrow = '->';
  if (f.isReply === undefined) arrow = '<>';
  else if (f.isReply) {
    [src, dst] = [dst, src];
    [srcId, dstId] = [dstId, srcId];
    arrow = '<-';
  }
  const node = o.nodeName ? ` [${f.nodeName}]` : '';
  return `${stampMilli(f.time)}${node}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowType(f)} ${verdictText(f, o)} (${f.Summary})`;
}

export function dictBlock(f: pb.Flow, o: PrintOptions = {}): string {
  const [src, dst] = hostNames(f);
  return [
    `  TIMESTAMP: ${stampMilli(f.time)}`,
    ...(o.nodeName ? [`       NODE: ${f.nodeName}`] : []),
    `     SOURCE: ${src}`,
    `DESTINATION: ${dst}`,
    `       TYPE: ${flowType(f)}`,
    `    VERDICT: ${verdictText(f, o)}`,
    `    SUMMARY: ${f.Summary}`,
  ].join('\n');
}
