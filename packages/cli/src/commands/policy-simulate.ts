/** `membrane policy simulate FILE [-o table|json]`: the verdict of every probe of a scenario. */
import { parseScenario, simulate } from '@membrane/policy';
import { outputFormat, parseArgs, usage } from '../args.js';
import { readText } from '../files.js';
import { probeL7, probeTarget, rulesText, verdictText } from '../printers/probe.js';
import { renderTable } from '../printers/table.js';
import type { Io } from '../io.js';

export const help = `Usage: membrane policy simulate FILE [-o table|json]

Reads a scenario file (namespaces, endpoints, outside peers, policies, probes)
and prints the verdict of every probe, the reason and the rules behind it.
Needs no agent and no root. Exits 2 when the scenario or a policy is invalid.`;

export function run(argv: readonly string[], io: Io): number {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  if (p.positionals.length !== 1) throw usage('policy simulate takes exactly one scenario file');
  const file = p.positionals[0]!;
  const scenario = parseScenario(readText(file), file);
  const results = simulate(scenario);
  if (fmt === 'json') {
    io.out(JSON.stringify(results, null, 2) + '\n');
    return 0;
  }
  io.out(
    renderTable(
      ['#', 'FROM', 'TO', 'PORT', 'L7', 'VERDICT', 'RULES'],
      results.map((r, i) => [String(i), r.from, r.to, probeTarget(r), probeL7(r) || '-', verdictText(r), rulesText(r.rules)]),
    ),
  );
  return 0;
}
