/**
 * The error catalogue: every failure a client can see has a stable code here, and is mapped to
 * a wire shape (OpenAI, Ollama, plain JSON) in exactly one place, `toWireBody`.
 */

export type ErrorFlavor = 'openai' | 'ollama' | 'plain';

/** The wire shape for a request path: OpenAI on /v1, Ollama on /api, plain JSON elsewhere. */
export const flavorOf = (path: string): ErrorFlavor => (path.startsWith('/api/') ? 'ollama' : path.startsWith('/v1/') ? 'openai' : 'plain');

interface CatalogueEntry {
  status: number;
  /** OpenAI `error.type`. */
  type: string;
  message: string;
}

export const ERRORS = {
  bad_request: { status: 400, type: 'invalid_request_error', message: 'The request is malformed.' },
  invalid_json: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', message: 'Invalid API key.' },
  missing_api_key: {
    status: 401,
    type: 'invalid_request_error',
    message: 'Missing API key: send Authorization: Bearer <key> or x-api-key.',
  },
  unauthorized: { status: 401, type: 'invalid_request_error', message: 'Authentication required.' },
  key_revoked: { status: 401, type: 'invalid_request_error', message: 'This API key has been revoked.' },
  key_suspended: { status: 403, type: 'permission_error', message: 'This API key is suspended.' },
  forbidden: { status: 403, type: 'permission_error', message: 'Forbidden.' },
  ip_blocked: {
    status: 403,
    type: 'permission_error',
    message: 'Requests from this address are blocked for repeated failed authentication; retry after the Retry-After delay.',
  },
  // Portal (accounts and sessions).
  invalid_email: { status: 400, type: 'invalid_request_error', message: 'The email address is not valid.' },
  weak_password: { status: 400, type: 'invalid_request_error', message: 'The password does not meet the password policy.' },
  /** OWASP Authentication Cheat Sheet: one message for unknown email and wrong password. */
  invalid_credentials: { status: 401, type: 'invalid_request_error', message: 'Invalid email or password.' },
  csrf_failed: { status: 403, type: 'permission_error', message: 'Cross-site request refused: send the x-fluxgate-csrf: 1 header.' },
  email_taken: { status: 409, type: 'invalid_request_error', message: 'An account with this email already exists.' },
  key_limit_reached: { status: 409, type: 'invalid_request_error', message: 'This account has reached its number of active API keys.' },
  too_many_attempts: { status: 429, type: 'rate_limit_error', message: 'Too many attempts; retry later.' },
  not_found: { status: 404, type: 'invalid_request_error', message: 'Not found.' },
  penalty_over_cap: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The penalty is longer than the operator cap (MCP_MAX_PENALTY); send force: true to set it anyway.',
  },
  method_not_allowed: { status: 405, type: 'invalid_request_error', message: 'Method not allowed.' },
  /** nginx's convention for a client that went away before the answer; never sent, only counted. */
  client_closed_request: { status: 499, type: 'invalid_request_error', message: 'The client closed the request.' },
  payload_too_large: { status: 413, type: 'invalid_request_error', message: 'The request body is larger than the limit.' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', message: 'Send the request body as application/json.' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', message: 'Rate limit exceeded.' },
  too_many_streams: { status: 429, type: 'rate_limit_error', message: 'Too many concurrent requests for this API key.' },
  server_busy: { status: 503, type: 'server_error', message: 'The gateway is at its concurrency limit; retry shortly.' },
  internal_error: { status: 500, type: 'server_error', message: 'Internal error.' },
  upstream_unavailable: { status: 502, type: 'upstream_error', message: 'No upstream model server could be reached.' },
  upstream_bad_response: { status: 502, type: 'upstream_error', message: 'The upstream model server sent an invalid response.' },
  upstream_failed: { status: 502, type: 'upstream_error', message: 'The upstream model server failed.' },
  upstream_connect_timeout: { status: 504, type: 'timeout_error', message: 'Timed out connecting to the upstream model server.' },
  upstream_headers_timeout: { status: 504, type: 'timeout_error', message: 'The upstream model server did not answer in time.' },
  upstream_idle_timeout: { status: 504, type: 'timeout_error', message: 'The upstream model server stopped sending mid-response.' },
  upstream_total_timeout: { status: 504, type: 'timeout_error', message: 'The request exceeded the total time limit.' },
  upstream_blocked: { status: 502, type: 'upstream_error', message: 'The upstream address is not allowed.' },
  service_unavailable: { status: 503, type: 'server_error', message: 'A backing service is unavailable.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERRORS;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers (Retry-After, …). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  constructor(code: ErrorCode, message?: string, opts?: { headers?: ReadonlyArray<readonly [string, string]>; cause?: unknown }) {
    super(message ?? ERRORS[code].message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = opts?.headers ?? [];
  }
}

export const isGatewayError = (e: unknown): e is GatewayError => e instanceof GatewayError;

/** The one mapping from an error to a response body. Never includes stack or cause details. */
export function toWireBody(err: GatewayError, flavor: ErrorFlavor): string {
  if (flavor === 'ollama') return JSON.stringify({ error: err.message });
  return JSON.stringify({ error: { message: err.message, type: ERRORS[err.code].type, code: err.code } });
}

/** One SSE event carrying the error, for failures after stream headers went out. */
export function toSseErrorEvent(err: GatewayError): string {
  return `data: ${toWireBody(err, 'openai')}\n\n`;
}

/** One NDJSON line carrying the error (Ollama streams). */
export function toNdjsonErrorLine(err: GatewayError): string {
  return `${toWireBody(err, 'ollama')}\n`;
}

/** Anything thrown that is not a GatewayError becomes an opaque internal error. */
export function asGatewayError(e: unknown): GatewayError {
  return isGatewayError(e) ? e : new GatewayError('internal_error', undefined, { cause: e });
}
