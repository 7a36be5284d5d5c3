// DNS names in toFQDNs and rules.dns. Sources: Cilium docs "Layer 7 policies >
// DNS" and "DNS based" (matchName: exact name; matchPattern: `*` matches any
// DNS characters within one label, `*` alone matches every name);
// cilium/cilium pkg/fqdn/matchpattern/matchpattern.go (ToRegexp, lower-cased,
// trailing dot optional via dns.Fqdn) and pkg/policy/api/fqdn.go (kubebuilder
// patterns: matchName `^([-a-zA-Z0-9_]+[.]?)+$`, matchPattern
// `^([-a-zA-Z0-9_*]+[.]?)+$`).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { checkMatchName, checkMatchPattern, compileDnsMatcher, dnsMatches, normalizeName } from './dns.js';

const name = (n: string) => compileDnsMatcher({ matchName: n });
const pattern = (p: string) => compileDnsMatcher({ matchPattern: p });

describe('matchName', () => {
  test('exact, case-insensitive, trailing dot optional on both sides', () => {
    const m = name('Example.COM');
    for (const q of ['example.com', 'EXAMPLE.com', 'example.com.', 'Example.Com.']) assert.equal(dnsMatches(m, q), true, q);
    assert.equal(dnsMatches(name('example.com.'), 'example.com'), true);
  });

  test('no subdomains, no look-alikes', () => {
    const m = name('example.com');
    for (const q of ['a.example.com', 'example.co', 'exampleXcom', 'example.com.evil', 'xexample.com']) assert.equal(dnsMatches(m, q), false, q);
  });
});

describe('matchPattern', () => {
  test('*.example.com matches one label only', () => {
    const m = pattern('*.example.com');
    assert.equal(dnsMatches(m, 'a.example.com'), true);
    assert.equal(dnsMatches(m, 'A-1_b.Example.com.'), true);
    assert.equal(dnsMatches(m, 'example.com'), false);
    assert.equal(dnsMatches(m, 'a.b.example.com'), false);
    assert.equal(dnsMatches(m, 'a.example.com.evil'), false);
    assert.equal(dnsMatches(m, 'aexample.com'), false);
  });

  test('* inside a label', () => {
    const m = pattern('api-*.example.com');
    assert.equal(dnsMatches(m, 'api-v1.example.com'), true);
    assert.equal(dnsMatches(m, 'api.example.com'), false);
    assert.equal(dnsMatches(m, 'api-v1.x.example.com'), false);
  });

  test('a lone * matches every name', () => {
    const m = pattern('*');
    for (const q of ['example.com', 'a.b.c.d', 'localhost', 'x.', 'CAPS.io']) assert.equal(dnsMatches(m, q), true, q);
  });

  test('a pattern without * is an exact name', () => {
    const m = pattern('Example.com');
    assert.equal(dnsMatches(m, 'example.com'), true);
    assert.equal(dnsMatches(m, 'a.example.com'), false);
  });

  test('text describes the selector', () => {
    assert.equal(pattern('*.x.io').text, 'matchPattern: *.x.io');
    assert.equal(name('x.io').text, 'matchName: x.io');
  });
});

describe('validation (pkg/policy/api/fqdn.go patterns)', () => {
  test('valid names and patterns', () => {
    assert.equal(checkMatchName('example.com'), undefined);
    assert.equal(checkMatchName('example.com.'), undefined);
    assert.equal(checkMatchName('_sip._tcp.example.com'), undefined);
    assert.equal(checkMatchPattern('*.example.com'), undefined);
    assert.equal(checkMatchPattern('*'), undefined);
    assert.equal(checkMatchPattern('api-*.example.com'), undefined);
  });

  test('bad characters are rejected with the reason', () => {
    assert.equal(checkMatchName('exa mple.com'), `"exa mple.com" is not a DNS name (letters, digits, '-', '_' and '.' only)`);
    assert.equal(checkMatchName('*.example.com'), `"*.example.com" is not a DNS name (letters, digits, '-', '_' and '.' only)`);
    assert.equal(checkMatchName('a..b'), `"a..b" is not a DNS name (letters, digits, '-', '_' and '.' only)`);
    assert.equal(checkMatchName('example.com/x'), `"example.com/x" is not a DNS name (letters, digits, '-', '_' and '.' only)`);
    assert.equal(checkMatchPattern('a[b].com'), `"a[b].com" is not a DNS pattern (letters, digits, '-', '_', '.' and '*' only)`);
    assert.equal(checkMatchPattern('a+.com'), `"a+.com" is not a DNS pattern (letters, digits, '-', '_', '.' and '*' only)`);
  });

  test('normalizeName', () => {
    assert.equal(normalizeName(' Example.COM. '), 'example.com');
    assert.equal(normalizeName('example.com'), 'example.com');
  });

  // Go's regexp (RE2) runs in linear time; these backtracking JS expressions
  // take exponential time on a long label followed by a bad character, so a
  // single policy or DNS query can stall the engine.
  // With 200 characters an exponential matcher would not finish in a lifetime;
  // these tests only complete because matching is linear (no time limit asserted).
  const slow = 'a'.repeat(200) + '!';
  test('validation of a long invalid name terminates', () => {
    assert.equal(typeof checkMatchName(slow), 'string');
    assert.equal(typeof checkMatchPattern(slow), 'string');
  });

  test('matching a long invalid query against a lone * terminates', () => {
    assert.equal(dnsMatches(pattern('*'), slow), false);
    assert.equal(dnsMatches(pattern('*'), 'a'.repeat(200) + '.b'), true);
  });
});
