// Resolution: rules + identities -> the MapState of an endpoint, read back
// with decideDirection. Sources are cited per group; the precedence ladder is
// cilium/cilium pkg/policy/mapstate.go (deny entries win; default deny drops
// with 133, a deny rule with 181: pkg/monitor/api/drop.go) and the L7
// merging rules pkg/policy/l4.go (mergePortProto) and pkg/policy/rule.go
// (wildcardL3L4Rule) as fixed for CVE-2023-30851.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { decideDirection, type L7Request } from './decide.js';
import {
  FIRST_LOCAL_IDENTITY,
  cidrIdentity,
  endpointIdentityLabels,
  reservedIdentities,
  reservedIdentity,
  type Identity,
} from './identity.js';
import type { DirectionPolicy, EndpointPolicy } from './mapstate.js';
import { Proto } from './ports.js';
import { parsePolicyDocument, type TranslatedPolicy } from './repository.js';
import { ALLOW_LOCALHOST_ORIGIN, expandPorts, resolveAll, rulesBySubject, selectsSubject, type ResolveOptions } from './resolve.js';
import type { PortSpec, RuleOrigin } from './rule.js';

// ---- a small world --------------------------------------------------------

let docs = 0;
function doc(value: object): TranslatedPolicy {
  return parsePolicyDocument(value, { source: 'resolve.test', label: `document ${++docs}` });
}
function cnp(name: string, spec: object, namespace = 'default'): TranslatedPolicy {
  return doc({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
}
function ccnp(name: string, spec: object): TranslatedPolicy {
  return doc({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name }, spec });
}
function knp(name: string, spec: object, namespace = 'default'): TranslatedPolicy {
  return doc({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec });
}
function pod(id: number, namespace: string, podLabels: Record<string, string>): Identity {
  return { id, labels: endpointIdentityLabels({ namespace, podLabels }) };
}

const web = pod(300, 'default', { app: 'web' });
const a = pod(301, 'default', { app: 'a' });
const b = pod(302, 'default', { app: 'b' });
const aOther = pod(303, 'other', { app: 'a' });
const aProd = pod(304, 'default', { app: 'a', env: 'prod' });
const aDev = pod(305, 'default', { app: 'a', env: 'dev' });
const host = reservedIdentity('host');
const world = reservedIdentity('world');
const health = reservedIdentity('health');
const ext = cidrIdentity(FIRST_LOCAL_IDENTITY, '203.0.113.5')!;
const ext10 = cidrIdentity(FIRST_LOCAL_IDENTITY + 1, '10.1.2.3')!;
const identities: Identity[] = [...reservedIdentities(), web, a, b, aOther, aProd, aDev, ext, ext10];

function resolve(policies: TranslatedPolicy[], subject: Identity = web, opts: ResolveOptions = {}): EndpointPolicy {
  return resolveAll(policies.flatMap((p) => p.rules), { identities }, [subject], () => opts).get(subject.id)!;
}
function ingress(policies: TranslatedPolicy[], subject: Identity = web, opts: ResolveOptions = {}): DirectionPolicy {
  return resolve(policies, subject, opts).ingress;
}
function check(dp: DirectionPolicy, peer: Identity, port: number, proto: number = Proto.TCP, req: L7Request = {}) {
  return decideDirection(dp, 'default/web', peer.id, proto, port, req);
}
function httpGet(path: string): L7Request {
  return { http: { method: 'GET', path, host: 'web', headers: {} } };
}
const origin = (kind: string, name: string, section: RuleOrigin['section'], index: number, namespace: string | undefined = 'default'): RuleOrigin => ({
  kind,
  ...(namespace ? { namespace } : {}),
  name,
  section,
  index,
});

const fromApp = (app: string) => ({ matchLabels: { app } });
const tcp = (port: string) => ({ ports: [{ port, protocol: 'TCP' }] });

// ---- subjects ---------------------------------------------------------------

// Cilium docs "Host Policies" (nodeSelector selects nodes only) and
// pkg/k8s/apis/cilium.io/utils/utils.go ParseToCiliumRule (a namespaced
// endpointSelector always applies in the policy's namespace).
describe('subject selection', () => {
  test('a CNP selects pods of its own namespace only, never reserved identities', () => {
    const [rule] = cnp('all', { endpointSelector: {}, ingress: [{}] }).rules;
    assert.ok(rule);
    assert.equal(selectsSubject(rule, web), true);
    assert.equal(selectsSubject(rule, a), true);
    assert.equal(selectsSubject(rule, aOther), false);
    assert.equal(selectsSubject(rule, host), false);
    assert.equal(selectsSubject(rule, world), false);
  });

  test('a CCNP endpointSelector {} selects pods of every namespace but never the host', () => {
    const [rule] = ccnp('all', { endpointSelector: {}, ingress: [{}] }).rules;
    assert.ok(rule);
    assert.equal(selectsSubject(rule, web), true);
    assert.equal(selectsSubject(rule, aOther), true);
    assert.equal(selectsSubject(rule, host), false);
    assert.equal(selectsSubject(rule, health), false);
    assert.equal(selectsSubject(rule, ext), false);
  });

  test('a nodeSelector rule selects only the host identity', () => {
    const [rule] = ccnp('node', { nodeSelector: {}, ingress: [{}] }).rules;
    assert.ok(rule);
    assert.equal(selectsSubject(rule, host), true);
    assert.equal(selectsSubject(rule, web), false);
    assert.equal(selectsSubject(rule, world), false);
  });

  test('rulesBySubject groups the rules that select each subject', () => {
    const p1 = cnp('p1', { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{}] });
    const p2 = ccnp('p2', { endpointSelector: {}, egress: [{}] });
    const p3 = ccnp('p3', { nodeSelector: {}, ingress: [{}] });
    const by = rulesBySubject([...p1.rules, ...p2.rules, ...p3.rules], [web, a, host]);
    assert.deepEqual(by.get(web.id)?.map((r) => r.policy.name).sort(), ['p1', 'p2']);
    assert.deepEqual(by.get(a.id)?.map((r) => r.policy.name), ['p2']);
    assert.deepEqual(by.get(host.id)?.map((r) => r.policy.name), ['p3']);
  });
});

