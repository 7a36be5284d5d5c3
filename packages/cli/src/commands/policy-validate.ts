/** `membrane policy validate FILE|DIR|-...`: check policy manifests the way `apply` would, changing nothing. */
import { MembraneError, loadDocuments } from '@membrane/api';
import { parsePolicyDocument, type TranslatedPolicy } from '@membrane/policy';
import { parseArgs, usage } from '../args.js';
import { collectFiles, readText } from '../files.js';
import type { Io } from '../io.js';

export const help = `Usage: membrane policy validate FILE|DIR|-...

Parses and checks CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and
NetworkPolicy manifests (multi-document YAML or JSON) as apply would.
Prints one line per valid policy; on the first invalid document prints what is
wrong (document, field, reason) and exits 2.`;

export function run(argv: readonly string[], io: Io): number {
  const p = parseArgs(argv, []);
  if (p.positionals.length === 0) throw usage('policy validate needs a file, a folder or -');
  const files = collectFiles(p.positionals);
  const valid: TranslatedPolicy[] = [];
  for (const f of files) {
    const docs = loadDocuments(readText(f), f);
    if (docs.length === 0) throw new MembraneError('MEMBRANE_E_MANIFEST_INVALID', `${f}: no objects in the file`);
    for (const d of docs) valid.push(parsePolicyDocument(d.value, d.ref));
  }
  for (const t of valid) {
    const name = t.ref.namespace ? `${t.ref.namespace}/${t.ref.name}` : t.ref.name;
    io.out(`${t.ref.kind} ${name}: valid (${t.rules.length} rule${t.rules.length === 1 ? '' : 's'})\n`);
  }
  return 0;
}
