/**
 * `kubectl describe`-style text for any object: keys in Title Case with
 * spaces (endpointSelector → Endpoint Selector, label keys capitalised as
 * kubectl does), values aligned per level, list items one after another.
 */

function humanize(k: string): string {
  const spaced = k.replace(/([a-z0-9])([A-Z])/g, '$1 $2');
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return '<none>';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

function render(v: unknown, indent: number, out: string[]): void {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isScalar(item)) out.push(`${pad}${scalar(item)}`);
      else render(item, indent, out);
    }
    return;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  const width = Math.max(0, ...entries.filter(([, x]) => isScalar(x) || (Array.isArray(x) && x.length === 0)).map(([k]) => humanize(k).length + 1));
  for (const [k, x] of entries) {
    const key = `${humanize(k)}:`;
    if (isScalar(x)) out.push(`${pad}${key.padEnd(width + 2)}${scalar(x)}`);
    else if (Array.isArray(x) && x.length === 0) out.push(`${pad}${key.padEnd(width + 2)}<none>`);
    else {
      out.push(`${pad}${key}`);
      render(x, indent + 2, out);
    }
  }
}

function labels(m: Record<string, string> | undefined): string[] {
  const e = Object.entries(m ?? {});
  return e.length ? e.map(([k, v]) => `${k}=${v}`) : ['<none>'];
}

export function describe(obj: { apiVersion?: string; kind?: string; metadata?: Record<string, unknown>; [k: string]: unknown }): string {
  const meta = (obj.metadata ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  const head = (k: string, v: string[]) => {
    out.push(`${(k + ':').padEnd(14)}${v[0] ?? ''}`);
    for (const x of v.slice(1)) out.push(`${' '.repeat(14)}${x}`);
  };
  head('Name', [String(meta['name'] ?? '')]);
  if (meta['namespace']) head('Namespace', [String(meta['namespace'])]);
  head('Labels', labels(meta['labels'] as Record<string, string> | undefined));
  head('Annotations', labels(meta['annotations'] as Record<string, string> | undefined));
  head('API Version', [String(obj.apiVersion ?? '')]);
  head('Kind', [String(obj.kind ?? '')]);
  const rest: Record<string, unknown> = {};
  for (const k of ['creationTimestamp', 'resourceVersion', 'uid', 'generation']) if (meta[k] !== undefined) rest[k] = meta[k];
  if (Object.keys(rest).length) {
    out.push('Metadata:');
    render(rest, 2, out);
  }
  for (const [k, v] of Object.entries(obj)) {
    if (['apiVersion', 'kind', 'metadata'].includes(k) || v === undefined) continue;
    if (isScalar(v)) out.push(`${humanize(k)}:  ${scalar(v)}`);
    else {
      out.push(`${humanize(k)}:`);
      render(v, 2, out);
    }
  }
  out.push('Events:            <none>');
  return out.join('\n') + '\n';
}
