// Verdicts read from a MapState. Sources: cilium/cilium bpf/lib/policy.h
// (policy_can_access: a deny entry drops with DROP_POLICY_DENY, no entry
// drops with DROP_POLICY under default deny), pkg/monitor/api/drop.go
// (133 "Policy denied", 181 "Policy denied by denylist"); Cilium docs
// "Layer 7 policies" (403 Access denied for HTTP; DNS queries that match no
// rule are refused); a connection needs the sender's egress and the
// receiver's ingress (docs "Policy Enforcement Modes").
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { DropReason, decideConnection, decideDirection, type DirectionVerdict } from './decide.js';
import { compileDnsMatcher } from './l7/dns.js';
import { compileHttpRule } from './l7/http.js';
import { DirectionPolicy } from './mapstate.js';
import { Proto } from './ports.js';
import type { Direction, RuleOrigin } from './rule.js';

const allowA: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'allow-a', section: 'ingress', index: 0 };
const denyA22: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'deny-a', section: 'ingressDeny', index: 1 };
const dnsRule: RuleOrigin = { kind: 'CiliumClusterwideNetworkPolicy', name: 'dns', spec: 2, section: 'egress', index: 0 };
const A = 301;
const B = 302;

describe('decideDirection', () => {
  test('drop reasons are Cilium\'s', () => {
    assert.equal(DropReason.POLICY_DENIED, 133);
    assert.equal(DropReason.POLICY_DENY, 181);
  });

  test('a direction without enforcement allows everything', () => {
    const v = decideDirection(new DirectionPolicy('egress'), 'default/a', B, Proto.TCP, 80);
    assert.deepEqual(v, {
      direction: 'egress',
      enforced: false,
      proxied: false,
      allowed: true,
      stage: 'l3l4',
      rules: [],
      reason: 'egress of default/a is not under policy enforcement',
    });
  });

  const dp = new DirectionPolicy('ingress', true, true);
  dp.add({ identity: A, proto: 0, port: 0, endPort: 65535 }, false, allowA, undefined);
  dp.add({ identity: A, proto: Proto.TCP, port: 22, endPort: 22 }, true, denyA22, undefined);

  test('an L3 allow covers every port and ICMP', () => {
    const v = decideDirection(dp, 'default/web', A, Proto.TCP, 80);
    assert.equal(v.allowed, true);
    assert.equal(v.stage, 'l3l4');
    assert.deepEqual(v.rules, [allowA]);
    assert.equal(v.reason, 'ingress of default/web allowed on 80/TCP by CiliumNetworkPolicy default/allow-a ingress[0]');
    const icmp = decideDirection(dp, 'default/web', A, Proto.ICMP, 8);
    assert.equal(icmp.allowed, true);
    assert.equal(icmp.reason, 'ingress of default/web allowed on ICMP type 8 by CiliumNetworkPolicy default/allow-a ingress[0]');
  });

  test('an L4 deny beats the L3 allow on its port only: 181', () => {
    const v = decideDirection(dp, 'default/web', A, Proto.TCP, 22);
    assert.equal(v.allowed, false);
    assert.equal(v.dropReason, 181);
    assert.deepEqual(v.rules, [denyA22]);
    assert.equal(v.reason, 'ingress of default/web denied on 22/TCP by CiliumNetworkPolicy default/deny-a ingressDeny[1]');
    assert.equal(decideDirection(dp, 'default/web', A, Proto.UDP, 22).allowed, true);
    assert.equal(decideDirection(dp, 'default/web', A, Proto.TCP, 23).allowed, true);
  });

  test('no allow under default deny: 133', () => {
    const v = decideDirection(dp, 'default/web', B, Proto.UDP, 53);
    assert.equal(v.allowed, false);
    assert.equal(v.dropReason, 133);
    assert.deepEqual(v.rules, []);
    assert.equal(v.reason, 'ingress of default/web: no rule allows 53/UDP from this peer (default deny)');
  });

  test('a deny for any peer beats an allow for a specific peer', () => {
    const d = new DirectionPolicy('ingress', true, true);
    d.add({ identity: A, proto: Proto.TCP, port: 80, endPort: 80 }, false, allowA, undefined);
    d.add({ identity: 0, proto: 0, port: 0, endPort: 65535 }, true, denyA22, undefined);
    assert.equal(decideDirection(d, 'default/web', A, Proto.TCP, 80).dropReason, 181);
  });

  test('enforced without default deny: no allow still passes', () => {
    const d = new DirectionPolicy('ingress', true, false);
    d.add({ identity: A, proto: Proto.TCP, port: 22, endPort: 22 }, true, denyA22, undefined);
    // resolve() adds the implicit allow-all entry for such a direction; without it nothing matches.
    assert.equal(decideDirection(d, 'default/web', A, Proto.TCP, 22).dropReason, 181);
  });
});

