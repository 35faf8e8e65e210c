import type { TierLimits } from '@fluxgate/contracts';
import type { AccountState } from './account-state.js';
import { msUntil, refilled, sameLimits, type BucketLimits, type Dimension, type LocalBuckets, type Units } from './bucket.js';
import type { LimitView } from './headers.js';
import type { LeaseReply } from './lease-script.js';
import type { Reservation } from './reservation.js';

export type { Units } from './bucket.js';

/** Which bucket a refusal is about: the API key's own, or its account's (the sum over its keys). */
export type LimitScope = 'key' | 'account';

export interface Shortfall {
  reason: 'requests' | 'tokens';
  scope: LimitScope;
  waitMs: number;
}

/** What KeyState and AccountState both have: limits, a shared level as last seen, a fallback. */
interface BucketOwner {
  readonly limits: BucketLimits;
  readonly fallback: LocalBuckets | null;
  projected(now: number): Units;
}

const SCOPES: readonly LimitScope[] = ['key', 'account'];

const remainingOf = (d: Dimension, level: number): number => Math.min(d.capacity, Math.floor(level));
const resetOf = (d: Dimension, level: number): number => msUntil(d, Math.min(level, d.capacity), d.capacity);

/**
 * The header view of one dimension: of the key's bucket (`k` at level `kl`) and the account's
 * (`a` at `al`) the one that binds first — less remaining, else the longer wait until full. The
 * limit is that bucket's capacity (bucket.ts): what a burst can take. On the hot path (every
 * admission), so it builds only the view it returns.
 */
function tighterView(k: Dimension, kl: number, a: Dimension, al: number): LimitView {
  const kr = remainingOf(k, kl);
  const ar = remainingOf(a, al);
  const useKey = kr !== ar ? kr < ar : resetOf(k, kl) >= resetOf(a, al);
  return useKey
    ? { limit: k.capacity, remaining: kr, resetMs: resetOf(k, kl) }
    : { limit: a.capacity, remaining: ar, resetMs: resetOf(a, al) };
}

/** A request waiting for the key's next Redis reply. */
export interface Waiter {
  tokens: number;
  promptTokens: number;
  completionTokens: number;
  tier: TierLimits;
  resolve(value: unknown): void;
}

export interface LeasePolicy {
  ttlMs: number;
  /** Largest lease as a fraction of a bucket's capacity. */
  fraction: number;
}

/**
 * One replica's view of one API key: the LEASE (units already drawn from the shared Redis
 * buckets — the key's and its account's, see lease-script.ts — and not yet spent here), the
 * lease size it asks for next, the shared levels of the last Redis reply, units waiting to go
 * back to Redis, the fallback buckets used only while Redis is unreachable, and the account's
 * state (account-state.ts), shared with the account's other keys in this process. Pure
 * bookkeeping: rate-limiter.ts does the I/O.
 *
 * Lease sizing is adaptive, in the spirit of TCP slow start: a key starts with no lease (one
 * Redis round trip per request — right for the many keys that send a request now and then);
 * each time it comes back for more within half a `ttlMs` of its last grant the lease wish
 * doubles, up to `fraction` of the capacity; a lease that expires more than half unused halves
 * it. A busy key so settles near "what it uses in half a ttl to one ttl", which bounds both the
 * Redis traffic (a few round trips per ttl per key per replica) and the units a replica strands.
 */
export class KeyState {
  tier: TierLimits;
  limits: BucketLimits;
  readonly lease: Units = { requests: 0, tokens: 0 };
  leaseUntil = 0;
  grantedAt = -Infinity;
  readonly extra: Units = { requests: 0, tokens: 0 };
  /** Shared levels as of the last reply, and when (local clock). */
  shared: { requests: number; tokens: number; at: number } | null = null;
  refusedAt = -Infinity;
  /** To give back (positive) or charge (negative) on the next Redis call. */
  readonly pending: Units = { requests: 0, tokens: 0 };
  fallback: LocalBuckets | null = null;
  readonly queue: Waiter[] = [];
  pumping = false;
  /** A top-up or give-back in flight; the pump waits for it rather than racing it. */
  inflight: Promise<void> | null = null;
  /** Reservations admitted and not yet settled or refunded: keeps the state alive. */
  open = 0;
  lastUse: number;
  lastTokens = 0;

  account: AccountState;

  constructor(tier: TierLimits, limits: BucketLimits, account: AccountState, now: number) {
    this.tier = tier;
    this.limits = limits;
    this.account = account;
    account.keys++;
    this.lastUse = now;
  }

