import { randomBytes } from 'node:crypto';
import { redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { SignJWT, jwtVerify } from 'jose';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { USER_ROLES, type UserRole } from '../store/users.js';

/**
 * Portal sessions: HS256 JWTs (jose) carrying `sub, email, tier, role, iat, exp, jti`, plus a
 * revocation list in Redis keyed by `jti`. Hardening per RFC 8725 (JWT BCP): the algorithm is
 * pinned (§3.1: `alg: none` and algorithm swaps are refused), `typ` is explicit (§3.11), `iss`
 * and `aud` are checked (§3.8, §3.9), and the HMAC key is at least 256 bits (§3.5).
 */

export const SESSION_COOKIE = 'fluxgate_session';
export const DEFAULT_ISSUER = 'fluxgate';
export const DEFAULT_AUDIENCE = 'fluxgate-portal';
export const DEFAULT_SESSION_TTL_SECONDS = 3600;
const ALG = 'HS256';
const TYP = 'JWT';
/** Longer strings are not ours (ours are ~400 bytes); refuse before any parsing. */
const MAX_TOKEN_CHARS = 4096;
const JTI_RE = /^[A-Za-z0-9_-]{22}$/;

export interface SessionUser {
  id: string;
  email: string;
  tier: string;
  role: UserRole;
}

export interface SessionClaims extends SessionUser {
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

const claimsSchema = z.object({
  sub: z.uuid(),
  email: z.string().min(3).max(320),
  tier: z.string().min(1).max(64),
  role: z.enum(USER_ROLES),
  jti: z.string().regex(JTI_RE),
  iat: z.number().int().nonnegative(),
  exp: z.number().int().positive(),
});

export interface SessionTokenOptions {
  /** JWT_SECRET: at least 32 bytes (RFC 7518 §3.2: an HS256 key must be ≥ 256 bits). */
  secret: string;
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export interface SessionTokens {
  readonly ttlSeconds: number;
  issue(user: SessionUser): Promise<{ token: string; claims: SessionClaims }>;
  /** The claims of a valid, unexpired session token of ours; null for anything else (never throws). */
  verify(token: string): Promise<SessionClaims | null>;
}

export function createSessionTokens(opts: SessionTokenOptions): SessionTokens {
  if (Buffer.byteLength(opts.secret, 'utf8') < 32) throw new RangeError('JWT_SECRET must be at least 32 bytes');
  const key = new TextEncoder().encode(opts.secret);
  const ttlSeconds = opts.ttlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 60) throw new RangeError('session TTL must be an integer of at least 60 seconds');
  const issuer = opts.issuer ?? DEFAULT_ISSUER;
  const audience = opts.audience ?? DEFAULT_AUDIENCE;
  const now = opts.now ?? Date.now;

  return {
    ttlSeconds,
    async issue(user) {
      const iat = Math.floor(now() / 1000);
      const claims: SessionClaims = { ...user, jti: randomBytes(16).toString('base64url'), iat, exp: iat + ttlSeconds };
      const token = await new SignJWT({ email: user.email, tier: user.tier, role: user.role })
        .setProtectedHeader({ alg: ALG, typ: TYP })
        .setSubject(user.id)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(claims.exp)
        .setJti(claims.jti)
        .sign(key);
      return { token, claims };
    },
    async verify(token) {
      if (token.length === 0 || token.length > MAX_TOKEN_CHARS) return null;
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALG],
          typ: TYP,
          issuer,
          audience,
          requiredClaims: ['sub', 'jti', 'iat', 'exp'],
          // A token older than the configured lifetime is refused even if its exp says otherwise,
          // so shortening SESSION_TTL_SECONDS takes effect at once.
          maxTokenAge: ttlSeconds,
          currentDate: new Date(now()),
        });
        const c = claimsSchema.safeParse(payload);
        if (!c.success) return null;
        const { sub, ...rest } = c.data;
        return { id: sub, ...rest };
      } catch {
        return null;
      }
    },
  };
}

export interface SessionRevocations {
  /** Revokes the session until it would have expired anyway (Redis TTL = remaining lifetime). */
  revoke(claims: Pick<SessionClaims, 'jti' | 'exp'>): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
}

/**
 * Revocation list in Redis. Fail closed: when Redis cannot answer, both operations throw
 * `service_unavailable` (503), so a revoked token can never be accepted during an outage.
 */
export function createSessionRevocations(redis: Redis, now: () => number = Date.now): SessionRevocations {
  const unavailable = (cause: unknown) =>
    new GatewayError('service_unavailable', 'The session store is unavailable; retry shortly.', { cause });
  return {
    async revoke({ jti, exp }) {
      // +1 s so the entry outlives the token even across a second boundary.
      const ttl = exp - Math.floor(now() / 1000) + 1;
      if (ttl <= 0) return;
      try {
        await redis.set(redisKeys.revokedSession(jti), '1', 'EX', ttl);
      } catch (err) {
        throw unavailable(err);
      }
    },
    async isRevoked(jti) {
      try {
        return (await redis.exists(redisKeys.revokedSession(jti))) === 1;
      } catch (err) {
        throw unavailable(err);
      }
    },
  };
}

export type SessionSource = 'cookie' | 'bearer';

/**
 * The session token a request presents: `Authorization: Bearer <jwt>` (scripts, the SPA may use
 * it too) or the `fluxgate_session` cookie. The header wins: it is explicit, not ambient.
 */
export function extractSessionToken(headers: ReadonlyMap<string, string>): { token: string; via: SessionSource } | null {
  const auth = headers.get('authorization');
  if (auth !== undefined) {
    const token = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
    return token ? { token, via: 'bearer' } : null;
  }
  const cookie = readCookie(headers.get('cookie'), SESSION_COOKIE);
  return cookie ? { token: cookie, via: 'cookie' } : null;
}

/** First cookie of this name (RFC 6265 §5.4 orders the more specific path first). */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' ? null : value;
  }
  return null;
}

/**
 * Set-Cookie for a new session. HttpOnly: scripts never read it (XSS cannot steal it); Secure:
 * HTTPS only (browsers accept it from http://localhost too); SameSite=Strict: never sent on
 * cross-site requests (the first CSRF layer, see csrf.ts); Max-Age = token lifetime (RFC 6265bis).
 */
export const sessionCookie = (token: string, maxAgeSeconds: number): string =>
  `${SESSION_COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}`;

/** Set-Cookie that deletes the session cookie (Max-Age=0, RFC 6265 §5.2.2). */
export const clearedSessionCookie = (): string => `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`;
