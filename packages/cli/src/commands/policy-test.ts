/**
 * `membrane policy test FILE|DIR... [-o summary|table|json]`: every probe of
 * every scenario against its `expect`. One line per mismatch; exit 1 on any
 * mismatch, 2 when a scenario or policy is invalid. With --live, the same
 * scenarios against the real datapath (policy-test-live.ts).
 */
import { MembraneError } from '@membrane/api';
import { parseScenario, simulate, type ProbeResult } from '@membrane/policy';
import { boolFlag, outputFormat, parseArgs, usage } from '../args.js';
import { collectFiles, readText } from '../files.js';
import { describeProbe, probeL7, probeTarget, rulesText, verdictText } from '../printers/probe.js';
import { renderTable } from '../printers/table.js';
import type { Io } from '../io.js';
import { runLive } from './policy-test-live.js';

export const help = `Usage: membrane policy test [--live] FILE|DIR... [-o summary|table|json]

Runs every probe of the scenario files (folders are searched for .yaml/.yml)
through the policy engine and compares each verdict with the probe's expect.
Prints one line per mismatch (or, with -o table, every probe).
Exit status: 0 all as expected, 1 some mismatch, 2 an invalid scenario or policy.

--live (root): the same probes as real connections between pods in a private,
throw-away agent (pod CIDR 10.250.0.0/16, its own state, pins and names; your
agent, pods and namespaces are not touched), removed afterwards. Probes that
cannot be made live yet (HTTP, DNS, outside peers, the host) are SKIPPED with
the reason; the summary counts them. -o json: per-probe verdict allowed,
denied, skipped (or error) with the reason, and the simulator's verdict.`;

interface FileReport {
  file: string;
  name?: string;
  error?: string;
  probes: (ProbeResult & { ok: boolean })[];
}

export function run(argv: readonly string[], io: Io): number | Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }, { name: 'live' }]);
  const fmt = outputFormat(p, ['summary', 'table', 'json'] as const, 'summary');
  if (p.positionals.length === 0) throw usage('policy test needs at least one scenario file or folder');
  const files = collectFiles(p.positionals, ['.yaml', '.yml']);
  if (files.length === 0) throw usage(`no scenario files (.yaml, .yml) in ${p.positionals.join(', ')}`);
  if (boolFlag(p, 'live')) return runLive(files, fmt, io);

  const reports: FileReport[] = files.map((file) => {
    try {
      const s = parseScenario(readText(file), file);
      const probes = simulate(s).map((r) => ({ ...r, ok: r.expect === undefined || r.expect === r.verdict }));
      return { file, name: s.name, probes };
    } catch (e) {
      if (e instanceof MembraneError) return { file, error: e.toLine(), probes: [] };
      throw e;
    }
  });

  const all = reports.flatMap((r) => r.probes);
  const mismatched = all.filter((r) => !r.ok);
  const invalid = reports.filter((r) => r.error);

  if (fmt === 'json') {
    io.out(JSON.stringify(reports, null, 2) + '\n');
  } else {
    for (const r of reports) {
      if (r.error) {
        io.err(`INVALID ${r.error}\n`);
        continue;
      }
      if (fmt === 'table') {
        io.out(`\n${r.file} (${r.name}):\n`);
        io.out(
          renderTable(
            ['#', 'FROM', 'TO', 'PORT', 'L7', 'EXPECT', 'VERDICT', '', 'RULES'],
            r.probes.map((x, i) => [String(i), x.from, x.to, probeTarget(x), probeL7(x) || '-', x.expect ?? '-', verdictText(x), x.ok ? 'ok' : 'MISMATCH', rulesText(x.rules)]),
          ),
        );
      }
      r.probes.forEach((x, i) => {
        if (!x.ok) io.out(`MISMATCH ${r.file}: probes[${i}] ${describeProbe(x)}: expected ${x.expect}, got ${x.verdict} (${x.reason})\n`);
      });
    }
    const ok = all.length - mismatched.length;
    io.out(
      `${fmt === 'table' ? '\n' : ''}${files.length - invalid.length} scenario file(s), ${all.length} probes: ${ok} as expected, ${mismatched.length} mismatched` +
        (invalid.length ? `; ${invalid.length} invalid file(s)` : '') +
        '\n',
    );
  }
  if (invalid.length > 0) return 2;
  return mismatched.length > 0 ? 1 : 0;
}
