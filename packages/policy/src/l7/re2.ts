/**
 * A linear-time matcher for RE2 syntax (the Perl-flavoured syntax of RE2 and
 * Go's regexp/syntax), used for HTTP method/path/host rules that Envoy
 * matches with RE2::FullMatch.
 *
 * The pattern is parsed into a small tree, compiled into an NFA program, and
 * run as a Thompson simulation: every input code point advances a set of NFA
 * states at once, so matching costs O(len(input) × len(program)) whatever the
 * pattern — there is no backtracking for an attacker-chosen path to exploit.
 * Only whether the WHOLE input matches is computed (no captures, no
 * leftmost-first bookkeeping), so laziness and the (?U) flag are parsed but
 * do not change the answer.
 *
 * What RE2/Go reject is rejected with a short lower-case reason (RegexError).
 */
import { RegexError } from './regex.js';

export interface RE2Matcher {
  /** True when the pattern matches the whole input (implicitly anchored at both ends). */
  test(input: string): boolean;
  /** The pattern as written. */
  readonly source: string;
}

/** Largest count in {n,m}, and largest product of nested counts (as Go). */
const MAX_REPEAT = 1000;
/** Deepest nesting of groups and repetitions (as Go's maxHeight). */
const MAX_DEPTH = 1000;
/**
 * Largest compiled program, in instructions: bounds memory and the
 * per-character cost. RE2's default 8 MiB memory budget stops programs of the
 * same order (some 10^5 instructions); Go allows about 3 million.
 */
const MAX_PROGRAM = 200_000;

type Pred = (c: number) => boolean;

// Empty-width assertions, as bits of a position's context.
const BOT = 1; // \A, ^ without m
const EOT = 2; // \z, $ without m
const BOL = 4; // ^ with m
const EOL = 8; // $ with m
const WORD_B = 16; // \b
const NOT_WORD_B = 32; // \B

type Node =
  | { k: 'empty'; h: number }
  | { k: 'char'; m: Pred; h: number }
  | { k: 'assert'; a: number; h: number }
  | { k: 'cat'; subs: Node[]; h: number }
  | { k: 'alt'; subs: Node[]; h: number }
  /** max -1 = unbounded; brace = written as {n,m} (counted by the nesting limit). */
  | { k: 'rep'; sub: Node; min: number; max: number; brace: boolean; h: number };

// ---------------------------------------------------------------------------
// Character sets

/** Sorted, inclusive [lo, hi] pairs, flattened. */
type Ranges = readonly number[];

function inRanges(r: Ranges, c: number): boolean {
  for (let i = 0; i < r.length; i += 2) {
    if (c < r[i]) return false;
    if (c <= r[i + 1]) return true;
  }
  return false;
}

const PERL: Record<string, Ranges> = {
  d: [0x30, 0x39],
  s: [0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20],
  w: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a],
};

const POSIX: Record<string, Ranges> = {
  alnum: [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a],
  alpha: [0x41, 0x5a, 0x61, 0x7a],
  ascii: [0x00, 0x7f],
  blank: [0x09, 0x09, 0x20, 0x20],
  cntrl: [0x00, 0x1f, 0x7f, 0x7f],
  digit: [0x30, 0x39],
  graph: [0x21, 0x7e],
  lower: [0x61, 0x7a],
  print: [0x20, 0x7e],
  punct: [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e],
  space: [0x09, 0x0d, 0x20, 0x20],
  upper: [0x41, 0x5a],
  word: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a],
  xdigit: [0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
};

/** Go's unicode.Categories names (general categories); `C` excludes unassigned code points as Go's does. */
const CATEGORIES = new Set([
  'C', 'Cc', 'Cf', 'Co', 'Cs', 'L', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu', 'M', 'Mc', 'Me', 'Mn',
  'N', 'Nd', 'Nl', 'No', 'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps', 'S', 'Sc', 'Sk', 'Sm', 'So',
  'Z', 'Zl', 'Zp', 'Zs',
]);

/**
 * \p{Name}: a general category, `Any`, or a script (Greek, Latin, Han, ...).
 * The property lookup uses the platform's Unicode tables through a RegExp
 * tested against a single code point — constant work, no backtracking.
 */
