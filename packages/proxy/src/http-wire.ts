/**
 * HTTP/1.1 message framing for the L7 proxy (RFC 9112), strict where the
 * proxy must agree with any upstream on where a request starts and ends:
 *   - a head is CRLF-terminated lines within a size bound; a bare LF, a
 *     line that starts with a space (obs-fold), a header name that is not a
 *     token or is followed by whitespace before the colon, control
 *     characters in a value: all refused;
 *   - the request line is `METHOD SP target SP HTTP/1.0|1.1`;
 *   - a body is framed by Transfer-Encoding: chunked (checked by a strict
 *     chunk parser: hex sizes, CRLF after every chunk, trailers bounded) or
 *     Content-Length (digits only), else it is empty (requests) or runs to
 *     the end of the connection (responses, RFC 9112 6.3).
 * The proxy judges the head and then passes the body's bytes as they come,
 * counting them with a BodyFramer; nothing here buffers a body.
 */

export interface ParsedHead {
  /** Request: method, target, version. Response: version, status, reason. */
  start: [string, string, string];
  /** name, value, name, value... as received (names keep their case). */
  rawHeaders: string[];
  /** Bytes of the head, the blank line included. */
  length: number;
}

export type HeadResult = { head: ParsedHead } | { incomplete: true } | { error: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, obs-text, spaces and tabs: no other control characters.
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/(1\.[01])$/;
const STATUS_LINE = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Finds and parses the head at the start of buf (request or response), within max bytes. */
export function parseHead(buf: Buffer, max: number, kind: 'request' | 'response'): HeadResult {
  const end = buf.indexOf(CRLFCRLF, 0);
  if (end < 0) {
    if (buf.length > max) return { error: `a head larger than ${max} bytes` };
    // A bare LF ending the head would never be found: refuse it as soon as it shows.
    if (buf.includes('\n\n') || (kind === 'request' && buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a)) return { error: 'a head not made of CRLF lines' };
    return { incomplete: true };
  }
  if (end + 4 > max) return { error: `a head larger than ${max} bytes` };
  const text = buf.toString('latin1', 0, end);
  const lines = text.split('\r\n');
  for (const l of lines) if (l.includes('\n') || l.includes('\r')) return { error: 'a bare CR or LF in the head' };
  const m = (kind === 'request' ? REQUEST_LINE : STATUS_LINE).exec(lines[0]!);
  if (!m) return { error: kind === 'request' ? 'a malformed request line' : 'a malformed status line' };
  const start: [string, string, string] = kind === 'request' ? [m[1]!, m[2]!, m[3]!] : [m[1]!, m[2]!, m[3] ?? ''];
  const rawHeaders: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l[0] === ' ' || l[0] === '\t') return { error: 'obs-fold (a header line continued on the next)' };
    const colon = l.indexOf(':');
    if (colon <= 0) return { error: 'a header line without a name' };
    const name = l.slice(0, colon);
    if (!TOKEN.test(name)) return { error: `an invalid header name "${name.slice(0, 40)}"` };
    const value = l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE.test(value)) return { error: `control characters in header ${name}` };
    rawHeaders.push(name, value);
  }
  return { head: { start, rawHeaders, length: end + 4 } };
}

/** The values of every header of this (lower-case) name. */
export function valuesOf(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** Whether a Connection header (or the version's default) says the connection ends after this message. */
export function closesAfter(version: string, raw: readonly string[]): boolean {
  const tokens = valuesOf(raw, 'connection').flatMap((v) => v.toLowerCase().split(',').map((t) => t.trim()));
  if (tokens.includes('close')) return true;
  return version === '1.0' && !tokens.includes('keep-alive');
}

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

/** A request's body framing (RFC 9112 6.3), or why it has none the proxy can trust. Transfer-Encoding is checked by http-checks. */
export function requestFraming(raw: readonly string[]): Framing | { error: string } {
  if (valuesOf(raw, 'transfer-encoding').length) return { kind: 'chunked' };
  const cl = valuesOf(raw, 'content-length');
  if (cl.length === 0) return { kind: 'none' };
  if (cl.length > 1 || !/^\d{1,15}$/.test(cl[0]!)) return { error: `Content-Length "${cl.join(', ')}" is not one number` };
  const n = Number(cl[0]);
  return n === 0 ? { kind: 'none' } : { kind: 'length', length: n };
}

/** A response's body framing, given the request's method and the status. */
export function responseFraming(method: string, status: number, raw: readonly string[]): Framing {
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return { kind: 'none' };
  const te = valuesOf(raw, 'transfer-encoding');
  if (te.length) return te.join(',').toLowerCase().split(',').map((t) => t.trim()).pop() === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  const cl = valuesOf(raw, 'content-length');
  if (cl.length && /^\d{1,15}$/.test(cl[0]!.split(',')[0]!.trim())) {
    const n = Number(cl[0]!.split(',')[0]!.trim());
    return n === 0 ? { kind: 'none' } : { kind: 'length', length: n };
  }
  return { kind: 'close' };
}

const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;

/**
 * Counts a body's bytes as they pass: consume(buf, from) says how many
 * bytes from `from` belong to the body (the rest is the next message), and
 * whether the body ended there. Chunked bodies are checked as they pass.
 */
export class BodyFramer {
  private remaining: number;
  /** chunked: 'size' (reading a size line), 'data', 'crlf' (after data), 'trailer'. */
  private phase: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  private line = '';
  private trailerBytes = 0;
  done: boolean;
  error?: string;

  constructor(private readonly framing: Framing) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.done = framing.kind === 'none';
  }

  /** Bytes of buf from `from` that are this body's. */
  consume(buf: Buffer, from: number): number {
    if (this.done) return 0;
    switch (this.framing.kind) {
      case 'none':
        return 0;
      case 'close':
        return buf.length - from;
      case 'length': {
        const n = Math.min(this.remaining, buf.length - from);
        this.remaining -= n;
        if (this.remaining === 0) this.done = true;
        return n;
      }
      case 'chunked':
        return this.chunked(buf, from);
    }
  }

  private fail(why: string, used: number): number {
    this.error = why;
    this.done = true;
    return used;
  }

  private chunked(buf: Buffer, from: number): number {
    let i = from;
    while (i < buf.length && !this.done) {
      if (this.phase === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.phase = 'crlf';
        continue;
      }
      const c = buf[i++]!;
      this.line += String.fromCharCode(c);
      if (this.phase === 'crlf') {
        if (this.line.length < 2) continue;
        if (this.line !== '\r\n') return this.fail('a chunk not followed by CRLF', i - from);
        this.line = '';
        this.phase = 'size';
        continue;
      }
      if (this.line.length > MAX_CHUNK_LINE) return this.fail('a chunk line too long', i - from);
      if (this.phase === 'trailer') {
        this.trailerBytes++;
        if (this.trailerBytes > MAX_TRAILERS) return this.fail('trailers too large', i - from);
      }
      if (c !== 0x0a) continue;
      if (!this.line.endsWith('\r\n')) return this.fail('a bare LF in a chunked body', i - from);
      const l = this.line.slice(0, -2);
      this.line = '';
      if (this.phase === 'trailer') {
        if (l === '') this.done = true;
        else if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(l)) return this.fail('a malformed trailer', i - from);
        continue;
      }
      const m = /^([0-9a-fA-F]{1,12})(?:[ \t]*;[^\r\n]*)?$/.exec(l);
      if (!m) return this.fail('a malformed chunk size', i - from);
      this.remaining = parseInt(m[1]!, 16);
      this.phase = this.remaining === 0 ? 'trailer' : 'data';
    }
    return i - from;
  }
}
