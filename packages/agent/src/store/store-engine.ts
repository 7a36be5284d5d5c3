import type { ObjectKey } from './store.js';
import type { StoreError } from './store-error.js';

/** One stored object as a backend holds it: the body as canonical JSON text. */
export interface ObjectRow extends ObjectKey {
  json: string;
  resourceVersion: number;
  creationTimestamp: string;
  updateTimestamp: string;
}

/**
 * The synchronous rows-and-transactions layer under SerialStore, written once
 * per local backend (SQLite, memory). Engines know nothing of canonical JSON,
 * put results, watch events or concurrency: SerialStore calls them one at a
 * time and brackets every write in begin/commit (or rollback), never nesting.
 */
export interface StoreEngine {
  /** Names the store in error messages: the database path, or "memory store". */
  readonly location: string;
  getRow(key: ObjectKey): ObjectRow | undefined;
  /** Sorted by namespace, then name, in UTF-8 byte order (see compareKeys). */
  listRows(kind: string, namespace: string | undefined): ObjectRow[];
  /** Inserts or replaces the row with the same key. */
  writeRow(row: ObjectRow): void;
  deleteRow(key: ObjectKey): void;
  /** Increments the store's version counter and answers the new value. */
  nextResourceVersion(): number;
  getStateJson(key: string): string | undefined;
  setStateJson(key: string, json: string, updatedAt: string): void;
  /** Answers whether the key existed. */
  deleteState(key: string): boolean;
  begin(): void;
  commit(): void;
  /** Undoes everything since begin; must not throw when there is nothing to undo. */
  rollback(): void;
  close(): void;
  /** Turns an error raised by the backend into a StoreError that says what was being done. */
  explain(error: unknown, doing: string): StoreError;
}