  /**
   * The key's tier changed (penalty set or lifted, tier edited) or its account bucket did (the
   * owner's or the key's own tier changed): the old lease goes back to Redis.
   */
  rebind(tier: TierLimits, limits: BucketLimits, account: AccountState = this.account): void {
    this.releaseLease();
    if (account !== this.account) {
      this.account.keys--;
      account.keys++;
      this.account = account;
    }
    this.tier = tier;
    this.limits = limits;
    this.extra.requests = 0;
    this.extra.tokens = 0;
    this.shared = null;
    this.refusedAt = -Infinity;
    this.fallback = null;
  }

  /** The state is being forgotten. */
  detach(): void {
    this.account.keys--;
  }

  /**
   * Largest lease wish, a fraction of the smaller of the key's and the account's capacity;
   * fraction 0 turns leases off (one Redis round trip per request).
   */
  maxExtra(p: LeasePolicy): Units {
    if (p.fraction <= 0) return { requests: 0, tokens: 0 };
    const a = this.account.limits;
    return {
      requests: Math.max(1, Math.floor(Math.min(this.limits.requests.capacity, a.requests.capacity) * p.fraction)),
      tokens: Math.max(1, Math.floor(Math.min(this.limits.tokens.capacity, a.tokens.capacity) * p.fraction)),
    };
  }

  leaseLive(now: number): boolean {
    return now < this.leaseUntil;
  }

  /** Spends from the lease if it covers one request and `tokens`. */
  tryLease(tokens: number): boolean {
    if (this.lease.requests < 1 || this.lease.tokens < tokens) return false;
    this.lease.requests -= 1;
    this.lease.tokens -= tokens;
    return true;
  }

  /** Came back for more while the last lease was still young: ask for a bigger one. */
  grow(now: number, p: LeasePolicy): void {
    if (now - this.grantedAt >= p.ttlMs / 2) return;
    const max = this.maxExtra(p);
    this.extra.requests = Math.min(max.requests, Math.max(1, this.extra.requests * 2));
    this.extra.tokens = Math.min(max.tokens, Math.max(this.lastTokens, this.extra.tokens * 2));
  }

  /** Low water: a busy key refills ahead of running dry, so its next request does not wait. */
  wantsTopUp(now: number, p: LeasePolicy): boolean {
    if (this.extra.requests === 0 || now - this.grantedAt >= p.ttlMs) return false;
    return this.lease.requests < Math.ceil(this.extra.requests / 2) || this.lease.tokens < Math.max(this.lastTokens, this.extra.tokens / 2);
  }

  absorb(reply: LeaseReply, now: number, p: LeasePolicy): void {
    this.shared = { requests: reply.level.requests, tokens: reply.level.tokens, at: now };
    this.account.note(reply.accountLevel, !reply.ok, now);
    if (!reply.ok) {
      this.refusedAt = now;
      return;
    }
    // A pure give-back grants nothing: no lease to time, and no sign the key is busy.
    if (reply.granted.requests === 0 && reply.granted.tokens === 0) return;
    this.lease.requests += reply.granted.requests;
    this.lease.tokens += reply.granted.tokens;
    this.grantedAt = now;
    this.leaseUntil = now + p.ttlMs;
  }

  /** Moves the unspent lease to `pending` (given back on the next call). */
  releaseLease(): Units {
    const left = { requests: this.lease.requests, tokens: this.lease.tokens };
    this.pending.requests += left.requests;
    this.pending.tokens += left.tokens;
    this.lease.requests = 0;
    this.lease.tokens = 0;
    this.leaseUntil = 0;
    return left;
  }

  /** Expired lease: give it back, and shrink the next one if this one was mostly unused. */
  expire(now: number): void {
    if (this.leaseUntil === 0 || now < this.leaseUntil) return;
    const left = this.releaseLease();
    if (left.requests * 2 > this.extra.requests) this.extra.requests = Math.floor(this.extra.requests / 2);
    if (left.tokens * 2 > this.extra.tokens) this.extra.tokens = Math.floor(this.extra.tokens / 2);
  }

  takePending(): Units {
    const give = { requests: this.pending.requests, tokens: this.pending.tokens };
    this.pending.requests = 0;
    this.pending.tokens = 0;
    return give;
  }

  restorePending(give: Units): void {
    this.pending.requests += give.requests;
    this.pending.tokens += give.tokens;
  }

  hasPending(): boolean {
    return this.pending.requests !== 0 || this.pending.tokens !== 0;
  }

  /** Shared level now, projected from the last reply by the refill since (ignores other replicas). */
  projected(now: number): Units {
    const s = this.shared;
    if (!s) return { requests: this.limits.requests.capacity, tokens: this.limits.tokens.capacity };
    return { requests: refilled(this.limits.requests, s.requests, now - s.at), tokens: refilled(this.limits.tokens, s.tokens, now - s.at) };
  }