function unicodePred(name: string): Pred | undefined {
  if (name === 'Any') return () => true;
  let src: string;
  if (name === 'C') src = '[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}]';
  else if (CATEGORIES.has(name)) src = `\\p{${name}}`;
  else if (/^[A-Z][A-Za-z]*(?:_[A-Z][A-Za-z]*)*$/.test(name)) src = `\\p{Script=${name}}`;
  else return undefined;
  let re: RegExp;
  try {
    re = new RegExp(`^${src}$`, 'u');
  } catch {
    return undefined;
  }
  return (c) => re.test(String.fromCodePoint(c));
}

// ---------------------------------------------------------------------------
// Case folding: two code points are equal under (?i) when they share a key,
// the lower case of their upper case (single code points only). This gives
// Unicode's simple case-folding orbits (k K U+212A, s S U+017F, σ ς Σ, ...);
// the Turkish dotted/dotless i are kept apart, as in simple folding.

function single(s: string): number | undefined {
  const c = s.codePointAt(0);
  return c !== undefined && (c > 0xffff ? 2 : 1) === s.length ? c : undefined;
}

function computeKey(c: number): number {
  if (c === 0x130 || c === 0x131) return c;
  const s = String.fromCodePoint(c);
  const up = single(s.toUpperCase()) ?? c;
  return single(String.fromCodePoint(up).toLowerCase()) ?? single(s.toLowerCase()) ?? c;
}

const keyCache = new Map<number, number>();

function foldKey(c: number): number {
  if (c < 128) return c >= 0x41 && c <= 0x5a ? c + 32 : c;
  let k = keyCache.get(c);
  if (k === undefined) {
    k = computeKey(c);
    if (keyCache.size < 65536) keyCache.set(c, k);
  }
  return k;
}

const ASCII_ORBITS: number[][] = [];
for (let c = 0; c < 128; c++) {
  const lower = c >= 0x41 && c <= 0x5a ? c + 32 : c;
  const upper = c >= 0x61 && c <= 0x7a ? c - 32 : c;
  const o = lower === upper ? [c] : [lower, upper];
  if (lower === 0x6b) o.push(0x212a); // KELVIN SIGN
  if (lower === 0x73) o.push(0x17f); // LATIN SMALL LETTER LONG S
  ASCII_ORBITS.push(o);
}

/** key → every code point with that key; built on first need (~20 ms). */
let orbitTable: Map<number, number[]> | undefined;

function orbitOf(c: number): readonly number[] {
  if (c < 128) return ASCII_ORBITS[c];
  if (!orbitTable) {
    const t = new Map<number, number[]>();
    for (let x = 0x80; x < 0x20000; x++) {
      if (x >= 0xd800 && x <= 0xdfff) continue;
      const k = computeKey(x);
      if (k === x) continue;
      let g = t.get(k);
      if (!g) t.set(k, (g = k < 128 ? [...ASCII_ORBITS[k]] : [k]));
      if (!g.includes(x)) g.push(x);
    }
    orbitTable = t;
  }
  return orbitTable.get(foldKey(c)) ?? [c];
}

function literalPred(c: number, fold: boolean): Pred {
  if (!fold || (foldKey(c) === c && orbitOf(c).length === 1)) return (x) => x === c;
  const k = foldKey(c);
  return (x) => x === c || foldKey(x) === k;
}

interface ClassItem {
  test: Pred;
  neg: boolean;
}

/**
 * A class matches c when some item does (an item matches when a member of
 * c's case orbit — just c without (?i) — is in it, XOR its negation), the
 * whole XOR the class's negation: the same sets Go builds by folding each
 * item before negating it.
 */
function classPred(items: ClassItem[], neg: boolean, fold: boolean): Pred {
  const slow = (c: number): boolean => {
    let hit = false;
    for (const it of items) {
      let t = false;
      if (fold) {
        for (const x of orbitOf(c)) if (it.test(x)) { t = true; break; }
      } else {
        t = it.test(c);
      }
      if (t !== it.neg) { hit = true; break; }
    }
    return hit !== neg;
  };
  const ascii = new Uint8Array(128);
  for (let c = 0; c < 128; c++) ascii[c] = slow(c) ? 1 : 0;
  return (c) => (c < 128 ? ascii[c] === 1 : slow(c));
}

