/**
 * Cilium hands HTTP path/method/host patterns to Envoy as RE2 expressions
 * matched against the whole value (RE2::FullMatch, i.e. Go's
 * `^(?:pattern)\z`). The engine is re2js, a port of RE2/J and Go's regexp:
 * linear time (no backtracking, so a rule cannot be made to hang on an
 * attacker-chosen path), RE2's syntax, and RE2's refusals (lookaround,
 * backreferences, atomic groups, ...), so a policy that Cilium would refuse is
 * refused here too, and one it accepts means the same thing.
 *
 * This adapter adds what re2js does not give as RE2/Envoy do: the program-size
 * limit, our short error reasons, and one parsing fix (`[:]` inside a class).
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/** An invalid pattern; the message is a short lower-case reason. */
export class RegexError extends Error {}

/** A compiled pattern that must match the whole value. */
export interface FullMatcher {
  /** True when the pattern matches the whole input (anchored at both ends). */
  test(input: string): boolean;
  /** The pattern as written. */
  readonly source: string;
}

/**
 * Largest compiled program, in instructions (re2js counts them as Go does:
 * one per literal code point or class, one per alternative and loop). RE2's
 * default 8 MiB memory budget, which Envoy keeps, stops programs of this order
 * (it counts its own byte-level instructions, so no exact equal exists); Go
 * alone allows about 3 million, re2js about 1.4 million.
 */
const MAX_PROGRAM = 200_000;

/** Compiles an RE2 pattern that must match the whole value. Throws RegexError with a readable reason. */
export function compileFullMatch(pattern: string): FullMatcher {
  const re = compile(pattern);
  // re2js measures a program only once it is compiled; its own limit bounds
  // that work to about 1.4 million instructions (some seconds at worst).
  if (re.programSize() > MAX_PROGRAM) throw new RegexError('expression too large');
  return { source: pattern, test: (input) => re.testExact(input) };
}

function compile(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (e) {
    if (!(e instanceof RE2JSSyntaxException)) throw e;
    if (e.error === 'invalid character class range' && e.input === '[:]') {
      const fixed = escapeBracketColonInClasses(pattern);
      if (fixed !== pattern) return compile(fixed);
    }
    throw new RegexError(reason(e.error, e.input ?? ''), { cause: e });
  }
}

/**
 * re2js (after RE2/J) looks for the `:]` that ends a POSIX class name from the
 * `:` of `[:`, so inside a class `[:]` is read as the class name "[:]" and
 * refused. RE2 (parse.cc MaybeParsePosixClass) and Go (parseNamedClass) look
 * from after the `[:`, and when no `:]` follows anywhere in the rest of the
 * pattern they take the `[` as a literal: `[a[:]` is the class {a, [, :}.
 * Escaping that `[` gives re2js the same class. (When a `:]` does follow, RE2
 * and Go read a longer, unknown class name and refuse the pattern too.)
 */
function escapeBracketColonInClasses(p: string): string {
  let out = '';
  let i = 0;
  const copy = (n: number): void => {
    out += p.slice(i, i + n);
    i += n;
  };
  while (i < p.length) {
    if (p[i] === '\\') {
      if (p[i + 1] !== 'Q') copy(2);
      else {
        const end = p.indexOf('\\E', i + 2);
        copy(end < 0 ? p.length - i : end + 2 - i);
      }
      continue;
    }
    if (p[i] !== '[') {
      copy(1);
      continue;
    }
    // A class: Go's parseClass. A `]` right after `[` or `[^` is a member.
    copy(p[i + 1] === '^' ? 2 : 1);
    let first = true;
    while (i < p.length && (p[i] !== ']' || first)) {
      first = false;
      if (p[i] === '[' && p[i + 1] === ':') {
        const close = p.indexOf(':]', i + 2);
        if (close >= 0) {
          copy(close + 2 - i); // a class name, known or not, as RE2 reads it
          continue;
        }
        if (p[i + 2] === ']') {
          out += '\\[';
          i += 1;
          continue;
        }
      }
      if (p[i] === '\\' && /[pPdDsSwW]/.test(p[i + 1] ?? '')) {
        // \d, \pL, \p{Greek}: a class, never the low end of a range.
        if (/[pP]/.test(p[i + 1]) && p[i + 2] === '{') {
          const end = p.indexOf('}', i + 3);
          copy(end < 0 ? p.length - i : end + 1 - i);
        } else copy(/[pP]/.test(p[i + 1]) ? 3 : 2);
        continue;
      }
      // One character, maybe the low end of a range whose high end is any
      // character, `[` included (so `[!-[:]` is a range and `:`).
      copy(p[i] === '\\' ? 2 : 1);
      if (p[i] === '-' && i + 1 < p.length && p[i + 1] !== ']') {
        copy(1);
        copy(p[i] === '\\' ? 2 : 1);
      }
    }
    copy(1); // the closing `]`
  }
  return out;
}

/**
 * Our reason for a re2js syntax error (`code` is Go's error code, `input` the
 * offending text). Where Go's code is vague about a feature RE2 leaves out on
 * purpose, the reason names the feature.
 */
function reason(code: string, input: string): string {
  switch (code) {
    case 'invalid or unsupported Perl syntax':
      if (input === '(?=' || input === '(?!') return 'lookaround assertions are not supported by RE2';
      if (input === '(?>') return 'atomic groups are not supported by RE2';
      return `invalid or unsupported group syntax ${input}`;
    case 'invalid named capture':
      if (input.startsWith('(?<=') || input.startsWith('(?<!')) return 'lookaround assertions are not supported by RE2';
      return `invalid named capture ${input}`;
    case 'invalid escape sequence':
      if (/^\\[1-9]$/.test(input)) return `backreference ${input} is not supported by RE2`;
      if (input === '\\C') return '\\C is not supported';
      return `invalid escape sequence ${input}`;
    case 'invalid nested repetition operator':
      // Go quotes the previous operator and this one (`*?+`); name this one.
      return `invalid nested repetition operator ${input.replace(/^(?:[*+?]|\{[^}]*\})\??/, '') || input}`;
    case 'invalid repeat count': {
      const m = /^\{(\d+)(?:(,)(\d*))?\}$/.exec(input);
      if (m) {
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
        if (min > 1000 || max > 1000) return `repeat count ${input} exceeds 1000`;
        if (max >= 0 && min > max) return `invalid repeat count ${input}`;
      }
      return `nested repeat counts multiply to more than 1000 at ${input}`;
    }
    case 'invalid character class range':
      if (input.startsWith('[:')) return `unknown character class ${input}`;
      if (/^\\[pP]/.test(input)) {
        if (input.length <= 2) return `invalid unicode class ${input}`;
        if (input[2] === '{' && !input.endsWith('}')) return `missing closing } in unicode class ${input}`;
        return `unknown unicode class ${input}`;
      }
      return `invalid character class range ${input}`;
    case 'trailing backslash at end of expression':
      return 'trailing backslash';
    // These quote the whole pattern (or the name), which the caller already shows.
    case 'missing closing )':
    case 'missing closing ]':
    case 'unexpected )':
    case 'duplicate capture group name':
      return code;
    default:
      return input ? `${code} ${input}` : code;
  }
}
