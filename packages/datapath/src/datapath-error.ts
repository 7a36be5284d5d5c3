/**
 * Errors of the datapath package that are not a plain kernel errno: the addon
 * is missing or broken, the process is not root, the kernel lacks a feature.
 * Each carries a stable code; one explaining a kernel error keeps its errno,
 * syscall and libbpf log, and the original error as `cause`.
 *
 * Kernel errors the addon raises directly are ordinary Errors with
 * `code` = the errno name ('EEXIST'), `errno` = its negative number (Node's
 * convention), `syscall`, and `log` (libbpf's output) when libbpf ran.
 */
export type DatapathErrorCode =
  | 'MEMBRANE_E_ADDON_MISSING'
  | 'MEMBRANE_E_ADDON_BROKEN'
  | 'MEMBRANE_E_NOT_ROOT'
  | 'MEMBRANE_E_KERNEL_FEATURE'
  | 'MEMBRANE_E_NOT_LINUX'
  | 'MEMBRANE_E_NOT_BUILT';

export interface DatapathErrorDetails {
  errno?: number;
  syscall?: string;
  log?: string;
  cause?: unknown;
}

export class DatapathError extends Error {
  readonly errno?: number;
  readonly syscall?: string;
  readonly log?: string;

  constructor(
    message: string,
    readonly code: DatapathErrorCode,
    details: DatapathErrorDetails = {},
  ) {
    super(`${message} [${code}]`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DatapathError';
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.log !== undefined) this.log = details.log;
  }
}

/** The shape of an error the addon threw (an Error with errno fields). */
export interface NativeSystemError extends Error {
  code: string;
  errno: number;
  syscall?: string;
  log?: string;
}

export function isNativeSystemError(e: unknown): e is NativeSystemError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { errno?: unknown }).errno === 'number';
}

export const NOT_ROOT_MESSAGE = 'needs root (CAP_BPF/CAP_NET_ADMIN): run as root';

/** Throws MEMBRANE_E_NOT_ROOT unless the process runs as root (euid 0). */
export function requireRoot(what: string, euid: number | undefined = process.geteuid?.()): void {
  if (euid !== 0) throw new DatapathError(`${what}: ${NOT_ROOT_MESSAGE} (euid ${euid})`, 'MEMBRANE_E_NOT_ROOT');
}
