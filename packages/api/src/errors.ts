/**
 * Errors that cross a package boundary carry a stable code, a one-line
 * message for people and, where there is one, the cause that produced them.
 * The CLI prints `message [code]`; tests compare messages exactly.
 */
export type ErrorCode =
  | 'MEMBRANE_E_YAML'
  | 'MEMBRANE_E_MANIFEST_INVALID'
  | 'MEMBRANE_E_POLICY_INVALID'
  | 'MEMBRANE_E_SCENARIO_INVALID'
  | 'MEMBRANE_E_IO'
  | 'MEMBRANE_E_USAGE'
  | 'MEMBRANE_E_AGENT_DOWN'
  | 'MEMBRANE_E_NOT_FOUND'
  | 'MEMBRANE_E_CONFLICT'
  | 'MEMBRANE_E_NOT_ROOT'
  /** The pod network (namespaces, veths, routes) could not be set up or taken down. */
  | 'MEMBRANE_E_POD_NETWORK'
  /** No free address is left in the pod CIDR (or the service CIDR). */
  | 'MEMBRANE_E_IP_EXHAUSTED'
  /** A BPF map or program operation failed (the errno is in the message). */
  | 'MEMBRANE_E_DATAPATH'
  /** Another agent holds the database (the same state directory). */
  | 'MEMBRANE_E_STORE_LOCKED'
  /** The file is not a SQLite database or fails its integrity check. */
  | 'MEMBRANE_E_STORE_CORRUPT'
  /** The state directory or the database file cannot be created or written. */
  | 'MEMBRANE_E_STORE_UNWRITABLE'
  /** The database was written by a newer membrane (unknown schema version). */
  | 'MEMBRANE_E_STORE_SCHEMA'
  /** A key or a body the store cannot hold (empty name, NaN, a function...). */
  | 'MEMBRANE_E_STORE_INVALID'
  /** A call the store refuses: after close, or on the store inside its own transaction. */
  | 'MEMBRANE_E_STORE_USAGE'
  /** Any other I/O failure while reading or writing the store. */
  | 'MEMBRANE_E_STORE_IO'
  | 'MEMBRANE_E_INTERNAL';

export class MembraneError extends Error {
  readonly code: ErrorCode;
  /**
   * Every problem behind the error, one line each, when there is more than
   * the message says (several invalid documents, several fields): the API
   * carries them and the CLI prints them all under the message.
   */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: readonly string[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MembraneError';
    this.code = code;
    this.details = options?.details ?? [];
  }

  /** The line the CLI prints, followed by one indented line per detail. */
  toLine(): string {
    const head = `${this.message} [${this.code}]`;
    return this.details.length > 1 ? [head, ...this.details.map((d) => `  - ${d}`)].join('\n') : head;
  }
}

/**
 * One error for several: the first one's message with a count, and every
 * problem of every error as details (so nothing found is hidden).
 */
export function combineErrors(errors: readonly MembraneError[]): MembraneError {
  if (errors.length === 1) return errors[0]!;
  const details = errors.flatMap((e) => (e.details.length ? e.details : [e.message]));
  const first = errors[0]!;
  return new MembraneError(first.code, `${first.message} (and ${details.length - 1} more problem${details.length > 2 ? 's' : ''})`, { details, cause: first });
}

/** Where a document came from: the file and its position in it. */
export interface DocumentRef {
  /** File name (or `-` for standard input) as the user gave it. */
  source: string;
  /** How the document is named in messages, e.g. `document 2` or `policies[1]`. */
  label: string;
  /** `Kind namespace/name` once known. */
  object?: string;
}

export function describeDocument(ref: DocumentRef): string {
  return ref.object ? `${ref.source}: ${ref.label} (${ref.object})` : `${ref.source}: ${ref.label}`;
}

/**
 * One problem found while validating a document: the field path as the user
 * wrote it (`spec.ingress[0].toPorts[0].ports[0].port`) and the reason.
 */
export interface Problem {
  path: string;
  reason: string;
}

export class ValidationError extends MembraneError {
  readonly document: DocumentRef;
  readonly problems: Problem[];

  constructor(code: ErrorCode, document: DocumentRef, problems: Problem[]) {
    const first = problems[0] ?? { path: '', reason: 'invalid' };
    const where = first.path ? `${first.path}: ` : '';
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    const doc = describeDocument(document);
    super(code, `${doc}: ${where}${first.reason}${more}`, { details: problems.map((p) => `${doc}: ${p.path ? `${p.path}: ` : ''}${p.reason}`) });
    this.name = 'ValidationError';
    this.document = document;
    this.problems = problems;
  }
}
