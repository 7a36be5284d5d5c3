// The conformance table of compileFullMatch, the RE2 adapter behind HTTP
// method/path/host rules. Sources: RE2 syntax reference
// github.com/google/re2/wiki/Syntax; Go regexp/syntax package docs (the same
// syntax, used by cilium/cilium pkg/policy/api/http.go to validate rules);
// Envoy matches the rules with RE2::FullMatch, i.e. Go's `^(?:pattern)\z`.
// Every expected answer in MATCHES is what Go's regexp answers for
// `^(?:pattern)\z` (checked against Go 1.19; `(?<name>...)` needs Go 1.22).
// Every pattern in REJECTS is rejected by Go too, except where RE2 (what Envoy
// runs) is stricter: a duplicate capture group name, and a program over
// 200,000 instructions (RE2's default 8 MiB memory budget stops programs of
// that order; Go allows about 3 million, re2js about 1.4 million).
//
// Where re2js itself differs from RE2/Go the adapter corrects it, and the row
// says so: `[:]` inside a class (re2js refuses it as a class name; RE2 and Go
// read a literal `[`), and the program-size limit (re2js has only Go's).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { RegexError, compileFullMatch } from './regex.js';

const r = String.raw;

/** [pattern, input, whether the whole input matches], by feature. */
const MATCHES: Record<string, [string, string, boolean][]> = {
  'literals match the whole input': [
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['abc', 'xabc', false],
    ['abc', 'ab', false],
    ['', '', true],
    ['', 'a', false],
    ['/v1/', '/v1/', true],
    [']}', ']}', true],
  ],
  'dot is any code point but \\n unless (?s)': [
    ['a.c', 'abc', true],
    ['a.c', 'a\nc', false],
    ['(?s)a.c', 'a\nc', true],
    ['(?s:.)', '\n', true],
    ['(?s:.)\n.', '\n\n\n', false],
    ['.', 'é', true],
    ['.', '😀', true],
    ['..', '😀', false],
    ['a.c', 'a😀c', true],
  ],
  'alternation': [
    ['GET|POST', 'GET', true],
    ['GET|POST', 'POST', true],
    ['GET|POST', 'GETPOST', false],
    ['GET|POST', 'PUT', false],
    ['a|', '', true],
    ['|b', 'b', true],
    ['a||b', '', true],
    ['/(a|b)c', '/bc', true],
  ],
  'groups': [
    ['(ab)+', 'abab', true],
    ['(?:ab)+', 'aba', false],
    ['(?P<id>[0-9]+)x', '42x', true],
    ['(?<id>[0-9]+)', '42', true],
    ['(?P<a1_B>x)(?P<b>y)', 'xy', true],
    ['()', '', true],
    ['()*', '', true],
    ['(a*)*', 'aaa', true],
    ['(a*)+b', 'b', true],
    ['(|a)*', 'aa', true],
    ['((((a))))', 'a', true],
  ],
  'flags and flag groups anywhere': [
    ['(?i)get', 'GeT', true],
    ['(?i:get)/x', 'GET/x', true],
    ['(?i:get)/x', 'GET/X', false],
    ['a(?i)b', 'aB', true],
    ['a(?i)b', 'AB', false],
    ['(a(?i)b)c', 'aBc', true],
    ['(a(?i)b)c', 'aBC', false],
    ['(a(?i)b|c)', 'C', true],
    ['(?i)a(?-i)b', 'Ab', true],
    ['(?i)a(?-i)b', 'AB', false],
    ['(?i)a(?-i:b)c', 'AbC', true],
    ['(?is)a.', 'A\n', true],
    ['(?i-s:a.)', 'A\n', false],
    ['(?s)(?i-s:a.)', 'a\n', false],
    ['(?m)^a$\n^b$', 'a\nb', true],
    ['^a$\n^b$', 'a\nb', false],
    ['(?m)abc', 'abc\nx', false],
    ['(?m)a$', 'a', true],
    ['(?m)a\n^$\nb', 'a\n\nb', true],
    ['(?U)a+', 'aaa', true],
    ['(?U)(a+?)b', 'aab', true],
    ['(?)a', 'a', true],
    ['(?i-i)a', 'A', false],
    ['(?ims-U:a.)B', 'A\nb', false],
    ['a(?i)*', 'aaa', true],
  ],
  'repetition': [
    ['a*', '', true],
    ['a*', 'aaaa', true],
    ['a+', '', false],
    ['a+', 'aa', true],
    ['a?', 'aa', false],
    ['a{3}', 'aaa', true],
    ['a{3}', 'aa', false],
    ['a{2,}', 'aaaa', true],
    ['a{2,}', 'a', false],
    ['a{2,3}', 'aaaa', false],
    ['a{0}', '', true],
    ['a{0}b', 'b', true],
    ['(ab){2}', 'abab', true],
    ['ab{2}', 'abb', true],
    ['a*?b', 'aab', true],
    ['a+?', 'aa', true],
    ['a??', '', true],
    ['a{2,3}?', 'aa', true],
    ['a{2}?', 'aa', true],
    ['a{1000}', 'a'.repeat(1000), true],
    ['a{1000}', 'a'.repeat(999), false],
    ['(a{10}){100}', 'a'.repeat(1000), true],
    ['(a*){1000}', 'aa', true],
    ['^*a', 'a', true],
    ['a*(?i)*', 'aa', true],
    // `{` that is not a valid {n,m} is a literal brace.
    ['a{,3}', 'a{,3}', true],
    ['a{01}', 'a{01}', true],
    ['a{1', 'a{1', true],
    ['x{', 'x{', true],
    ['{}', '{}', true],
    ['{abc}', '{abc}', true],
  ],
  'character classes': [
    ['[abc]+', 'cab', true],
    ['[abc]', 'd', false],
    ['[^abc]', 'd', true],
    ['[^abc]', 'a', false],
    ['[^a]', '\n', true],
    ['[^a]', '😀', true],
    ['[a-z0-9]+', 'a9z', true],
    ['[a-z0-9]+', 'a9Z', false],
    ['[]a]+', ']a', true],
    ['[^]a]', 'b', true],
    ['[^]a]', ']', false],
    ['[a-]+', 'a-', true],
    ['[-a]+', '-a', true],
    ['[a-c-e]+', 'b-e', true],
    ['[a-c-e]', 'd', false],
    [r`[\]]`, ']', true],
    [r`[\[]`, '[', true],
    [r`[\-x]+`, '-x', true],
    ['[.]', 'x', false],
    ['[.]', '.', true],
    ['[$^]+', '^$', true],
    // re2js alone refuses these (see the header); RE2 and Go read `[` and `:`.
    ['[a[:]+', 'a[:', true],
    ['[[:]+', ':[', true],
    ['[^[:]', '[', false],
    ['[!-[:]+', '!:[', true],
    [r`\Q[\E[a[:]`, '[:', true],
    [r`[\x41-\x43]+`, 'ABC', true],
    [r`[\x41-\x43]`, 'D', false],
    [r`[\n]`, '\n', true],
    [r`[\0]`, '\0', true],
    ['[é-ü]', 'ñ', true],
    ['[é-ü]', 'e', false],
    ['[😀-😂]', '😁', true],
    ['[😀-😂]', '😃', false],
    ['[😀]+', '😀😀', true],
    ['(?i)[a-c]', 'B', true],
    ['(?i)[^a]', 'A', false],
    ['(?i)[^a]', 'b', true],
    ['(?i)[k]', '\u212a', true],
    ['(?i)[\u212a]', 'K', true],
    ['(?i)[^k]', '\u212a', false],
  ],
  'POSIX classes and their negation': [
    ['[[:alnum:]]+', 'a1Z', true],
    ['[[:alnum:]]', '_', false],
    ['[[:alpha:]]+', 'abcXYZ', true],
    ['[[:alpha:]]', '1', false],
    ['[[:alpha:]]', 'é', false],
    ['[[:ascii:]]', '\x7f', true],
    ['[[:ascii:]]', 'é', false],
    ['[[:blank:]]+', ' \t', true],
    ['[[:blank:]]', '\n', false],
    ['[[:cntrl:]]+', '\x00\x1f\x7f', true],
    ['[[:cntrl:]]', ' ', false],
    ['[[:digit:]]+', '0129', true],
    ['[[:digit:]]', 'a', false],
    ['[[:graph:]]+', '!~a', true],
    ['[[:graph:]]', ' ', false],
    ['[[:lower:]]+', 'az', true],
    ['[[:lower:]]', 'A', false],
    ['[[:print:]]+', ' ~a', true],
    ['[[:print:]]', '\t', false],
    ['[[:punct:]]+', '!/:@[`{~', true],
    ['[[:punct:]]', 'a', false],
    ['[[:space:]]+', ' \t\n\v\f\r', true],
    ['[[:space:]]', 'a', false],
    ['[[:upper:]]+', 'AZ', true],
    ['[[:upper:]]', 'a', false],
    ['[[:word:]]+', 'a_1Z', true],
    ['[[:word:]]', '-', false],
    ['[[:xdigit:]]{4}', '0aF9', true],
    ['[[:xdigit:]]', 'g', false],
    ['[[:^alpha:]]+', '1-_\n', true],
    ['[[:^alpha:]]', 'a', false],
    ['[[:^digit:]x]', 'x', true],
    ['[[:digit:][:upper:]]+', '7Q', true],
    ['[^[:digit:]]', '5', false],
    ['(?i)[[:upper:]]', 'a', true],
    ['(?i)[[:^upper:]]', 'a', false],
    ['[:alpha:]+', 'ahl:', true],
  ],
  'Perl classes inside and outside brackets': [
    [r`\d+`, '123', true],
    [r`\d`, 'a', false],
    [r`\d`, '٣', false],
    [r`\D`, 'a', true],
    [r`\D`, '1', false],
    [r`\s+`, ' \t\n\f\r', true],
    [r`\s`, '\v', false],
    [r`\S`, 'a', true],
    [r`\S`, ' ', false],
    [r`\w+`, 'a_1Z', true],
    [r`\w`, 'é', false],
    [r`\W`, '-', true],
    [r`\W`, 'é', true],
    [r`\W`, 'a', false],
    [r`[\d\s]+`, '1 2', true],
    [r`[^\d]`, '1', false],
    [r`[\D]`, 'a', true],
    [r`[\w-]+`, 'a-b_c', true],
    [r`(?i)\W`, '\u212a', false],
  ],
  'escapes': [
    [r`\t\n\r\f\v\a`, '\t\n\r\f\v\x07', true],
    [r`\x41`, 'A', true],
    [r`\x{263a}`, '☺', true],
    [r`\x{1F600}`, '😀', true],
    [r`\x{41}`, 'A', true],
    [r`a\.b`, 'a.b', true],
    [r`a\.b`, 'axb', false],
    [r`\\`, '\\', true],
    [r`\*\+\?\(\)\[\]\{\}\|\^\$`, '*+?()[]{}|^$', true],
    [r`\-\_\<\>\/\ \#`, '-_<>/ #', true],
    [r`\0`, '\0', true],
    [r`\012`, '\n', true],
    [r`\101`, 'A', true],
    [r`\0123`, '\n3', true],
    [r`\17`, '\x0f', true],
    [r`api\.example\.com`, 'api.example.com', true],
    [r`api\.example\.com`, 'apixexample.com', false],
  ],
  '\\Q...\\E quotes text': [
    [r`\Qa.b\E`, 'a.b', true],
    [r`\Qa.b\E`, 'axb', false],
    [r`\Qa.b`, 'a.b', true],
    [r`\Q(x)*`, '(x)*', true],
    [r`\Qab\E*`, 'abbb', true],
    [r`\Qab\E*`, 'abab', false],
    [r`(?i)\Qab\E`, 'AB', true],
    [r`\Q\E`, '', true],
    [r`a\Q\E*`, 'aaa', true],
    [r`\Q[a]\E+`, '[a]]]', true],
  ],
  'assertions': [
    ['^abc$', 'abc', true],
    ['a^b', 'ab', false],
    ['a$b', 'ab', false],
    ['a$\n', 'a\n', false],
    ['(?m)a$\n', 'a\n', true],
    ['(?m)a\n^b', 'a\nb', true],
    ['a\n^b', 'a\nb', false],
    [r`\Aabc\z`, 'abc', true],
    [r`(?m)a\z` + '\n', 'a\n', false],
    [r`(?m)\A^a`, 'a', true],
    [r`foo\b.*`, 'foo bar', true],
    [r`foo\b.*`, 'foobar', false],
    [r`foo\B.*`, 'foobar', true],
    [r`foo\B.*`, 'foo bar', false],
    [r`\bfoo\b`, 'foo', true],
    [r`.*\bé`, ' é', false],
    [r`a\b`, 'a', true],
    [r`\b`, '', false],
    [r`\B`, '', true],
    [r`\b*a`, 'a', true],
  ],
  'Unicode classes': [
    [r`\pL+`, 'héllo', true],
    [r`\p{L}`, '1', false],
    [r`\PL`, '1', true],
    [r`\p{^L}`, '1', true],
    [r`\P{^L}`, 'a', true],
    [r`\pN+`, '12٣', true],
    [r`\p{Nd}`, 'a', false],
    [r`\p{Greek}+`, 'αβγ', true],
    [r`\p{Greek}`, 'a', false],
    [r`\p{Lu}`, 'É', true],
    [r`\p{Lu}`, 'é', false],
    [r`(?i)\p{Lu}`, 'é', true],
    [r`[\p{Han}a]+`, '中a', true],
    [r`[^\pL]`, 'a', false],
    [r`\p{Any}`, '😀', true],
    [r`\pC`, '\x00', true],
  ],
  'code points and case folding': [
    ['😀', '😀', true],
    ['😀+', '😀😀', true],
    ['😀?x', 'x', true],
    ['(?i)é', 'É', true],
    ['(?i)σ', 'ς', true],
    ['(?i)ς', 'Σ', true],
    ['(?i)k', '\u212a', true],
    ['(?i)s', 'ſ', true],
    ['(?i)ſ', 'S', true],
    ['(?i)ß', 'ẞ', true],
    ['(?i)i', 'ı', false],
    ['(?i)i', 'İ', false],
    [r`(?i)\x{212a}`, 'k', true],
    ['(?i)µ', 'μ', true],
    ['é', 'É', false],
  ],
};

