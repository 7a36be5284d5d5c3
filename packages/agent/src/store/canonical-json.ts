import { StoreError } from './store-error.js';

/**
 * The canonical JSON text of a value: object keys sorted at every level, no
 * whitespace, array order kept. Two bodies are "the same object" exactly when
 * their canonical texts are equal, which is what makes a re-apply a no-op
 * whatever order the manifest wrote its fields in.
 *
 * Only values that survive a JSON round trip unchanged are accepted, so what
 * is read back is what was written: plain objects, arrays, strings, finite
 * numbers, booleans and null. Object properties whose value is undefined are
 * left out (as JSON.stringify does, and as optional fields expect); anything
 * JSON.stringify would silently change (NaN → null, a Map → {}, a Date → a
 * string) is refused with the path to it. `what` names the value in errors.
 */
export function canonicalJson(value: unknown, what: string): string {
  return encode(value, what, new Set());
}

function encode(value: unknown, path: string, open: Set<object>): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw invalid(path, `${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (open.has(value)) throw invalid(path, 'refers back to itself (a cycle)');
      open.add(value);
      try {
        if (Array.isArray(value)) {
          return `[${value.map((v, i) => {
            if (v === undefined) throw invalid(`${path}[${i}]`, 'undefined is not a JSON value');
            return encode(v, `${path}[${i}]`, open);
          }).join(',')}]`;
        }
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
          throw invalid(path, `a ${name} is not a plain JSON object`);
        }
        const rec = value as Record<string, unknown>;
        const parts: string[] = [];
        for (const k of Object.keys(rec).sort()) {
          const v = rec[k];
          if (v === undefined) continue;
          parts.push(`${JSON.stringify(k)}:${encode(v, `${path}.${k}`, open)}`);
        }
        return `{${parts.join(',')}}`;
      } finally {
        open.delete(value);
      }
    }
    default:
      throw invalid(path, `${typeof value} is not a JSON value`);
  }
}

function invalid(path: string, reason: string): StoreError {
  return new StoreError('MEMBRANE_E_STORE_INVALID', `${path}: ${reason}`);
}
