import { z } from 'zod';
import { checkCsrf } from '../auth/csrf.js';
import { PASSWORD_PROBLEM_MESSAGES, checkPasswordPolicy } from '../auth/password.js';
import { clearedSessionCookie, extractSessionToken, sessionCookie } from '../auth/session.js';
import type { ThrottleDecision } from '../auth/throttle.js';
import type { RouteContext } from '../routes/context.js';
import { createUserWithPassword, findUserByEmail, recordLogin } from '../store/users.js';
import { PortalError } from './errors.js';
import { parseInput, parseJson, publicUser, requireJsonBody, sendPortalJson, withSession, type PortalHandler } from './http.js';
import type { Portal } from './runtime.js';

/** RFC 5321 §4.5.3.1: 64 octets of local part, 254 for the whole forward-path address. */
const EMAIL_MAX = 254;
const LOCAL_MAX = 64;
const emailFormat = z.email();

/**
 * Trimmed and lower-cased (accounts are unique case-insensitively), the common ASCII address
 * form (zod's email pattern: no quoted local parts, a dotted domain), within RFC 5321 lengths.
 */
export function normaliseEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  if (email.length > EMAIL_MAX || email.indexOf('@') > LOCAL_MAX) return null;
  return emailFormat.safeParse(email).success ? email : null;
}

// Generous caps: the body limit bounds them anyway; the policy gives the precise message.
const registerInput = z.object({ email: z.string().max(1024), password: z.string().max(8192) });
const loginInput = z.object({ email: z.string().trim().min(1).max(320), password: z.string().min(1).max(8192) });

/** Login CSRF: a cross-site page must not log a victim into the attacker's account (csrf.ts). */
function refuseCrossSite(ctx: RouteContext): void {
  if (checkCsrf(ctx.req, null) !== 'ok') throw new PortalError('csrf_failed', 'Cross-site request refused.');
}

/** A refused attempt: 429 with Retry-After (RFC 9110 §10.2.3). */
function tooManyAttempts(d: Extract<ThrottleDecision, { allowed: false }>): PortalError {
  const what = d.scope === 'account' ? 'Too many failed logins for this account' : 'Too many attempts from this address';
  return new PortalError('too_many_attempts', `${what}; retry in ${d.retryAfterSeconds} s.`, {
    headers: [['retry-after', String(d.retryAfterSeconds)]],
  });
}

/**
 * Whether the login request carries a valid, unrevoked session of this very account (cookie or
 * Bearer): its owner skips the account's login delay (throttle.ts). Any doubt is a no.
 */
async function sessionVouches(p: Portal, ctx: RouteContext, email: string): Promise<boolean> {
  const presented = extractSessionToken(ctx.req.headers);
  if (!presented) return false;
  const claims = await p.tokens.verify(presented.token);
  if (!claims || claims.email.toLowerCase() !== email) return false;
  return !(await p.revocations.isRevoked(claims.jti).catch(() => true));
}

/** POST /portal/register {email, password} → 201 {user}. */
export const register =
  (p: Portal): PortalHandler =>
  async (ctx, body) => {
    refuseCrossSite(ctx);
    requireJsonBody(ctx.req);
    const input = parseInput(registerInput, parseJson(await body));
    const email = normaliseEmail(input.email);
    if (!email) throw new PortalError('invalid_email');
    const problem = checkPasswordPolicy(input.password, { email });
    if (problem) throw new PortalError('weak_password', PASSWORD_PROBLEM_MESSAGES[problem]);
    const ip = p.clientIp(ctx.req);
    // Per client only: counting registrations against the account would let anyone delay the
    // owner's logins by trying to register their email.
    const d = await p.throttle.attemptRegister(ip);
    if (!d.allowed) throw tooManyAttempts(d);
    let user;
    try {
      user = await createUserWithPassword(p.sql, { email, passwordHash: await p.passwords.hash(input.password) });
    } catch (e) {
      // Nothing was written (one transaction); the attempt should not count against anyone.
      await p.throttle.refund(ip, null);
      throw e;
    }
    if (!user) throw new PortalError('email_taken');
    // Registrations stay counted per IP (mass sign-ups); the new account starts with a clean slate.
    await p.throttle.resetAccount(email);
    p.log.info({ userId: user.id }, 'account registered');
    sendPortalJson(ctx.sink, 201, { user: publicUser(user) });
  };

/**
 * POST /portal/login {email, password} → 200 {token, user, expiresAt} + the session cookie.
 * An unknown email, a password-less account and a wrong password cost one Argon2 verify each
 * and get the same answer (OWASP Authentication Cheat Sheet).
 */
export const login =
  (p: Portal): PortalHandler =>
  async (ctx, body) => {
    refuseCrossSite(ctx);
    requireJsonBody(ctx.req);
    const input = parseInput(loginInput, parseJson(await body));
    const email = input.email.toLowerCase();
    const ip = p.clientIp(ctx.req);
    const d = await p.throttle.attemptLogin(ip, email, { sessionVouched: await sessionVouches(p, ctx, email) });
    if (!d.allowed) {
      p.counters.recordFailedLogin(ip);
      throw tooManyAttempts(d);
    }
    const giveBack = () => p.throttle.refund(ip, d.accountCharged ? email : null);
    let user;
    try {
      user = await findUserByEmail(p.sql, email);
    } catch (e) {
      await giveBack();
      throw e;
    }
    const ok = user?.passwordHash
      ? await p.passwords.verify(user.passwordHash, input.password)
      : await p.passwords.verifyDummy(input.password);
    if (!ok || !user?.passwordHash) {
      p.counters.recordFailedLogin(ip);
      p.log.info({ ip, userId: user?.id ?? null }, 'login failed');
      throw new PortalError('invalid_credentials', undefined, { headers: [['www-authenticate', 'Bearer']] });
    }
    // Only someone who knows the password learns that the account is disabled.
    if (user.disabled) throw new PortalError('forbidden', 'This account is disabled.');
    const rehash = p.passwords.needsRehash(user.passwordHash) ? await p.passwords.hash(input.password) : undefined;
    try {
      await recordLogin(p.sql, user.id, rehash);
    } catch (e) {
      await giveBack();
      throw e;
    }
    await p.throttle.succeeded(ip, email, d.accountCharged);
    const { token, claims } = await p.tokens.issue(publicUser(user));
    sendPortalJson(ctx.sink, 200, { token, user: publicUser(user), expiresAt: new Date(claims.exp * 1000).toISOString() }, [
      ['set-cookie', sessionCookie(token, p.tokens.ttlSeconds)],
    ]);
  };

/**
 * POST /portal/logout → 200, the session revoked server-side (by jti, until its expiry) and the
 * cookie cleared. A 401 (already invalid) clears the cookie too.
 */
export const logout = (p: Portal): PortalHandler => {
  const inner = withSession(p, async (ctx, body, s) => {
    await body;
    await p.revocations.revoke(s.claims);
    sendPortalJson(ctx.sink, 200, { loggedOut: true }, [['set-cookie', clearedSessionCookie()]]);
  });
  return async (ctx, body) => {
    try {
      await inner(ctx, body);
    } catch (e) {
      if (e instanceof PortalError && e.code === 'unauthorized') {
        throw new PortalError('unauthorized', e.message, { headers: [...e.headers, ['set-cookie', clearedSessionCookie()]] });
      }
      throw e;
    }
  };
};

/** GET /portal/me → {id, email, tier, role}, fresh from Postgres. */
export const me = (p: Portal): PortalHandler =>
  withSession(p, async (ctx, _body, s) => {
    sendPortalJson(ctx.sink, 200, publicUser(s.user));
  });