  /**
   * One bucket as this key's decisions see it: its limits and level in force — the bucket's shared
   * level as last seen (or, deciding locally, its fallback) plus this key's lease, which was paid
   * from both buckets and is spendable by this key alone.
   */
  #inForce(scope: LimitScope, now: number, useFallback: boolean): { limits: BucketLimits; level: Units } {
    const owner: BucketOwner = scope === 'key' ? this : this.account;
    const fb = useFallback ? owner.fallback : null;
    const base = fb ? fb.levels(now) : owner.projected(now);
    return {
      limits: fb ? fb.limits : owner.limits,
      level: { requests: this.lease.requests + base.requests, tokens: this.lease.tokens + base.tokens },
    };
  }

  /** What this replica believes the key can still use: the smaller of its own and its account's. */
  available(now: number, useFallback: boolean): Units {
    const k = this.#inForce('key', now, useFallback).level;
    const a = this.#inForce('account', now, useFallback).level;
    return { requests: Math.min(k.requests, a.requests), tokens: Math.min(k.tokens, a.tokens) };
  }

  /** The x-ratelimit-* views: per dimension, of the key's and the account's bucket the tighter. */
  views(now: number, useFallback: boolean): { requests: LimitView; tokens: LimitView } {
    const kf = useFallback ? this.fallback : null;
    const af = useFallback ? this.account.fallback : null;
    const kl = kf ? kf.limits : this.limits;
    const al = af ? af.limits : this.account.limits;
    const k = kf ? kf.levels(now) : this.projected(now);
    const a = af ? af.levels(now) : this.account.projected(now);
    const { requests: lr, tokens: lt } = this.lease;
    return {
      requests: tighterView(kl.requests, lr + k.requests, al.requests, lr + a.requests),
      tokens: tighterView(kl.tokens, lt + k.tokens, al.tokens, lt + a.tokens),
    };
  }

  /**
   * How long until one request and `need` tokens would fit in both the key's and the account's
   * bucket, judged from the lease and the shared levels as last seen (or the fallback buckets),
   * and which limit binds; null when they fit now.
   */
  shortfall(need: number, now: number, useFallback: boolean): Shortfall | null {
    let worst: Shortfall | null = null;
    for (const scope of SCOPES) {
      const { limits, level } = this.#inForce(scope, now, useFallback);
      const waitReq = msUntil(limits.requests, level.requests, 1);
      const waitTok = msUntil(limits.tokens, level.tokens, need);
      const waitMs = Math.max(waitReq, waitTok);
      if (waitMs > 0 && (worst === null || waitMs > worst.waitMs))
        worst = { reason: waitReq >= waitTok ? 'requests' : 'tokens', scope, waitMs };
    }
    return worst;
  }

  /** Whether a reservation was drawn under the buckets this key uses now. */
  drawnHere(res: Reservation): boolean {
    return sameLimits(this.limits, res.limits) && sameLimits(this.account.limits, res.accountLimits);
  }

  /**
   * A reservation ended: `units` go back (positive) or are charged (negative). Into the live
   * lease when it is of the same tier — no round trip, and never beyond the lease's size —
   * otherwise (and for the rest) to the shared bucket with the next call.
   */
  giveBack(res: Reservation, units: Units, now: number, p: LeasePolicy): void {
    this.open = Math.max(0, this.open - 1);
    if (res.source === 'open') return;
    if (res.source === 'fallback') {
      if (this.fallback && sameLimits(this.limits, res.limits)) this.fallback.adjust(now, units.requests, units.tokens);
      const acct = this.account;
      if (acct.fallback && sameLimits(acct.limits, res.accountLimits)) acct.fallback.adjust(now, units.requests, units.tokens);
      return;
    }
    if (!this.drawnHere(res) || !this.leaseLive(now)) {
      this.restorePending(units);
      return;
    }
    const max = this.maxExtra(p);
    const keepReq = Math.max(0, Math.min(units.requests, max.requests - this.lease.requests));
    const keepTok =
      units.tokens >= 0 ? Math.max(0, Math.min(units.tokens, max.tokens - this.lease.tokens)) : Math.max(units.tokens, -this.lease.tokens);
    this.lease.requests += keepReq;
    this.lease.tokens += keepTok;
    this.restorePending({ requests: units.requests - keepReq, tokens: units.tokens - keepTok });
  }

  /** Nothing here that the next request could not rebuild from Redis: safe to forget. */
  idle(now: number, idleMs: number): boolean {
    return (
      this.open === 0 &&
      this.queue.length === 0 &&
      !this.pumping &&
      this.inflight === null &&
      this.lease.requests === 0 &&
      this.lease.tokens === 0 &&
      !this.hasPending() &&
      now - this.lastUse >= idleMs &&
      (this.fallback === null || this.fallback.isFull(now))
    );
  }
}
