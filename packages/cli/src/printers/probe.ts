/** How probes and their verdicts read in tables and mismatch lines. */
import type { ProbeResult, RuleSummary } from '@membrane/policy';

export function probeTarget(r: Pick<ProbeResult, 'port' | 'protocol' | 'icmp'>): string {
  if (r.protocol === 'ICMP') return `ICMP type ${r.icmp?.type ?? 8}`;
  return `${r.port}/${r.protocol}`;
}

export function probeL7(r: Pick<ProbeResult, 'http' | 'dns'>): string {
  if (r.http) return `${r.http.method} ${r.http.path}`;
  if (r.dns) return `DNS ${r.dns.query}`;
  return '';
}

export function ruleText(r: RuleSummary): string {
  if (r.section === 'implicit') return r.name;
  const where = r.namespace ? `${r.namespace}/${r.name}` : r.name;
  const spec = r.spec !== undefined ? `specs[${r.spec}].` : '';
  return `${r.kind} ${where} ${spec}${r.section}[${r.index}]`;
}

export function rulesText(rules: readonly RuleSummary[]): string {
  return rules.length ? rules.map(ruleText).join('\n') : '-';
}

export function verdictText(r: ProbeResult): string {
  if (r.verdict === 'allowed') return 'allowed';
  if (r.httpStatus) return `denied (${r.httpStatus})`;
  if (r.dropReason === 181) return 'denied (deny rule)';
  return 'denied';
}

export function describeProbe(r: ProbeResult): string {
  const l7 = probeL7(r);
  return `${r.from} -> ${r.to} ${probeTarget(r)}${l7 ? ` ${l7}` : ''}`;
}
