// HTTP method/path/host patterns are RE2 expressions that must match the
// whole value. Sources: Cilium docs "Layer 7 policies > HTTP" (path, method
// and host are "an extended POSIX regex matched against the ... of the
// request"; Envoy matches them with RE2 safe_regex, i.e. RE2::FullMatch);
// cilium/cilium pkg/policy/api/http.go (PortRuleHTTP.Sanitize compiles them
// with Go regexp, the same RE2 syntax); RE2 syntax reference
// github.com/google/re2/wiki/Syntax ("NOT SUPPORTED": lookaround,
// backreferences, atomic groups; repetition counts up to 1000; `**` is a
// "bad repetition operator").
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { RegexError, compileFullMatch } from './regex.js';

function rejects(pattern: string, message: string): void {
  assert.throws(
    () => compileFullMatch(pattern),
    (e: unknown) => {
      assert.ok(e instanceof RegexError, `expected a RegexError, got ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
    pattern,
  );
}

describe('anchoring: the pattern matches the whole value', () => {
  test('a literal path matches only itself', () => {
    const re = compileFullMatch('/v1/');
    assert.equal(re.test('/v1/'), true);
    assert.equal(re.test('/v1/x'), false);
    assert.equal(re.test('x/v1/'), false);
    assert.equal(re.test('/v1'), false);
  });

  test('alternation is anchored as a whole', () => {
    const re = compileFullMatch('GET|POST');
    assert.equal(re.test('GET'), true);
    assert.equal(re.test('POST'), true);
    assert.equal(re.test('GETX'), false);
    assert.equal(re.test('XPOST'), false);
    assert.equal(re.test('PUT'), false);
  });

  test('a prefix needs an explicit .*', () => {
    const re = compileFullMatch('/api/.*');
    assert.equal(re.test('/api/'), true);
    assert.equal(re.test('/api/a/b?x=1'), true);
    assert.equal(re.test('/apix'), false);
    assert.equal(re.test('/v2/api/'), false);
  });

  test('a dot is any character, an escaped dot is a dot', () => {
    assert.equal(compileFullMatch('api.example.com').test('apixexample.com'), true);
    assert.equal(compileFullMatch('api\\.example\\.com').test('apixexample.com'), false);
    assert.equal(compileFullMatch('api\\.example\\.com').test('api.example.com'), true);
  });

  test('lazy quantifiers are accepted', () => {
    assert.equal(compileFullMatch('/a.*?b').test('/axxb'), true);
  });
});

describe('RE2 syntax', () => {
  test('(?i) at the start makes the match case-insensitive', () => {
    const re = compileFullMatch('(?i)get');
    assert.equal(re.test('GET'), true);
    assert.equal(re.test('Get'), true);
    assert.equal(re.test('GETS'), false);
  });

  test('POSIX classes inside brackets', () => {
    assert.equal(compileFullMatch('[[:digit:][:upper:]]').test('7'), true);
    assert.equal(compileFullMatch('[[:digit:][:upper:]]').test('Q'), true);
    assert.equal(compileFullMatch('[[:digit:][:upper:]]').test('q'), false);
    const re = compileFullMatch('/[[:alpha:]]+');
    assert.equal(re.test('/abcXYZ'), true);
    assert.equal(re.test('/abc1'), false);
    assert.equal(compileFullMatch('[[:xdigit:]]{4}').test('0aF9'), true);
  });

  test('\\Q...\\E quotes literally (to the end when \\E is missing)', () => {
    const re = compileFullMatch('\\Q/a.b?\\E.*');
    assert.equal(re.test('/a.b?'), true);
    assert.equal(re.test('/a.b?rest'), true);
    assert.equal(re.test('/axb'), false);
    assert.equal(compileFullMatch('\\Q(x)*').test('(x)*'), true);
  });

  test('(?P<name>...) named groups', () => {
    const re = compileFullMatch('/users/(?P<id>[0-9]+)');
    assert.equal(re.test('/users/42'), true);
    assert.equal(re.test('/users/x'), false);
    assert.equal(compileFullMatch('(?<v>v[12])/x').test('v2/x'), true);
  });

  test('\\A and \\z are text anchors', () => {
    assert.equal(compileFullMatch('\\A/x\\z').test('/x'), true);
  });

  test('repeat counts up to 1000 are accepted', () => {
    assert.equal(compileFullMatch('a{1000}').test('a'.repeat(1000)), true);
    assert.equal(compileFullMatch('a{2,3}').test('aaa'), true);
    assert.equal(compileFullMatch('a{2,}').test('aaaaa'), true);
  });

  test('(?m) does not let a full match stop at a line end', () => {
    assert.equal(compileFullMatch('(?m)abc').test('abc\nx'), false);
  });

  test('flags anywhere: (?U), (?i:...) groups and POSIX negation, which RE2 accepts', () => {
    assert.equal(compileFullMatch('(?U)a+').test('aaa'), true);
    const re = compileFullMatch('/(?i:api)/v1');
    assert.equal(re.test('/API/v1'), true);
    assert.equal(re.test('/API/V1'), false);
    assert.equal(compileFullMatch('[[:^alpha:]]+').test('123-_'), true);
    assert.equal(compileFullMatch('[[:^alpha:]]+').test('12a'), false);
  });
});

describe('rejected as RE2 rejects them', () => {
  test('lookaround', () => {
    rejects('/a(?=b)', 'lookaround assertions are not supported by RE2');
    rejects('/a(?!b)', 'lookaround assertions are not supported by RE2');
    rejects('(?<=a)b', 'lookaround assertions are not supported by RE2');
    rejects('(?<!a)b', 'lookaround assertions are not supported by RE2');
  });

  test('backreferences', () => {
    rejects('(a)\\1', 'backreference \\1 is not supported by RE2');
  });

  test('atomic groups', () => {
    rejects('(?>a+)b', 'atomic groups are not supported by RE2');
  });

  test('nested repetition', () => {
    rejects('a**', 'invalid nested repetition operator *');
    rejects('a+*', 'invalid nested repetition operator *');
    rejects('a*??', 'invalid nested repetition operator ?');
    rejects('a{2}{3}', 'invalid nested repetition operator {3}');
    rejects('a*{2}', 'invalid nested repetition operator {2}');
  });

  test('repeat counts above 1000 or reversed', () => {
    rejects('a{1001}', 'repeat count {1001} exceeds 1000');
    rejects('a{2,1001}', 'repeat count {2,1001} exceeds 1000');
    rejects('a{3,2}', 'invalid repeat count {3,2}');
  });

  test('unbalanced parentheses and brackets', () => {
    rejects('/a(b', 'missing closing )');
    rejects('/a)b', 'unexpected )');
    rejects('[abc', 'missing closing ]');
  });

  test('other invalid input', () => {
    rejects('*a', 'missing argument to repetition operator *');
    rejects('a\\', 'trailing backslash');
    rejects('[[:foo:]]', 'unknown character class [:foo:]');
    rejects('(?P<n>a)(?P<n>b)', 'duplicate capture group name');
  });
});
