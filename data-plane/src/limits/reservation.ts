import type { BucketLimits } from './bucket.js';

/**
 * A token reservation (DESIGN §3 "Rate tiers"): the prompt estimate plus the most the completion
 * may use, taken before the request is forwarded, settled with the real usage when the response
 * ends, refunded in full (request included) when the upstream failed.
 */
export interface TokenEstimate {
  promptTokens: number;
  /** `max_tokens` (or the default when the client sent none). */
  completionTokens: number;
}

/**
 * What to reserve for one request. A client that sends no `max_tokens` is charged
 * `defaultMaxTokens` up front (LIMITS_DEFAULT_MAX_TOKENS) — reserving nothing would let an
 * unbounded completion through, reserving the whole window would refuse ordinary requests.
 * Settling returns whatever was not used, so an honest default costs nothing in the end.
 */
export function reservationFor(promptTokens: number, maxTokens: number | null | undefined, defaultMaxTokens: number): TokenEstimate {
  const whole = (x: number): number => (Number.isFinite(x) && x > 0 ? Math.ceil(x) : 0);
  const completion =
    maxTokens !== null && maxTokens !== undefined && Number.isFinite(maxTokens) && maxTokens > 0 ? maxTokens : defaultMaxTokens;
  return { promptTokens: whole(promptTokens), completionTokens: whole(completion) };
}

/** Where an admission was paid from, which decides where settle/refund put units back. */
export type AdmissionSource = 'redis' | 'lease' | 'fallback' | 'open';

export class Reservation {
  #state: 'open' | 'settled' | 'refunded' = 'open';

  constructor(
    readonly keyId: string,
    /** The key's buckets and its account's when admitted: settling into a changed tier goes to Redis, not the lease. */
    readonly limits: BucketLimits,
    readonly accountLimits: BucketLimits,
    readonly promptTokens: number,
    readonly completionTokens: number,
    readonly source: AdmissionSource,
  ) {}

  /** Tokens taken for this request. */
  get tokens(): number {
    return this.promptTokens + this.completionTokens;
  }

  get state(): 'open' | 'settled' | 'refunded' {
    return this.#state;
  }

  /** Marks it closed; false when it already was (settle and refund run at most once in total). */
  close(to: 'settled' | 'refunded'): boolean {
    if (this.#state !== 'open') return false;
    this.#state = to;
    return true;
  }
}
