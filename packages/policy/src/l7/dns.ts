/**
 * DNS names in policy: `matchName` is an exact name (case-insensitive,
 * trailing dot optional); in `matchPattern` a `*` matches DNS characters
 * within one label, and a lone `*` matches every name
 * (cilium/cilium pkg/fqdn/matchpattern).
 */

// Labels separated by single dots, an optional final dot. Written without nested
// quantifiers so that matching stays linear (JavaScript regexes backtrack).
const NAME_RE = /^[-a-zA-Z0-9_]+(?:\.[-a-zA-Z0-9_]+)*\.?$/;
const PATTERN_RE = /^[-a-zA-Z0-9_*]+(?:\.[-a-zA-Z0-9_*]+)*\.?$/;
const DNS_CHAR = '[-a-zA-Z0-9_]';

export interface DnsMatcher {
  matchName?: string;
  matchPattern?: string;
  text: string;
  readonly re: RegExp;
}

/** `example.com.` → `example.com` in lower case. */
export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

export function checkMatchName(name: string): string | undefined {
  if (!NAME_RE.test(name.trim())) return `"${name}" is not a DNS name (letters, digits, '-', '_' and '.' only)`;
  return undefined;
}

export function checkMatchPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === '*') return undefined;
  if (!PATTERN_RE.test(p)) return `"${pattern}" is not a DNS pattern (letters, digits, '-', '_', '.' and '*' only)`;
  return undefined;
}

export function compileDnsMatcher(sel: { matchName?: string; matchPattern?: string }): DnsMatcher {
  if (sel.matchName !== undefined) {
    const n = normalizeName(sel.matchName);
    const re = new RegExp(`^${escape(n)}$`);
    return { matchName: sel.matchName, text: `matchName: ${sel.matchName}`, re };
  }
  const p = normalizeName(sel.matchPattern ?? '*');
  const src = p === '*' ? `${DNS_CHAR}+(?:\\.${DNS_CHAR}+)*` : p.split('*').map(escape).join(`${DNS_CHAR}*`);
  return { matchPattern: sel.matchPattern ?? '*', text: `matchPattern: ${sel.matchPattern ?? '*'}`, re: new RegExp(`^${src}$`) };
}

export function dnsMatches(m: DnsMatcher, name: string): boolean {
  return m.re.test(normalizeName(name));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
