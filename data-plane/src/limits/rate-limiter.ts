import { redisKeys, type TierLimits } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { AccountState, type AccountRef } from './account-state.js';
import { admitted, DECISION_KINDS, refused, type Admission, type DecisionKind, type RefusalReason } from './admission.js';
import { RedisAvailability } from './availability.js';
import { bucketLimitsOf, sameLimits, type BucketLimits } from './bucket.js';
import { KeyState, type LeasePolicy, type LimitScope } from './key-state.js';
import { callLease, defineLeaseCommand, type LeaseCall, type LeaseReply } from './lease-script.js';
import { decideLocally, type RedisDownPolicy } from './redis-down.js';
import type { Reservation, TokenEstimate } from './reservation.js';

export { DECISION_KINDS, type Admission, type DecisionKind, type RefusalReason } from './admission.js';
export type { AccountRef } from './account-state.js';
export type { LimitScope } from './key-state.js';
export type { RedisDownPolicy } from './redis-down.js';

/**
 * Request and token limits per API key AND per account (the key's owner: the sum over all its
 * keys, so more keys never mean more quota), shared by every replica through one Redis bucket
 * pair per key and one per account (bucket.ts, lease-script.ts), with LOCAL LEASES keeping Redis
 * off the hot path: a replica draws a batch of units atomically from both and admits from it in
 * process until it runs low, then tops up in the background (key-state.ts sizes the batch).
 *
 * Which tiers: the key's bucket uses its EFFECTIVE tier (a live penalty, else the key's own tier);
 * the account's bucket uses the key's OWN tier — the key's tier override, else the owner's tier —
 * never the penalty: a penalty restricts the one key it was set on, while everything that key
 * still does counts towards its account. An account's keys on the same tier (every key made in
 * the portal, which cannot set a tier) share one account bucket; a key an operator gave another
 * tier draws from the account's bucket of that tier (AccountRef).
 *
 * Guarantees while Redis is up:
 * - No over-admission across replicas or keys: every admitted request and token is paid from
 *   units drawn atomically from both shared buckets, so Σ admitted ≤ Σ drawn ≤ what each bucket
 *   allows (burst + rate·T requests, tokensPerWindow + rate·T tokens, over any interval T).
 *   Timing caveat: a drawn unit may be spent up to leaseTtlMs later, so over [a, a+T] a key may
 *   see that bound plus L(a), the units replicas held in leases at time a — units withheld from
 *   everyone before a. Per replica and dimension L ≤ 1.5·⌊leaseFraction·capacity⌋ (+ less than
 *   one request's tokens left from a partial grant).
 * - Under-admission is the price: units in one replica's lease are not available to another —
 *   at most L per other replica, never more than `leaseShare` of what was left when drawn, given
 *   back within leaseTtlMs + one sweep, or, if the replica died holding them, refilled by the
 *   bucket within L / rate.
 *
 * Redis unreachable: see redis-down.ts for the policy. `degraded` is true meanwhile;
 * availability.ts ends it by itself (reconnect or a successful probe), no restart needed.
 */

export interface RateLimiterStats {
  degraded: boolean;
  keys: number;
  decisions: Record<DecisionKind, number>;
  redisCalls: number;
  redisErrors: number;
  /** Times Redis was declared unavailable. */
  outages: number;
  /** Accounts with rate-limit state held in this process. */
  accounts: number;
}

export interface RateLimiterOptions {
  /** Hot-path client, `enableOfflineQueue: false`. */
  redis: Redis;
  redisDownPolicy?: RedisDownPolicy;
  /** The Redis-down fallback holds tier ÷ this per replica. Default 1 (the whole tier each). */
  assumedReplicas?: number;
  /** How long a lease may sit unspent before it goes back. Default 2000. */
  leaseTtlMs?: number;
  /** Largest lease, as a fraction of a bucket's capacity; 0 turns leases off. Default 0.1. */
  leaseFraction?: number;
  /** Largest share of what is left that one lease may take. Default 0.5. */
  leaseShare?: number;
  /** After a refusal, refuse locally for this long while the projection says it still fails. */
  refusalCacheMs?: number;
  redisTimeoutMs?: number;
  probeIntervalMs?: number;
  sweepIntervalMs?: number;
  /** Forget a key's state after this long without requests. */
  idleMs?: number;
  now?: () => number;
  logger?: Logger;
}

