/**
 * A small argument parser in the style of kubectl/cilium/hubble: flags may
 * come anywhere, `--flag value`, `--flag=value`, `-o json`, `-ojson`; `--`
 * ends flags. Unknown flags are usage errors.
 */
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
  flags: Map<string, string[]>;
  /** Everything after `--`. */
  rest: string[];
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const out: Parsed = { positionals: [], flags: new Map(), rest: [] };
  const set = (spec: FlagSpec, v: string) => {
    const list = out.flags.get(spec.name) ?? [];
    if (!spec.multiple && list.length > 0) list.length = 0;
    list.push(v);
    out.flags.set(spec.name, list);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq >= 0 ? eq : undefined);
      const spec = byLong.get(name);
      if (!spec) throw usage(`unknown flag --${name}`);
      if (spec.value) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw usage(`flag --${name} needs a value`);
        set(spec, v);
      } else {
        if (eq >= 0) {
          const v = a.slice(eq + 1);
          if (v !== 'true' && v !== 'false') throw usage(`flag --${name} takes no value`);
          set(spec, v);
        } else set(spec, 'true');
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      const spec = byShort.get(a[1]!);
      if (!spec) throw usage(`unknown flag ${a}`);
      if (spec.value) {
        const v = a.length > 2 ? a.slice(2).replace(/^=/, '') : argv[++i];
        if (v === undefined) throw usage(`flag -${spec.short} needs a value`);
        set(spec, v);
      } else {
        if (a.length > 2) throw usage(`unknown flag ${a}`);
        set(spec, 'true');
      }
      continue;
    }
    out.positionals.push(a);
  }
  return out;
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
