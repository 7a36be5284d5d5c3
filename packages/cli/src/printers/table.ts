/** Plain-text tables for people: columns padded to the widest cell, cells may hold several lines. */

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const split = (c: string) => c.split('\n');
  const widths = header.map((h, i) => Math.max(...split(h).map((l) => l.length), ...rows.map((r) => Math.max(...split(r[i] ?? '').map((l) => l.length)))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  const out: string[] = [];
  for (const r of [header, ...rows]) {
    const parts = r.map(split);
    const height = Math.max(...parts.map((p) => p.length));
    for (let k = 0; k < height; k++) out.push(line(parts.map((p) => p[k] ?? '')));
  }
  return out.join('\n') + '\n';
}