/** [pattern, the RegexError message]. */
const REJECTS: [string, string][] = [
  // RE2 has no lookaround, backreferences, atomic groups, possessive repeats, \C.
  ['/a(?=b)', 'lookaround assertions are not supported by RE2'],
  ['/a(?!b)', 'lookaround assertions are not supported by RE2'],
  ['(?<=a)b', 'lookaround assertions are not supported by RE2'],
  ['(?<!a)b', 'lookaround assertions are not supported by RE2'],
  [r`(a)\1`, r`backreference \1 is not supported by RE2`],
  [r`(a)\9`, r`backreference \9 is not supported by RE2`],
  ['(?>a+)b', 'atomic groups are not supported by RE2'],
  ['a*+', 'invalid nested repetition operator +'],
  [r`\C`, r`\C is not supported`],
  // Repetition.
  ['a**', 'invalid nested repetition operator *'],
  ['a+*', 'invalid nested repetition operator *'],
  ['a*??', 'invalid nested repetition operator ?'],
  ['a{2}{3}', 'invalid nested repetition operator {3}'],
  ['a*{2}', 'invalid nested repetition operator {2}'],
  ['*a', 'missing argument to repetition operator *'],
  ['+', 'missing argument to repetition operator +'],
  ['(?i)?', 'missing argument to repetition operator ?'],
  ['(*)', 'missing argument to repetition operator *'],
  ['a|*', 'missing argument to repetition operator *'],
  ['{2}', 'missing argument to repetition operator {2}'],
  [r`\Q\E*`, 'missing argument to repetition operator *'],
  ['a{1001}', 'repeat count {1001} exceeds 1000'],
  ['a{2,1001}', 'repeat count {2,1001} exceeds 1000'],
  ['a{1001,}', 'repeat count {1001,} exceeds 1000'],
  ['a{99999999999}', 'repeat count {99999999999} exceeds 1000'],
  ['a{3,2}', 'invalid repeat count {3,2}'],
  ['(a{10}){101}', 'nested repeat counts multiply to more than 1000 at {101}'],
  ['((a{10}){10}){11}', 'nested repeat counts multiply to more than 1000 at {11}'],
  ['(?:(?:a{1000})*){2}', 'nested repeat counts multiply to more than 1000 at {2}'],
  // Groups and flags.
  ['/a(b', 'missing closing )'],
  ['(', 'missing closing )'],
  ['/a)b', 'unexpected )'],
  [')', 'unexpected )'],
  ['(?P<n>a)(?P<n>b)', 'duplicate capture group name'],
  ['(?P<>a)', 'invalid named capture (?P<>'],
  ['(?P<a-b>x)', 'invalid named capture (?P<a-b>'],
  ['(?P<a', 'invalid named capture (?P<a'],
  ['(?P=n)', 'invalid or unsupported group syntax (?P'],
  ['(?x)a', 'invalid or unsupported group syntax (?x'],
  ['(?i-)a', 'invalid or unsupported group syntax (?i-)'],
  ['(?-)a', 'invalid or unsupported group syntax (?-)'],
  ['(?#c)', 'invalid or unsupported group syntax (?#'],
  ['(?i', 'invalid or unsupported group syntax (?i'],
  // Classes.
  ['[abc', 'missing closing ]'],
  ['[]', 'missing closing ]'],
  ['[^]', 'missing closing ]'],
  ['[[:alpha:]', 'missing closing ]'],
  ['[z-a]', 'invalid character class range z-a'],
  ['[[:foo:]]', 'unknown character class [:foo:]'],
  ['[[:^foo:]]', 'unknown character class [:^foo:]'],
  // With a `:]` further on, RE2 and Go read one long, unknown class name
  // (Go names all of `[:]x[[:digit:]`; re2js, and so we, only `[:]`).
  ['[a[:]x[[:digit:]]', 'unknown character class [:]'],
  [r`[a-\d]`, r`invalid escape sequence \d`],
  [r`[\b]`, r`invalid escape sequence \b`],
  [r`[\Q]`, r`invalid escape sequence \Q`],
  // Escapes.
  ['a\\', 'trailing backslash'],
  ['\\', 'trailing backslash'],
  ['[a\\', 'trailing backslash'],
  [r`\q`, r`invalid escape sequence \q`],
  [r`\e`, r`invalid escape sequence \e`],
  [r`\Z`, r`invalid escape sequence \Z`],
  [r`\E`, r`invalid escape sequence \E`],
  [r`\x{}`, r`invalid escape sequence \x{}`],
  [r`\x{110000}`, r`invalid escape sequence \x{110000`],
  [r`\x4`, r`invalid escape sequence \x4`],
  [r`\xZZ`, r`invalid escape sequence \xZZ`],
  [r`\é`, r`invalid escape sequence \é`],
  [r`\p{Foo}`, r`unknown unicode class \p{Foo}`],
  [r`\p{L`, r`missing closing } in unicode class \p{L`],
  [r`\p`, r`invalid unicode class \p`],
  // Size and nesting limits.
  ['('.repeat(1001) + ')'.repeat(1001), 'expression nests too deeply'],
  ['a' + '*(?i)'.repeat(1001), 'expression nests too deeply'],
  ['(?:[a-z]{1000}){200}'.repeat(2), 'nested repeat counts multiply to more than 1000 at {200}'],
  ['(?:a{1000})'.repeat(201), 'expression too large'],
];

