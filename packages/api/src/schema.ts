/**
 * A small structural validator. Each schema checks one value, records
 * problems with the field path as the user wrote it, and returns the typed
 * value (or undefined when the value is unusable). Unknown fields are
 * problems: a typo in a policy must never silently widen or narrow it.
 */
import type { Problem } from './errors.js';

export class Problems {
  readonly list: Problem[] = [];
  add(path: string, reason: string): void {
    this.list.push({ path, reason });
  }
  get ok(): boolean {
    return this.list.length === 0;
  }
}

export type Schema<T> = (value: unknown, path: string, problems: Problems) => T | undefined;

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (key === '') return `${path}[""]`;
  return path ? `${path}.${key}` : key;
}

/** The YAML name of a value's type, for messages. */
export function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Set) return 'a set (!!set)';
  if (value instanceof Map) return 'an ordered map (!!omap)';
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'a boolean';
    case 'object': return 'a mapping';
    default: return typeof value;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  // YAML's !!set and !!omap load as Set/Map: never a mapping of fields.
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export interface StringOptions {
  nonEmpty?: boolean;
  oneOf?: readonly string[];
  /** [pattern, reason] pairs checked in order. */
  check?: (s: string) => string | undefined;
}

export function str(opts: StringOptions = {}): Schema<string> {
  return (value, path, problems) => {
    if (typeof value !== 'string') {
      const hint = typeof value === 'number' || typeof value === 'boolean' ? ` (quote it: "${String(value)}")` : '';
      problems.add(path, `must be a string, not ${typeName(value)}${hint}`);
      return undefined;
    }
    if (opts.nonEmpty && value === '') {
      problems.add(path, 'must not be empty');
      return undefined;
    }
    if (opts.oneOf && !opts.oneOf.includes(value)) {
      problems.add(path, `${JSON.stringify(value)} is not one of ${opts.oneOf.join(', ')}`);
      return undefined;
    }
    if (opts.check) {
      const reason = opts.check(value);
      if (reason) {
        problems.add(path, reason);
        return undefined;
      }
    }
    return value;
  };
}

export function int(opts: { min?: number; max?: number } = {}): Schema<number> {
  return (value, path, problems) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      problems.add(path, `must be an integer, not ${typeof value === 'number' ? String(value) : typeName(value)}`);
      return undefined;
    }
    if (opts.min !== undefined && value < opts.min) {
      problems.add(path, `${value} is below the minimum ${opts.min}`);
      return undefined;
    }
    if (opts.max !== undefined && value > opts.max) {
      problems.add(path, `${value} is above the maximum ${opts.max}`);
      return undefined;
    }
    return value;
  };
}

export function bool(): Schema<boolean> {
  return (value, path, problems) => {
    if (typeof value !== 'boolean') {
      problems.add(path, `must be true or false, not ${typeName(value)}`);
      return undefined;
    }
    return value;
  };
}

/** Anything: for fields that are accepted and not interpreted (annotations of status). */
export function any(): Schema<unknown> {
  return (value) => value;
}

export function arr<T>(item: Schema<T>): Schema<T[]> {
  return (value, path, problems) => {
    if (!Array.isArray(value)) {
      problems.add(path, `must be a list, not ${typeName(value)}`);
      return undefined;
    }
    const out: T[] = [];
    let bad = false;
    value.forEach((v, i) => {
      const r = item(v, join(path, i), problems);
      if (r === undefined) bad = true;
      else out.push(r);
    });
    return bad ? undefined : out;
  };
}

/** A mapping with free-form keys (labels, matchLabels). */
export function strMap(key: (k: string) => string | undefined, valueSchema: Schema<string>): Schema<Record<string, string>> {
  return (value, path, problems) => {
    if (!isPlainObject(value)) {
      problems.add(path, `must be a mapping, not ${typeName(value)}`);
      return undefined;
    }
    const out: Record<string, string> = {};
    let bad = false;
    for (const [k, v] of Object.entries(value)) {
      const keyReason = key(k);
      if (keyReason) {
        problems.add(join(path, k), keyReason);
        bad = true;
        continue;
      }
      const r = valueSchema(v, join(path, k), problems);
      if (r === undefined) bad = true;
      else out[k] = r;
    }
    return bad ? undefined : out;
  };
}

export interface ObjectOptions {
  required?: readonly string[];
  /** Fields the upstream schema accepts that Membrane does not implement: rejected with the reason. */
  unsupported?: Readonly<Record<string, string>>;
}

type Fields = Record<string, Schema<unknown>>;
type Out<F extends Fields> = { [K in keyof F]?: F[K] extends Schema<infer T> ? T : never };

export function obj<F extends Fields>(fields: F, opts: ObjectOptions = {}): Schema<Out<F>> {
  return (value, path, problems) => {
    if (!isPlainObject(value)) {
      problems.add(path, `must be a mapping, not ${typeName(value)}`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    let bad = false;
    for (const [k, v] of Object.entries(value)) {
      const schema = fields[k];
      if (schema) {
        // An explicit null is how YAML says "absent" (`ingress:` with nothing after it).
        if (v === null) continue;
        const r = schema(v, join(path, k), problems);
        if (r === undefined) bad = true;
        else out[k] = r;
        continue;
      }
      const why = opts.unsupported?.[k];
      if (why !== undefined) problems.add(join(path, k), why);
      else problems.add(join(path, k), `unknown field "${k}"`);
      bad = true;
    }
    for (const k of opts.required ?? []) {
      if (value[k] === undefined || value[k] === null) {
        problems.add(join(path, k), 'is required');
        bad = true;
      }
    }
    return bad ? undefined : (out as Out<F>);
  };
}

/** Integer or string (Kubernetes IntOrString). */
export function intOrString(): Schema<number | string> {
  return (value, path, problems) => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
    if (typeof value === 'number') problems.add(path, `must be an integer or a string, not ${Number.isInteger(value) ? 'the out-of-range number ' + String(value) : String(value)}`);
    else problems.add(path, `must be an integer or a string, not ${typeName(value)}`);
    return undefined;
  };
}
