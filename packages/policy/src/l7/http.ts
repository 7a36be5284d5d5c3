/**
 * HTTP L7 rules (rules.http) as Cilium programs them into Envoy: method,
 * path and host are RE2 expressions matched against the whole `:method`,
 * `:path` and `:authority`; `headers` entries are `Name` (must be present)
 * or `Name: value` (exact value); `headerMatches` compare exact values, and a
 * `mismatch` action turns a failed comparison into a logged/rewritten header
 * instead of a denial. Rules on one port are OR-ed.
 */
import { compileFullMatch, type FullMatcher } from './regex.js';

export interface HttpRequest {
  method: string;
  /** The request target as sent (path and query). */
  path: string;
  host: string;
  /** Header names in any case. */
  headers: Readonly<Record<string, string>>;
}

export interface HeaderRequirement {
  /** Lower-case header name. */
  name: string;
  /** Exact value; undefined = presence only. */
  value?: string;
  /** Set for headerMatches with a mismatch action: never denies. */
  mismatch?: string;
}

export interface HttpRule {
  method?: string;
  path?: string;
  host?: string;
  headers: HeaderRequirement[];
  /** The rule as written, for display. */
  text: string;
  readonly matchers: { method?: FullMatcher; path?: FullMatcher; host?: FullMatcher };
}

export interface HttpRuleInput {
  method?: string;
  path?: string;
  host?: string;
  headers?: string[];
  headerMatches?: { name: string; value?: string; mismatch?: string }[];
}

/** Compiles one rule. Throws RegexError (with the field name set by the caller). */
export function compileHttpRule(r: HttpRuleInput): HttpRule {
  const matchers: HttpRule['matchers'] = {};
  if (r.method) matchers.method = compileFullMatch(r.method);
  if (r.path) matchers.path = compileFullMatch(r.path);
  if (r.host) matchers.host = compileFullMatch(r.host);
  const headers: HeaderRequirement[] = [];
  for (const h of r.headers ?? []) headers.push(parseHeaderRule(h));
  for (const m of r.headerMatches ?? []) {
    headers.push({
      name: m.name.toLowerCase(),
      ...(m.value !== undefined && m.value !== '' ? { value: m.value } : {}),
      ...(m.mismatch ? { mismatch: m.mismatch } : {}),
    });
  }
  return {
    ...(r.method ? { method: r.method } : {}),
    ...(r.path ? { path: r.path } : {}),
    ...(r.host ? { host: r.host } : {}),
    headers,
    text: describeHttpRule(r),
    matchers,
  };
}

/**
 * `X-Key: value` needs the header with exactly that value; `X-Key` alone needs
 * it present. Split at the first space, trailing colon of the name dropped
 * (cilium/cilium pkg/envoy/server.go, getHTTPRule).
 */
export function parseHeaderRule(h: string): HeaderRequirement {
  const sp = h.indexOf(' ');
  if (sp < 0) return { name: h.replace(/:+$/, '').toLowerCase() };
  return { name: h.slice(0, sp).replace(/:+$/, '').toLowerCase(), value: h.slice(sp + 1) };
}

export function describeHttpRule(r: HttpRuleInput): string {
  const parts: string[] = [];
  parts.push(r.method ? `method=${r.method}` : 'method=*');
  parts.push(r.path ? `path=${r.path}` : 'path=*');
  if (r.host) parts.push(`host=${r.host}`);
  for (const h of r.headers ?? []) parts.push(`header[${h}]`);
  for (const m of r.headerMatches ?? []) parts.push(`header[${m.name}${m.value !== undefined ? `: ${m.value}` : ''}${m.mismatch ? ` (${m.mismatch})` : ''}]`);
  return parts.join(' ');
}

function headerValue(req: HttpRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  if (name === 'host' || name === ':authority') return req.host;
  return undefined;
}

export function httpRuleMatches(rule: HttpRule, req: HttpRequest): boolean {
  const { method, path, host } = rule.matchers;
  if (method && !method.test(req.method)) return false;
  if (path && !path.test(req.path)) return false;
  if (host && !host.test(req.host)) return false;
  for (const h of rule.headers) {
    if (h.mismatch) continue;
    const v = headerValue(req, h.name);
    if (v === undefined) return false;
    if (h.value !== undefined && v !== h.value) return false;
  }
  return true;
}
