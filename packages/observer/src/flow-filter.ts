/**
 * Hubble's FlowFilter semantics, the one implementation the API, the CLI and
 * the console use: within one filter every field that is set must match
 * (AND; a field's values are alternatives), across the whitelist any filter
 * may match (OR; none given: every flow), and a flow matching any blacklist
 * filter is left out whatever the whitelist says.
 *
 * Field by field as Hubble reads them: IPs exact or CIDR; pods and services
 * `namespace/name-prefix` (no namespace: any; `namespace/` alone: the whole
 * namespace); labels as Kubernetes label selectors whose keys may carry a
 * Cilium source (`k8s:app=x`; `app=x` matches any source); HTTP status
 * `404` or a class `4+`; HTTP paths and DNS queries RE2 patterns matched
 * anywhere in the value (the policy engine's linear-time matcher); FQDNs
 * and node names with `*` wildcards. A filter that cannot be compiled is an
 * error naming the field (the API answers InvalidArgument), never a filter
 * that matches nothing.
 */
import { compileFullMatch, EndpointSelector, LabelSet, parseLabel, parsePrefix, prefixContains, parseIP, RegexError, type Prefix } from '@membrane/policy';
import type { LabelSelector } from '@membrane/api';
import { flow as pb } from '@membrane/proto';

type Flow = pb.Flow;
type Filter = pb.FlowFilter;
export type FlowPredicate = (f: Flow) => boolean;

export class FilterError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'icmpv4', 'icmpv6', 'sctp', 'http', 'dns', 'kafka']);

/** whitelist ∖ blacklist, as one predicate. */
export function compileFilters(whitelist: readonly Filter[], blacklist: readonly Filter[] = []): FlowPredicate {
  const allow = whitelist.map((f, i) => compileFilter(f, `whitelist[${i}]`));
  const deny = blacklist.map((f, i) => compileFilter(f, `blacklist[${i}]`));
  if (allow.length === 0 && deny.length === 0) return ALL;
  return (f) => (allow.length === 0 || allow.some((p) => p(f))) && !deny.some((p) => p(f));
}

const ALL: FlowPredicate = () => true;

/** Whether a predicate lets every flow through (readers then need not make flows to ask it). */
export function matchesAll(p: FlowPredicate): boolean {
  return p === ALL;
}

/** One filter: the conjunction of the fields that are set. */
export function compileFilter(ff: Filter, at = 'filter'): FlowPredicate {
  const checks: FlowPredicate[] = [];
  const add = (values: readonly unknown[], make: () => FlowPredicate) => {
    if (values.length) checks.push(make());
  };
  add(ff.uuid, () => (f) => ff.uuid.includes(f.uuid));
  add(ff.sourceIp, () => ipMatcher(ff.sourceIp, `${at}.source_ip`, (f) => f.IP?.source));
  add(ff.destinationIp, () => ipMatcher(ff.destinationIp, `${at}.destination_ip`, (f) => f.IP?.destination));
  add(ff.sourcePod, () => podMatcher(ff.sourcePod, (f) => f.source));
  add(ff.destinationPod, () => podMatcher(ff.destinationPod, (f) => f.destination));
  add(ff.sourceLabel, () => labelMatcher(ff.sourceLabel, `${at}.source_label`, (f) => f.source?.labels));
  add(ff.destinationLabel, () => labelMatcher(ff.destinationLabel, `${at}.destination_label`, (f) => f.destination?.labels));
  add(ff.sourceService, () => serviceMatcher(ff.sourceService, (f) => f.sourceService));
  add(ff.destinationService, () => serviceMatcher(ff.destinationService, (f) => f.destinationService));
  add(ff.sourceFqdn, () => wildcardMatcher(ff.sourceFqdn, `${at}.source_fqdn`, (f) => f.sourceNames));
  add(ff.destinationFqdn, () => wildcardMatcher(ff.destinationFqdn, `${at}.destination_fqdn`, (f) => f.destinationNames));
  add(ff.sourceWorkload, () => workloadMatcher(ff.sourceWorkload, (f) => f.source));
  add(ff.destinationWorkload, () => workloadMatcher(ff.destinationWorkload, (f) => f.destination));
  add(ff.trafficDirection, () => (f) => ff.trafficDirection.includes(f.trafficDirection));
  add(ff.verdict, () => (f) => ff.verdict.includes(f.verdict));
  add(ff.eventType, () => (f) => ff.eventType.some((e) => f.eventType?.type === e.type && (!e.matchSubType || f.eventType?.subType === e.subType)));
  add(ff.httpStatusCode, () => statusMatcher(ff.httpStatusCode, `${at}.http_status_code`));
  add(ff.protocol, () => protocolMatcher(ff.protocol, `${at}.protocol`));
  add(ff.sourcePort, () => portMatcher(ff.sourcePort, `${at}.source_port`, 'source'));
  add(ff.destinationPort, () => portMatcher(ff.destinationPort, `${at}.destination_port`, 'destination'));
  add(ff.reply, () => (f) => f.isReply !== undefined && ff.reply.includes(f.isReply));
  add(ff.dnsQuery, () => regexMatcher(ff.dnsQuery, `${at}.dns_query`, (f) => (f.l7?.record.case === 'dns' ? f.l7.record.value.query : undefined)));
  add(ff.sourceIdentity, () => (f) => f.source !== undefined && ff.sourceIdentity.includes(f.source.identity));
  add(ff.destinationIdentity, () => (f) => f.destination !== undefined && ff.destinationIdentity.includes(f.destination.identity));
  add(ff.httpMethod, () => {
    const methods = ff.httpMethod.map((m) => m.toUpperCase());
    return (f) => f.l7?.record.case === 'http' && methods.includes(f.l7.record.value.method.toUpperCase());
  });
  add(ff.httpPath, () => regexMatcher(ff.httpPath, `${at}.http_path`, (f) => (f.l7?.record.case === 'http' ? pathOf(f.l7.record.value.url) : undefined)));
  add(ff.tcpFlags, () => (f) => {
    const have = f.l4?.protocol.case === 'TCP' ? f.l4.protocol.value.flags : undefined;
    return have !== undefined && ff.tcpFlags.some((want) => (Object.keys(TCP_FLAG_NAMES) as (keyof typeof TCP_FLAG_NAMES)[]).every((k) => !want[k] || have[k]));
  });
  add(ff.nodeName, () => wildcardMatcher(ff.nodeName, `${at}.node_name`, (f) => [f.nodeName]));
  add(ff.ipVersion, () => (f) => f.IP !== undefined && ff.ipVersion.includes(f.IP.ipVersion));
  return (f) => checks.every((c) => c(f));
}