function rangesItem(r: Ranges, neg = false): ClassItem {
  return { test: (c) => inRanges(r, c), neg };
}

/** Sorts and merges [lo, hi] pairs. */
function normalize(pairs: [number, number][]): number[] {
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1] + 1) out[n - 1] = Math.max(out[n - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parser

const ch = (s: string): number => s.codePointAt(0)!;
const C_BACKSLASH = ch('\\');
const C_LPAREN = ch('(');
const C_RPAREN = ch(')');
const C_LBRACK = ch('[');
const C_RBRACK = ch(']');
const C_LBRACE = ch('{');
const C_RBRACE = ch('}');
const C_PIPE = ch('|');
const C_STAR = ch('*');
const C_PLUS = ch('+');
const C_QUEST = ch('?');
const C_DOT = ch('.');
const C_CARET = ch('^');
const C_DOLLAR = ch('$');
const C_COLON = ch(':');
const C_MINUS = ch('-');
const C_LT = ch('<');
const C_GT = ch('>');
const C_COMMA = ch(',');

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isOctal = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x37;
const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

function hexVal(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

const EMPTY: Node = { k: 'empty', h: 1 };

const height = (subs: Node[]): number => 1 + subs.reduce((h, n) => Math.max(h, n.h), 0);

function cat(seq: Node[]): Node {
  if (seq.length === 0) return EMPTY;
  if (seq.length === 1) return seq[0];
  return { k: 'cat', subs: seq, h: height(seq) };
}

function alt(subs: Node[]): Node {
  if (subs.length === 1) return subs[0];
  return { k: 'alt', subs, h: height(subs) };
}

/** Go's check: along any path of {n,m} repetitions the counts multiply to at most `n`. */
function repeatIsValid(node: Node, n: number): boolean {
  if (node.k === 'rep' && node.brace) {
    let m = node.max;
    if (m === 0) return true;
    if (m < 0) m = node.min;
    if (m > n) return false;
    if (m > 0) n = Math.floor(n / m);
  }
  if (node.k === 'rep') return repeatIsValid(node.sub, n);
  if (node.k === 'cat' || node.k === 'alt') return node.subs.every((s) => repeatIsValid(s, n));
  return true;
}

class Parser {
  private readonly cps: number[];
  private pos = 0;
  private fold = false;
  private dotNL = false;
  private multiLine = false;
  private depth = 0;
  private readonly names = new Set<string>();

  constructor(pattern: string) {
    this.cps = Array.from(pattern, (s) => s.codePointAt(0)!);
  }

  private fail(reason: string): never {
    throw new RegexError(reason);
  }

  private text(from: number, to: number): string {
    let s = '';
    for (let i = from; i < to && i < this.cps.length; i++) s += String.fromCodePoint(this.cps[i]);
    return s;
  }

  private peek(off = 0): number | undefined {
    return this.cps[this.pos + off];
  }

  parse(): Node {
    const node = this.parseAlt();
    if (this.pos < this.cps.length) this.fail('unexpected )');
    return node;
  }

  /** Alternatives up to an unconsumed `)` or the end. */
  private parseAlt(): Node {
    const alts: Node[] = [];
    let seq: Node[] = [];
    let lastRepeat = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === C_RPAREN) break;
      if (c === C_PIPE) {
        alts.push(cat(seq));
        seq = [];
        this.pos++;
        lastRepeat = false;
        continue;
      }
      if (c === C_STAR || c === C_PLUS || c === C_QUEST) {
        this.pos++;
        const op = String.fromCodePoint(c);
        this.repeat(seq, c === C_PLUS ? 1 : 0, c === C_QUEST ? 1 : -1, op, false, lastRepeat);
        lastRepeat = true;
        continue;
      }
      if (c === C_LBRACE) {
        const r = this.parseRepeatBraces();
        if (r) {
          this.repeat(seq, r.min, r.max, r.text, true, lastRepeat);
          lastRepeat = true;
          continue;
        }
        // Not a valid {n,m}: a literal brace.
      }
      lastRepeat = false;
      this.parseAtom(seq);
    }
    alts.push(cat(seq));
    const node = alt(alts);
    if (node.h > MAX_DEPTH) this.fail('expression nests too deeply');
    return node;
  }

  private repeat(seq: Node[], min: number, max: number, op: string, brace: boolean, lastRepeat: boolean): void {
    if (this.peek() === C_QUEST) this.pos++; // lazy: irrelevant to whether a full match exists
    if (lastRepeat) this.fail(`invalid nested repetition operator ${op}`);
    const sub = seq.pop();
    if (!sub) this.fail(`missing argument to repetition operator ${op}`);
    const node: Node = { k: 'rep', sub, min, max, brace, h: sub.h + 1 };
    if (node.h > MAX_DEPTH) this.fail('expression nests too deeply');
    if (brace && (min >= 2 || max >= 2) && !repeatIsValid(node, MAX_REPEAT)) {
      this.fail(`nested repeat counts multiply to more than ${MAX_REPEAT} at ${op}`);
    }
    seq.push(node);
  }

  /** {n}, {n,}, {n,m} at pos, as Go reads them; undefined when it is a literal brace. */
  private parseRepeatBraces(): { min: number; max: number; text: string } | undefined {
    const start = this.pos;
    let p = start + 1;
    const readInt = (): number | undefined => {
      if (!isDigit(this.cps[p])) return undefined;
      if (this.cps[p] === 0x30 && isDigit(this.cps[p + 1])) return undefined; // no leading zeros
      let n = 0;
      while (isDigit(this.cps[p])) {
        if (n >= 1e8) n = -1;
        else if (n >= 0) n = n * 10 + this.cps[p] - 0x30;
        p++;
      }
      return n;
    };
    let min = readInt();
    if (min === undefined) return undefined;
    let max: number;
    if (this.cps[p] === C_COMMA) {
      p++;
      if (this.cps[p] === C_RBRACE) max = -1;
      else {
        const m = readInt();
        if (m === undefined) return undefined;
        max = m;
        if (max < 0) min = -1;
      }
    } else {
      max = min;
    }
    if (this.cps[p] !== C_RBRACE) return undefined;
    p++;
    const text = this.text(start, p);
    if (min < 0 || min > MAX_REPEAT || max > MAX_REPEAT) this.fail(`repeat count ${text} exceeds ${MAX_REPEAT}`);
    if (max >= 0 && min > max) this.fail(`invalid repeat count ${text}`);
    this.pos = p;
    return { min, max, text };
  }

  private parseAtom(seq: Node[]): void {
    const c = this.peek()!;
    switch (c) {
      case C_LPAREN: {
        const { fold, dotNL, multiLine } = this;
        if (this.peek(1) !== C_QUEST) this.pos++;
        else if (!this.parseGroupPrefix()) return; // (?flags): no group
        if (++this.depth > MAX_DEPTH) this.fail('expression nests too deeply');
        const body = this.parseAlt();
        if (this.peek() !== C_RPAREN) this.fail('missing closing )');
        this.pos++;
        this.depth--;
        // Flags set inside a group end with it.
        this.fold = fold;
        this.dotNL = dotNL;
        this.multiLine = multiLine;
        seq.push(body);
        return;
      }
      case C_LBRACK:
        seq.push({ k: 'char', m: this.parseClass(), h: 1 });
        return;
      case C_DOT: {
        this.pos++;
        const m: Pred = this.dotNL ? () => true : (x) => x !== 0x0a;
        seq.push({ k: 'char', m, h: 1 });
        return;
      }
      case C_CARET:
        this.pos++;
        seq.push({ k: 'assert', a: this.multiLine ? BOL : BOT, h: 1 });
        return;
      case C_DOLLAR:
        this.pos++;
        seq.push({ k: 'assert', a: this.multiLine ? EOL : EOT, h: 1 });
        return;
      case C_BACKSLASH:
        this.parseBackslash(seq);
        return;
      default:
        this.pos++;
        seq.push({ k: 'char', m: literalPred(c, this.fold), h: 1 });
    }
  }

  /**
   * At `(?`: consumes the prefix. Returns true when a group opens (its body
   * follows), false for a flags-only `(?flags)` that changes the flags until
   * the enclosing group ends.
   */
  private parseGroupPrefix(): boolean {
    const start = this.pos;
    let p = start + 2;
    const c2 = this.cps[p];
    const c3 = this.cps[p + 1];
    if (c2 === ch('=') || c2 === ch('!') || (c2 === C_LT && (c3 === ch('=') || c3 === ch('!')))) {
      this.fail('lookaround assertions are not supported by RE2');
    }
    if (c2 === C_GT) this.fail('atomic groups are not supported by RE2');
    if ((c2 === ch('P') && c3 === C_LT) || c2 === C_LT) {
      const nameStart = c2 === C_LT ? p + 1 : p + 2;
      const end = this.cps.indexOf(C_GT, nameStart);
      if (end < 0) this.fail(`invalid named capture ${this.text(start, this.cps.length)}`);
      const name = this.text(nameStart, end);
      if (!/^[A-Za-z0-9_]+$/.test(name)) this.fail(`invalid named capture ${this.text(start, end + 1)}`);
      if (this.names.has(name)) this.fail('duplicate capture group name');
      this.names.add(name);
      this.pos = end + 1;
      return true;
    }
    let { fold, dotNL, multiLine } = this;
    let on = true;
    let sawFlag = false;
    while (p < this.cps.length) {
      const c = this.cps[p++];
      switch (c) {
        case ch('i'): fold = on; sawFlag = true; continue;
        case ch('s'): dotNL = on; sawFlag = true; continue;
        case ch('m'): multiLine = on; sawFlag = true; continue;
        case ch('U'): sawFlag = true; continue; // ungreedy: no effect on a full match
        case C_MINUS:
          if (!on) break;
          on = false;
          sawFlag = false;
          continue;
        case C_COLON:
        case C_RPAREN:
          if (!on && !sawFlag) break;
          this.fold = fold;
          this.dotNL = dotNL;
          this.multiLine = multiLine;
          this.pos = p;
          return c === C_COLON;
        default:
          break;
      }
      break;
    }
    return this.fail(`invalid or unsupported group syntax ${this.text(start, p)}`);
  }

  private parseBackslash(seq: Node[]): void {
    const start = this.pos;
    const c = this.peek(1);
    if (c === undefined) this.fail('trailing backslash');
    const push = (m: Pred) => seq.push({ k: 'char', m, h: 1 });
    const assert = (a: number) => {
      this.pos += 2;
      seq.push({ k: 'assert', a, h: 1 });
    };
    switch (c) {
      case ch('A'): return assert(BOT);
      case ch('z'): return assert(EOT);
      case ch('b'): return assert(WORD_B);
      case ch('B'): return assert(NOT_WORD_B);
      case ch('C'): return this.fail('\\C is not supported');
      case ch('Q'): {
        let p = start + 2;
        while (p < this.cps.length && !(this.cps[p] === C_BACKSLASH && this.cps[p + 1] === ch('E'))) {
          push(literalPred(this.cps[p], this.fold));
          p++;
        }
        this.pos = p < this.cps.length ? p + 2 : p;
        return;
      }
      case ch('p'):
      case ch('P'):
        push(classPred([this.parseUnicodeClass()], false, this.fold));
        return;
      default:
        break;
    }
    const perl = this.perlClass();
    if (perl) {
      push(classPred([perl], false, this.fold));
      return;
    }
    if (isDigit(c) && c !== 0x30 && !(isOctal(c) && isOctal(this.peek(2)))) {
      this.fail(`backreference \\${String.fromCodePoint(c)} is not supported by RE2`);
    }
    push(literalPred(this.parseEscape(), this.fold));
  }

  /** \d \D \s \S \w \W at pos: consumes it. */
  private perlClass(): ClassItem | undefined {
    if (this.peek() !== C_BACKSLASH) return undefined;
    const c = this.peek(1);
    if (c === undefined) return undefined;
    const name = String.fromCodePoint(c);
    if (!'dDsSwW'.includes(name)) return undefined;
    this.pos += 2;
    return rangesItem(PERL[name.toLowerCase()], name !== name.toLowerCase());
  }

  /** \pL, \p{Greek}, \P{...}, \p{^...} at pos. */
  private parseUnicodeClass(): ClassItem {
    const start = this.pos;
    let neg = this.peek(1) === ch('P');
    this.pos += 2;
    const c = this.peek();
    if (c === undefined) this.fail(`invalid unicode class ${this.text(start, this.pos)}`);
    let name: string;
    if (c === C_LBRACE) {
      const end = this.cps.indexOf(C_RBRACE, this.pos);
      if (end < 0) this.fail(`missing closing } in unicode class ${this.text(start, this.cps.length)}`);
      name = this.text(this.pos + 1, end);
      this.pos = end + 1;
    } else {
      name = String.fromCodePoint(c);
      this.pos++;
    }
    if (name.startsWith('^')) {
      neg = !neg;
      name = name.slice(1);
    }
    const test = unicodePred(name);
    if (!test) this.fail(`unknown unicode class ${this.text(start, this.pos)}`);
    return { test, neg };
  }

  /** An escape that stands for one code point, at pos (the backslash). */
  private parseEscape(): number {
    const start = this.pos;
    const c = this.peek(1);
    if (c === undefined) this.fail('trailing backslash');
    this.pos += 2;
    const invalid = (): never => this.fail(`invalid escape sequence ${this.text(start, this.pos)}`);
    // Octal: \0, or \1-\7 followed by another octal digit; up to three digits.
    if (c === 0x30 || (isOctal(c) && isOctal(this.peek()))) {
      let r = c - 0x30;
      for (let i = 1; i < 3 && isOctal(this.peek()); i++) r = r * 8 + this.cps[this.pos++] - 0x30;
      return r;
    }
    switch (c) {
      case ch('x'): {
        if (this.peek() === C_LBRACE) {
          this.pos++;
          let r = 0;
          let n = 0;
          for (;;) {
            const d = this.peek();
            if (d === undefined) return invalid();
            this.pos++;
            if (d === C_RBRACE) break;
            const v = hexVal(d);
            if (v < 0) return invalid();
            r = r * 16 + v;
            if (r > 0x10ffff) return invalid();
            n++;
          }
          if (n === 0) return invalid();
          return r;
        }
        const x = hexVal(this.peek());
        if (this.peek() !== undefined) this.pos++;
        const y = hexVal(this.peek());
        if (this.peek() !== undefined) this.pos++;
        if (x < 0 || y < 0) return invalid();
        return x * 16 + y;
      }
      case ch('a'): return 0x07;
      case ch('f'): return 0x0c;
      case ch('n'): return 0x0a;
      case ch('r'): return 0x0d;
      case ch('t'): return 0x09;
      case ch('v'): return 0x0b;
      default:
        if (c < 0x80 && !isAlnum(c)) return c; // escaped punctuation
        return invalid();
    }
  }

  private parseClass(): Pred {
    const fold = this.fold;
    this.pos++; // [
    let neg = false;
    if (this.peek() === C_CARET) {
      neg = true;
      this.pos++;
    }
    const items: ClassItem[] = [];
    const pairs: [number, number][] = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('missing closing ]');
      if (c === C_RBRACK && !first) break;
      first = false;
      // [:alpha:] and [:^alpha:]
      if (c === C_LBRACK && this.peek(1) === C_COLON && this.pos + 2 < this.cps.length) {
        let end = -1;
        for (let i = this.pos + 2; i + 1 < this.cps.length; i++) {
          if (this.cps[i] === C_COLON && this.cps[i + 1] === C_RBRACK) { end = i; break; }
        }
        if (end >= 0) {
          const written = this.text(this.pos + 2, end);
          const negName = written.startsWith('^');
          const name = negName ? written.slice(1) : written;
          if (!Object.prototype.hasOwnProperty.call(POSIX, name)) this.fail(`unknown character class [:${written}:]`);
          items.push(rangesItem(POSIX[name], negName));
          this.pos = end + 2;
          continue;
        }
      }
      if (c === C_BACKSLASH && (this.peek(1) === ch('p') || this.peek(1) === ch('P'))) {
        items.push(this.parseUnicodeClass());
        continue;
      }
      const perl = this.perlClass();
      if (perl) {
        items.push(perl);
        continue;
      }
      const rangeStart = this.pos;
      const lo = this.parseClassChar();
      let hi = lo;
      if (this.peek() === C_MINUS && this.peek(1) !== undefined && this.peek(1) !== C_RBRACK) {
        this.pos++;
        hi = this.parseClassChar();
        if (hi < lo) this.fail(`invalid character class range ${this.text(rangeStart, this.pos)}`);
      }
      pairs.push([lo, hi]);
    }
    this.pos++; // ]
    if (pairs.length > 0) items.unshift(rangesItem(normalize(pairs)));
    return classPred(items, neg, fold);
  }

  private parseClassChar(): number {
    const c = this.peek();
    if (c === undefined) this.fail('missing closing ]');
    if (c === C_BACKSLASH) return this.parseEscape();
    this.pos++;
    return c;
  }
}