describe('decideDirection at L7', () => {
  const dp = new DirectionPolicy('egress', true, true);
  dp.add({ identity: 0, proto: Proto.UDP, port: 53, endPort: 53 }, false, dnsRule, { dns: [compileDnsMatcher({ matchPattern: '*.example.com' })] });
  dp.add({ identity: B, proto: Proto.TCP, port: 80, endPort: 80 }, false, allowA, { http: [compileHttpRule({ method: 'GET' })] });

  test('DNS: a matching query is allowed at L7, another is refused', () => {
    const ok = decideDirection(dp, 'default/a', 7, Proto.UDP, 53, { dns: { query: 'api.example.com' } });
    assert.equal(ok.allowed, true);
    assert.equal(ok.stage, 'l7');
    assert.equal(ok.proxied, true);
    assert.equal(ok.reason, 'egress of default/a: DNS query api.example.com allowed by CiliumClusterwideNetworkPolicy dns specs[2].egress[0] (matchPattern: *.example.com)');
    const no = decideDirection(dp, 'default/a', 7, Proto.UDP, 53, { dns: { query: 'evil.org' } });
    assert.equal(no.allowed, false);
    assert.equal(no.stage, 'l7');
    assert.equal(no.httpStatus, undefined);
    assert.equal(no.reason, 'egress of default/a: DNS query evil.org matches no DNS rule of CiliumClusterwideNetworkPolicy dns specs[2].egress[0] (REFUSED)');
  });

  test('HTTP: matching request allowed, other methods 403', () => {
    const get = { method: 'GET', path: '/', host: 'b', headers: {} };
    assert.equal(decideDirection(dp, 'default/a', B, Proto.TCP, 80, { http: get }).allowed, true);
    const post = decideDirection(dp, 'default/a', B, Proto.TCP, 80, { http: { ...get, method: 'POST' } });
    assert.equal(post.allowed, false);
    assert.equal(post.httpStatus, 403);
  });

  test('a connection without a request reaches the proxy', () => {
    const v = decideDirection(dp, 'default/a', B, Proto.TCP, 80);
    assert.equal(v.allowed, true);
    assert.equal(v.proxied, true);
    assert.equal(v.stage, 'l3l4');
    assert.equal(v.reason, 'egress of default/a allowed on 80/TCP to the L7 proxy by CiliumNetworkPolicy default/allow-a ingress[0] (requests are judged there)');
  });
});

describe('decideConnection', () => {
  const allowed = (direction: Direction, origin: RuleOrigin): DirectionVerdict =>
    ({ direction, enforced: true, allowed: true, stage: 'l3l4', proxied: false, rules: [origin], reason: `${direction} ok` });
  const denied = (direction: Direction, extra: { dropReason?: number; httpStatus?: number }): DirectionVerdict =>
    ({ direction, enforced: true, allowed: false, stage: 'l3l4', proxied: false, rules: [denyA22], reason: `${direction} no`, ...extra });

  test('both sides must allow; the union of their rules is reported', () => {
    const v = decideConnection(allowed('egress', dnsRule), allowed('ingress', allowA));
    assert.equal(v.allowed, true);
    assert.deepEqual(v.rules, [dnsRule, allowA]);
    assert.equal(v.reason, 'egress ok; ingress ok');
    assert.equal(v.deniedBy, undefined);
  });

  test('the sender\'s egress is judged first', () => {
    const v = decideConnection(denied('egress', { dropReason: 133 }), denied('ingress', { dropReason: 181 }));
    assert.equal(v.allowed, false);
    assert.equal(v.deniedBy, 'egress');
    assert.equal(v.dropReason, 133);
    assert.equal(v.reason, 'egress no');
  });

  test('an ingress denial carries its drop reason or HTTP status', () => {
    const v = decideConnection(allowed('egress', dnsRule), denied('ingress', { httpStatus: 403 }));
    assert.equal(v.deniedBy, 'ingress');
    assert.equal(v.httpStatus, 403);
    assert.equal(v.dropReason, undefined);
    assert.deepEqual(v.rules, [denyA22]);
  });

  test('one side only, or none', () => {
    assert.equal(decideConnection(undefined, denied('ingress', { dropReason: 181 })).dropReason, 181);
    const none = decideConnection(undefined, undefined);
    assert.equal(none.allowed, true);
    assert.equal(none.reason, 'neither side is an endpoint: no policy applies');
  });
});
