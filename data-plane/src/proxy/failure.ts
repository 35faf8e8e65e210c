/**
 * Upstream failures → the GatewayError catalogue, by `err.code` only (never by message, which
 * undici and Node may reword between versions; fastify-reply-from does the same).
 */
import { GatewayError, isGatewayError, type ErrorCode } from '../errors.js';

/** Codes meaning no connection (or no TLS session) was established: nothing reached the upstream. */
const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ENETDOWN',
]);

const BY_CODE: ReadonlyMap<string, ErrorCode> = new Map<string, ErrorCode>([
  ['UND_ERR_CONNECT_TIMEOUT', 'upstream_connect_timeout'],
  ['UND_ERR_HEADERS_TIMEOUT', 'upstream_headers_timeout'],
  ['UND_ERR_BODY_TIMEOUT', 'upstream_idle_timeout'],
  // The upstream broke HTTP framing (llhttp errors are HPE_*, handled below).
  ['UND_ERR_HEADERS_OVERFLOW', 'upstream_bad_response'],
  ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream_bad_response'],
  ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'upstream_bad_response'],
  // The connection died under the request.
  ['ECONNRESET', 'upstream_failed'],
  ['EPIPE', 'upstream_failed'],
  ['UND_ERR_SOCKET', 'upstream_failed'],
  // The dispatcher is closing (shutdown).
  ['UND_ERR_CLOSED', 'upstream_unavailable'],
  ['UND_ERR_DESTROYED', 'upstream_unavailable'],
  // undici refused a header or method taken from the client's request.
  ['UND_ERR_INVALID_ARG', 'bad_request'],
  ['UND_ERR_NOT_SUPPORTED', 'bad_request'],
]);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps an undici / Node error from an upstream exchange to the catalogue. */
export function mapUpstreamError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  const code = codeOf(err);
  let mapped: ErrorCode = 'upstream_failed';
  if (code !== undefined) {
    const known = BY_CODE.get(code);
    if (known !== undefined) mapped = known;
    else if (CONNECT_CODES.has(code)) mapped = 'upstream_unavailable';
    else if (code.startsWith('HPE_')) mapped = 'upstream_bad_response';
    else if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) mapped = 'upstream_unavailable';
  } else if ((err as { name?: unknown } | null)?.name === 'HTTPParserError') {
    // llhttp errors without a known code still mean the bytes were not HTTP.
    mapped = 'upstream_bad_response';
  }
  return new GatewayError(mapped, undefined, { cause: err });
}

export const CLIENT_CLOSED = 'The client closed the request.';

/**
 * The error reported when the exchange is aborted with `reason` (client gone, total timeout,
 * token budget exhausted). A GatewayError reason is reported as is.
 */
export function abortError(reason: unknown): GatewayError {
  if (isGatewayError(reason)) return reason;
  if ((reason as { name?: unknown } | null)?.name === 'TimeoutError') {
    // AbortSignal.timeout(): the caller's total time limit.
    return new GatewayError('upstream_total_timeout', undefined, { cause: reason });
  }
  // The client went away. The catalogue has no "client closed request" (nginx 499); a 4xx keeps
  // it out of upstream and server error counts. Nobody receives this body.
  return new GatewayError('client_closed_request', CLIENT_CLOSED, { cause: reason });
}

/** Failures that say something about the upstream's health (not our own aborts or bad input). */
export function countsAgainstUpstream(err: GatewayError): boolean {
  switch (err.code) {
    case 'upstream_unavailable':
    case 'upstream_bad_response':
    case 'upstream_failed':
    case 'upstream_connect_timeout':
    case 'upstream_headers_timeout':
    case 'upstream_idle_timeout':
      return true;
    default:
      return false;
  }
}