// ---------------------------------------------------------------------------
// Compiler: tree → NFA program

const OP_CHAR = 0;
const OP_MATCH = 1;
const OP_SPLIT = 2;
const OP_ASSERT = 3;

function programSize(node: Node): number {
  switch (node.k) {
    case 'empty': return 0;
    case 'char':
    case 'assert': return 1;
    case 'cat': return node.subs.reduce((n, s) => n + programSize(s), 0);
    case 'alt': return node.subs.reduce((n, s) => n + programSize(s), 0) + node.subs.length - 1;
    case 'rep': {
      const s = programSize(node.sub);
      if (node.max < 0) return node.min >= 1 ? node.min * s + 1 : s + 1;
      return node.min * s + (node.max - node.min) * (s + 1);
    }
  }
}

class Program {
  readonly op: number[] = [];
  readonly out: number[] = [];
  readonly out1: number[] = [];
  /** Predicate of a CHAR, assertion bits of an ASSERT. */
  readonly preds: (Pred | undefined)[] = [];
  readonly arg: number[] = [];
  start = 0;

  add(op: number, out: number, out1 = -1, pred?: Pred, arg = 0): number {
    this.op.push(op);
    this.out.push(out);
    this.out1.push(out1);
    this.preds.push(pred);
    this.arg.push(arg);
    return this.op.length - 1;
  }

