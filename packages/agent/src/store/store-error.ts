/**
 * Store errors: MembraneErrors whose codes name what went wrong with the
 * database (MEMBRANE_E_STORE_*), with a message that names the database path
 * or the object and the cause (an errno error or a SqliteError with its code).
 */
import { MembraneError, type ErrorCode } from '@membrane/api';

export type StoreErrorCode = Extract<ErrorCode, `MEMBRANE_E_STORE_${string}`>;

export class StoreError extends MembraneError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}
