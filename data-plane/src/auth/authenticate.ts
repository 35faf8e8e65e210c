import { GatewayError } from '../errors.js';
import type { AuthFailureLabel } from '../metrics/registry.js';
import type { UserRole } from '../store/users.js';
import type { KeyRecord } from '../store/keys.js';
import type { KeyCache } from './key-cache.js';
import { hashKey, hasValidChecksum, parseKeyShape } from './key-format.js';
import { ipCountingKey } from './ip-key.js';
import type { LookupQuota } from './lookup-quota.js';

/** Who is calling, as the limits, proxy and counters need it. */
export interface Principal {
  keyId: string;
  userId: string;
  /** Effective tier from Postgres (a penalty override in Redis is applied by limits/). */
  tier: string;
  /** Display prefix, safe for logs. */
  prefix: string;
  /** The key owner's role (users.role): model management is for operators. */
  role: UserRole;
}

/** The bounded `reason` label of fluxgate_auth_failures_total. */
export type AuthFailureReason = AuthFailureLabel;

export interface AuthenticatorDeps {
  cache: KeyCache;
  /** Per-IP failed-credential counter (metrics/counters.ts). */
  counters?: { recordFailedCredential(ip: string): void };
  /** fluxgate_auth_failures_total. */
  metrics?: { authFailures: { inc(labels: { reason: AuthFailureReason }): void } };
  /** Batched last_used_at (store/last-used.ts). */
  lastUsed?: { mark(keyId: string): void };
  /** Per-client cap on lookups of keys this replica never saw (429 past it). */
  lookupQuota?: LookupQuota;
}

export interface AuthRequest {
  headers: ReadonlyMap<string, string>;
  remoteAddress: string;
}

/**
 * The key a request presents: `Authorization: Bearer <key>` (OpenAI clients; the scheme is
 * case-insensitive, RFC 9110 §11.1) or `x-api-key: <key>`. Authorization wins when both are set.
 */
export function extractApiKey(headers: ReadonlyMap<string, string>): string | null {
  const auth = headers.get('authorization');
  if (auth !== undefined) {
    const m = /^[ \t]*bearer[ \t]+(.*)$/is.exec(auth);
    const token = m?.[1]?.trim();
    if (token) return token;
  }
  const x = headers.get('x-api-key')?.trim();
  return x ? x : null;
}

/** A key that passed the synchronous format check: only its hash is kept. */
export interface PresentedKey {
  readonly hash: string;
}

/**
 * `authenticate(req)` does both stages; routes that must not read a body for an anonymous
 * client call `check` first (synchronous, no lookup) and `lookup` after.
 */
export interface Authenticate {
  (req: AuthRequest): Promise<Principal | GatewayError>;
  /** Stage one: the key's presence and format, no I/O. A GatewayError (401) to answer at once. */
  check(req: AuthRequest): PresentedKey | GatewayError;
  /** Stage two: the cache/Postgres lookup of a checked key; synchronous on a cache hit. */
  lookup(key: PresentedKey, req: AuthRequest): Principal | GatewayError | Promise<Principal | GatewayError>;
}

/**
 * Resolves a request's API key to a Principal, or to the GatewayError to answer with. Never
 * throws. Malformed keys are rejected before any lookup; Postgres being down makes uncached keys
 * a 503 (not a 401: the key may well be valid) while cached keys keep working.
 *
 * Only guesses (malformed or unknown keys, and lookups refused by the per-client quota) count
 * as failed credential attempts for the per-IP detectors; a revoked or suspended key is a real
 * key, and its owner retrying is not stuffing.
 */
export function createAuthenticator(deps: AuthenticatorDeps): Authenticate {
  const fail = (
    reason: AuthFailureReason,
    code: ConstructorParameters<typeof GatewayError>[0],
    ip: string,
    message?: string,
    headers?: GatewayError['headers'],
  ): GatewayError => {
    deps.metrics?.authFailures.inc({ reason });
    if (reason === 'malformed' || reason === 'unknown' || reason === 'throttled') deps.counters?.recordFailedCredential(ip);
    return new GatewayError(code, message, { headers });
  };

  // The checksum (a second SHA-256) only matters for a key this replica does not know: a hash
  // that is cached, negatively cached or being looked up belongs to a key that passed it.
  const check = (req: AuthRequest): PresentedKey | GatewayError => {
    const presented = extractApiKey(req.headers);
    if (presented === null) return fail('missing', 'missing_api_key', req.remoteAddress);
    const parsed = parseKeyShape(presented);
    if (!parsed.ok) return fail('malformed', 'invalid_api_key', req.remoteAddress);
    const hash = hashKey(parsed.key);
    if (deps.cache.needsLookup(hash) && !hasValidChecksum(parsed.key)) return fail('malformed', 'invalid_api_key', req.remoteAddress);
    return { hash };
  };

  const admit = (record: KeyRecord | null, ip: string): Principal | GatewayError => {
    if (record === null) return fail('unknown', 'invalid_api_key', ip);
    if (record.status === 'revoked') return fail('revoked', 'key_revoked', ip);
    if (record.status === 'suspended') return fail('suspended', 'key_suspended', ip);
    deps.lastUsed?.mark(record.id);
    return { keyId: record.id, userId: record.userId, tier: record.tier, prefix: record.prefix, role: record.role };
  };

  const lookup = (key: PresentedKey, req: AuthRequest): Principal | GatewayError | Promise<Principal | GatewayError> => {
    // Read at lookup, not at check: a revocation that arrived while the body was read applies.
    const hit = deps.cache.cached(key.hash);
    return hit !== undefined ? admit(hit, req.remoteAddress) : lookupMiss(key, req);
  };

  const lookupMiss = async (key: PresentedKey, req: AuthRequest): Promise<Principal | GatewayError> => {
    if (deps.lookupQuota && deps.cache.needsLookup(key.hash)) {
      const wait = deps.lookupQuota.take(ipCountingKey(req.remoteAddress));
      if (wait > 0)
        return fail('throttled', 'rate_limit_exceeded', req.remoteAddress, 'Too many unknown API keys from this address; retry later.', [
          ['retry-after', String(wait)],
        ]);
    }
    let record;
    try {
      record = await deps.cache.get(key.hash);
    } catch {
      return fail('store_unavailable', 'service_unavailable', req.remoteAddress);
    }
    return admit(record, req.remoteAddress);
  };

  const authenticate = async (req: AuthRequest): Promise<Principal | GatewayError> => {
    const key = check(req);
    return key instanceof GatewayError ? key : lookup(key, req);
  };
  return Object.assign(authenticate, { check, lookup });
}
