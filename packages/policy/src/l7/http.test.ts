// HTTP L7 rules. Sources: Cilium docs "Layer 7 policies > HTTP" (fields path,
// method, host, headers, headerMatches; "If multiple HTTP rules are specified,
// a request is allowed if it matches any of the rules"; a denied request gets
// 403 Access denied); cilium/cilium pkg/policy/api/http.go (PortRuleHTTP:
// `headers` entries are "Name" for presence or "Name: value" for an exact
// value; HeaderMatch mismatch actions LOG/ADD/DELETE/REPLACE); pkg/envoy/server.go
// getHTTPRule (split at the first space, trailing ':' removed from the name;
// header names are matched case-insensitively by Envoy, values exactly).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { decideDirection } from '../decide.js';
import { DirectionPolicy } from '../mapstate.js';
import { Proto } from '../ports.js';
import type { RuleOrigin } from '../rule.js';
import { compileHttpRule, describeHttpRule, httpRuleMatches, parseHeaderRule, type HttpRequest } from './http.js';
import { RegexError } from './regex.js';

const req = (r: Partial<HttpRequest>): HttpRequest => ({ method: 'GET', path: '/', host: 'svc', headers: {}, ...r });

describe('headers: "Name" (presence) vs "Name: value" (exact)', () => {
  test('parseHeaderRule', () => {
    assert.deepEqual(parseHeaderRule('X-Token: abc'), { name: 'x-token', value: 'abc' });
    assert.deepEqual(parseHeaderRule('X-Token'), { name: 'x-token' });
    assert.deepEqual(parseHeaderRule('X-Multi: a b'), { name: 'x-multi', value: 'a b' });
  });

  test('"X-Token: abc" needs the header with exactly that value; the name is case-insensitive', () => {
    const rule = compileHttpRule({ headers: ['X-Token: abc'] });
    assert.equal(httpRuleMatches(rule, req({ headers: { 'x-token': 'abc' } })), true);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-TOKEN': 'abc' } })), true);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-Token': 'ABC' } })), false);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-Token': 'abcd' } })), false);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-Other': 'abc' } })), false);
    assert.equal(httpRuleMatches(rule, req({})), false);
  });

  test('"X-Token" needs the header present, whatever its value', () => {
    const rule = compileHttpRule({ headers: ['X-Token'] });
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-Token': 'anything' } })), true);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'x-token': '' } })), true);
    assert.equal(httpRuleMatches(rule, req({})), false);
  });

  test('several header entries are AND-ed', () => {
    const rule = compileHttpRule({ headers: ['X-A: 1', 'X-B'] });
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-A': '1', 'X-B': 'z' } })), true);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-A': '1' } })), false);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'X-B': 'z' } })), false);
  });

  test('the Host header is the request authority', () => {
    const rule = compileHttpRule({ headers: ['Host: api.example.com'] });
    assert.equal(httpRuleMatches(rule, req({ host: 'api.example.com' })), true);
    assert.equal(httpRuleMatches(rule, req({ host: 'other.example.com' })), false);
  });
});

describe('headerMatches', () => {
  test('without mismatch: an exact value is required; no value = presence', () => {
    const exact = compileHttpRule({ headerMatches: [{ name: 'X-Token', value: 'abc' }] });
    assert.deepEqual(exact.headers, [{ name: 'x-token', value: 'abc' }]);
    assert.equal(httpRuleMatches(exact, req({ headers: { 'x-token': 'abc' } })), true);
    assert.equal(httpRuleMatches(exact, req({ headers: { 'x-token': 'abd' } })), false);
    assert.equal(httpRuleMatches(exact, req({})), false);
    const presence = compileHttpRule({ headerMatches: [{ name: 'X-Token' }] });
    assert.equal(httpRuleMatches(presence, req({ headers: { 'X-Token': 'v' } })), true);
    assert.equal(httpRuleMatches(presence, req({})), false);
  });

  test('with a mismatch action the request is never denied for that header', () => {
    const rule = compileHttpRule({ headerMatches: [{ name: 'X-Token', value: 'abc', mismatch: 'LOG' }] });
    assert.deepEqual(rule.headers, [{ name: 'x-token', value: 'abc', mismatch: 'LOG' }]);
    assert.equal(httpRuleMatches(rule, req({})), true);
    assert.equal(httpRuleMatches(rule, req({ headers: { 'x-token': 'wrong' } })), true);
  });
});

