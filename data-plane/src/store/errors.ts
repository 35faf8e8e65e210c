export type StoreErrorCode = 'invalid_email' | 'unknown_tier' | 'penalty_tier' | 'not_found' | 'revoked_is_final' | 'penalty_over_cap';

/** Expected failures of store operations, with stable codes for the CLI and the portal. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}
