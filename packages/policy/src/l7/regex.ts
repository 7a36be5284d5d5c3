/**
 * Cilium hands HTTP path/method/host patterns to Envoy as RE2 expressions
 * matched against the whole value. This translates the RE2 subset users
 * write into an anchored JavaScript RegExp and rejects what RE2 rejects
 * (lookaround, backreferences, atomic groups) so a policy that Cilium would
 * refuse is refused here too, and one it accepts means the same thing.
 */

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

export class RegexError extends Error {}

/** RE2 source → JavaScript source (unanchored) and flags. Throws RegexError. */
export function translateRE2(src: string): { source: string; flags: string } {
  let flags = '';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'U') throw new RegexError('the ungreedy flag (?U) is not supported');
      if (!flags.includes(f)) flags += f;
    }
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  // 0: last token was no quantifier; 1: a quantifier; 2: a quantifier made lazy by '?'.
  let repeat: 0 | 1 | 2 = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\' || c === '[' || c === '(' || c === ')' || c === '|') { if (!inClass) repeat = 0; }
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) throw new RegexError('trailing backslash');
      if (n === 'Q') {
        const end = src.indexOf('\\E', i + 2);
        const lit = end < 0 ? src.slice(i + 2) : src.slice(i + 2, end);
        out += lit.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end < 0 ? src.length : end + 2;
        continue;
      }
      if (/[1-9]/.test(n)) throw new RegexError(`backreference \\${n} is not supported by RE2`);
      if (n === 'z') { out += inClass ? 'z' : '$'; i += 2; continue; }
      if (n === 'A') { out += inClass ? 'A' : '^'; i += 2; continue; }
      if (n === 'C') throw new RegexError('\\C is not supported');
      if (n === 'p' || n === 'P') throw new RegexError('Unicode classes (\\p) are not supported');
      out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === '[' && src[i + 1] === ':') {
        const end = src.indexOf(':]', i + 2);
        if (end > 0) {
          let name = src.slice(i + 2, end);
          const neg = name.startsWith('^');
          if (neg) name = name.slice(1);
          const cls = POSIX_CLASSES[name];
          if (!cls) throw new RegexError(`unknown character class [:${name}:]`);
          if (neg) throw new RegexError(`negated character class [:^${name}:] is not supported`);
          out += cls;
          i = end + 2;
          continue;
        }
      }
      if (c === ']') inClass = false;
      if (c === '[') { out += '\\['; i++; continue; }
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      if (src[i] === '^') { out += '^'; i++; }
      if (src[i] === ']') { out += '\\]'; i++; }
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i + 2);
      if (/^P?<[A-Za-z_][A-Za-z0-9_]*>/.test(rest)) {
        const m = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest)!;
        out += `(?<${m[1]}>`;
        i += 2 + m[0].length;
        continue;
      }
      if (rest.startsWith(':')) { out += '(?:'; i += 3; continue; }
      if (rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') || rest.startsWith('<!')) {
        throw new RegexError('lookaround assertions are not supported by RE2');
      }
      if (rest.startsWith('>')) throw new RegexError('atomic groups are not supported by RE2');
      throw new RegexError(`inline flags are only supported at the start of the pattern`);
    }
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (m) {
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > 1000 || hi > 1000) throw new RegexError(`repeat count ${m[0]} exceeds 1000`);
        if (m[3] && hi < lo) throw new RegexError(`invalid repeat count ${m[0]}`);
        if (repeat !== 0) throw new RegexError(`invalid nested repetition operator ${m[0]}`);
        out += m[0];
        i += m[0].length;
        repeat = 1;
        continue;
      }
    }
    if (c === '*' || c === '+' || c === '?') {
      if (repeat === 2 || (repeat === 1 && c !== '?')) throw new RegexError(`invalid nested repetition operator ${c}`);
      repeat = repeat === 1 ? 2 : 1;
      out += c;
      i++;
      continue;
    }
    repeat = 0;
    if (c === '/') { out += '\\/'; i++; continue; }
    out += c;
    i++;
  }
  if (inClass) throw new RegexError('missing closing ]');
  return { source: out, flags };
}

/** Compiles an RE2 pattern that must match the whole value. Throws RegexError with a readable reason. */
export function compileFullMatch(pattern: string): RegExp {
  const { source, flags } = translateRE2(pattern);
  try {
    return new RegExp(`^(?:${source})$`, flags);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const reason = msg.includes(': ') ? msg.slice(msg.lastIndexOf(': ') + 2) : msg;
    throw new RegexError(reason.charAt(0).toLowerCase() + reason.slice(1));
  }
}
