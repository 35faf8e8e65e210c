/**
 * The portal API (README: /portal/*) as the SPA uses it: the session is the HttpOnly cookie the
 * login sets (the SPA never sees the token), and every state change carries the custom header
 * that the portal's CSRF check requires (a cross-site page cannot add it without a preflight).
 */

export interface User {
  id: string;
  email: string;
  tier: string;
  role: 'user' | 'operator' | 'admin';
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The catalogue code (`invalid_credentials`, `weak_password`, …), or `network_error`. */
    readonly code: string,
    message: string,
    /** Seconds from Retry-After on a 429/503, else null. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The field a validation message names (`email: Invalid email address` → `email`). */
  get field(): string | null {
    return /^([a-zA-Z]+): /.exec(this.message)?.[1] ?? null;
  }

  /** The message without its `field: ` prefix. */
  get detail(): string {
    return this.message.replace(/^[a-zA-Z]+: /, '');
  }
}

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3); at least one second. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.max(1, Number(v));
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(1, Math.ceil((at - nowMs) / 1000));
}

/** Reads an error answer in any of the gateway's shapes (plain/OpenAI `{error:{…}}`, Ollama `{error:"…"}`). */
export async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status} ${res.statusText}.`;
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === 'string') message = body.error;
    else if (body.error && typeof body.error === 'object') {
      const e = body.error as { message?: unknown; code?: unknown };
      if (typeof e.message === 'string') message = e.message;
      if (typeof e.code === 'string') code = e.code;
    }
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  return new ApiError(res.status, code, message, parseRetryAfter(res.headers.get('retry-after')));
}

let onSessionLost: () => void = () => undefined;
/** Called when a session route answers 401 (expired, logged out elsewhere, revoked). */
export const setSessionLostHandler = (fn: () => void): void => {
  onSessionLost = fn;
};

export async function portal<T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  opts: { quiet401?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-fluxgate-csrf'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network_error', 'The gateway cannot be reached; check your connection and retry.');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.quiet401) onSessionLost();
    throw err;
  }
  return (await res.json()) as T;
}