// ---- enforcement -------------------------------------------------------------

// Cilium docs "Policy Enforcement Modes > Endpoint default policy" and
// "Ingress/Egress Default Deny" (`ingress: [{}]` enables default deny and
// allows nothing); drop reasons pkg/monitor/api/drop.go.
describe('enforcement and default deny', () => {
  test('an endpoint no rule selects allows everything', () => {
    const ep = resolve([cnp('other', { endpointSelector: { matchLabels: { app: 'zzz' } }, ingress: [{}] })]);
    assert.equal(ep.ingress.enforced, false);
    assert.equal(ep.egress.enforced, false);
    const v = check(ep.ingress, ext, 80);
    assert.equal(v.allowed, true);
    assert.equal(v.enforced, false);
    assert.equal(v.reason, 'ingress of default/web is not under policy enforcement');
  });

  test('`ingress: [{}]` turns on default deny for ingress only and allows no peer', () => {
    const ep = resolve([cnp('lock', { endpointSelector: {}, ingress: [{}] })]);
    assert.equal(ep.ingress.enforced, true);
    assert.equal(ep.ingress.defaultDeny, true);
    assert.equal(ep.egress.enforced, false);
    assert.deepEqual(ep.ingress.entries.map((e) => e.identity), [host.id], 'only the allow-localhost entry');
    const v = check(ep.ingress, a, 80);
    assert.equal(v.allowed, false);
    assert.equal(v.dropReason, 133);
    assert.equal(v.stage, 'l3l4');
    assert.deepEqual(v.rules, []);
    assert.equal(v.reason, 'ingress of default/web: no rule allows 80/TCP from this peer (default deny)');
  });

  test('a deny-only policy closes the direction it names', () => {
    const dp = ingress([cnp('deny-b', { endpointSelector: {}, ingressDeny: [{ fromEndpoints: [fromApp('b')] }] })]);
    assert.equal(dp.defaultDeny, true);
    assert.equal(check(dp, b, 80).dropReason, 181);
    assert.equal(check(dp, a, 80).dropReason, 133);
  });
});

