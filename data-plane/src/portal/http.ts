import { checkCsrf } from '../auth/csrf.js';
import { extractSessionToken, type SessionClaims, type SessionSource } from '../auth/session.js';
import type { HeaderList, RequestSnapshot, ResponseSink } from '../http/types.js';
import type { RouteContext, RouteHandler } from '../routes/context.js';
import { findUserById, type UserRecord } from '../store/users.js';
import { NO_STORE, PortalError, sendPortalError } from './errors.js';
import type { Portal } from './runtime.js';

/** A portal handler gets the body as a promise that was started before any await. */
export type PortalHandler = (ctx: RouteContext, body: Promise<Uint8Array>) => Promise<void>;
export type SessionHandler = (ctx: RouteContext, body: Promise<Uint8Array>, session: Session) => Promise<void>;

export interface Session {
  /** Read from Postgres on every request: role, tier and disabled state are never stale. */
  user: UserRecord;
  claims: SessionClaims;
  via: SessionSource;
}

const NO_BODY: Promise<Uint8Array> = Promise.resolve(new Uint8Array(0));

/**
 * Adapts a portal handler to a RouteHandler. The body reader is registered synchronously,
 * before the handler's first await (uWS drops body bytes that arrive with no reader); every
 * error ends as one JSON error answer, and unexpected ones are logged with the request id.
 */
export function portalRoute(p: Portal, handler: PortalHandler, opts: { body: boolean }): RouteHandler {
  return (ctx) => {
    const body = opts.body ? ctx.readBody(p.config.bodyLimitBytes) : NO_BODY;
    body.catch(() => undefined);
    return handler(ctx, body).catch((e: unknown) => {
      // The client went away (mid-body or mid-wait): nobody to answer, nothing to report.
      if (ctx.sink.aborted) return;
      const err = sendPortalError(ctx.sink, e);
      if (err.status >= 500)
        p.log
          .child({ requestId: ctx.requestId })
          .error({ err: err.cause ?? err, path: ctx.req.path, code: err.code }, 'portal request failed');
    });
  };
}

/**
 * Requires a session: a valid token of ours (cookie or Bearer), the CSRF rules for cookie
 * sessions (csrf.ts), not revoked (Redis, fail closed: 503 when it cannot answer), and an
 * account that still exists and is not disabled.
 */
export function withSession(p: Portal, handler: SessionHandler): PortalHandler {
  return async (ctx, body) => {
    const presented = extractSessionToken(ctx.req.headers);
    if (!presented) throw unauthorized('Log in first: send the session cookie or Authorization: Bearer <token>.');
    const csrf = checkCsrf(ctx.req, presented.via);
    if (csrf !== 'ok') throw new PortalError('csrf_failed', csrf === 'cross_site' ? 'Cross-site request refused.' : undefined);
    const claims = await p.tokens.verify(presented.token);
    if (!claims) throw unauthorized('The session is invalid or has expired; log in again.');
    if (await p.revocations.isRevoked(claims.jti)) throw unauthorized('The session has been logged out; log in again.');
    const user = await findUserById(p.sql, claims.id);
    if (!user || user.disabled) throw unauthorized('The account no longer exists or is disabled.');
    await handler(ctx, body, { user, claims, via: presented.via });
  };
}

const unauthorized = (message: string) => new PortalError('unauthorized', message, { headers: [['www-authenticate', 'Bearer']] });

export { parseInput, parseJson } from '../http/json-input.js';

/**
 * Login and register take JSON only. `text/plain` (and form types) are what a cross-site form or
 * a "simple" fetch can send without a CORS preflight (Fetch standard, CORS-safelisted request
 * headers), so accepting them would reopen login CSRF for browsers without Sec-Fetch-Site.
 * Parameters such as charset are allowed; the media type is case-insensitive (RFC 9110 §8.3.1).
 */
export function requireJsonBody(req: RequestSnapshot): void {
  const type = req.headers.get('content-type')?.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new PortalError('unsupported_media_type');
}

export function sendPortalJson(sink: ResponseSink, status: number, value: unknown, headers: HeaderList = []): void {
  if (sink.finished || sink.headersSent) return;
  sink.send(status, [['content-type', 'application/json'], ...NO_STORE, ...headers], JSON.stringify(value));
}

/** The public view of an account (GET /portal/me, login and register answers). */
export const publicUser = (u: Pick<UserRecord, 'id' | 'email' | 'tier' | 'role'>) => ({
  id: u.id,
  email: u.email,
  tier: u.tier,
  role: u.role,
});
