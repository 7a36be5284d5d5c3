// CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy -> Rules, through
// parsePolicyDocument. Sources: cilium/cilium
// pkg/k8s/apis/cilium.io/utils/utils.go (ParseToCiliumRule: the
// endpointSelector of a namespaced policy always applies in its namespace;
// getEndpointSelector: a peer selector without a namespace is limited to the
// policy's namespace, or to pods (namespace label Exists) in a clusterwide
// policy; selectors on namespace labels and reserved labels are left alone);
// pkg/policy/api/rule_validation.go (Rule.Sanitize, IngressRule/EgressRule
// sanitize: one kind of peer per rule, ICMPs without ToPorts, DNS only on
// egress, L7 rules TCP only and never on port 0, DNS rules need ports, at most
// 40 ports, host policies without L7, CIDRRule except inside cidr); Cilium docs
// "Layer 3 policies" (`ingress: [{}]` selects no peer), "Layer 4 policies"
// (toPorts without a peer allow every peer), "Deny Policies" (no L7 in deny).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { ValidationError } from '@membrane/api';
import { parsePolicyDocument } from './repository.js';
import type { DirectionalRule, PeerSelector, Rule } from './rule.js';

const ref = { source: 'p.yaml', label: 'document 1' };

function cnp(spec: object, name = 'r1', namespace?: string): object {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}
function ccnp(spec: object, name = 'c1'): object {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name }, spec };
}
function rulesOf(doc: object): Rule[] {
  return parsePolicyDocument(doc, ref).rules;
}
function only(doc: object): Rule {
  const rules = rulesOf(doc);
  assert.equal(rules.length, 1);
  return rules[0]!;
}
function peerStrings(d: DirectionalRule): string[] {
  return d.peers.map((p: PeerSelector) => {
    switch (p.kind) {
      case 'endpoints': return p.selector.toString();
      case 'entity': return `entity:${p.name}`;
      case 'cidr': return `cidr:${p.text}`;
      case 'fqdn': return p.matcher.text;
      case 'wildcard': return '*';
    }
  });
}
function invalid(doc: object, message: string, problems?: number): ValidationError {
  let caught: unknown;
  assert.throws(
    () => parsePolicyDocument(doc, ref),
    (e: unknown) => {
      caught = e;
      return true;
    },
  );
  assert.ok(caught instanceof ValidationError, String(caught));
  assert.equal(caught.message, message);
  assert.equal(caught.code, 'MEMBRANE_E_POLICY_INVALID');
  if (problems !== undefined) assert.equal(caught.problems.length, problems);
  return caught;
}
const at = (where: string) => `p.yaml: document 1 (CiliumNetworkPolicy default/r1): ${where}`;

