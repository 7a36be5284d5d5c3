/**
 * Store errors carry a stable code, a message that names the database path or
 * the object, and the cause (an errno error or a SqliteError with its code).
 * Same shape as MembraneError in @membrane/api so the API boundary can print
 * them alike: `message [code]`.
 */
export type StoreErrorCode =
  /** Another agent holds the database (the same state directory). */
  | 'MEMBRANE_E_STORE_LOCKED'
  /** The file is not a SQLite database or fails its integrity check. */
  | 'MEMBRANE_E_STORE_CORRUPT'
  /** The state directory or the database file cannot be created or written. */
  | 'MEMBRANE_E_STORE_UNWRITABLE'
  /** The database was written by a newer membrane (unknown schema version). */
  | 'MEMBRANE_E_STORE_SCHEMA'
  /** A key or a body the store cannot hold (empty name, NaN, a function…). */
  | 'MEMBRANE_E_STORE_INVALID'
  /** A call the store refuses: after close, or on the store inside its own transaction. */
  | 'MEMBRANE_E_STORE_USAGE'
  /** Any other I/O failure while reading or writing. */
  | 'MEMBRANE_E_STORE_IO';

export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }

  /** The single line the CLI prints. */
  toLine(): string {
    return `${this.message} [${this.code}]`;
  }
}
