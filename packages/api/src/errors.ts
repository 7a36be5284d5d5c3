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
  | 'MEMBRANE_E_INTERNAL';

export class MembraneError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MembraneError';
    this.code = code;
  }

  /** The single line the CLI prints. */
  toLine(): string {
    return `${this.message} [${this.code}]`;
  }
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
    super(code, `${describeDocument(document)}: ${where}${first.reason}${more}`);
    this.name = 'ValidationError';
    this.document = document;
    this.problems = problems;
  }
}
