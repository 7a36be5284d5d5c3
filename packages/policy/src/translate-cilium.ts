/**
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy → Rules, with the
 * checks Cilium applies when it accepts a rule (pkg/policy/api
 * rule_validation.go) and the namespace scoping it adds
 * (pkg/k8s/apis/cilium.io/utils/utils.go).
 */
import {
  ValidationError,
  type CiliumNetworkPolicy,
  type CiliumRule,
  type DocumentRef,
  type EgressRule,
  type IngressRule,
  type LabelSelector,
  type PortRule,
} from '@membrane/api';
import { checkMatchName, checkMatchPattern, compileDnsMatcher } from './l7/dns.js';
import { compileHttpRule, type HttpRule } from './l7/http.js';
import { RegexError } from './l7/regex.js';
import { NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_K8S, SOURCE_RESERVED } from './labels.js';
import { ANY_L4_PROTOCOLS, Proto, icmpType, protoNumber } from './ports.js';
import type { Direction, DirectionalRule, L7Spec, PeerSelector, PolicyRef, PortSpec, Rule, Section } from './rule.js';
import { EndpointSelector } from './selector.js';
import { Problems, cidrPeer, join, parsePort } from './translate-common.js';

const MAX_PORTS = 40;
const MAX_ICMP_FIELDS = 40;

export function translateCiliumPolicy(cnp: CiliumNetworkPolicy, ref: DocumentRef): Rule[] {
  const problems = new Problems();
  const clusterwide = cnp.kind === 'CiliumClusterwideNetworkPolicy';
  const namespace = clusterwide ? undefined : cnp.metadata.namespace ?? 'default';
  const policy: PolicyRef = { kind: cnp.kind, name: cnp.metadata.name, ...(namespace ? { namespace } : {}) };
  const rules: Rule[] = [];
  const specs: { spec: CiliumRule; path: string; index?: number }[] = [];
  if (cnp.spec) specs.push({ spec: cnp.spec, path: 'spec' });
  (cnp.specs ?? []).forEach((s, i) => specs.push({ spec: s, path: `specs[${i}]`, index: i }));
  for (const { spec, path, index } of specs) {
    const r = translateRule(spec, path, index, policy, namespace, problems);
    if (r) rules.push(r);
  }
  if (!problems.ok) throw new ValidationError('MEMBRANE_E_POLICY_INVALID', ref, problems.list);
  return rules;
}

function translateRule(spec: CiliumRule, path: string, specIndex: number | undefined, policy: PolicyRef, namespace: string | undefined, problems: Problems): Rule | undefined {
  const before = problems.list.length;
  let subject: Rule['subject'] | undefined;
  if (spec.endpointSelector && spec.nodeSelector) {
    problems.add(path, 'a rule cannot have both endpointSelector and nodeSelector');
  } else if (spec.endpointSelector) {
    subject = { kind: 'endpoints', selector: subjectSelector(spec.endpointSelector, namespace) };
  } else if (spec.nodeSelector) {
    if (namespace !== undefined) problems.add(join(path, 'nodeSelector'), 'host policies (nodeSelector) must be CiliumClusterwideNetworkPolicy');
    else subject = { kind: 'node', selector: EndpointSelector.fromLabelSelector(spec.nodeSelector) };
  } else {
    problems.add(join(path, 'endpointSelector'), 'is required (a rule needs endpointSelector or nodeSelector)');
  }

  const origin = (section: Section, index: number) => ({ ...policy, ...(specIndex !== undefined ? { spec: specIndex } : {}), section, index });
  const ingress: DirectionalRule[] = [];
  const egress: DirectionalRule[] = [];
  const host = subject?.kind === 'node';
  const sections: [Section, IngressRule[] | EgressRule[] | undefined][] = [
    ['ingress', spec.ingress],
    ['ingressDeny', spec.ingressDeny],
    ['egress', spec.egress],
    ['egressDeny', spec.egressDeny],
  ];
  for (const [section, list] of sections) {
    const direction: Direction = section.startsWith('ingress') ? 'ingress' : 'egress';
    const deny = section.endsWith('Deny');
    (list ?? []).forEach((r, i) => {
      const dr = translateDirectional(r, direction, deny, join(join(path, section), i), namespace, host, problems);
      if (dr) (direction === 'ingress' ? ingress : egress).push({ ...dr, origin: origin(section, i) });
    });
  }
  if (problems.list.length > before || !subject) return undefined;

  // A direction is enforced when the rule has a non-empty section for it;
  // `enableDefaultDeny: false` keeps it enforced but default-allow
  // (cilium/cilium pkg/policy/api rule_validation.go, Rule.Sanitize).
  const enforces = {
    ingress: (spec.ingress?.length ?? 0) > 0 || (spec.ingressDeny?.length ?? 0) > 0,
    egress: (spec.egress?.length ?? 0) > 0 || (spec.egressDeny?.length ?? 0) > 0,
  };
  const defaultDeny = {
    ingress: spec.enableDefaultDeny?.ingress ?? enforces.ingress,
    egress: spec.enableDefaultDeny?.egress ?? enforces.egress,
  };
  return {
    policy,
    ...(specIndex !== undefined ? { spec: specIndex } : {}),
    subject,
    ingress,
    egress,
    enforces,
    defaultDeny: { ingress: enforces.ingress && defaultDeny.ingress, egress: enforces.egress && defaultDeny.egress },
    ...(spec.description ? { description: spec.description } : {}),
  };
}