  /** Emits `node` so that it continues at `next`; returns its entry. */
  emit(node: Node, next: number): number {
    switch (node.k) {
      case 'empty':
        return next;
      case 'char':
        return this.add(OP_CHAR, next, -1, node.m);
      case 'assert':
        return this.add(OP_ASSERT, next, -1, undefined, node.a);
      case 'cat': {
        for (let i = node.subs.length - 1; i >= 0; i--) next = this.emit(node.subs[i], next);
        return next;
      }
      case 'alt': {
        const entries = node.subs.map((s) => this.emit(s, next));
        let pc = entries[entries.length - 1];
        for (let i = entries.length - 2; i >= 0; i--) pc = this.add(OP_SPLIT, entries[i], pc);
        return pc;
      }
      case 'rep': {
        let tail: number;
        let copies: number;
        if (node.max < 0) {
          const loop = this.add(OP_SPLIT, -1, next);
          const body = this.emit(node.sub, loop);
          this.out[loop] = body;
          tail = node.min >= 1 ? body : loop;
          copies = Math.max(node.min - 1, 0);
        } else {
          tail = next;
          for (let i = node.min; i < node.max; i++) tail = this.add(OP_SPLIT, this.emit(node.sub, tail), next);
          copies = node.min;
        }
        for (let i = 0; i < copies; i++) tail = this.emit(node.sub, tail);
        return tail;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Matcher: Thompson simulation of the program over the input's code points.

const isWordChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;

class Machine implements RE2Matcher {
  private readonly op: Uint8Array;
  private readonly out: Int32Array;
  private readonly out1: Int32Array;
  private readonly arg: Int32Array;
  private readonly preds: (Pred | undefined)[];
  private readonly start: number;
  private mark: Uint32Array;
  private gen = 0;
  private clist: Int32Array;
  private nlist: Int32Array;
  private readonly stack: Int32Array;

  constructor(readonly source: string, prog: Program) {
    const n = prog.op.length;
    this.op = Uint8Array.from(prog.op);
    this.out = Int32Array.from(prog.out);
    this.out1 = Int32Array.from(prog.out1);
    this.arg = Int32Array.from(prog.arg);
    this.preds = prog.preds;
    this.start = prog.start;
    this.mark = new Uint32Array(n);
    this.clist = new Int32Array(n);
    this.nlist = new Int32Array(n);
    this.stack = new Int32Array(n + 1);
  }

  /** Adds the states reachable from pc without consuming input to list; returns the new length. */
  private addClosure(list: Int32Array, len: number, pc0: number, ctx: number): number {
    const { op, out, out1, arg, mark, stack } = this;
    const gen = this.gen;
    let sp = 0;
    if (mark[pc0] === gen) return len;
    mark[pc0] = gen;
    stack[sp++] = pc0;
    while (sp > 0) {
      const pc = stack[--sp];
      switch (op[pc]) {
        case OP_CHAR:
        case OP_MATCH:
          list[len++] = pc;
          break;
        case OP_SPLIT: {
          const b = out1[pc];
          if (mark[b] !== gen) { mark[b] = gen; stack[sp++] = b; }
          const a = out[pc];
          if (mark[a] !== gen) { mark[a] = gen; stack[sp++] = a; }
          break;
        }
        case OP_ASSERT:
          if ((arg[pc] & ctx) !== 0) {
            const a = out[pc];
            if (mark[a] !== gen) { mark[a] = gen; stack[sp++] = a; }
          }
          break;
      }
    }
    return len;
  }

  private nextGen(): void {
    if (this.gen === 0xffffffff) {
      this.mark.fill(0);
      this.gen = 0;
    }
    this.gen++;
  }

  test(input: string): boolean {
    const { op, out, preds } = this;
    const end = input.length;
    // The assertions that hold between prev (-1: none) and the code point at i.
    const context = (prev: number, i: number): number => {
      const next = i < end ? input.codePointAt(i)! : -1;
      let ctx = 0;
      if (prev < 0) ctx |= BOT | BOL;
      else if (prev === 0x0a) ctx |= BOL;
      if (next < 0) ctx |= EOT | EOL;
      else if (next === 0x0a) ctx |= EOL;
      ctx |= (prev >= 0 && isWordChar(prev)) !== (next >= 0 && isWordChar(next)) ? WORD_B : NOT_WORD_B;
      return ctx;
    };
    let clist = this.clist;
    let nlist = this.nlist;
    this.nextGen();
    let cn = this.addClosure(clist, 0, this.start, context(-1, 0));
    let i = 0;
    while (i < end) {
      if (cn === 0) return false;
      const c = input.codePointAt(i)!;
      i += c > 0xffff ? 2 : 1;
      const ctx = context(c, i);
      this.nextGen();
      let nn = 0;
      for (let k = 0; k < cn; k++) {
        const pc = clist[k];
        if (op[pc] === OP_CHAR && preds[pc]!(c)) nn = this.addClosure(nlist, nn, out[pc], ctx);
      }
      const t = clist;
      clist = nlist;
      nlist = t;
      cn = nn;
    }
    for (let k = 0; k < cn; k++) if (op[clist[k]] === OP_MATCH) return true;
    return false;
  }
}

/**
 * Compiles an RE2 pattern that must match the whole input (as RE2::FullMatch,
 * i.e. Go's `^(?:pattern)\z`). Throws RegexError with a readable reason when
 * RE2 would reject the pattern.
 */
export function compileRE2(pattern: string): RE2Matcher {
  const tree = new Parser(pattern).parse();
  if (programSize(tree) + 1 > MAX_PROGRAM) throw new RegexError('expression too large');
  const prog = new Program();
  const match = prog.add(OP_MATCH, -1);
  prog.start = prog.emit(tree, match);
  return new Machine(pattern, prog);
}