export class RateLimiter {
  readonly #redis: Redis;
  readonly #policy: RedisDownPolicy;
  readonly #replicas: number;
  readonly #lease: LeasePolicy;
  readonly #share: number;
  readonly #refusalCacheMs: number;
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  readonly #now: () => number;
  readonly #states = new Map<string, KeyState>();
  /** By account id and tier id (one account may have keys on several tiers). */
  readonly #accounts = new Map<string, AccountState>();
  readonly #limitsCache = new WeakMap<TierLimits, BucketLimits>();
  readonly #decisions = Object.fromEntries(DECISION_KINDS.map((k) => [k, 0])) as Record<DecisionKind, number>;
  readonly #redisUp: RedisAvailability;
  readonly #timer: NodeJS.Timeout;
  #redisCalls = 0;

  constructor(opts: RateLimiterOptions) {
    this.#redis = opts.redis;
    this.#policy = opts.redisDownPolicy ?? 'local';
    this.#replicas = Math.max(1, opts.assumedReplicas ?? 1);
    this.#lease = { ttlMs: opts.leaseTtlMs ?? 2000, fraction: opts.leaseFraction ?? 0.1 };
    this.#share = opts.leaseShare ?? 0.5;
    this.#refusalCacheMs = opts.refusalCacheMs ?? 500;
    this.#timeoutMs = opts.redisTimeoutMs ?? 500;
    this.#idleMs = opts.idleMs ?? 60_000;
    // Monotonic: every local time here is a duration (Redis keeps its own clock in the script).
    this.#now = opts.now ?? (() => performance.now());
    defineLeaseCommand(this.#redis);
    this.#redisUp = new RedisAvailability(this.#redis, {
      probeMs: opts.probeIntervalMs ?? 1000,
      now: this.#now,
      logger: opts.logger,
      // Back to shared limits: the local buckets are history.
      onRecover: () => {
        for (const st of this.#states.values()) st.fallback = null;
        for (const a of this.#accounts.values()) a.fallback = null;
      },
    });
    this.#timer = setInterval(() => this.#sweep(), opts.sweepIntervalMs ?? 1000);
    this.#timer.unref();
  }

  /** True while Redis is unavailable and decisions are local (for /readyz and metrics). */
  get degraded(): boolean {
    return this.#redisUp.degraded;
  }

  stats(): RateLimiterStats {
    const up = this.#redisUp;
    return {
      degraded: up.degraded,
      keys: this.#states.size,
      accounts: this.#accounts.size,
      decisions: { ...this.#decisions },
      redisCalls: this.#redisCalls,
      redisErrors: up.errors,
      outages: up.outages,
    };
  }

  /**
   * Admits one request of key `keyId` under its effective `tier`, counted against `account` too,
   * reserving `tokens` (a TokenEstimate from reservationFor; a bare number counts as completion
   * tokens). Synchronous when the local lease covers it or the answer is known locally;
   * otherwise waits for one Redis round trip shared with other queued requests of the key.
   */
  admit(keyId: string, tier: TierLimits, tokens: number | TokenEstimate, account: AccountRef): Admission | Promise<Admission> {
    const est =
      typeof tokens === 'number'
        ? { promptTokens: 0, completionTokens: whole(tokens) }
        : { promptTokens: whole(tokens.promptTokens), completionTokens: whole(tokens.completionTokens) };
    const need = est.promptTokens + est.completionTokens;
    const now = this.#now();
    const st = this.#state(keyId, tier, account, now);
    st.lastUse = now;
    st.lastTokens = need;
    if (need > st.limits.tokens.capacity) return this.#refuse(st, 'too_large', 'key', Infinity, now, 'too_large');
    if (need > st.account.limits.tokens.capacity) return this.#refuse(st, 'too_large', 'account', Infinity, now, 'too_large');
    if (st.queue.length > 0 || st.pumping) return this.#enqueue(keyId, st, est, tier);
    if (st.tryLease(need)) {
      this.#decisions.lease_admit++;
      if (st.wantsTopUp(now, this.#lease) && !this.#redisUp.offline(now)) this.#topUp(keyId, st);
      return admitted(keyId, st, est, 'lease', now);
    }
    return this.#decideWithoutRedis(keyId, st, est, now) ?? this.#enqueue(keyId, st, est, tier);
  }

  /** The response ended: give back what the reservation did not use, or charge the excess. */
  settle(res: Reservation, actualTokens: number): void {
    if (!res.close('settled')) return;
    const used = Number.isFinite(actualTokens) && actualTokens > 0 ? Math.ceil(actualTokens) : 0;
    this.#states.get(res.keyId)?.giveBack(res, { requests: 0, tokens: res.tokens - used }, this.#now(), this.#lease);
  }

  /** The upstream failed: the request and all its tokens go back. */
  refund(res: Reservation): void {
    if (!res.close('refunded')) return;
    this.#states.get(res.keyId)?.giveBack(res, { requests: 1, tokens: res.tokens }, this.#now(), this.#lease);
  }

  /**
   * Completion tokens this stream may use in total before it must be cut: its own reservation
   * plus what the key still has here (lease) and in the shared bucket as last seen. Concurrent
   * streams of one key see the same spare units, so together they may overrun it; settle then
   * charges the overrun and the key pays it back before its next admission. A tier change
   * (penalty) since admission leaves the stream only its own reservation.
   */
  streamBudget(res: Reservation): number {
    const st = this.#states.get(res.keyId);
    if (!st || res.state !== 'open' || !st.drawnHere(res)) return res.completionTokens;
    const now = this.#now();
    const spare = st.available(now, res.source === 'fallback' || this.#redisUp.offline(now)).tokens;
    return res.completionTokens + Math.max(0, Math.floor(spare));
  }

  /** Gives every lease and pending unit back to Redis now (shutdown; tests). */
  async flush(): Promise<void> {
    const now = this.#now();
    await Promise.all(
      [...this.#states].map(async ([keyId, st]) => {
        if (st.inflight) await st.inflight;
        if (st.queue.length > 0 || st.pumping) return;
        st.leaseUntil = Math.min(st.leaseUntil, now);
        st.expire(now);
        if (st.hasPending() && this.#redisUp.usable(now)) await this.#giveNow(keyId, st);
      }),
    );
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#redisUp.detach();
    await this.flush();
  }

  #limits(tier: TierLimits): BucketLimits {
    let l = this.#limitsCache.get(tier);
    if (!l) this.#limitsCache.set(tier, (l = bucketLimitsOf(tier)));
    return l;
  }

  #state(keyId: string, tier: TierLimits, account: AccountRef, now: number): KeyState {
    const limits = this.#limits(tier);
    let st = this.#states.get(keyId);
    if (!st) {
      this.#states.set(keyId, (st = new KeyState(tier, limits, this.#account(account), now)));
      return st;
    }
    // The common case is two identity checks; only a changed tier object looks further.
    const acct = st.account.tier === account.tier && st.account.id === account.id ? st.account : this.#account(account);
    if (acct !== st.account || (st.limits !== limits && !sameLimits(st.limits, limits))) st.rebind(tier, limits, acct);
    else st.tier = tier;
    return st;
  }

  #account(ref: AccountRef): AccountState {
    const limits = this.#limits(ref.tier);
    const id = `${ref.id}\n${ref.tier.id}`;
    let a = this.#accounts.get(id);
    if (!a) this.#accounts.set(id, (a = new AccountState(ref.id, ref.tier, limits)));
    else if (a.limits !== limits && !sameLimits(a.limits, limits)) a.rebind(ref.tier, limits);
    else a.tier = ref.tier;
    return a;
  }

  #refuse(st: KeyState, reason: RefusalReason, scope: LimitScope, waitMs: number, now: number, kind: DecisionKind): Admission {
    this.#decisions[kind]++;
    return refused(st, reason, scope, waitMs, now, kind === 'fallback_refuse');
  }

  /** The answer when it needs no Redis call: Redis is down, or a fresh refusal still holds. */
  #decideWithoutRedis(keyId: string, st: KeyState, est: TokenEstimate, now: number): Admission | null {
    if (this.#redisUp.offline(now)) return this.#fallback(keyId, st, est, now);
    // A refusal of this key, or of any key of its account, still fresh: judge locally.
    if (now - Math.max(st.refusedAt, st.account.refusedAt) >= this.#refusalCacheMs) return null;
    const short = st.shortfall(est.promptTokens + est.completionTokens, now, false);
    return short && this.#refuse(st, short.reason, short.scope, short.waitMs, now, 'cached_refuse');
  }

  #fallback(keyId: string, st: KeyState, est: TokenEstimate, now: number): Admission {
    const { admission, kind } = decideLocally(this.#policy, this.#replicas, keyId, st, est, now);
    this.#decisions[kind]++;
    return admission;
  }

  #enqueue(keyId: string, st: KeyState, est: TokenEstimate, tier: TierLimits): Promise<Admission> {
    return new Promise<Admission>((resolve) => {
      st.queue.push({ ...est, tokens: est.promptTokens + est.completionTokens, tier, resolve: resolve as (v: unknown) => void });
      if (!st.pumping) {
        st.pumping = true;
        // Start after the current synchronous burst has queued, so it shares one round trip.
        queueMicrotask(() => void this.#pump(keyId, st));
      }
    });
  }

  /** Serves the key's queue in order; at most one Redis call per key at a time. */
  async #pump(keyId: string, st: KeyState): Promise<void> {
    try {
      for (let head = st.queue[0]; head; head = st.queue[0]) {
        if (st.inflight) {
          await st.inflight;
          continue;
        }
        const now = this.#now();
        let answer: Admission | null = null;
        if (st.tryLease(head.tokens)) {
          this.#decisions.redis_admit++;
          answer = admitted(keyId, st, head, 'redis', now);
        } else answer = this.#decideWithoutRedis(keyId, st, head, now);
        if (!answer) {
          st.grow(now, this.#lease);
          const demandTokens = st.queue.reduce((sum, w) => sum + w.tokens, 0);
          const reply = await this.#call(keyId, st, {
            need: { requests: Math.max(0, 1 - st.lease.requests), tokens: Math.max(0, head.tokens - st.lease.tokens) },
            demand: { requests: Math.max(0, st.queue.length - st.lease.requests), tokens: Math.max(0, demandTokens - st.lease.tokens) },
            extra: st.extra,
          });
          // Granted (the next turn admits from the lease) or failed (the next turn falls back).
          if (!reply || reply.ok) continue;
          const t = this.#now();
          const short = st.shortfall(head.tokens, t, false);
          answer = this.#refuse(st, short?.reason ?? 'requests', short?.scope ?? 'key', short?.waitMs ?? 0, t, 'redis_refuse');
        }
        st.queue.shift();
        head.resolve(answer);
      }
    } finally {
      st.pumping = false;
    }
  }