// ---- deny ---------------------------------------------------------------------

// Cilium docs "Deny Policies" (deny takes precedence over allow, across all
// policies; an L4 deny only covers its ports); CVE-2024-47825 (a broader
// CIDR deny must win over a narrower CIDR allow).
describe('deny beats allow', () => {
  test('an L3 deny beats an L3 allow of the same peer: drop reason 181 names the deny', () => {
    const dp = ingress([
      cnp('allow-a', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')] }] }),
      cnp('deny-a', { endpointSelector: fromApp('web'), ingressDeny: [{ fromEndpoints: [fromApp('a')] }] }),
    ]);
    const v = check(dp, a, 80);
    assert.equal(v.allowed, false);
    assert.equal(v.dropReason, 181);
    assert.deepEqual(v.rules, [origin('CiliumNetworkPolicy', 'deny-a', 'ingressDeny', 0)]);
    assert.equal(v.reason, 'ingress of default/web denied on 80/TCP by CiliumNetworkPolicy default/deny-a ingressDeny[0]');
  });

  test('an L4 deny beats an L3 allow on that port and protocol only', () => {
    const dp = ingress([
      cnp('p', {
        endpointSelector: fromApp('web'),
        ingress: [{ fromEndpoints: [fromApp('a')] }],
        ingressDeny: [{ fromEndpoints: [fromApp('a')], toPorts: [tcp('22')] }],
      }),
    ]);
    assert.equal(check(dp, a, 22).dropReason, 181);
    assert.equal(check(dp, a, 80).allowed, true);
    assert.equal(check(dp, a, 22, Proto.UDP).allowed, true);
    assert.equal(check(dp, a, 8, Proto.ICMP).allowed, true);
  });

  test('an L3 deny blocks every port and ICMP', () => {
    const dp = ingress([
      cnp('p', {
        endpointSelector: fromApp('web'),
        ingress: [{ fromEndpoints: [fromApp('a')] }],
        ingressDeny: [{ fromEndpoints: [fromApp('a')] }],
      }),
    ]);
    for (const [port, proto] of [[80, Proto.TCP], [53, Proto.UDP], [9, Proto.SCTP], [8, Proto.ICMP]] as const) {
      assert.equal(check(dp, a, port, proto).dropReason, 181, `${port}/${proto}`);
    }
  });

  test('a CNP deny beats a NetworkPolicy allow', () => {
    const dp = ingress([
      knp('allow-all', { podSelector: {}, ingress: [{}] }),
      cnp('deny-a', { endpointSelector: {}, ingressDeny: [{ fromEndpoints: [fromApp('a')] }] }),
    ]);
    assert.equal(check(dp, b, 80).allowed, true);
    assert.equal(check(dp, a, 80).dropReason, 181);
  });

  test('CVE-2024-47825: a broader CIDR deny beats a narrower CIDR allow', () => {
    const dp = ingress([
      cnp('p', {
        endpointSelector: fromApp('web'),
        ingress: [{ fromCIDR: ['10.1.0.0/16'] }, { fromCIDR: ['203.0.113.0/24'] }],
        ingressDeny: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8' }] }],
      }),
    ]);
    assert.equal(check(dp, ext10, 443).dropReason, 181);
    assert.equal(check(dp, ext, 443).allowed, true);
  });
});

// ---- L7 ---------------------------------------------------------------------------

// Cilium docs "Layer 7 policies" and pkg/policy/l4.go mergePortProto /
// pkg/policy/rule.go wildcardL3L4Rule: a peer allowed on a port by a rule
// without L7 rules may send any request; that wildcard belongs to the peers
// of that rule only (CVE-2023-30851).
describe('L7 merging', () => {
  const l7ForAB = cnp('l7', {
    endpointSelector: fromApp('web'),
    ingress: [
      {
        fromEndpoints: [fromApp('a'), fromApp('b')],
        toPorts: [{ ...tcp('80'), rules: { http: [{ method: 'GET', path: '/ok' }] } }],
      },
    ],
  });

  test('a peer allowed only by HTTP rules is limited to them', () => {
    const dp = ingress([l7ForAB]);
    const ok = check(dp, a, 80, Proto.TCP, httpGet('/ok'));
    assert.equal(ok.allowed, true);
    assert.equal(ok.stage, 'l7');
    assert.equal(ok.proxied, true);
    const no = check(dp, a, 80, Proto.TCP, httpGet('/no'));
    assert.equal(no.allowed, false);
    assert.equal(no.httpStatus, 403);
    assert.equal(check(dp, a, 81).dropReason, 133, 'the L7 rule covers port 80 only');
  });

  test('CVE-2023-30851: an L3-only allow frees its own peer at L7, not the other peers of the L7 rule', () => {
    const dp = ingress([l7ForAB, cnp('b-any', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('b')] }] })]);
    const bFree = check(dp, b, 80, Proto.TCP, httpGet('/no'));
    assert.equal(bFree.allowed, true);
    assert.equal(bFree.stage, 'l3l4');
    assert.equal(bFree.proxied, false);
    assert.deepEqual(bFree.rules, [origin('CiliumNetworkPolicy', 'b-any', 'ingress', 0)]);
    const aLimited = check(dp, a, 80, Proto.TCP, httpGet('/no'));
    assert.equal(aLimited.allowed, false);
    assert.equal(aLimited.httpStatus, 403);
  });

  test('the same, within one policy: an L4 allow without rules for one peer does not free the other', () => {
    const dp = ingress([
      cnp('one', {
        endpointSelector: fromApp('web'),
        ingress: [
          { fromEndpoints: [fromApp('a'), fromApp('b')], toPorts: [{ ...tcp('80'), rules: { http: [{ method: 'GET', path: '/ok' }] } }] },
          { fromEndpoints: [fromApp('b')], toPorts: [tcp('80')] },
        ],
      }),
    ]);
    assert.equal(check(dp, b, 80, Proto.TCP, httpGet('/no')).allowed, true);
    assert.equal(check(dp, a, 80, Proto.TCP, httpGet('/no')).httpStatus, 403);
  });

  test('an L4-only rule (no peer) without L7 rules frees that port for every peer', () => {
    const dp = ingress([l7ForAB, cnp('port80', { endpointSelector: fromApp('web'), ingress: [{ toPorts: [tcp('80')] }] })]);
    const v = check(dp, a, 80, Proto.TCP, httpGet('/no'));
    assert.equal(v.allowed, true);
    assert.equal(v.stage, 'l3l4');
    assert.equal(check(dp, ext, 80, Proto.TCP, httpGet('/no')).allowed, true);
  });

  test('HTTP rules of two policies on the same port are OR-ed', () => {
    const dp = ingress([
      cnp('r1', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ...tcp('80'), rules: { http: [{ path: '/one' }] } }] }] }),
      cnp('r2', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ...tcp('80'), rules: { http: [{ path: '/two' }] } }] }] }),
    ]);
    const one = check(dp, a, 80, Proto.TCP, httpGet('/one'));
    assert.equal(one.allowed, true);
    assert.deepEqual(one.rules, [origin('CiliumNetworkPolicy', 'r1', 'ingress', 0)]);
    const two = check(dp, a, 80, Proto.TCP, httpGet('/two'));
    assert.equal(two.allowed, true);
    assert.deepEqual(two.rules, [origin('CiliumNetworkPolicy', 'r2', 'ingress', 0)]);
    const three = check(dp, a, 80, Proto.TCP, httpGet('/three'));
    assert.equal(three.httpStatus, 403);
    assert.deepEqual(three.rules, [origin('CiliumNetworkPolicy', 'r1', 'ingress', 0), origin('CiliumNetworkPolicy', 'r2', 'ingress', 0)]);
  });

  test('a connection without a request is let through to the proxy', () => {
    const v = check(ingress([l7ForAB]), a, 80);
    assert.equal(v.allowed, true);
    assert.equal(v.proxied, true);
    assert.equal(v.stage, 'l3l4');
  });
});

