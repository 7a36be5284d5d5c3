/**
 * The agent's durable store: what the agent codes against, whatever holds the
 * data. Today that is SQLite on this machine (sqlite-store.ts) or memory for
 * unit tests (memory-store.ts); a kvstore backend (etcd) serving several nodes
 * implements the same interface later, which is why every call is
 * asynchronous even though both current backends answer synchronously.
 *
 * Objects are keyed by (kind, namespace, name), namespace '' for
 * cluster-scoped kinds, and hold a JSON body. Bodies are compared by their
 * canonical JSON (keys sorted at every level), so re-applying the same object
 * is a no-op: `put` answers 'unchanged', the resourceVersion does not move and
 * no watch event fires.
 *
 * resourceVersion is a positive integer taken from one counter per store.
 * Every committed write (create, change, delete) takes a version strictly
 * greater than every version committed before it; a deleted object's version
 * is never reused. Writes inside one transaction receive non-decreasing
 * versions (SQLite and memory give each write its own; etcd gives a whole
 * transaction one revision).
 */

export interface ObjectKey {
  kind: string;
  /** '' for cluster-scoped kinds (Namespace, CiliumClusterwideNetworkPolicy). */
  namespace: string;
  name: string;
}

export interface ObjectInput<T = unknown> extends ObjectKey {
  /** Any JSON value: objects, arrays, strings, finite numbers, booleans, null. */
  body: T;
}

export interface StoredObject<T = unknown> extends ObjectKey {
  /** A fresh copy on every read: changing it does not change the store. */
  body: T;
  resourceVersion: number;
  /** ISO 8601 (UTC, milliseconds): when the object was first created. */
  creationTimestamp: string;
  /** ISO 8601: when the body last changed (the creation time until then). */
  updateTimestamp: string;
}

/** kubectl's words for what an apply did. */
export type PutResult = 'created' | 'configured' | 'unchanged';

export interface PutOutcome<T = unknown> {
  result: PutResult;
  /** The object as stored after the put (unchanged: as it already was). */
  object: StoredObject<T>;
}

export interface ListOptions {
  /** Only this namespace ('' selects the cluster-scoped objects of the kind). */
  namespace?: string;
}

export type StoreEventType = 'created' | 'configured' | 'deleted';

export interface StoreEvent {
  type: StoreEventType;
  /**
   * The object after the change; for 'deleted' the last stored object with
   * resourceVersion set to the version of the deletion.
   */
  object: StoredObject;
}

export type StoreListener = (event: StoreEvent) => void;

export interface StoreReader {
  get<T = unknown>(key: ObjectKey): Promise<StoredObject<T> | undefined>;
  /** Objects of one kind sorted by namespace, then name (UTF-8 byte order). */
  list<T = unknown>(kind: string, options?: ListOptions): Promise<StoredObject<T>[]>;
  /** Agent state (identity allocator snapshot, pod IPs, endpoint ids): a JSON value per key. */
  getState<T = unknown>(key: string): Promise<T | undefined>;
}

export interface StoreWriter extends StoreReader {
  put<T = unknown>(object: ObjectInput<T>): Promise<PutOutcome<T>>;
  /**
   * Removes the object; answers what was removed, its resourceVersion set to
   * the deletion's (as the 'deleted' event carries it), or undefined when
   * there was nothing.
   */
  delete(key: ObjectKey): Promise<StoredObject | undefined>;
  /** State writes take no resourceVersion and fire no watch events. */
  setState(key: string, value: unknown): Promise<void>;
  /** Answers whether the key existed. */
  deleteState(key: string): Promise<boolean>;
}

export interface Store extends StoreWriter {
  /**
   * Runs fn against a transaction and commits everything it wrote at once, or
   * nothing when fn throws (or rejects) or the commit fails; the error
   * propagates unchanged. fn reads its own writes. While fn runs, other calls
   * on this store wait, so they never see half a batch.
   *
   * Use only the `tx` argument inside fn: calling the store itself from inside
   * its transaction would wait for the transaction forever, so it is refused
   * with MEMBRANE_E_STORE_USAGE. Keep fn free of side effects beyond `tx`: a
   * backend with optimistic concurrency (etcd) may run it again on conflict.
   */
  transaction<R>(fn: (tx: StoreWriter) => R | Promise<R>): Promise<R>;
  /**
   * Calls listener with every committed object change, in commit order, after
   * the commit and before the writing call resolves. A rolled-back transaction
   * and an 'unchanged' put fire nothing. A listener that throws does not stop
   * the others or fail the write; its error is rethrown on the next tick so it
   * is never silent. Answers the function that stops the listener.
   */
  watch(listener: StoreListener): () => void;
  /** Waits for calls already made, then releases the store (and its lock). */
  close(): Promise<void>;
}