describe('compileFullMatch answers as Go regexp does for ^(?:pattern)\\z', () => {
  for (const [feature, rows] of Object.entries(MATCHES)) {
    test(feature, () => {
      for (const [pattern, input, expected] of rows) {
        const re = compileFullMatch(pattern);
        assert.equal(re.test(input), expected, `${JSON.stringify(pattern)} against ${JSON.stringify(input)}`);
      }
    });
  }

  test('source is the pattern as written', () => {
    assert.equal(compileFullMatch('(?i)/a.*').source, '(?i)/a.*');
  });

  test('a compiled pattern can be used again and again', () => {
    const re = compileFullMatch('/users/[0-9]+');
    for (let i = 0; i < 3; i++) {
      assert.equal(re.test('/users/42'), true);
      assert.equal(re.test('/users/x'), false);
    }
  });
});

describe('rejects what RE2 rejects, with a readable reason', () => {
  test('every invalid pattern throws RegexError with its reason', () => {
    for (const [pattern, message] of REJECTS) {
      assert.throws(
        () => compileFullMatch(pattern),
        (e: unknown) => {
          assert.ok(e instanceof RegexError, `${JSON.stringify(pattern)}: expected a RegexError, got ${String(e)}`);
          assert.equal(e.message, message, JSON.stringify(pattern));
          return true;
        },
      );
    }
  });

  test('the limits themselves are accepted', () => {
    assert.equal(compileFullMatch('('.repeat(100) + 'a' + ')'.repeat(100)).test('a'), true);
    assert.equal(compileFullMatch('((a{10}){10}){10}').test('a'.repeat(1000)), true);
    assert.equal(compileFullMatch('(?:a{1000})'.repeat(150)).test('a'.repeat(150_000)), true);
  });
});