describe('method, path and host', () => {
  const rule = compileHttpRule({ method: 'GET', path: '/public/.*', host: 'api\\.example\\.com' });

  test('all given fields must match (AND)', () => {
    assert.equal(httpRuleMatches(rule, req({ method: 'GET', path: '/public/x', host: 'api.example.com' })), true);
    assert.equal(httpRuleMatches(rule, req({ method: 'POST', path: '/public/x', host: 'api.example.com' })), false);
    assert.equal(httpRuleMatches(rule, req({ method: 'GET', path: '/private/x', host: 'api.example.com' })), false);
    assert.equal(httpRuleMatches(rule, req({ method: 'GET', path: '/public/x', host: 'api.example.com.evil' })), false);
  });

  test('a missing field matches anything', () => {
    const any = compileHttpRule({});
    assert.equal(httpRuleMatches(any, req({ method: 'DELETE', path: '/whatever', host: 'x' })), true);
    const pathOnly = compileHttpRule({ path: '/v1/' });
    assert.equal(httpRuleMatches(pathOnly, req({ method: 'PUT', path: '/v1/' })), true);
    assert.equal(httpRuleMatches(pathOnly, req({ method: 'PUT', path: '/v1/x' })), false);
  });

  test('an invalid expression throws RegexError', () => {
    assert.throws(() => compileHttpRule({ path: '/a(?=b)' }), RegexError);
  });

  test('describeHttpRule', () => {
    assert.equal(describeHttpRule({}), 'method=* path=*');
    assert.equal(
      describeHttpRule({ method: 'GET', path: '/x', host: 'h', headers: ['X-A'], headerMatches: [{ name: 'X-B', value: 'v', mismatch: 'ADD' }] }),
      'method=GET path=/x host=h header[X-A] header[X-B: v (ADD)]',
    );
    assert.equal(rule.text, 'method=GET path=/public/.* host=api\\.example\\.com');
  });
});

describe('several rules on one port are OR-ed (decideDirection)', () => {
  const origin: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'api', section: 'ingress', index: 0 };
  const dp = new DirectionPolicy('ingress', true, true);
  dp.add({ identity: 300, proto: Proto.TCP, port: 80, endPort: 80 }, false, origin, {
    http: [compileHttpRule({ method: 'GET', path: '/a' }), compileHttpRule({ method: 'POST', path: '/b' })],
  });

  test('a request matching either rule is allowed at L7', () => {
    const a = decideDirection(dp, 'default/web', 300, Proto.TCP, 80, { http: req({ method: 'GET', path: '/a' }) });
    assert.equal(a.allowed, true);
    assert.equal(a.stage, 'l7');
    assert.equal(a.proxied, true);
    assert.equal(a.reason, 'ingress of default/web: GET /a allowed on 80/TCP by CiliumNetworkPolicy default/api ingress[0] (method=GET path=/a)');
    const b = decideDirection(dp, 'default/web', 300, Proto.TCP, 80, { http: req({ method: 'POST', path: '/b' }) });
    assert.equal(b.allowed, true);
    assert.equal(b.reason, 'ingress of default/web: POST /b allowed on 80/TCP by CiliumNetworkPolicy default/api ingress[0] (method=POST path=/b)');
  });

  test('a request matching none gets 403', () => {
    const v = decideDirection(dp, 'default/web', 300, Proto.TCP, 80, { http: req({ method: 'GET', path: '/b' }) });
    assert.equal(v.allowed, false);
    assert.equal(v.stage, 'l7');
    assert.equal(v.httpStatus, 403);
    assert.equal(v.dropReason, undefined);
    assert.deepEqual(v.rules, [origin]);
    assert.equal(v.reason, 'ingress of default/web: GET /b matches no HTTP rule on 80/TCP of CiliumNetworkPolicy default/api ingress[0] (403 Access denied)');
  });
});
