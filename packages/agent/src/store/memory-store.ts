import { compareKeys } from './object-key.js';
import { SerialStore, type SerialStoreOptions } from './serial-store.js';
import type { ObjectRow, StoreEngine } from './store-engine.js';
import { StoreError } from './store-error.js';
import type { ObjectKey, Store } from './store.js';

/**
 * The Store contract in memory, for unit tests of the agent's other parts:
 * the same semantics as the SQLite store (it shares SerialStore), nothing
 * kept after close.
 */
export function createMemoryStore(options: SerialStoreOptions = {}): Store {
  return new SerialStore(new MemoryEngine(), options);
}

interface Snapshot {
  rows: Map<string, ObjectRow>;
  state: Map<string, string>;
  version: number;
}

class MemoryEngine implements StoreEngine {
  readonly location = 'memory store';
  private rows = new Map<string, ObjectRow>();
  private state = new Map<string, string>();
  private version = 0;
  /** What begin saw; rollback restores it. Rows are never mutated, only replaced, so shallow copies suffice. */
  private saved: Snapshot | undefined;

  getRow(key: ObjectKey): ObjectRow | undefined {
    return this.rows.get(rowKey(key));
  }

  listRows(kind: string, namespace: string | undefined): ObjectRow[] {
    const out: ObjectRow[] = [];
    for (const row of this.rows.values()) {
      if (row.kind === kind && (namespace === undefined || row.namespace === namespace)) out.push(row);
    }
    return out.sort(compareKeys);
  }

  writeRow(row: ObjectRow): void {
    this.rows.set(rowKey(row), row);
  }

  deleteRow(key: ObjectKey): void {
    this.rows.delete(rowKey(key));
  }

  nextResourceVersion(): number {
    return ++this.version;
  }

  getStateJson(key: string): string | undefined {
    return this.state.get(key);
  }

  setStateJson(key: string, json: string): void {
    this.state.set(key, json);
  }

  deleteState(key: string): boolean {
    return this.state.delete(key);
  }

  begin(): void {
    this.saved = { rows: new Map(this.rows), state: new Map(this.state), version: this.version };
  }

  commit(): void {
    this.saved = undefined;
  }

  rollback(): void {
    if (!this.saved) return;
    ({ rows: this.rows, state: this.state, version: this.version } = this.saved);
    this.saved = undefined;
  }

  close(): void {
    this.rows.clear();
    this.state.clear();
  }

  explain(error: unknown, doing: string): StoreError {
    const why = error instanceof Error ? error.message : String(error);
    return new StoreError('MEMBRANE_E_STORE_IO', `${this.location}: ${doing}: ${why}`, { cause: error });
  }
}

function rowKey(key: ObjectKey): string {
  return JSON.stringify([key.kind, key.namespace, key.name]);
}
