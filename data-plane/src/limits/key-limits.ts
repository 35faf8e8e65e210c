import type { PenaltyRecord, TierLimits } from '@fluxgate/contracts';
import { GatewayError } from '../errors.js';
import { SlotCounter } from './concurrency.js';
import { rateLimitedError, type HeaderPair } from './headers.js';
import type { PenaltyCache } from './penalties.js';
import type { AccountRef, Admission, RateLimiter } from './rate-limiter.js';
import { reservationFor, type Reservation } from './reservation.js';
import type { TierRegistry } from './tier-registry.js';

/**
 * The proxy's one question to limits/: "may this key make this request, under which tier, and
 * how many completion tokens may it stream?" It joins the tier registry (own tier), the penalty
 * cache (the override that wins while it lasts), the rate limiter (shared request and token
 * buckets per key and per account) and the per-account stream cap, so routes/proxy.ts sees one
 * port.
 */
export interface KeyTier {
  /** Effective tier id (a penalty level while one lasts): the x-fluxgate-tier header. */
  id: string;
  limits: TierLimits;
  penalty: PenaltyRecord | null;
  /** Open requests this key may have per replica (Infinity when limits are off). */
  concurrentStreams: number;
  /**
   * The account (the key's owner) it also counts against, under the key's own tier (never a
   * penalty): see rate-limiter.ts. Its `concurrentStreams` caps the account's open requests per
   * replica, summed over its keys.
   */
  account: AccountRef;
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
  /**
   * `ownTierId`: the key's override, else its owner's tier; `accountId`: the owner (users.id).
   * Synchronous for a known tier; a tier this replica does not know yet is reloaded first.
   */
  tierOf(keyId: string, ownTierId: string, accountId: string): KeyTier | Promise<KeyTier>;
  /**
   * Admits one request, reserving `promptTokens + (maxTokens ?? default)`; the default applies
   * only to requests that `generate` (a body naming a model), not to GET /v1/models and the like.
   * Throws (or rejects with) a GatewayError when refused: 429 rate_limit_exceeded (the message
   * says whether the key's or the account's limit was hit), 429 too_many_streams (the account's
   * open requests in this replica), or 503 under the fail-closed Redis policy. Synchronous in
   * the common case (a local lease covers it).
   */
  admit(keyId: string, tier: KeyTier, promptTokens: number, maxTokens: number | null, generates: boolean): Ticket | Promise<Ticket>;
}

/**
 * An admitted request. It holds one of its account's stream slots from admission until it is
 * settled or refunded — the proxy does exactly one of the two when the request ends — which is
 * how the per-account cap counts open requests without another hook in the proxy.
 */
class AdmittedTicket implements Ticket {
  readonly headers: readonly HeaderPair[];
  readonly reservedCompletion: number;
  #slots: SlotCounter | null;
  constructor(
    private readonly limiter: RateLimiter,
    private readonly reservation: Reservation,
    headers: readonly HeaderPair[],
    accountStreams: SlotCounter,
    private readonly accountId: string,
  ) {
    this.headers = headers;
    this.reservedCompletion = reservation.completionTokens;
    this.#slots = accountStreams;
  }
  budget(): number {
    return this.limiter.streamBudget(this.reservation);
  }
  settle(tokens: number): void {
    this.limiter.settle(this.reservation, tokens);
    this.#release();
  }
  refund(): void {
    this.limiter.refund(this.reservation);
    this.#release();
  }
  #release(): void {
    this.#slots?.release(this.accountId);
    this.#slots = null;
  }
}

export function createKeyLimits(deps: {
  tiers: TierRegistry;
  penalties: PenaltyCache;
  limiter: RateLimiter;
  defaultMaxTokens: number;
}): KeyLimits {
  const { tiers, penalties, limiter, defaultMaxTokens } = deps;
  const accountStreams = new SlotCounter();
  const answer = (a: Admission, tier: KeyTier): Ticket => {
    if (a.ok) return new AdmittedTicket(limiter, a.reservation, a.headers, accountStreams, tier.account.id);
    accountStreams.release(tier.account.id);
    if (a.reason === 'unavailable') {
      throw new GatewayError(
        'service_unavailable',
        'Rate limits cannot be checked right now (Redis unavailable, fail-closed policy); retry shortly.',
        { headers: a.headers },
      );
    }
    throw rateLimitedError(a, tier.penalty);
  };
  return {
    tierOf(keyId, ownTierId, accountId) {
      const build = (own: TierLimits): KeyTier => {
        const { tier, penalty } = penalties.effectiveTier(keyId, own);
        return { id: tier.id, limits: tier, penalty, concurrentStreams: tier.concurrentStreams, account: { id: accountId, tier: own } };
      };
      const own = tiers.resolve(ownTierId);
      return own instanceof Promise ? own.then(build) : build(own);
    },
    admit(keyId, tier, promptTokens, maxTokens, generates) {
      const { id: accountId, tier: accountTier } = tier.account;
      if (!accountStreams.tryAcquire(accountId, accountTier.concurrentStreams)) {
        const message = `Too many concurrent requests for this account (at most ${accountTier.concurrentStreams} across all its API keys under tier ${accountTier.id}).`;
        throw new GatewayError('too_many_streams', message, { headers: [['retry-after', '1']] });
      }
      let a: Admission | Promise<Admission>;
      try {
        a = limiter.admit(keyId, tier.limits, reservationFor(promptTokens, maxTokens, generates ? defaultMaxTokens : 0), tier.account);
      } catch (err) {
        accountStreams.release(accountId);
        throw err;
      }
      if (!(a instanceof Promise)) return answer(a, tier);
      return a.then(
        (x) => answer(x, tier),
        (err: unknown) => {
          accountStreams.release(accountId);
          throw err;
        },
      );
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
export function unlimitedKeyLimits(tiers: Pick<TierRegistry, 'resolve'>): KeyLimits {
  return {
    tierOf: (_keyId, ownTierId, accountId) => {
      const build = (limits: TierLimits): KeyTier => ({
        id: limits.id,
        limits,
        penalty: null,
        concurrentStreams: Infinity,
        account: { id: accountId, tier: limits },
      });
      const own = tiers.resolve(ownTierId);
      return own instanceof Promise ? own.then(build) : build(own);
    },
    admit: () => UNLIMITED,
  };
}