  #topUp(keyId: string, st: KeyState): void {
    if (st.inflight || st.pumping) return;
    st.grow(this.#now(), this.#lease);
    const zero = { requests: 0, tokens: 0 };
    st.inflight = this.#call(keyId, st, { need: zero, demand: zero, extra: { ...st.extra } }).then(() => {
      st.inflight = null;
    });
  }

  #giveNow(keyId: string, st: KeyState): Promise<void> {
    const zero = { requests: 0, tokens: 0 };
    const p = this.#call(keyId, st, { need: zero, demand: zero, extra: zero }).then(() => {
      st.inflight = null;
    });
    st.inflight = p;
    return p;
  }

  /** One lease call carrying the key's pending give-backs; null when Redis failed (now degraded). */
  async #call(keyId: string, st: KeyState, c: Pick<LeaseCall, 'need' | 'demand' | 'extra'>): Promise<LeaseReply | null> {
    const give = st.takePending();
    const { limits, account } = st;
    const accountLimits = account.limits;
    this.#redisCalls++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`rate-limit call timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs);
      });
      const buckets = [
        redisKeys.rateLimit(account.id, keyId, limits.tierId),
        redisKeys.rateLimitAccount(account.id, accountLimits.tierId),
      ] as const;
      const reply = await Promise.race([
        callLease(this.#redis, ...buckets, { limits, accountLimits, give, share: this.#share, ...c }),
        timeout,
      ]);
      this.#redisUp.recovered('probe succeeded');
      if (st.limits === limits && st.account === account && account.limits === accountLimits) st.absorb(reply, this.#now(), this.#lease);
      // Granted under a tier that changed meanwhile: hand it straight back.
      else st.restorePending(reply.granted);
      return reply;
    } catch (err) {
      // A timed-out call may still land in Redis: its grant is then stranded (under-admission only).
      st.restorePending(give);
      this.#redisUp.markDown(err, this.#policy);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Returns expired leases and pending units to Redis; forgets idle keys (bounded memory). */
  #sweep(): void {
    const now = this.#now();
    const usable = this.#redisUp.usable(now);
    for (const [keyId, st] of this.#states) {
      if (st.pumping || st.inflight || st.queue.length > 0) continue;
      st.expire(now);
      if (st.hasPending() && usable) void this.#giveNow(keyId, st);
      else if (st.idle(now, this.#idleMs)) {
        this.#states.delete(keyId);
        st.detach();
      }
    }
    for (const [id, a] of this.#accounts) if (a.idle(now)) this.#accounts.delete(id);
  }
}

/** A token count as a whole non-negative number (NaN would poison a lease). */
const whole = (x: number): number => (Number.isFinite(x) && x > 0 ? Math.ceil(x) : 0);

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  return new RateLimiter(opts);
}