/** The endpointSelector of a namespaced policy always applies in the policy's namespace. */
function subjectSelector(ls: LabelSelector, namespace: string | undefined): EndpointSelector {
  const sel = EndpointSelector.fromLabelSelector(ls);
  if (namespace === undefined) return sel;
  const kept = sel.requirements.filter((r) => !(r.source === SOURCE_K8S && r.key === POD_NAMESPACE_LABEL && r.operator === 'In'));
  return new EndpointSelector([...kept, { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] }]);
}

/**
 * A peer selector of a namespaced policy that does not name a namespace is
 * limited to the policy's namespace; in a clusterwide policy it is limited to
 * pods (any namespace). Selectors of reserved labels and selectors on
 * namespace labels are left as written.
 */
export function peerSelector(ls: LabelSelector, namespace: string | undefined, allowReserved: boolean): EndpointSelector {
  const sel = EndpointSelector.fromLabelSelector(ls);
  if (allowReserved && sel.hasSource(SOURCE_RESERVED)) return sel;
  // Selectors that pick namespaces (by name or by namespace labels) still select pods only:
  // with NotIn/DoesNotExist alone they would otherwise also match world, the host and CIDR
  // peers, which carry no namespace label (cilium/cilium#46949; Kubernetes "Behavior of to
  // and from selectors").
  const podsOnly = (): EndpointSelector =>
    sel.requiresKey(SOURCE_K8S, POD_NAMESPACE_LABEL) || sel.requiresKey(SOURCE_K8S, NAMESPACE_LABELS_PREFIX, true)
      ? sel
      : sel.and({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'Exists', values: [] });
  if (sel.hasKey(SOURCE_K8S, POD_NAMESPACE_LABEL)) return podsOnly();
  if (namespace === undefined) return podsOnly();
  if (sel.hasKeyPrefix(SOURCE_K8S, NAMESPACE_LABELS_PREFIX)) return podsOnly();
  return sel.and({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] });
}

type AnyRule = IngressRule & EgressRule;