// ---- enableDefaultDeny ---------------------------------------------------------

// Cilium docs "Policy Enforcement Modes > Endpoint default policy"
// (EnableDefaultDeny; "If multiple policies apply to an endpoint, that
// endpoint's default deny will be enabled if any policy requests it"; warning:
// "EnableDefaultDeny does not apply to layer-7 policy. Adding a layer-7 rule
// that does not include a layer-7 allow-all will cause drops, even when
// default-deny is explicitly disabled"); pkg/policy/api/rule_validation.go
// Rule.Sanitize.
describe('enableDefaultDeny: false', () => {
  const soft = (spec: object) => cnp('soft', { endpointSelector: fromApp('web'), enableDefaultDeny: { ingress: false }, ...spec });

  test('only the denies restrict', () => {
    const dp = ingress([soft({ ingressDeny: [{ fromEndpoints: [fromApp('b')] }] })]);
    assert.equal(dp.enforced, true);
    assert.equal(dp.defaultDeny, false);
    assert.equal(check(dp, b, 80).dropReason, 181);
    const v = check(dp, ext, 80);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.rules, []);
    assert.match(v.reason, /enableDefaultDeny: false/);
  });

  test('its allow rules alone restrict nothing', () => {
    const dp = ingress([soft({ ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [tcp('443')] }] })]);
    assert.equal(check(dp, b, 7000).allowed, true);
    assert.equal(check(dp, a, 443).allowed, true);
  });

  test('another policy that is default-deny makes the endpoint default-deny; the allows are OR-ed', () => {
    const dp = ingress([
      soft({ ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [tcp('443')] }] }),
      cnp('strict', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('b')], toPorts: [tcp('9100')] }] }),
    ]);
    assert.equal(dp.defaultDeny, true);
    assert.equal(check(dp, a, 443).allowed, true);
    assert.equal(check(dp, b, 9100).allowed, true);
    assert.equal(check(dp, b, 443).dropReason, 133);
  });

  test(
    'L7 rules still apply to the peers they name',
    () => {
      const dp = ingress([soft({ ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ...tcp('80'), rules: { http: [{ method: 'GET', path: '/ok' }] } }] }] })]);
      assert.equal(check(dp, a, 80, Proto.TCP, httpGet('/ok')).allowed, true);
      const v = check(dp, a, 80, Proto.TCP, httpGet('/no'));
      assert.equal(v.allowed, false);
      assert.equal(v.httpStatus, 403);
      assert.equal(check(dp, b, 80, Proto.TCP, httpGet('/no')).allowed, true, 'a peer the L7 rule does not name stays free');
    },
  );
});

