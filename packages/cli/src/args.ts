/**
 * Command-line flags in the style of kubectl/cilium/hubble: flags may come
 * anywhere, `--flag value`, `--flag=value`, `-o json`, `-ojson`, `-o=json`;
 * boolean flags as `--flag`, `--flag=true` or `--flag=false`; `--` ends
 * flags. Unknown flags are usage errors.
 *
 * Node's util.parseArgs does the reading (strict); this adapter adds what it
 * leaves out (`--flag=false`, `-o=json`) and words its errors as ours.
 */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from 'node:util';
import { MembraneError } from '@membrane/api';

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  /** Takes a value (else boolean). */
  value?: boolean;
  /** May repeat (values collected). */
  multiple?: boolean;
}

export interface Parsed {
  positionals: string[];
  /** Values in the order given; a flag that may not repeat keeps its last. Booleans are 'true' or 'false'. */
  flags: Map<string, string[]>;
  /** Everything after `--`. */
  rest: string[];
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Token = NonNullable<ReturnType<typeof nodeParseArgs>['tokens']>[number];

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: Options = {};
  for (const s of specs) {
    // Every flag is `multiple` for Node, so each occurrence is a token and we
    // decide here which one wins.
    options[s.name] = { type: s.value ? 'string' : 'boolean', multiple: true, ...(s.short ? { short: s.short } : {}) };
  }
  // util.parseArgs takes no value for a boolean; `--flag=true|false` becomes
  // `--flag`, and the argument's index remembers which. Before `--`, every
  // argument starting with `--` is a flag: strict parsing refuses a separate
  // value that starts with `-`.
  const args = [...argv];
  const explicitFalse = new Set<number>();
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const m = /^--([^=]+)=(true|false)$/.exec(args[i]!);
    if (m && byName.has(m[1]!) && !byName.get(m[1]!)!.value) {
      args[i] = `--${m[1]}`;
      if (m[2] === 'false') explicitFalse.add(i);
    }
  }

  let tokens: Token[];
  try {
    tokens = nodeParseArgs({ args, options, strict: true, allowPositionals: true, tokens: true }).tokens;
  } catch (e) {
    if (isParseArgsError(e)) throw usage(explain(args, options, byName) ?? e.message);
    throw e;
  }

  const out: Parsed = { positionals: [], flags: new Map(), rest: [] };
  let ended = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') ended = true;
    else if (t.kind === 'positional') (ended ? out.rest : out.positionals).push(t.value);
    else {
      const spec = byName.get(t.name)!;
      const v = spec.value ? shortInline(t) : explicitFalse.has(t.index) ? 'false' : 'true';
      const list = out.flags.get(spec.name) ?? [];
      if (!spec.multiple) list.length = 0;
      list.push(v);
      out.flags.set(spec.name, list);
    }
  }
  return out;
}

/** `-o=json` means json, as in kubectl (Node would keep the `=`). */
function shortInline(t: Extract<Token, { kind: 'option' }>): string {
  const v = t.value ?? '';
  return t.inlineValue && !t.rawName.startsWith('--') ? v.replace(/^=/, '') : v;
}

function isParseArgsError(e: unknown): e is Error {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * Our wording of the first problem strict parsing found: the same arguments
 * read leniently, where each problem is a token to point at.
 */
function explain(args: string[], options: Options, byName: Map<string, FlagSpec>): string | undefined {
  const { tokens } = nodeParseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'option-terminator') break;
    if (t.kind !== 'option') continue;
    const spec = byName.get(t.name);
    if (!spec) return `unknown flag ${t.rawName.startsWith('--') ? t.rawName : args[t.index]}`;
    if (spec.value) {
      if (t.value === undefined) return `flag ${t.rawName} needs a value`;
      if (!t.inlineValue && t.value.startsWith('-')) return `flag ${t.rawName} needs a value (for one that starts with -, write ${t.rawName}=${t.value})`;
    } else if (t.inlineValue) return `flag ${t.rawName} takes no value`;
  }
  return undefined;
}

export function usage(msg: string): MembraneError {
  return new MembraneError('MEMBRANE_E_USAGE', msg);
}

export function flag(p: Parsed, name: string): string | undefined {
  const l = p.flags.get(name);
  return l ? l[l.length - 1] : undefined;
}

export function boolFlag(p: Parsed, name: string): boolean {
  return flag(p, name) === 'true';
}

export function outputFormat<T extends string>(p: Parsed, allowed: readonly T[], dflt: T): T {
  const o = flag(p, 'output') ?? dflt;
  if (!(allowed as readonly string[]).includes(o)) throw usage(`unknown output format "${o}" (use ${allowed.join(', ')})`);
  return o as T;
}