describe('subjects (utils.go ParseToCiliumRule)', () => {
  test('a namespaced endpointSelector always applies in the policy namespace', () => {
    const r = only(cnp({ endpointSelector: { matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': 'other' } }, ingress: [{}] }, 'r1', 'prod'));
    assert.deepEqual(r.policy, { kind: 'CiliumNetworkPolicy', namespace: 'prod', name: 'r1' });
    assert.equal(r.subject.kind, 'endpoints');
    assert.equal(r.subject.selector.toString(), 'any:app=web,k8s:io.kubernetes.pod.namespace=prod');
  });

  test('a CNP without metadata.namespace lives in "default"', () => {
    assert.equal(only(cnp({ endpointSelector: {}, ingress: [{}] })).subject.selector.toString(), 'k8s:io.kubernetes.pod.namespace=default');
  });

  test('a clusterwide endpointSelector gets no namespace; nodeSelector selects nodes', () => {
    const c = only(ccnp({ endpointSelector: {}, ingress: [{}] }));
    assert.deepEqual(c.policy, { kind: 'CiliumClusterwideNetworkPolicy', name: 'c1' });
    assert.equal(c.subject.selector.toString(), '{}');
    const n = only(ccnp({ nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{}] }));
    assert.equal(n.subject.kind, 'node');
    assert.equal(n.subject.selector.toString(), 'any:role=edge');
  });
});

describe('peer selectors (utils.go getEndpointSelector)', () => {
  test('namespaced: limited to the policy namespace unless a namespace or namespace label is named', () => {
    const r = only(
      cnp(
        {
          endpointSelector: {},
          ingress: [
            {
              fromEndpoints: [
                { matchLabels: { app: 'a' } },
                { matchLabels: { app: 'b', 'k8s:io.kubernetes.pod.namespace': 'x' } },
                { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'In', values: ['y', 'x'] }] },
                { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'blue' } },
                { matchLabels: { 'reserved:host': '' } },
                {},
              ],
            },
          ],
        },
        'r1',
        'prod',
      ),
    );
    assert.deepEqual(peerStrings(r.ingress[0]!), [
      'any:app=a,k8s:io.kubernetes.pod.namespace=prod',
      'any:app=b,k8s:io.kubernetes.pod.namespace=x',
      'any:io.kubernetes.pod.namespace in (x,y)',
      'any:io.cilium.k8s.namespace.labels.team=blue',
      'reserved:host=',
      'k8s:io.kubernetes.pod.namespace=prod',
    ]);
  });

  test('clusterwide: limited to pods of any namespace (the namespace label exists)', () => {
    const r = only(ccnp({ endpointSelector: {}, egress: [{ toEndpoints: [{ matchLabels: { app: 'a' } }, {}, { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system' } }] }] }));
    assert.deepEqual(peerStrings(r.egress[0]!), [
      'any:app=a,k8s:io.kubernetes.pod.namespace',
      'k8s:io.kubernetes.pod.namespace',
      'k8s:io.kubernetes.pod.namespace=kube-system',
    ]);
  });

  test('fromRequires is scoped the same way but kept apart from the peers', () => {
    const r = only(cnp({ endpointSelector: {}, ingress: [{ fromRequires: [{ matchLabels: { env: 'prod' } }] }] }));
    const d = r.ingress[0]!;
    assert.deepEqual(d.peers, []);
    assert.deepEqual(d.requires.map(String), ['any:env=prod,k8s:io.kubernetes.pod.namespace=default']);
  });

  test('entities, CIDRs and FQDNs', () => {
    const r = only(
      cnp({
        endpointSelector: {},
        ingress: [{ fromEntities: ['world', 'cluster'] }, { fromCIDR: ['10.0.0.1', '10.1.0.0/16'] }, { fromCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] }],
        egress: [{ toFQDNs: [{ matchName: 'api.example.com' }, { matchPattern: '*.example.org' }] }],
      }),
    );
    assert.deepEqual(r.ingress.map(peerStrings), [
      ['entity:world', 'entity:cluster'],
      ['cidr:10.0.0.1', 'cidr:10.1.0.0/16'],
      ['cidr:192.0.2.0/24 except 192.0.2.128/25'],
    ]);
    assert.deepEqual(peerStrings(r.egress[0]!), ['matchName: api.example.com', 'matchPattern: *.example.org']);
  });
});

describe('directional rules, enforcement and ports', () => {
  test('`ingress: [{}]` selects no peer and only enforces ingress', () => {
    const r = only(cnp({ endpointSelector: {}, ingress: [{}] }));
    assert.equal(r.ingress.length, 1);
    const d = r.ingress[0]!;
    assert.deepEqual(d.peers, []);
    assert.equal(d.ports, null);
    assert.equal(d.deny, false);
    assert.deepEqual(d.origin, { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'r1', section: 'ingress', index: 0 });
    assert.deepEqual(r.enforces, { ingress: true, egress: false });
    assert.deepEqual(r.defaultDeny, { ingress: true, egress: false });
  });

  test('toPorts without a peer applies to every peer; a port without protocol is ANY (0)', () => {
    const d = only(cnp({ endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '80' }, { port: '53', protocol: 'UDP' }, { port: '8000', endPort: 8080, protocol: 'TCP' }] }] }] })).ingress[0]!;
    assert.deepEqual(d.peers, [{ kind: 'wildcard' }]);
    assert.deepEqual(d.ports, [
      { proto: 0, port: 80, endPort: 80 },
      { proto: 17, port: 53, endPort: 53 },
      { proto: 6, port: 8000, endPort: 8080 },
    ]);
  });

  test('icmps become ICMP/ICMPv6 "ports" keyed by type', () => {
    const d = only(cnp({ endpointSelector: {}, egress: [{ icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }] }] })).egress[0]!;
    assert.deepEqual(d.peers, [{ kind: 'wildcard' }]);
    assert.deepEqual(d.ports, [
      { proto: 1, port: 8, endPort: 8 },
      { proto: 58, port: 128, endPort: 128 },
    ]);
  });

  test('deny sections', () => {
    const r = only(cnp({ endpointSelector: {}, egressDeny: [{ toCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '25', protocol: 'TCP' }] }] }] }));
    const d = r.egress[0]!;
    assert.equal(d.deny, true);
    assert.equal(d.origin.section, 'egressDeny');
    assert.deepEqual(peerStrings(d), ['cidr:203.0.113.0/24']);
    assert.deepEqual(r.enforces, { ingress: false, egress: true });
    assert.deepEqual(r.defaultDeny, { ingress: false, egress: true });
  });

  test('enableDefaultDeny: false keeps enforcement but not default deny', () => {
    const r = only(cnp({ endpointSelector: {}, enableDefaultDeny: { ingress: false }, ingress: [{ fromEntities: ['world'] }], egress: [{}] }));
    assert.deepEqual(r.enforces, { ingress: true, egress: true });
    assert.deepEqual(r.defaultDeny, { ingress: false, egress: true });
  });

  test('L7 rules are compiled onto their ports', () => {
    const r = only(
      cnp({
        endpointSelector: {},
        ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/v1/.*' }, { headers: ['X-Token: abc'] }] } }] }],
        egress: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*' }] } }] }],
      }),
    );
    const http = r.ingress[0]!.ports![0]!.l7!.http!;
    assert.deepEqual(http.map((h) => h.text), ['method=GET path=/v1/.*', 'method=* path=* header[X-Token: abc]']);
    assert.deepEqual(http[1]!.headers, [{ name: 'x-token', value: 'abc' }]);
    const dns = r.egress[0]!.ports![0]!;
    assert.equal(dns.proto, 0);
    assert.deepEqual(dns.l7!.dns!.map((m) => m.text), ['matchPattern: *']);
  });

  test('specs: one Rule per spec, origins carry the spec index', () => {
    const rules = rulesOf({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'multi' },
      specs: [{ endpointSelector: { matchLabels: { app: 'a' } }, ingress: [{}] }, { endpointSelector: { matchLabels: { app: 'b' } }, egress: [{}, {}] }],
    });
    assert.equal(rules.length, 2);
    assert.deepEqual(rules.map((r) => r.spec), [0, 1]);
    assert.deepEqual(rules[1]!.egress[1]!.origin, { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'multi', spec: 1, section: 'egress', index: 1 });
  });
});