// ---- allow-localhost ---------------------------------------------------------

// cilium/cilium pkg/policy/mapstate.go determineAllowLocalhostIngress (an
// allow entry for the host identity on ingress when allow-localhost is on;
// deny entries still take precedence) and pkg/option/config.go AllowLocalhost.
describe('allow-localhost', () => {
  const lock = cnp('lock', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')] }] });

  test('the host may reach an enforced endpoint', () => {
    const v = check(ingress([lock]), host, 8080);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.rules, [ALLOW_LOCALHOST_ORIGIN]);
    assert.equal(v.reason, 'ingress of default/web allowed on 8080/TCP by allow-localhost');
  });

  test('not when the option is off', () => {
    assert.equal(check(ingress([lock], web, { allowLocalhost: false }), host, 8080).dropReason, 133);
  });

  test('an explicit deny of the host still wins', () => {
    const dp = ingress([lock, cnp('no-host', { endpointSelector: fromApp('web'), ingressDeny: [{ fromEntities: ['host'] }] })]);
    assert.equal(check(dp, host, 8080).dropReason, 181);
  });

  test('ingress only: egress to the host follows the egress rules', () => {
    const ep = resolve([cnp('eg', { endpointSelector: fromApp('web'), egress: [{ toEndpoints: [fromApp('a')] }] })]);
    assert.equal(decideDirection(ep.egress, 'default/web', host.id, Proto.TCP, 10250).dropReason, 133);
  });

  test('no entry is added to a direction that is not enforced', () => {
    const ep = resolve([cnp('eg', { endpointSelector: fromApp('web'), egress: [{}] })]);
    assert.deepEqual(ep.ingress.entries, []);
  });
});