const TCP_FLAG_NAMES = { FIN: 1, SYN: 1, RST: 1, PSH: 1, ACK: 1, URG: 1, ECE: 1, CWR: 1, NS: 1 } as const;

function ipMatcher(values: readonly string[], field: string, get: (f: Flow) => string | undefined): FlowPredicate {
  const prefixes: Prefix[] = values.map((v) => {
    const p = parsePrefix(v.includes('/') ? v : parseIP(v)?.family === 6 ? `${v}/128` : `${v}/32`);
    if (typeof p === 'string') throw new FilterError(field, `"${v}" is not an IP address or a CIDR (${p})`);
    return p;
  });
  return (f) => {
    const ip = get(f);
    if (!ip) return false;
    const p = parsePrefix(ip.includes(':') ? `${ip}/128` : `${ip}/32`);
    return typeof p !== 'string' && prefixes.some((x) => prefixContains(x, p));
  };
}

/** `namespace/prefix`, `prefix` (any namespace) or `namespace/` (all of it). */
function splitRef(v: string): { namespace?: string; prefix: string } {
  const slash = v.indexOf('/');
  return slash < 0 ? { prefix: v } : { namespace: v.slice(0, slash), prefix: v.slice(slash + 1) };
}

function podMatcher(values: readonly string[], get: (f: Flow) => pb.Endpoint | undefined): FlowPredicate {
  const refs = values.map(splitRef);
  return (f) => {
    const e = get(f);
    return e !== undefined && refs.some((r) => (r.namespace === undefined || r.namespace === e.namespace) && (r.prefix === '' ? r.namespace !== undefined : e.podName.startsWith(r.prefix)));
  };
}

function serviceMatcher(values: readonly string[], get: (f: Flow) => pb.Service | undefined): FlowPredicate {
  const refs = values.map(splitRef);
  return (f) => {
    const s = get(f);
    return s !== undefined && s.name !== '' && refs.some((r) => (r.namespace === undefined || r.namespace === s.namespace) && s.name.startsWith(r.prefix));
  };
}

function workloadMatcher(values: readonly pb.Workload[], get: (f: Flow) => pb.Endpoint | undefined): FlowPredicate {
  return (f) => {
    const e = get(f);
    return e !== undefined && values.some((w) => e.workloads.some((x) => (!w.name || w.name === x.name) && (!w.kind || w.kind === x.kind)));
  };
}