describe('validation: the field path and the reason (rule_validation.go)', () => {
  const ingressPorts = (ports: object[], rules?: object) => cnp({ endpointSelector: {}, ingress: [{ toPorts: [{ ports, ...(rules ? { rules } : {}) }] }] });

  test('ports', () => {
    invalid(ingressPorts([{ port: '70000' }]), at('spec.ingress[0].toPorts[0].ports[0].port: 70000 is not a valid port number (0-65535)'));
    invalid(ingressPorts([{ port: '80', endPort: 79 }]), at('spec.ingress[0].toPorts[0].ports[0].endPort: 79 is below port 80'));
    invalid(
      ingressPorts(Array.from({ length: 41 }, (_, i) => ({ port: String(1000 + i) }))),
      at('spec.ingress[0].toPorts[0].ports: has 41 entries; at most 40 are allowed'),
    );
  });

  test('L7 rules need TCP and a non-zero port; HTTP may cover a range, DNS may not', () => {
    invalid(
      ingressPorts([{ port: '80' }], { http: [{ method: 'GET' }] }),
      at('spec.ingress[0].toPorts[0].ports[0].protocol: HTTP rules apply to TCP only; set protocol: TCP (not ANY (the default))'),
    );
    invalid(ingressPorts([{ port: '0', protocol: 'TCP' }], { http: [{}] }), at('spec.ingress[0].toPorts[0].ports[0].port: L7 rules cannot be used on port 0 (all ports)'));
    // Cilium >= 1.17 (cilium/cilium#36966): HTTP rules on a range; every port of it is proxied.
    assert.equal(rulesOf(ingressPorts([{ port: '80', endPort: 90, protocol: 'TCP' }], { http: [{ method: 'GET' }] })).length, 1);
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '53', endPort: 60, protocol: 'UDP' }], rules: { dns: [{ matchPattern: '*' }] } }] }] }),
      at('spec.egress[0].toPorts[0].ports[0].endPort: DNS rules cannot be used on a port range'),
    );
  });

  test('invalid regular expressions name the HTTP field', () => {
    invalid(
      ingressPorts([{ port: '80', protocol: 'TCP' }], { http: [{ path: '/a(?=b)' }] }),
      at('spec.ingress[0].toPorts[0].rules.http[0].path: "/a(?=b)" is not a valid regular expression: lookaround assertions are not supported by RE2'),
    );
    invalid(
      ingressPorts([{ port: '80', protocol: 'TCP' }], { http: [{ method: 'GET' }, { path: '/a(b' }] }),
      at('spec.ingress[0].toPorts[0].rules.http[1].path: "/a(b" is not a valid regular expression: missing closing )'),
    );
  });

  test('DNS rules: egress only, with a port', () => {
    invalid(ingressPorts([{ port: '53' }], { dns: [{ matchPattern: '*' }] }), at('spec.ingress[0].toPorts[0].rules.dns: DNS rules are only allowed on egress'));
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toPorts: [{ rules: { dns: [{ matchPattern: '*' }] } }] }] }),
      at('spec.egress[0].toPorts[0].ports: DNS rules need port 53 to be listed'),
    );
  });

  test('one kind of peer per rule; icmps apart from toPorts', () => {
    invalid(
      cnp({ endpointSelector: {}, ingress: [{ fromEndpoints: [{}], fromCIDR: ['10.0.0.0/8'] }] }),
      at('spec.ingress[0]: combining fromEndpoints and fromCIDR in one rule is not supported (write them as two rules)'),
    );
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '80' }] }], icmps: [{ fields: [{ type: 8 }] }] }] }),
      at('spec.egress[0]: icmps and toPorts cannot be combined in one rule (write them as two rules)'),
    );
  });

  test('CIDRs', () => {
    invalid(cnp({ endpointSelector: {}, ingress: [{ fromCIDR: ['10.0.0.0/33'] }] }), at('spec.ingress[0].fromCIDR[0]: "10.0.0.0/33" is not a valid CIDR: prefix length must be 0-32'));
    invalid(
      cnp({ endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] }),
      at('spec.ingress[0].fromCIDRSet[0].except[0]: 11.0.0.0/16 is not within 10.0.0.0/8'),
    );
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.1' }] }] }),
      at('spec.egress[0].toCIDRSet[0].cidr: "10.0.0.1" is not a CIDR (expected address/prefix-length, e.g. 10.0.0.0/8)'),
    );
  });

  test('FQDNs and ICMP types', () => {
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'a b.com' }] }] }),
      at(`spec.egress[0].toFQDNs[0].matchName: "a b.com" is not a DNS name (letters, digits, '-', '_' and '.' only)`),
    );
    invalid(
      cnp({ endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'a.com', matchPattern: '*.a.com' }] }] }),
      at('spec.egress[0].toFQDNs[0]: set matchName or matchPattern, not both'),
    );
    invalid(
      cnp({ endpointSelector: {}, ingress: [{ icmps: [{ fields: [{ type: 'Bogus' }] }] }] }),
      at('spec.ingress[0].icmps[0].fields[0].type: "Bogus" is not an ICMP type name (e.g. EchoReply, DestinationUnreachable, Redirect)'),
    );
  });

  test('deny rules carry no L7 rules', () => {
    invalid(
      cnp({ endpointSelector: {}, ingressDeny: [{ toPorts: [{ ports: [{ port: '80' }], rules: { http: [{}] } }] }] }),
      at('spec.ingressDeny[0].toPorts[0].rules: deny rules cannot carry L7 rules (a deny applies to whole connections)'),
    );
  });

  test('subjects', () => {
    invalid(cnp({ ingress: [{}] }), at('spec.endpointSelector: is required (a rule needs endpointSelector or nodeSelector)'));
    invalid(cnp({ nodeSelector: {}, ingress: [{}] }), at('spec.nodeSelector: host policies (nodeSelector) must be CiliumClusterwideNetworkPolicy'));
    invalid(
      ccnp({ endpointSelector: {}, nodeSelector: {}, ingress: [{}] }),
      'p.yaml: document 1 (CiliumClusterwideNetworkPolicy c1): spec: a rule cannot have both endpointSelector and nodeSelector',
    );
    invalid(
      ccnp({ nodeSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{}] } }] }] }),
      'p.yaml: document 1 (CiliumClusterwideNetworkPolicy c1): spec.ingress[0].toPorts[0].rules: host policies (nodeSelector) do not support L7 rules',
    );
    invalid(
      cnp({ endpointSelector: { matchLabels: { 'foo:app': 'x' } }, ingress: [{}] }),
      at('spec.endpointSelector.matchLabels.foo:app: label key "foo:app" has an unknown source "foo:" (known: k8s, reserved, any, unspec, container, cidr, fqdn, cilium-generated, kvstore, node)'),
    );
  });

  test('every problem is collected; the message names the first and counts the rest', () => {
    const e = invalid(
      cnp({ endpointSelector: {}, ingress: [{ fromCIDR: ['10.0.0.0/33'] }, { toPorts: [{ ports: [{ port: '99999' }] }] }], egress: [{ toFQDNs: [{ matchPattern: 'a b' }] }] }),
      at('spec.ingress[0].fromCIDR[0]: "10.0.0.0/33" is not a valid CIDR: prefix length must be 0-32 (and 2 more problems)'),
      3,
    );
    assert.deepEqual(e.problems.map((p) => p.path), ['spec.ingress[0].fromCIDR[0]', 'spec.ingress[1].toPorts[0].ports[0].port', 'spec.egress[0].toFQDNs[0].matchPattern']);
  });
});