function translateDirectional(
  raw: IngressRule | EgressRule,
  direction: Direction,
  deny: boolean,
  path: string,
  namespace: string | undefined,
  host: boolean,
  problems: Problems,
): Omit<DirectionalRule, 'origin'> | undefined {
  const r = raw as AnyRule;
  const before = problems.list.length;
  const ing = direction === 'ingress';
  const f = (name: string) => (ing ? `from${name}` : `to${name}`);
  const endpoints = ing ? r.fromEndpoints : r.toEndpoints;
  const requires = ing ? r.fromRequires : r.toRequires;
  const cidrs = ing ? r.fromCIDR : r.toCIDR;
  const cidrSets = ing ? r.fromCIDRSet : r.toCIDRSet;
  const entities = ing ? r.fromEntities : r.toEntities;
  const fqdns = ing ? undefined : r.toFQDNs;

  // Cilium accepts one kind of peer per rule.
  const members: [string, number][] = [
    [f('Endpoints'), endpoints?.length ?? 0],
    [f('CIDR'), cidrs?.length ?? 0],
    [f('CIDRSet'), cidrSets?.length ?? 0],
    [f('Entities'), entities?.length ?? 0],
    ['toFQDNs', fqdns?.length ?? 0],
  ];
  const used = members.filter(([, n]) => n > 0).map(([m]) => m);
  if (used.length > 1) {
    problems.add(path, `combining ${used[0]} and ${used[1]} in one rule is not supported (write them as two rules)`);
  }
  if ((r.icmps?.length ?? 0) > 0 && (r.toPorts?.length ?? 0) > 0) {
    problems.add(path, 'icmps and toPorts cannot be combined in one rule (write them as two rules)');
  }

  const peers: PeerSelector[] = [];
  (endpoints ?? []).forEach((ls) => peers.push({ kind: 'endpoints', selector: peerSelector(ls, namespace, true) }));
  (cidrs ?? []).forEach((c, i) => {
    const p = cidrPeer(c, [], join(join(path, f('CIDR')), i), '', problems, true);
    if (p) peers.push(p);
  });
  (cidrSets ?? []).forEach((c, i) => {
    const at = join(join(path, f('CIDRSet')), i);
    const p = cidrPeer(c.cidr, c.except ?? [], join(at, 'cidr'), join(at, 'except'), problems, false);
    if (p) peers.push(p);
  });
  (entities ?? []).forEach((e) => peers.push({ kind: 'entity', name: e }));
  (fqdns ?? []).forEach((q, i) => {
    const at = join(join(path, 'toFQDNs'), i);
    if (q.matchName !== undefined && q.matchPattern !== undefined) {
      problems.add(at, 'set matchName or matchPattern, not both');
      return;
    }
    if (q.matchName === undefined && q.matchPattern === undefined) {
      problems.add(at, 'needs matchName or matchPattern');
      return;
    }
    const why = q.matchName !== undefined ? checkMatchName(q.matchName) : checkMatchPattern(q.matchPattern!);
    if (why) {
      problems.add(join(at, q.matchName !== undefined ? 'matchName' : 'matchPattern'), why);
      return;
    }
    peers.push({ kind: 'fqdn', matcher: compileDnsMatcher(q) });
  });
  const req = (requires ?? []).map((ls) => peerSelector(ls, namespace, false));

  let ports: PortSpec[] | null = null;
  const hasPorts = r.toPorts !== undefined && r.toPorts.length > 0;
  const hasIcmps = r.icmps !== undefined && r.icmps.length > 0;
  if (hasPorts) {
    ports = [];
    r.toPorts!.forEach((pr, i) => {
      const got = translatePortRule(pr, join(join(path, 'toPorts'), i), ing, host, problems);
      if (got) ports!.push(...got);
    });
  } else if (hasIcmps) {
    ports = [];
    r.icmps!.forEach((rule, i) => {
      if ((rule.fields?.length ?? 0) > MAX_ICMP_FIELDS) {
        problems.add(join(join(join(path, 'icmps'), i), 'fields'), `has ${rule.fields!.length} entries; at most ${MAX_ICMP_FIELDS} are allowed`);
        return;
      }
      (rule.fields ?? []).forEach((fld, j) => {
        const family = fld.family ?? 'IPv4';
        const t = icmpType(fld.type, family);
        if (typeof t === 'string') {
          problems.add(join(join(join(join(path, 'icmps'), i), 'fields'), j) + '.type', t);
          return;
        }
        ports!.push({ proto: family === 'IPv6' ? Proto.ICMPv6 : Proto.ICMP, port: t, endPort: t });
      });
    });
  }

  // A rule with ports but no peer applies to every peer (an L4-only rule);
  // `{}` (no peer, no port) selects nothing and only switches enforcement on.
  const hasPeerField = used.length > 0;
  if (!hasPeerField && (hasPorts || hasIcmps) && (requires?.length ?? 0) === 0) peers.push({ kind: 'wildcard' });

  if (problems.list.length > before) return undefined;
  return { direction, deny, peers, requires: req, ports };
}

