import type { ObjectKey } from './store.js';
import { StoreError } from './store-error.js';

/** `Pod default/frontend`, or `Namespace default` for cluster-scoped objects. */
export function describeKey(key: ObjectKey): string {
  return key.namespace === '' ? `${key.kind} ${key.name}` : `${key.kind} ${key.namespace}/${key.name}`;
}

/** Refuses keys the store cannot hold; `doing` starts the message ("put", "get"). */
export function checkKey(key: ObjectKey, doing: string): void {
  if (key === null || typeof key !== 'object') throw invalidKey(doing, 'the key is not an object');
  checkKind(key.kind, doing);
  if (typeof key.namespace !== 'string') throw invalidKey(doing, `namespace: must be a string ('' for cluster-scoped kinds)`);
  if (typeof key.name !== 'string' || key.name === '') throw invalidKey(doing, 'name: must be a non-empty string');
}

export function checkKind(kind: string, doing: string): void {
  if (typeof kind !== 'string' || kind === '') throw invalidKey(doing, 'kind: must be a non-empty string');
}

export function checkStateKey(key: string, doing: string): void {
  if (typeof key !== 'string' || key === '') throw invalidKey(doing, 'state key: must be a non-empty string');
}

/**
 * The order of `list`: namespace, then name, comparing UTF-8 bytes, which is
 * SQLite's BINARY collation, so every backend lists in the same order (plain
 * `<` compares UTF-16 units and differs above U+FFFF).
 */
export function compareKeys(a: ObjectKey, b: ObjectKey): number {
  return compareUtf8(a.namespace, b.namespace) || compareUtf8(a.name, b.name);
}

function compareUtf8(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function invalidKey(doing: string, reason: string): StoreError {
  return new StoreError('MEMBRANE_E_STORE_INVALID', `${doing}: ${reason}`);
}
