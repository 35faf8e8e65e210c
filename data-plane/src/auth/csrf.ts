import type { SessionSource } from './session.js';

/**
 * CSRF defence for the portal (OWASP CSRF Prevention Cheat Sheet):
 *
 * 1. The session cookie is SameSite=Strict, so browsers do not attach it to cross-site requests.
 * 2. Cookie-authenticated state changes must carry `x-fluxgate-csrf: 1` ("custom request
 *    header"): a cross-origin page can only add a custom header through a CORS preflight, which
 *    the portal never approves, and HTML forms cannot add headers at all. Requests
 *    authenticated by `Authorization: Bearer` are exempt: that credential is never ambient.
 * 3. Any state-changing request a browser labels `Sec-Fetch-Site: cross-site` is refused,
 *    including login and register (login CSRF: logging the victim into the attacker's account).
 *    Browsers set this header themselves and scripts cannot forge it (Fetch Metadata).
 */

export const CSRF_HEADER = 'x-fluxgate-csrf';
export const CSRF_HEADER_VALUE = '1';

/** RFC 9110 §9.2.1 safe methods: they must not change state, so they need no CSRF check. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type CsrfVerdict = 'ok' | 'missing_header' | 'cross_site';

/** `via` is how the request authenticated (null for login and register). */
export function checkCsrf(req: { method: string; headers: ReadonlyMap<string, string> }, via: SessionSource | null): CsrfVerdict {
  if (SAFE_METHODS.has(req.method)) return 'ok';
  if (req.headers.get('sec-fetch-site')?.trim().toLowerCase() === 'cross-site') return 'cross_site';
  if (via === 'cookie' && req.headers.get(CSRF_HEADER)?.trim() !== CSRF_HEADER_VALUE) return 'missing_header';
  return 'ok';
}
