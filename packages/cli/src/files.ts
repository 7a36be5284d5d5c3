/** Reading the files and folders a command is given (`-` is standard input). */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MembraneError } from '@membrane/api';

/** Expand folders into their .yaml/.yml/.json files (recursively, sorted); keep files as given. */
export function collectFiles(args: readonly string[], exts = ['.yaml', '.yml', '.json']): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a === '-') {
      out.push(a);
      continue;
    }
    let st;
    try {
      st = statSync(a);
    } catch (e) {
      throw new MembraneError('MEMBRANE_E_IO', `${a}: no such file or directory`, { cause: e });
    }
    if (st.isDirectory()) {
      const walk = (dir: string) => {
        for (const name of readdirSync(dir).sort()) {
          const p = join(dir, name);
          if (statSync(p).isDirectory()) walk(p);
          else if (exts.some((x) => name.endsWith(x))) out.push(p);
        }
      };
      walk(a);
    } else out.push(a);
  }
  return out;
}

export function readText(file: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MembraneError('MEMBRANE_E_IO', `${file}: cannot read (${code ?? String(e)})`, { cause: e });
  }
}
