import { ERRORS, isGatewayError, type ErrorCode } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';
import { isConnectionError } from '../store/db.js';

/**
 * Portal error codes that the gateway catalogue (errors.ts) does not have yet, in the same
 * shape. The portal's wire mapping lives in `portalWireBody` only, and produces exactly what
 * `toWireBody(err, 'plain')` does: `{"error":{"message","type","code"}}`. Once these entries
 * are merged into ERRORS, PortalError can become GatewayError and this file a re-export.
 */
export const PORTAL_ERRORS = {
  invalid_email: { status: 400, type: 'invalid_request_error', message: 'The email address is not valid.' },
  weak_password: { status: 400, type: 'invalid_request_error', message: 'The password does not meet the password policy.' },
  /** OWASP Authentication Cheat Sheet: one message for unknown email and wrong password. */
  invalid_credentials: { status: 401, type: 'invalid_request_error', message: 'Invalid email or password.' },
  csrf_failed: { status: 403, type: 'permission_error', message: 'Cross-site request refused: send the x-fluxgate-csrf: 1 header.' },
  email_taken: { status: 409, type: 'invalid_request_error', message: 'An account with this email already exists.' },
  key_limit_reached: { status: 409, type: 'invalid_request_error', message: 'This account has reached its number of active API keys.' },
  too_many_attempts: { status: 429, type: 'rate_limit_error', message: 'Too many attempts; retry later.' },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type PortalErrorCode = ErrorCode | keyof typeof PORTAL_ERRORS;

const entryOf = (code: PortalErrorCode) => (code in PORTAL_ERRORS ? PORTAL_ERRORS[code as keyof typeof PORTAL_ERRORS] : ERRORS[code as ErrorCode]);

export class PortalError extends Error {
  readonly code: PortalErrorCode;
  readonly status: number;
  readonly headers: HeaderList;
  constructor(code: PortalErrorCode, message?: string, opts?: { headers?: HeaderList; cause?: unknown }) {
    super(message ?? entryOf(code).message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PortalError';
    this.code = code;
    this.status = entryOf(code).status;
    this.headers = opts?.headers ?? [];
  }
}

/**
 * Anything thrown becomes a PortalError: gateway errors keep their code, Postgres connection
 * failures are 503 (the request may be retried; nothing was committed), the rest is an opaque
 * 500 whose cause is logged, never sent.
 */
export function asPortalError(e: unknown): PortalError {
  if (e instanceof PortalError) return e;
  if (isGatewayError(e)) return new PortalError(e.code, e.message, { headers: e.headers, cause: e.cause });
  if (isConnectionError(e)) return new PortalError('service_unavailable', 'The account database is unavailable; retry shortly.', { cause: e });
  return new PortalError('internal_error', undefined, { cause: e });
}

export const portalWireBody = (err: PortalError): string =>
  JSON.stringify({ error: { message: err.message, type: entryOf(err.code).type, code: err.code } });

/** Portal answers are never cached (they carry tokens, secrets and personal data; RFC 9111 §5.2.2.5). */
export const NO_STORE: HeaderList = [['cache-control', 'no-store']];

export function sendPortalError(sink: ResponseSink, e: unknown, headers: HeaderList = []): PortalError {
  const err = asPortalError(e);
  if (!sink.finished && !sink.headersSent) {
    sink.send(err.status, [['content-type', 'application/json'], ...NO_STORE, ...err.headers, ...headers], portalWireBody(err));
  }
  return err;
}
