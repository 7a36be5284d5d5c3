import { AsyncLocalStorage } from 'node:async_hooks';
import { canonicalJson } from './canonical-json.js';
import { checkKey, checkKind, checkStateKey, describeKey } from './object-key.js';
import type { ObjectRow, StoreEngine } from './store-engine.js';
import { StoreError } from './store-error.js';
import type {
  ListOptions,
  ObjectInput,
  ObjectKey,
  PutOutcome,
  Store,
  StoreEvent,
  StoreListener,
  StoredObject,
  StoreWriter,
} from './store.js';

export interface SerialStoreOptions {
  /** The clock behind creation and update timestamps (tests pin it). */
  now?: () => Date;
}

/** A transaction in flight; `active` turns false the moment it commits or rolls back. */
interface TxScope {
  active: boolean;
}

/**
 * The Store semantics over a synchronous engine, shared by the SQLite and the
 * memory backends so both answer the contract identically.
 *
 * Concurrency: every call joins one queue and runs alone. A transaction's fn
 * may await, and while it does the engine holds an open transaction, so any
 * other call running then would land inside it (SQLite: same connection) or
 * see half a batch; the queue keeps them waiting instead. A call on the store
 * from inside its own transaction would wait for itself, so it is recognised
 * (AsyncLocalStorage follows fn's awaits) and refused.
 *
 * Every write, alone or in a transaction, is bracketed by engine.begin and
 * engine.commit, so a put's read-compare-version-write is atomic and costs
 * one commit; watch events go out only after the commit succeeded.
 */
export class SerialStore implements Store {
  private tail: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly scope = new AsyncLocalStorage<TxScope>();
  private readonly listeners = new Set<StoreListener>();
  private readonly now: () => Date;

