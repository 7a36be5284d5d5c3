/**
 * What a request must be before the proxy judges it (pure). The head
 * parser (http-wire.ts) already refuses malformed messages — obs-fold,
 * invalid header names, bad chunk sizes — and these checks refuse the
 * ambiguous ones a well-formed head can still carry, the shapes request
 * smuggling and policy bypass are made of:
 *   - Content-Length together with Transfer-Encoding, more than one
 *     Content-Length, a Transfer-Encoding that is not exactly `chunked`;
 *   - more than one Host, or an absolute-form target whose authority is not
 *     the Host header;
 *   - a path the upstream could read differently from the rule: percent-
 *     encoded `/`, `\` or `.`, a backslash, control characters. Dot segments
 *     and empty segments (`//`) are resolved, and the resolved path is both
 *     what the rules judge and what the upstream receives.
 */
import { valuesOf as headerValues } from './http-wire.js';

export type Checked = { ok: true; path: string; host: string } | { ok: false; reason: string };

/** RFC 3986 5.2.4 on a path: `.` and `..` segments resolved, empty segments dropped. */
export function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segs = path.split('/');
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '..') out.pop();
    else if (s !== '.' && s !== '') out.push(s);
  }
  const last = segs[segs.length - 1];
  const trailing = segs.length > 1 && (last === '' || last === '.' || last === '..') && out.length > 0;
  return '/' + out.join('/') + (trailing ? '/' : '');
}

export function checkRequest(method: string, url: string, rawHeaders: readonly string[]): Checked {
  const cl = headerValues(rawHeaders, 'content-length');
  const te = headerValues(rawHeaders, 'transfer-encoding');
  if (cl.length && te.length) return { ok: false, reason: 'both Content-Length and Transfer-Encoding' };
  if (cl.length > 1) return { ok: false, reason: 'more than one Content-Length' };
  if (te.length > 1 || (te.length === 1 && te[0]!.trim().toLowerCase() !== 'chunked')) return { ok: false, reason: `Transfer-Encoding "${te.join(', ')}" is not exactly "chunked"` };
  const hosts = headerValues(rawHeaders, 'host');
  if (hosts.length > 1) return { ok: false, reason: 'more than one Host' };
  let host = hosts[0] ?? '';
  let target = url;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return { ok: false, reason: 'an absolute-form target that is not a URL' };
    }
    if (hosts.length && u.host.toLowerCase() !== host.toLowerCase()) return { ok: false, reason: `absolute-form target for ${u.host} with Host ${host}` };
    host = u.host;
    target = u.pathname + u.search;
  } else if (method === 'CONNECT' || (method === 'OPTIONS' && url === '*')) {
    return { ok: false, reason: `${method} ${url} is not proxied` };
  } else if (!url.startsWith('/')) {
    return { ok: false, reason: 'the request target is not a path' };
  }
  const q = target.indexOf('?');
  const path = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q) : '';
  if (/%(2f|5c|2e)/i.test(path)) return { ok: false, reason: 'an encoded "/", "\\" or "." in the path' };
  if (path.includes('\\')) return { ok: false, reason: 'a backslash in the path' };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(target)) return { ok: false, reason: 'control characters in the target' };
  if (!host) return { ok: false, reason: 'no Host' };
  return { ok: true, path: removeDotSegments(path) + query, host };
}

/** Headers whose values never leave the proxy in events: secrets. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];

/** rawHeaders as a list of [name, value], the secrets (and `extra` names) replaced. */
export function redact(raw: readonly string[], extra: readonly string[] = []): [string, string][] {
  const secret = new Set([...REDACTED_HEADERS, ...extra.map((x) => x.toLowerCase())]);
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, secret.has(raw[i]!.toLowerCase()) ? '[redacted]' : raw[i + 1]!]);
  return out;
}