function translatePortRule(pr: PortRule, path: string, ingress: boolean, host: boolean, problems: Problems): PortSpec[] | undefined {
  const before = problems.list.length;
  const list = pr.ports ?? [];
  if (list.length > MAX_PORTS) problems.add(join(path, 'ports'), `has ${list.length} entries; at most ${MAX_PORTS} are allowed`);
  const http = pr.rules?.http;
  const dns = pr.rules?.dns;
  const hasL7 = (http !== undefined) || (dns !== undefined);
  if (http !== undefined && dns !== undefined) problems.add(join(path, 'rules'), 'cannot hold both http and dns rules (one L7 protocol per port rule)');
  if (dns !== undefined && ingress) problems.add(join(path, 'rules.dns'), 'DNS rules are only allowed on egress');
  if (hasL7 && host) problems.add(join(path, 'rules'), 'host policies (nodeSelector) do not support L7 rules');
  if (dns !== undefined && list.length === 0) problems.add(join(path, 'ports'), 'DNS rules need port 53 to be listed');

  let l7: L7Spec | undefined;
  if (http !== undefined) {
    const compiled: HttpRule[] = [];
    http.forEach((h, i) => {
      const at = join(join(path, 'rules.http'), i);
      for (const field of ['method', 'path', 'host'] as const) {
        const v = h[field];
        if (!v) continue;
        try {
          compileHttpRule({ [field]: v });
        } catch (e) {
          if (e instanceof RegexError) problems.add(join(at, field), `${JSON.stringify(v)} is not a valid regular expression: ${e.message}`);
          else throw e;
        }
      }
      (h.headerMatches ?? []).forEach((m, j) => {
        if (m.name.trim() === '') problems.add(join(join(at, 'headerMatches'), j) + '.name', 'must not be empty');
      });
      (h.headers ?? []).forEach((hd, j) => {
        if (hd.trim() === '') problems.add(join(join(at, 'headers'), j), 'must not be empty');
      });
      if (problems.list.length === before) compiled.push(compileHttpRule(h));
    });
    l7 = { http: compiled };
  } else if (dns !== undefined) {
    const matchers = dns.map((d, i) => {
      const at = join(join(path, 'rules.dns'), i);
      if (d.matchName !== undefined && d.matchPattern !== undefined) problems.add(at, 'set matchName or matchPattern, not both');
      else if (d.matchName === undefined && d.matchPattern === undefined) problems.add(at, 'needs matchName or matchPattern');
      else {
        const why = d.matchName !== undefined ? checkMatchName(d.matchName) : checkMatchPattern(d.matchPattern!);
        if (why) problems.add(join(at, d.matchName !== undefined ? 'matchName' : 'matchPattern'), why);
      }
      return compileDnsMatcher(d);
    });
    l7 = { dns: matchers };
  }

  const out: PortSpec[] = [];
  list.forEach((pp, i) => {
    const at = join(join(path, 'ports'), i);
    const parsed = parsePort(pp.port, pp.endPort, at, problems);
    if (!parsed) return;
    if (pp.port === undefined || pp.port === '') {
      problems.add(join(at, 'port'), 'is required');
      return;
    }
    const proto = protoNumber(pp.protocol ?? 'ANY')!;
    if (http !== undefined) {
      if (proto !== Proto.TCP) problems.add(join(at, 'protocol'), `HTTP rules apply to TCP only; set protocol: TCP (not ${pp.protocol ?? 'ANY (the default)'})`);
    }
    if (hasL7) {
      if (parsed.name === undefined && parsed.port === 0) problems.add(join(at, 'port'), 'L7 rules cannot be used on port 0 (all ports)');
      // HTTP rules on a range are valid since Cilium 1.17 (cilium/cilium#36966): every port of it goes through the proxy.
      else if (l7?.dns && parsed.endPort > parsed.port && parsed.name === undefined) problems.add(join(at, 'endPort'), 'DNS rules cannot be used on a port range');
    }
    out.push({ proto, ...parsed, ...(l7 ? { l7 } : {}) });
  });
  if (problems.list.length > before) return undefined;
  return out;
}

export { ANY_L4_PROTOCOLS };
