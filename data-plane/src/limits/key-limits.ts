import type { PenaltyRecord, TierLimits } from '@fluxgate/contracts';
import { GatewayError } from '../errors.js';
import { rateLimitedError, type HeaderPair } from './headers.js';
import type { PenaltyCache } from './penalties.js';
import type { Admission, RateLimiter } from './rate-limiter.js';
import { reservationFor, type Reservation } from './reservation.js';
import type { TierRegistry } from './tier-registry.js';

/**
 * The proxy's one question to limits/: "may this key make this request, under which tier, and
 * how many completion tokens may it stream?" It joins the tier registry (own tier), the penalty
 * cache (the override that wins while it lasts) and the rate limiter (shared request and token
 * buckets), so routes/proxy.ts sees one port.
 */
export interface KeyTier {
  /** Effective tier id (a penalty level while one lasts): the x-fluxgate-tier header. */
  id: string;
  limits: TierLimits;
  penalty: PenaltyRecord | null;
  /** Open requests this key may have per replica (Infinity when limits are off). */
  concurrentStreams: number;
}

export interface Ticket {
  /** x-ratelimit-* headers for the response. */
  readonly headers: readonly HeaderPair[];
  /** Completion tokens reserved at admission (Infinity when limits are off). */
  readonly reservedCompletion: number;
  /** Completion tokens the stream may use before it is cut (reservation + what the key has spare). */
  budget(): number;
  /** The response ended: charge `tokens` (prompt + completion actually used). */
  settle(tokens: number): void;
  /** The upstream failed: the request and its tokens go back. */
  refund(): void;
}

export interface KeyLimits {
  tierOf(keyId: string, ownTierId: string): KeyTier;
  /**
   * Admits one request, reserving `promptTokens + (maxTokens ?? default)`; the default applies
   * only to requests that `generate` (a body naming a model), not to GET /v1/models and the like.
   * Throws (or rejects with) a GatewayError when refused: 429 rate_limit_exceeded, or 503 under
   * the fail-closed Redis policy. Synchronous in the common case (a local lease covers it).
   */
  admit(keyId: string, tier: KeyTier, promptTokens: number, maxTokens: number | null, generates: boolean): Ticket | Promise<Ticket>;
}

class AdmittedTicket implements Ticket {
  readonly headers: readonly HeaderPair[];
  readonly reservedCompletion: number;
  constructor(
    private readonly limiter: RateLimiter,
    private readonly reservation: Reservation,
    headers: readonly HeaderPair[],
  ) {
    this.headers = headers;
    this.reservedCompletion = reservation.completionTokens;
  }
  budget(): number {
    return this.limiter.streamBudget(this.reservation);
  }
  settle(tokens: number): void {
    this.limiter.settle(this.reservation, tokens);
  }
  refund(): void {
    this.limiter.refund(this.reservation);
  }
}

export function createKeyLimits(deps: { tiers: TierRegistry; penalties: PenaltyCache; limiter: RateLimiter; defaultMaxTokens: number }): KeyLimits {
  const { tiers, penalties, limiter, defaultMaxTokens } = deps;
  const answer = (a: Admission, tier: KeyTier): Ticket => {
    if (a.ok) return new AdmittedTicket(limiter, a.reservation, a.headers);
    if (a.reason === 'unavailable') {
      throw new GatewayError('service_unavailable', 'Rate limits cannot be checked right now (Redis unavailable, fail-closed policy); retry shortly.', { headers: a.headers });
    }
    throw rateLimitedError(a, tier.penalty);
  };
  return {
    tierOf(keyId, ownTierId) {
      const { tier, penalty } = penalties.effectiveTier(keyId, tiers.get(ownTierId));
      return { id: tier.id, limits: tier, penalty, concurrentStreams: tier.concurrentStreams };
    },
    admit(keyId, tier, promptTokens, maxTokens, generates) {
      const a = limiter.admit(keyId, tier.limits, reservationFor(promptTokens, maxTokens, generates ? defaultMaxTokens : 0));
      return a instanceof Promise ? a.then((x) => answer(x, tier)) : answer(a, tier);
    },
  };
}

const UNLIMITED: Ticket = {
  headers: [],
  reservedCompletion: Infinity,
  budget: () => Infinity,
  settle: () => undefined,
  refund: () => undefined,
};

/**
 * LIMITS_ENABLED=false: no request or token limits and no penalty box (the benchmark's
 * limits-off baseline, or a deployment that limits elsewhere). Keys keep their own tier id.
 */
export function unlimitedKeyLimits(tiers: Pick<TierRegistry, 'get'>): KeyLimits {
  return {
    tierOf: (_keyId, ownTierId) => {
      const limits = tiers.get(ownTierId);
      return { id: limits.id, limits, penalty: null, concurrentStreams: Infinity };
    },
    admit: () => UNLIMITED,
  };
}
