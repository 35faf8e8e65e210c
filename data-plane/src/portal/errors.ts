import { GatewayError, isGatewayError, toWireBody, type ErrorCode } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';
import { isConnectionError } from '../store/db.js';

/** The portal throws the gateway's own errors; its codes live in the one catalogue (errors.ts). */
export { GatewayError as PortalError } from '../errors.js';
export type PortalErrorCode = ErrorCode;

/**
 * Anything thrown becomes a PortalError: gateway errors keep their code, Postgres connection
 * failures are 503 (the request may be retried; nothing was committed), the rest is an opaque
 * 500 whose cause is logged, never sent.
 */
export function asPortalError(e: unknown): GatewayError {
  if (isGatewayError(e)) return e;
  if (isConnectionError(e))
    return new GatewayError('service_unavailable', 'The account database is unavailable; retry shortly.', { cause: e });
  return new GatewayError('internal_error', undefined, { cause: e });
}

export const portalWireBody = (err: GatewayError): string => toWireBody(err, 'plain');

/** Portal answers are never cached (they carry tokens, secrets and personal data; RFC 9111 §5.2.2.5). */
export const NO_STORE: HeaderList = [['cache-control', 'no-store']];

export function sendPortalError(sink: ResponseSink, e: unknown, headers: HeaderList = []): GatewayError {
  const err = asPortalError(e);
  if (!sink.finished && !sink.headersSent) {
    sink.send(err.status, [['content-type', 'application/json'], ...NO_STORE, ...err.headers, ...headers], portalWireBody(err));
  }
  return err;
}
