/** IPv4/IPv6 addresses and prefixes: parsing, containment, formatting. */

export interface Prefix {
  readonly family: 4 | 6;
  /** Network address bytes (host bits zeroed). */
  readonly bytes: Uint8Array;
  readonly bits: number;
}

export function parseIP(s: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
  if (s.includes(':')) return parseIPv6(s);
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    bytes[i] = n;
  }
  return { family: 4, bytes };
}

function parseIPv6(s: string): { family: 6; bytes: Uint8Array } | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const dbl = s.split('::');
  if (dbl.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.includes('.') && i === items.length - 1) {
        const v4 = parseIP(it);
        if (!v4 || v4.family !== 4) return undefined;
        out.push((v4.bytes[0]! << 8) | v4.bytes[1]!, (v4.bytes[2]! << 8) | v4.bytes[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const head = groups(dbl[0]!);
  const tail = dbl.length === 2 ? groups(dbl[1]!) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (dbl.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/** Parses `a.b.c.d/n` (or a bare address, a host prefix when allowBare). Host bits must be zero unless relaxed. */
export function parsePrefix(s: string, opts: { allowBare?: boolean } = {}): Prefix | string {
  const slash = s.indexOf('/');
  if (slash < 0) {
    if (!opts.allowBare) return `"${s}" is not a CIDR (expected address/prefix-length, e.g. 10.0.0.0/8)`;
    const ip = parseIP(s);
    if (!ip) return `"${s}" is not an IP address or CIDR`;
    return { family: ip.family, bytes: ip.bytes, bits: ip.family === 4 ? 32 : 128 };
  }
  const ip = parseIP(s.slice(0, slash));
  if (!ip) return `"${s}" is not a valid CIDR: bad address`;
  const lenStr = s.slice(slash + 1);
  const max = ip.family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]*)$/.test(lenStr) || Number(lenStr) > max) {
    return `"${s}" is not a valid CIDR: prefix length must be 0-${max}`;
  }
  const bits = Number(lenStr);
  return { family: ip.family, bytes: mask(ip.bytes, bits), bits };
}

function mask(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] = b === 0 ? 0 : bytes[i]! & ((0xff << (8 - b)) & 0xff);
  }
  return out;
}

/** Is `inner` (a prefix or host) within `outer`? */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.bits < outer.bits) return false;
  const full = outer.bits >> 3;
  for (let i = 0; i < full; i++) if (outer.bytes[i] !== inner.bytes[i]) return false;
  const rem = outer.bits & 7;
  if (rem === 0) return true;
  const m = (0xff << (8 - rem)) & 0xff;
  return (outer.bytes[full]! & m) === (inner.bytes[full]! & m);
}

export function formatPrefix(p: Prefix): string {
  return `${formatIP(p.family, p.bytes)}/${p.bits}`;
}

export function formatIP(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Compress the longest run of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function hostPrefix(ip: string): Prefix | undefined {
  const p = parsePrefix(ip, { allowBare: true });
  return typeof p === 'string' ? undefined : p;
}
