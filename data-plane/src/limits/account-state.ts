import type { TierLimits } from '@fluxgate/contracts';
import { LocalBuckets, refilled, type BucketLimits, type Units } from './bucket.js';

/** The account a request also counts against, and the tier of that account bucket (rate-limiter.ts). */
export interface AccountRef {
  id: string;
  tier: TierLimits;
}

/**
 * One replica's view of one account's buckets under one tier, shared by the KeyStates of that
 * account's keys in this process: the account's shared levels as of the latest Redis reply for
 * any of them — so once one key learns the account ran dry, its sibling keys are refused without
 * a round trip — and the account's fallback buckets while Redis is unreachable. The account holds
 * no lease of its own: each key's lease was paid from the account's bucket as well as the key's
 * (lease-script.ts), and goes back to both.
 */
export class AccountState {
  tier: TierLimits;
  limits: BucketLimits;
  /** Shared levels as of the last reply, and when (local clock). */
  shared: (Units & { at: number }) | null = null;
  refusedAt = -Infinity;
  fallback: LocalBuckets | null = null;
  /** KeyStates pointing here: the state is forgotten when none do and its fallback is full. */
  keys = 0;

  constructor(
    readonly id: string,
    tier: TierLimits,
    limits: BucketLimits,
  ) {
    this.tier = tier;
    this.limits = limits;
  }

  /** The tier's numbers changed: what was seen under the old ones says nothing now. */
  rebind(tier: TierLimits, limits: BucketLimits): void {
    this.tier = tier;
    this.limits = limits;
    this.shared = null;
    this.refusedAt = -Infinity;
    this.fallback = null;
  }

  note(level: Units, refused: boolean, now: number): void {
    this.shared = { requests: level.requests, tokens: level.tokens, at: now };
    if (refused) this.refusedAt = now;
  }

  /** Shared level now, projected from the last reply by the refill since (ignores other replicas). */
  projected(now: number): Units {
    const s = this.shared;
    if (!s) return { requests: this.limits.requests.capacity, tokens: this.limits.tokens.capacity };
    return { requests: refilled(this.limits.requests, s.requests, now - s.at), tokens: refilled(this.limits.tokens, s.tokens, now - s.at) };
  }

  idle(now: number): boolean {
    return this.keys === 0 && (this.fallback === null || this.fallback.isFull(now));
  }
}