describe('linear time: no pattern can make a long input hang the matcher', () => {
  // A backtracking engine takes exponential time on these; RE2's automata
  // (re2js: a lazy DFA, falling back to a Pike VM) take len(input) ×
  // len(program) steps at most, so they finish at once.
  test('(a*)*b against 30,000 a takes milliseconds, not ages', () => {
    const re = compileFullMatch('(a*)*b');
    const start = performance.now();
    assert.equal(re.test('a'.repeat(30_000)), false);
    const ms = performance.now() - start;
    // Measured about 7 ms; a backtracking engine does not finish at all.
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });

  test('/(a|aa)*b against 50,000 a', () => {
    assert.equal(compileFullMatch('/(a|aa)*b').test('/' + 'a'.repeat(50_000)), false);
    assert.equal(compileFullMatch('/(a|aa)*b').test('/' + 'a'.repeat(50_000) + 'b'), true);
  });

  test('(x+x+)+y against 50,000 x', () => {
    assert.equal(compileFullMatch('(x+x+)+y').test('x'.repeat(50_000)), false);
    assert.equal(compileFullMatch('(x+x+)+y').test('x'.repeat(50_000) + 'y'), true);
  });

  test('nested stars and counted repeats against long inputs', () => {
    assert.equal(compileFullMatch('(a*)*b').test('a'.repeat(50_000)), false);
    assert.equal(compileFullMatch('(.*a){20}').test('a'.repeat(50_000) + 'b'), false);
    assert.equal(compileFullMatch('(?i)(é|É)*x').test('É'.repeat(50_000)), false);
  });
});