  constructor(
    private readonly engine: StoreEngine,
    options: SerialStoreOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  get<T = unknown>(key: ObjectKey): Promise<StoredObject<T> | undefined> {
    return this.enqueue('get', () => this.readGet<T>(key));
  }

  list<T = unknown>(kind: string, options: ListOptions = {}): Promise<StoredObject<T>[]> {
    return this.enqueue('list', () => this.readList<T>(kind, options));
  }

  getState<T = unknown>(key: string): Promise<T | undefined> {
    return this.enqueue('getState', () => this.readState<T>(key));
  }

  put<T = unknown>(object: ObjectInput<T>): Promise<PutOutcome<T>> {
    return this.enqueue('put', () => this.atomically((events) => this.writePut(object, events)));
  }

  delete(key: ObjectKey): Promise<StoredObject | undefined> {
    return this.enqueue('delete', () => this.atomically((events) => this.writeDelete(key, events)));
  }

  setState(key: string, value: unknown): Promise<void> {
    return this.enqueue('setState', () => this.atomically(() => this.writeState(key, value)));
  }

  deleteState(key: string): Promise<boolean> {
    return this.enqueue('deleteState', () => this.atomically(() => this.writeDeleteState(key)));
  }

  transaction<R>(fn: (tx: StoreWriter) => R | Promise<R>): Promise<R> {
    return this.enqueue('transaction', async () => {
      const scope: TxScope = { active: true };
      const events: StoreEvent[] = [];
      const tx = this.transactionWriter(scope, events);
      this.engineCall('begin a transaction', () => this.engine.begin());
      let result: R;
      try {
        result = await this.scope.run(scope, () => fn(tx));
        scope.active = false;
        this.engineCall('commit a transaction', () => this.engine.commit());
      } catch (e) {
        scope.active = false;
        this.rollbackAfter(e);
        throw e;
      }
      this.emit(events);
      return result;
    });
  }

  watch(listener: StoreListener): () => void {
    const entry: StoreListener = (event) => listener(event);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  close(): Promise<void> {
    if (this.insideTransaction()) return Promise.reject(this.usage('close', 'called inside this store\'s own transaction'));
    this.closing ??= this.tail.then(() => {
      this.listeners.clear();
      this.engineCall('close', () => this.engine.close());
    });
    return this.closing;
  }

  // ---- the queue -----------------------------------------------------------

  private enqueue<R>(doing: string, work: () => R | Promise<R>): Promise<R> {
    if (this.closing) return Promise.reject(this.usage(doing, 'the store is closed'));
    if (this.insideTransaction()) {
      return Promise.reject(
        this.usage(doing, 'called on the store inside its own transaction (it would wait for itself); use the transaction argument'),
      );
    }
    const run = this.tail.then(work);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private insideTransaction(): boolean {
    return this.scope.getStore()?.active === true;
  }

  private transactionWriter(scope: TxScope, events: StoreEvent[]): StoreWriter {
    // Each call runs at once: the transaction already owns the queue.
    const step = async <R>(doing: string, work: () => R): Promise<R> => {
      if (!scope.active) throw this.usage(doing, 'the transaction has already ended');
      return work();
    };
    return {
      get: <T>(key: ObjectKey) => step('get', () => this.readGet<T>(key)),
      list: <T>(kind: string, options: ListOptions = {}) => step('list', () => this.readList<T>(kind, options)),
      getState: <T>(key: string) => step('getState', () => this.readState<T>(key)),
      put: <T>(object: ObjectInput<T>) => step('put', () => this.writePut(object, events)),
      delete: (key: ObjectKey) => step('delete', () => this.writeDelete(key, events)),
      setState: (key: string, value: unknown) => step('setState', () => this.writeState(key, value)),
      deleteState: (key: string) => step('deleteState', () => this.writeDeleteState(key)),
    };
  }

  /** One write outside a transaction: all of it commits, or none of it. */
  private atomically<R>(work: (events: StoreEvent[]) => R): R {
    const events: StoreEvent[] = [];
    this.engineCall('begin', () => this.engine.begin());
    let result: R;
    try {
      result = work(events);
      this.engineCall('commit', () => this.engine.commit());
    } catch (e) {
      this.rollbackAfter(e);
      throw e;
    }
    this.emit(events);
    return result;
  }

  private rollbackAfter(cause: unknown): void {
    try {
      this.engine.rollback();
    } catch (e) {
      // The original failure is what the caller needs; the rollback's is its cause.
      throw this.engine.explain(e, `roll back after: ${cause instanceof Error ? cause.message : String(cause)}`);
    }
  }

  // ---- the operations, run synchronously inside the queue ------------------

  private readGet<T>(key: ObjectKey): StoredObject<T> | undefined {
    checkKey(key, 'get');
    const row = this.engineCall(`get ${describeKey(key)}`, () => this.engine.getRow(key));
    return row && toObject<T>(row);
  }

  private readList<T>(kind: string, options: ListOptions): StoredObject<T>[] {
    checkKind(kind, 'list');
    const { namespace } = options;
    if (namespace !== undefined && typeof namespace !== 'string') {
      throw new StoreError('MEMBRANE_E_STORE_INVALID', 'list: namespace: must be a string');
    }
    const rows = this.engineCall(`list ${kind}`, () => this.engine.listRows(kind, namespace));
    return rows.map((r) => toObject<T>(r));
  }

  private readState<T>(key: string): T | undefined {
    checkStateKey(key, 'getState');
    const json = this.engineCall(`get state ${key}`, () => this.engine.getStateJson(key));
    return json === undefined ? undefined : (JSON.parse(json) as T);
  }

  private writePut<T>(input: ObjectInput<T>, events: StoreEvent[]): PutOutcome<T> {
    checkKey(input, 'put');
    const key: ObjectKey = { kind: input.kind, namespace: input.namespace, name: input.name };
    const what = describeKey(key);
    const json = canonicalJson(input.body, `put ${what}: body`);
    return this.engineCall(`put ${what}`, () => {
      const existing = this.engine.getRow(key);
      if (existing && existing.json === json) return { result: 'unchanged', object: toObject<T>(existing) };
      const at = this.now().toISOString();
      const row: ObjectRow = {
        ...key,
        json,
        resourceVersion: this.engine.nextResourceVersion(),
        creationTimestamp: existing ? existing.creationTimestamp : at,
        updateTimestamp: at,
      };
      this.engine.writeRow(row);
      const result = existing ? 'configured' : 'created';
      events.push({ type: result, object: toObject(row) });
      return { result, object: toObject<T>(row) };
    });
  }

  private writeDelete(key: ObjectKey, events: StoreEvent[]): StoredObject | undefined {
    checkKey(key, 'delete');
    return this.engineCall(`delete ${describeKey(key)}`, () => {
      const existing = this.engine.getRow(key);
      if (!existing) return undefined;
      this.engine.deleteRow(key);
      const last: ObjectRow = { ...existing, resourceVersion: this.engine.nextResourceVersion() };
      events.push({ type: 'deleted', object: toObject(last) });
      return toObject(last);
    });
  }

  private writeState(key: string, value: unknown): void {
    checkStateKey(key, 'setState');
    if (value === undefined) {
      throw new StoreError('MEMBRANE_E_STORE_INVALID', `setState ${key}: undefined is not a JSON value (use deleteState)`);
    }
    const json = canonicalJson(value, `setState ${key}`);
    const at = this.now().toISOString();
    this.engineCall(`set state ${key}`, () => this.engine.setStateJson(key, json, at));
  }

  private writeDeleteState(key: string): boolean {
    checkStateKey(key, 'deleteState');
    return this.engineCall(`delete state ${key}`, () => this.engine.deleteState(key));
  }

  /** Runs an engine call; a backend failure becomes a StoreError saying what was being done. */
  private engineCall<R>(doing: string, work: () => R): R {
    try {
      return work();
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw this.engine.explain(e, doing);
    }
  }

  private emit(events: StoreEvent[]): void {
    for (const event of events) {
      for (const listener of [...this.listeners]) {
        try {
          listener(event);
        } catch (e) {
          // A broken listener must not undo or fail a committed write, nor
          // starve the other listeners; rethrown on its own it stays loud.
          process.nextTick(() => {
            throw e;
          });
        }
      }
    }
  }

  private usage(doing: string, reason: string): StoreError {
    return new StoreError('MEMBRANE_E_STORE_USAGE', `${this.engine.location}: ${doing}: ${reason}`);
  }
}

function toObject<T>(row: ObjectRow): StoredObject<T> {
  return {
    kind: row.kind,
    namespace: row.namespace,
    name: row.name,
    body: JSON.parse(row.json) as T,
    resourceVersion: row.resourceVersion,
    creationTimestamp: row.creationTimestamp,
    updateTimestamp: row.updateTimestamp,
  };
}