// ---- host policies -----------------------------------------------------------

// Cilium docs "Host Policies" (nodeSelector, CCNP only, selects the host
// endpoint; endpointSelector never selects it).
describe('host policies', () => {
  const hostPolicy = ccnp('host-ssh', { nodeSelector: {}, ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [tcp('22')] }] });

  test('a nodeSelector rule enforces the host only', () => {
    const hp = resolve([hostPolicy], host);
    assert.equal(hp.ingress.enforced, true);
    assert.equal(decideDirection(hp.ingress, 'host', a.id, Proto.TCP, 22).allowed, true);
    assert.equal(decideDirection(hp.ingress, 'host', a.id, Proto.TCP, 23).dropReason, 133);
    assert.equal(decideDirection(hp.ingress, 'host', b.id, Proto.TCP, 22).dropReason, 133);
    assert.equal(resolve([hostPolicy], web).ingress.enforced, false);
  });

  test('an endpointSelector rule never enforces the host', () => {
    assert.equal(resolve([ccnp('all', { endpointSelector: {}, ingress: [{}] })], host).ingress.enforced, false);
  });
});

// ---- peers -------------------------------------------------------------------

// pkg/k8s/apis/cilium.io/utils/utils.go getEndpointSelector (namespace
// scoping of fromEndpoints); Cilium docs "Layer 3 policies" (Entities based:
// world, cluster, all; IP/CIDR based; "Ingress/Egress requires").
describe('peers', () => {
  test('fromEndpoints without a namespace stays in the policy namespace', () => {
    const dp = ingress([cnp('p', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')] }] })]);
    assert.equal(check(dp, a, 80).allowed, true);
    assert.equal(check(dp, aOther, 80).dropReason, 133);
  });

  test('fromEndpoints naming k8s:io.kubernetes.pod.namespace reaches that namespace', () => {
    const dp = ingress([
      cnp('p', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a', 'k8s:io.kubernetes.pod.namespace': 'other' } }] }] }),
    ]);
    assert.equal(check(dp, aOther, 80).allowed, true);
    assert.equal(check(dp, a, 80).dropReason, 133);
  });

  test('entities: world is outside the cluster, cluster is pods and nodes', () => {
    const w = ingress([cnp('w', { endpointSelector: fromApp('web'), ingress: [{ fromEntities: ['world'] }] })], web, { allowLocalhost: false });
    assert.equal(check(w, ext, 80).allowed, true);
    assert.equal(check(w, world, 80).allowed, true);
    assert.equal(check(w, a, 80).dropReason, 133);
    assert.equal(check(w, host, 80).dropReason, 133);
    const c = ingress([cnp('c', { endpointSelector: fromApp('web'), ingress: [{ fromEntities: ['cluster'] }] })], web, { allowLocalhost: false });
    assert.equal(check(c, a, 80).allowed, true);
    assert.equal(check(c, aOther, 80).allowed, true);
    assert.equal(check(c, host, 80).allowed, true);
    assert.equal(check(c, reservedIdentity('remote-node'), 80).allowed, true);
    assert.equal(check(c, ext, 80).dropReason, 133);
  });

  test('CIDR rules never select pods', () => {
    const dp = ingress([cnp('p', { endpointSelector: fromApp('web'), ingress: [{ fromCIDR: ['0.0.0.0/0'] }] })]);
    assert.equal(check(dp, ext, 80).allowed, true);
    assert.equal(check(dp, a, 80).dropReason, 133);
  });

  test('fromRequires of any selecting rule narrows every fromEndpoints', () => {
    const dp = ingress([
      cnp('allow-a', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')] }] }),
      cnp('prod-only', { endpointSelector: fromApp('web'), ingress: [{ fromRequires: [{ matchLabels: { env: 'prod' } }] }] }),
    ]);
    assert.equal(check(dp, aProd, 80).allowed, true);
    assert.equal(check(dp, aDev, 80).dropReason, 133);
    assert.equal(check(dp, a, 80).dropReason, 133);
  });
});

// ---- ports -------------------------------------------------------------------

// Cilium docs "Layer 4 policies" (protocol omitted = any of TCP/UDP/SCTP;
// endPort ranges; ICMP only through icmps or an L3-only rule); Kubernetes
// NetworkPolicy (protocol defaults to TCP; named ports refer to container
// ports: ingress the receiver's, egress the peers').
describe('ports at resolution', () => {
  test('a port without protocol allows TCP, UDP and SCTP, never ICMP', () => {
    const dp = ingress([cnp('dns', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ports: [{ port: '53' }] }] }] })]);
    assert.deepEqual(dp.entries.filter((e) => e.identity === a.id).map((e) => [e.proto, e.port, e.endPort]), [[6, 53, 53], [17, 53, 53], [132, 53, 53]]);
    assert.equal(check(dp, a, 53, Proto.TCP).allowed, true);
    assert.equal(check(dp, a, 53, Proto.UDP).allowed, true);
    assert.equal(check(dp, a, 53, Proto.SCTP).allowed, true);
    assert.equal(check(dp, a, 8, Proto.ICMP).dropReason, 133);
  });

  test('endPort ranges are inclusive', () => {
    const dp = ingress([
      cnp('range', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ports: [{ port: '8000', endPort: 8080, protocol: 'TCP' }] }] }] }),
    ]);
    assert.equal(check(dp, a, 8000).allowed, true);
    assert.equal(check(dp, a, 8080).allowed, true);
    assert.equal(check(dp, a, 7999).dropReason, 133);
    assert.equal(check(dp, a, 8081).dropReason, 133);
  });

  test('port 0 with a protocol is every port of that protocol', () => {
    const dp = ingress([cnp('udp', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ports: [{ port: '0', protocol: 'UDP' }] }] }] })]);
    assert.equal(check(dp, a, 1, Proto.UDP).allowed, true);
    assert.equal(check(dp, a, 65535, Proto.UDP).allowed, true);
    assert.equal(check(dp, a, 80, Proto.TCP).dropReason, 133);
  });

  test('a NetworkPolicy port without protocol is TCP', () => {
    const dp = ingress([knp('np', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 80 }] }] })]);
    assert.equal(check(dp, a, 80, Proto.TCP).allowed, true);
    assert.equal(check(dp, a, 80, Proto.UDP).dropReason, 133);
  });

  test('icmps allow the listed types only', () => {
    const dp = ingress([cnp('ping', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], icmps: [{ fields: [{ type: 8 }] }] }] })]);
    assert.equal(check(dp, a, 8, Proto.ICMP).allowed, true);
    assert.equal(check(dp, a, 0, Proto.ICMP).dropReason, 133);
    assert.equal(check(dp, a, 8, Proto.TCP).dropReason, 133);
  });

  test('named ports: ingress resolves against the endpoint, egress against the cluster', () => {
    const ing = cnp('named-in', { endpointSelector: fromApp('web'), ingress: [{ fromEndpoints: [fromApp('a')], toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] }] });
    const resolved = ingress([ing], web, { namedPorts: [{ name: 'http', port: 8080, proto: Proto.TCP }] });
    assert.equal(check(resolved, a, 8080).allowed, true);
    assert.equal(check(resolved, a, 80).dropReason, 133);
    assert.deepEqual(ingress([ing]).entries.filter((e) => e.identity === a.id), [], 'no container port with that name: nothing allowed');
    const eg = cnp('named-out', { endpointSelector: fromApp('web'), egress: [{ toEndpoints: [fromApp('a')], toPorts: [{ ports: [{ port: 'metrics' }] }] }] });
    const ep = resolve([eg], web, { clusterNamedPorts: [{ name: 'metrics', port: 9090, proto: Proto.TCP }] });
    assert.equal(decideDirection(ep.egress, 'default/web', a.id, Proto.TCP, 9090).allowed, true);
    assert.equal(decideDirection(ep.egress, 'default/web', a.id, Proto.UDP, 9090).dropReason, 133);
  });
});