/** A Kubernetes label selector as a string: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`, comma-separated. */
export function parseLabelSelector(s: string): LabelSelector {
  const matchExpressions: NonNullable<LabelSelector['matchExpressions']> = [];
  // Commas inside parentheses belong to a set.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const KEY = '([A-Za-z0-9_.:/-]+)';
  for (const raw of parts) {
    const p = raw.trim();
    if (!p) throw new Error(`an empty requirement in "${s}"`);
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^${KEY}\\s*(==|=|!=)\\s*([A-Za-z0-9_.-]*)$`).exec(p))) matchExpressions.push({ key: m[1]!, operator: m[2] === '!=' ? 'NotIn' : 'In', values: [m[3]!] });
    else if ((m = new RegExp(`^${KEY}\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(p))) matchExpressions.push({ key: m[1]!, operator: m[2] === 'in' ? 'In' : 'NotIn', values: m[3]!.split(',').map((x) => x.trim()).filter(Boolean) });
    else if ((m = new RegExp(`^!${KEY}$`).exec(p))) matchExpressions.push({ key: m[1]!, operator: 'DoesNotExist' });
    else if ((m = new RegExp(`^${KEY}$`).exec(p))) matchExpressions.push({ key: m[1]!, operator: 'Exists' });
    else throw new Error(`"${p}" is not a label requirement`);
  }
  return { matchExpressions };
}

function labelMatcher(values: readonly string[], field: string, get: (f: Flow) => readonly string[] | undefined): FlowPredicate {
  const selectors = values.map((v) => {
    try {
      return EndpointSelector.fromLabelSelector(parseLabelSelector(v));
    } catch (e) {
      throw new FilterError(field, e instanceof Error ? e.message : String(e));
    }
  });
  return (f) => {
    const labels = get(f);
    if (!labels?.length) return false;
    const set = new LabelSet(labels.map(parseLabel));
    return selectors.some((s) => s.matches(set));
  };
}

function wildcardMatcher(values: readonly string[], field: string, get: (f: Flow) => readonly string[]): FlowPredicate {
  const res = values.map((v) => {
    if (!/^[A-Za-z0-9_.*/:-]+$/.test(v)) throw new FilterError(field, `"${v}" is not a name pattern (letters, digits, '-', '_', '.', '/', ':' and '*')`);
    return new RegExp(`^${v.replace(/\.$/, '').replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}\\.?$`, 'i');
  });
  return (f) => get(f).some((n) => res.some((r) => r.test(n)));
}

/** RE2 patterns that may match anywhere in the value (as Go's MatchString). */
function regexMatcher(values: readonly string[], field: string, get: (f: Flow) => string | undefined): FlowPredicate {
  const ms = values.map((v) => {
    try {
      return compileFullMatch(`(?s:.*)(?:${v})(?s:.*)`);
    } catch (e) {
      throw new FilterError(field, `"${v}" is not a valid RE2 pattern${e instanceof RegexError ? `: ${e.message}` : ''}`);
    }
  });
  return (f) => {
    const s = get(f);
    return s !== undefined && ms.some((m) => m.test(s));
  };
}

function pathOf(url: string): string {
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/[^?#]*)?/i.exec(url);
  const p = abs ? (abs[1] ?? '/') : url;
  const q = p.search(/[?#]/);
  return q >= 0 ? p.slice(0, q) : p;
}

function statusMatcher(values: readonly string[], field: string): FlowPredicate {
  const tests = values.map((v) => {
    const m = /^([1-5])(?:\+|xx)$/.exec(v);
    if (m) return (c: number) => Math.floor(c / 100) === Number(m[1]);
    if (/^[1-5]\d\d$/.test(v)) return (c: number) => c === Number(v);
    throw new FilterError(field, `"${v}" is not a status code (e.g. 404) or a class (e.g. 5+)`);
  });
  return (f) => {
    const r = f.l7?.record;
    return r?.case === 'http' && tests.some((t) => t(r.value.code));
  };
}

function protocolMatcher(values: readonly string[], field: string): FlowPredicate {
  const want = values.map((v) => v.toLowerCase());
  for (const w of want) if (!PROTOCOLS.has(w)) throw new FilterError(field, `"${w}" is not a protocol (${[...PROTOCOLS].join(', ')})`);
  return (f) => {
    const l4 = f.l4?.protocol.case?.toLowerCase();
    const l7 = f.l7?.record.case;
    return want.some((w) => w === l7 || w === l4 || (w === 'icmp' && (l4 === 'icmpv4' || l4 === 'icmpv6')));
  };
}

function portMatcher(values: readonly string[], field: string, side: 'source' | 'destination'): FlowPredicate {
  const ports = values.map((v) => {
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new FilterError(field, `"${v}" is not a port`);
    return Number(v);
  });
  return (f) => {
    const p = f.l4?.protocol;
    if (!p || (p.case !== 'TCP' && p.case !== 'UDP' && p.case !== 'SCTP')) return false;
    const port = side === 'source' ? p.value.sourcePort : p.value.destinationPort;
    return ports.includes(port);
  };
}
