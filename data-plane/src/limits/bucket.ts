import type { TierLimits } from '@fluxgate/contracts';

/**
 * The rate-limit algorithm, shared by the Redis script (lease-script.ts) and the in-process
 * fallback: token buckets for requests and for tokens, refilled continuously.
 *
 * One definition, so that the tier row, the x-ratelimit-limit-* headers and what is admitted
 * agree (issue 12): a bucket's CAPACITY is the number the header reports — OpenAI documents
 * x-ratelimit-limit-requests as "the maximum number of requests permitted before exhausting the
 * rate limit" — and exactly what a burst of simultaneous requests can take. It refills at the
 * tier's sustained rate, `perWindow / windowSeconds`.
 * - Requests: capacity = the row's `burst`; refill `requestsPerWindow / windowSeconds`. So over
 *   any interval T a key gets at most burst + rate·T requests. (Until issue 12 this was nginx's
 *   `burst + 1` while the header said requestsPerWindow: a 10/window, burst 10 tier admitted 11
 *   at once and announced 10.)
 * - Tokens: capacity = `tokensPerWindow` (one whole window, because a single request may
 *   legitimately reserve a large share of it: a long prompt plus max_tokens); same refill rule.
 *
 * Why buckets rather than fixed windows: no double allowance at window edges, and a bucket's
 * state is two numbers and a time, which leases can draw from and give back to (a fixed
 * window's leased units would die at the edge). A bucket may go negative (down to −capacity)
 * when a finished stream used more tokens than it reserved: the key then pays that debt back
 * before it is admitted again.
 */
export interface Dimension {
  /** What the bucket holds when full: the most admitted at once, and the x-ratelimit-limit-* header. */
  capacity: number;
  /** Refill per millisecond. */
  ratePerMs: number;
}

/** A number of requests and of tokens (a lease, a level, a give-back). */
export interface Units {
  requests: number;
  tokens: number;
}

export interface BucketLimits {
  tierId: string;
  requests: Dimension;
  tokens: Dimension;
}

export function bucketLimitsOf(tier: TierLimits, divisor = 1): BucketLimits {
  const windowMs = tier.windowSeconds * 1000;
  // A divisor (LIMITS_ASSUMED_REPLICAS in the Redis-down fallback) splits the tier between
  // replicas; capacities stay ≥ 1 so the smallest tier still admits something. The headers then
  // report the split capacity: what this replica admits on its own.
  return {
    tierId: tier.id,
    requests: {
      capacity: Math.max(1, Math.floor(tier.burst / divisor)),
      ratePerMs: tier.requestsPerWindow / windowMs / divisor,
    },
    tokens: {
      capacity: Math.max(1, Math.floor(tier.tokensPerWindow / divisor)),
      ratePerMs: tier.tokensPerWindow / windowMs / divisor,
    },
  };
}

export const sameLimits = (a: BucketLimits, b: BucketLimits): boolean =>
  a.tierId === b.tierId &&
  a.requests.capacity === b.requests.capacity &&
  a.requests.ratePerMs === b.requests.ratePerMs &&
  a.tokens.capacity === b.tokens.capacity &&
  a.tokens.ratePerMs === b.tokens.ratePerMs;

/** Level after `elapsedMs` of refill, capped at capacity. */
export const refilled = (d: Dimension, level: number, elapsedMs: number): number =>
  Math.min(d.capacity, level + Math.max(0, elapsedMs) * d.ratePerMs);

/** Milliseconds until `level` reaches `target` (0 when already there, Infinity if never). */
export function msUntil(d: Dimension, level: number, target: number): number {
  if (level >= target) return 0;
  if (target > d.capacity) return Infinity;
  return (target - level) / d.ratePerMs;
}

/**
 * One in-process pair of buckets (a key's or an account's): the Redis-down fallback
 * (redis-down.ts) and nothing else.
 * The clock is passed in so the window logic is testable with a fake clock.
 */
export class LocalBuckets {
  requests: number;
  tokens: number;
  at: number;

  constructor(
    readonly limits: BucketLimits,
    now: number,
    start?: { requests: number; tokens: number },
  ) {
    this.requests = Math.min(limits.requests.capacity, start?.requests ?? limits.requests.capacity);
    this.tokens = Math.min(limits.tokens.capacity, start?.tokens ?? limits.tokens.capacity);
    this.at = now;
  }

  #refill(now: number): void {
    this.requests = refilled(this.limits.requests, this.requests, now - this.at);
    this.tokens = refilled(this.limits.tokens, this.tokens, now - this.at);
    this.at = Math.max(this.at, now);
  }

  /** How long until one request and `tokens` are both there; null when they are now. */
  shortfall(now: number, tokens: number): { waitMs: number; reason: 'requests' | 'tokens' } | null {
    this.#refill(now);
    const waitReq = msUntil(this.limits.requests, this.requests, 1);
    const waitTok = msUntil(this.limits.tokens, this.tokens, tokens);
    if (waitReq === 0 && waitTok === 0) return null;
    return { waitMs: Math.max(waitReq, waitTok), reason: waitReq >= waitTok ? 'requests' : 'tokens' };
  }

  /**
   * Takes one request and `tokens`, unchecked: the caller asked `shortfall` first (of this bucket
   * pair and of the account's, which must both have room before either is drawn from).
   */
  take(now: number, tokens: number): void {
    this.#refill(now);
    this.requests -= 1;
    this.tokens -= tokens;
  }

  /** Gives back (positive) or charges (negative); capped at capacity, floored at −capacity. */
  adjust(now: number, requests: number, tokens: number): void {
    this.#refill(now);
    const { requests: r, tokens: t } = this.limits;
    this.requests = Math.max(-r.capacity, Math.min(r.capacity, this.requests + requests));
    this.tokens = Math.max(-t.capacity, Math.min(t.capacity, this.tokens + tokens));
  }

  levels(now: number): { requests: number; tokens: number } {
    this.#refill(now);
    return { requests: this.requests, tokens: this.tokens };
  }

  /** Full again: the state carries no information and may be dropped. */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.requests >= this.limits.requests.capacity && this.tokens >= this.limits.tokens.capacity;
  }
}