describe('expandPorts', () => {
  test('ANY expands to TCP, UDP and SCTP', () => {
    assert.deepEqual(expandPorts([{ proto: 0, port: 80, endPort: 80 }], []), [
      { proto: 6, port: 80, endPort: 80 },
      { proto: 17, port: 80, endPort: 80 },
      { proto: 132, port: 80, endPort: 80 },
    ]);
    assert.deepEqual(expandPorts([{ proto: 17, port: 53, endPort: 53 }], []), [{ proto: 17, port: 53, endPort: 53 }]);
  });

  test('named ports resolve to every matching container port of a compatible protocol', () => {
    const named = [
      { name: 'http', port: 8080, proto: Proto.TCP },
      { name: 'dns', port: 53, proto: Proto.UDP },
      { name: 'http', port: 8081, proto: Proto.SCTP },
    ];
    const any: PortSpec = { proto: 0, port: 0, endPort: 0, name: 'http' };
    assert.deepEqual(expandPorts([any], named), [
      { proto: 6, port: 8080, endPort: 8080, name: 'http' },
      { proto: 132, port: 8081, endPort: 8081, name: 'http' },
    ]);
    assert.deepEqual(expandPorts([{ ...any, proto: Proto.UDP }], named), []);
    assert.deepEqual(expandPorts([{ proto: 0, port: 0, endPort: 0, name: 'grpc' }], named), []);
  });

  test('L7 rules travel with the expanded ports', () => {
    const l7 = { dns: [] };
    assert.deepEqual(expandPorts([{ proto: 0, port: 53, endPort: 53, l7 }], []).map((p) => p.l7), [l7, l7, l7]);
  });
});

test('a direction in default deny names the policies that put it there (a default-deny drop is attributed to them); enableDefaultDeny: false does not', () => {
  const p = resolve([
    cnp('rule1', { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }] }] }),
    cnp('open-egress', { endpointSelector: {}, enableDefaultDeny: { egress: false }, egress: [{ toEndpoints: [{}] }] }),
    knp('np', { podSelector: {}, policyTypes: ['Ingress'] }),
  ]);
  assert.deepEqual(p.ingress.defaultDenyBy.map((x) => `${x.kind} ${x.namespace}/${x.name}`).sort(), ['CiliumNetworkPolicy default/rule1', 'NetworkPolicy default/np']);
  assert.equal(p.egress.enforced, true);
  assert.deepEqual(p.egress.defaultDenyBy, [], 'egress is enforced but not default deny');
});
