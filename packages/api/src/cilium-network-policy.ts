/**
 * CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2), as
 * the CRD schema defines their rules (cilium/cilium pkg/policy/api). This file
 * checks structure and types only; the policy package checks meaning
 * (ports, CIDRs, regular expressions, combinations) when it translates rules.
 */
import { labelSelector, type LabelSelector } from './label-selector.js';
import { objectMeta, type ObjectMeta } from './object-meta.js';
import { any, arr, bool, int, intOrString, isPlainObject, obj, str, type Schema } from './schema.js';

export type PortProtocolName = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

export interface PortProtocol {
  /** Number (as a string or integer) or an IANA service name (a named port). */
  port?: string;
  endPort?: number;
  protocol?: PortProtocolName;
}

export interface HeaderMatch {
  name: string;
  value?: string;
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

export interface PortRuleHTTP {
  path?: string;
  method?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HeaderMatch[];
}

export interface PortRuleDNS {
  matchName?: string;
  matchPattern?: string;
}

export interface L7Rules {
  http?: PortRuleHTTP[];
  dns?: PortRuleDNS[];
}

export interface PortRule {
  ports?: PortProtocol[];
  rules?: L7Rules;
}

export interface CIDRRule {
  cidr: string;
  except?: string[];
}

export interface ICMPField {
  type: number | string;
  family?: 'IPv4' | 'IPv6';
}

export interface ICMPRule {
  fields?: ICMPField[];
}

export interface FQDNSelector {
  matchName?: string;
  matchPattern?: string;
}

export interface PeerRule {
  endpoints?: LabelSelector[];
  requires?: LabelSelector[];
  cidr?: string[];
  cidrSet?: CIDRRule[];
  entities?: string[];
  fqdns?: FQDNSelector[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

/** A rule of `ingress`/`ingressDeny` as written (from* fields). */
export interface IngressRule {
  fromEndpoints?: LabelSelector[];
  fromRequires?: LabelSelector[];
  fromCIDR?: string[];
  fromCIDRSet?: CIDRRule[];
  fromEntities?: string[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

/** A rule of `egress`/`egressDeny` as written (to* fields). */
export interface EgressRule {
  toEndpoints?: LabelSelector[];
  toRequires?: LabelSelector[];
  toCIDR?: string[];
  toCIDRSet?: CIDRRule[];
  toEntities?: string[];
  toFQDNs?: FQDNSelector[];
  toPorts?: PortRule[];
  icmps?: ICMPRule[];
}

export interface CiliumRule {
  endpointSelector?: LabelSelector;
  nodeSelector?: LabelSelector;
  ingress?: IngressRule[];
  ingressDeny?: IngressRule[];
  egress?: EgressRule[];
  egressDeny?: EgressRule[];
  description?: string;
  enableDefaultDeny?: { ingress?: boolean; egress?: boolean };
}

export interface CiliumNetworkPolicy {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
  metadata: ObjectMeta;
  spec?: CiliumRule;
  specs?: CiliumRule[];
}

const notYet = (what: string) => `${what} is not supported by Membrane yet`;

const portProtocol: Schema<PortProtocol> = (value, path, problems) => {
  const r = obj({
    port: intOrString(),
    endPort: int({ min: 0, max: 65535 }),
    protocol: str({ oneOf: ['TCP', 'UDP', 'SCTP', 'ANY'] }),
  })(value, path, problems);
  if (!r) return undefined;
  const out: PortProtocol = {};
  if (r.port !== undefined) out.port = String(r.port);
  if (r.endPort !== undefined) out.endPort = r.endPort;
  if (r.protocol !== undefined) out.protocol = r.protocol as PortProtocolName;
  return out;
};

const headerMatch: Schema<HeaderMatch> = (value, path, problems) =>
  obj(
    {
      name: str({ nonEmpty: true }),
      value: str(),
      mismatch: str({ oneOf: ['LOG', 'ADD', 'DELETE', 'REPLACE'] }),
    },
    { required: ['name'], unsupported: { secret: notYet('a header value taken from a Kubernetes Secret') } },
  )(value, path, problems) as HeaderMatch | undefined;

const httpRule: Schema<PortRuleHTTP> = (value, path, problems) =>
  obj({
    path: str(),
    method: str(),
    host: str(),
    headers: arr(str()),
    headerMatches: arr(headerMatch),
  })(value, path, problems) as PortRuleHTTP | undefined;

const dnsRule: Schema<PortRuleDNS> = (value, path, problems) =>
  obj({ matchName: str(), matchPattern: str() })(value, path, problems) as PortRuleDNS | undefined;

const l7Rules: Schema<L7Rules> = (value, path, problems) =>
  obj(
    { http: arr(httpRule), dns: arr(dnsRule) },
    {
      unsupported: {
        kafka: notYet('Kafka L7 policy'),
        l7proto: notYet('a generic L7 parser (l7proto)'),
        l7: notYet('a generic L7 parser (l7)'),
      },
    },
  )(value, path, problems) as L7Rules | undefined;

const tlsUnsupported = {
  terminatingTLS: notYet('TLS termination'),
  originatingTLS: notYet('TLS origination'),
  serverNames: notYet('TLS SNI matching (serverNames)'),
  listener: notYet('a custom Envoy listener'),
};

const portRule: Schema<PortRule> = (value, path, problems) =>
  obj({ ports: arr(portProtocol), rules: l7Rules }, { unsupported: tlsUnsupported })(value, path, problems) as PortRule | undefined;

const portDenyRule: Schema<PortRule> = (value, path, problems) =>
  obj(
    { ports: arr(portProtocol) },
    { unsupported: { rules: 'deny rules cannot carry L7 rules (a deny applies to whole connections)' } },
  )(value, path, problems) as PortRule | undefined;

const cidrRule: Schema<CIDRRule> = (value, path, problems) =>
  obj(
    { cidr: str({ nonEmpty: true }), except: arr(str({ nonEmpty: true })) },
    {
      required: ['cidr'],
      unsupported: { cidrGroupRef: notYet('CiliumCIDRGroup (cidrGroupRef)'), cidrGroupSelector: notYet('CiliumCIDRGroup (cidrGroupSelector)') },
    },
  )(value, path, problems) as CIDRRule | undefined;

const icmpField: Schema<ICMPField> = (value, path, problems) =>
  obj({ type: intOrString(), family: str({ oneOf: ['IPv4', 'IPv6'] }) }, { required: ['type'] })(value, path, problems) as
    | ICMPField
    | undefined;

const icmpRule: Schema<ICMPRule> = (value, path, problems) =>
  obj({ fields: arr(icmpField) })(value, path, problems) as ICMPRule | undefined;

const fqdnSelector: Schema<FQDNSelector> = (value, path, problems) =>
  obj({ matchName: str({ nonEmpty: true }), matchPattern: str({ nonEmpty: true }) })(value, path, problems) as FQDNSelector | undefined;

const entities = arr(
  str({
    oneOf: ['all', 'world', 'world-ipv4', 'world-ipv6', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'health', 'init', 'unmanaged', 'ingress'],
  }),
);

function ingressRule(deny: boolean): Schema<IngressRule> {
  return (value, path, problems) =>
    obj(
      {
        fromEndpoints: arr(labelSelector),
        fromRequires: arr(labelSelector),
        fromCIDR: arr(str({ nonEmpty: true })),
        fromCIDRSet: arr(cidrRule),
        fromEntities: entities,
        toPorts: arr(deny ? portDenyRule : portRule),
        icmps: arr(icmpRule),
      },
      {
        unsupported: {
          fromGroups: notYet('fromGroups (cloud provider groups)'),
          fromNodes: notYet('fromNodes (node selectors)'),
          ...(deny ? {} : { authentication: notYet('mutual authentication') }),
        },
      },
    )(value, path, problems) as IngressRule | undefined;
}

function egressRule(deny: boolean): Schema<EgressRule> {
  return (value, path, problems) =>
    obj(
      {
        toEndpoints: arr(labelSelector),
        toRequires: arr(labelSelector),
        toCIDR: arr(str({ nonEmpty: true })),
        toCIDRSet: arr(cidrRule),
        toEntities: entities,
        toPorts: arr(deny ? portDenyRule : portRule),
        icmps: arr(icmpRule),
        ...(deny ? {} : { toFQDNs: arr(fqdnSelector) }),
      },
      {
        unsupported: {
          toServices: notYet('toServices'),
          toGroups: notYet('toGroups (cloud provider groups)'),
          toNodes: notYet('toNodes (node selectors)'),
          ...(deny ? { toFQDNs: 'egressDeny does not support toFQDNs (Cilium rejects it too)' } : { authentication: notYet('mutual authentication') }),
        },
      },
    )(value, path, problems) as EgressRule | undefined;
}

export const ciliumRule: Schema<CiliumRule> = (value, path, problems) =>
  obj(
    {
      endpointSelector: labelSelector,
      nodeSelector: labelSelector,
      ingress: arr(ingressRule(false)),
      ingressDeny: arr(ingressRule(true)),
      egress: arr(egressRule(false)),
      egressDeny: arr(egressRule(true)),
      description: str(),
      enableDefaultDeny: obj({ ingress: bool(), egress: bool() }),
      labels: arr(any()),
      log: any(),
    },
  )(value, path, problems) as CiliumRule | undefined;

export function ciliumNetworkPolicy(kind: CiliumNetworkPolicy['kind']): Schema<CiliumNetworkPolicy> {
  return (value, path, problems) => {
    if (!isPlainObject(value)) return undefined;
    const r = obj(
      {
        apiVersion: str(),
        kind: str(),
        metadata: objectMeta,
        spec: ciliumRule,
        specs: arr(ciliumRule),
        status: any(),
      },
      { required: ['metadata'] },
    )(value, path, problems);
    if (!r) return undefined;
    if (r.spec === undefined && r.specs === undefined) {
      problems.add('spec', 'is required (a policy needs spec or specs)');
      return undefined;
    }
    return { apiVersion: 'cilium.io/v2', kind, metadata: r.metadata!, ...(r.spec ? { spec: r.spec } : {}), ...(r.specs ? { specs: r.specs } : {}) };
  };
}
