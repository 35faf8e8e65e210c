import { redisKeys, type TierLimits } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerLimitsMetrics } from '../../src/limits/metrics.js';
import {
  createRateLimiter,
  type AccountRef,
  type Admission,
  type RateLimiter,
  type RateLimiterOptions,
} from '../../src/limits/rate-limiter.js';
import { reservationFor, type TokenEstimate } from '../../src/limits/reservation.js';
import { connectTestRedis, waitUntil, type TestRedis } from '../support/services.js';

let tr: TestRedis;
const limiters: RateLimiter[] = [];
beforeAll(async () => {
  tr = await connectTestRedis();
});
afterEach(async () => {
  await Promise.all(limiters.splice(0).map((l) => l.close()));
});
afterAll(async () => {
  await tr?.close();
});

let seq = 0;
const newKey = (): string => `key-${process.pid}-${++seq}`;
/** A tier whose refill is negligible over a test: `capacity` requests at once, then ~none. */
const tier = (capacity: number, tokens = 1_000_000, over: Partial<TierLimits> = {}): TierLimits => ({
  id: 'test',
  requestsPerWindow: capacity,
  tokensPerWindow: tokens,
  windowSeconds: 86_400,
  concurrentStreams: 8,
  burst: capacity,
  ...over,
});

async function limiter(opts: Partial<RateLimiterOptions> = {}): Promise<RateLimiter> {
  // Each "replica" gets its own hot-path connection, as main.ts would create.
  const redis: Redis = await tr.connect({ enableOfflineQueue: false });
  const l = createRateLimiter({ redis, ...opts });
  limiters.push(l);
  return l;
}

/** Each key is its own account's only key unless a test says otherwise, on the key's tier. */
const accountOf = (keyId: string): string => `acct-${keyId}`;
const admit = (
  l: RateLimiter,
  keyId: string,
  t: TierLimits,
  tokens: number | TokenEstimate,
  account: AccountRef = { id: accountOf(keyId), tier: t },
) => l.admit(keyId, t, tokens, account);
const header = (a: Admission, name: string): string | undefined => a.headers.find(([k]) => k === name)?.[1];
const num = (a: Admission, name: string): number => Number(header(a, name));
const bucket = async (keyId: string) => {
  const h = await tr.redis.hgetall(redisKeys.rateLimit(accountOf(keyId), keyId, 'test'));
  return { requests: Number(h.r), tokens: Number(h.t) };
};

describe('rate limiter against Redis', () => {
  it('100 parallel admits against a limit of 10 admit exactly 10, in two round trips', async () => {
    const l = await limiter();
    const keyId = newKey();
    const results = await Promise.all(Array.from({ length: 100 }, () => admit(l, keyId, tier(10), 1)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    const refused = results.filter((r) => !r.ok);
    expect(refused).toHaveLength(90);
    for (const r of refused) {
      if (r.ok) continue;
      expect(r.reason).toBe('requests');
      expect(r.retryAfterSeconds).toBeGreaterThan(1);
      expect(header(r, 'retry-after')).toBe(String(r.retryAfterSeconds));
      expect(header(r, 'x-ratelimit-remaining-requests')).toBe('0');
    }
    expect(l.stats().redisCalls).toBe(2);
    expect((await bucket(keyId)).requests).toBeLessThan(1);
  });

  it('issue 12: the x-ratelimit-limit-* headers announce exactly what a burst can take, for requests and for tokens', async () => {
    const l = await limiter();
    const ascending = (xs: number[]) => xs.sort((x, y) => x - y);
    // Requests: burst 10 → 10 admitted of 100 at once, each announcing 10 and using one of them.
    const requestKey = newKey();
    const byRequests = await Promise.all(Array.from({ length: 100 }, () => admit(l, requestKey, tier(10), 1)));
    expect(new Set(byRequests.map((a) => header(a, 'x-ratelimit-limit-requests')))).toEqual(new Set(['10']));
    const okR = byRequests.filter((a) => a.ok);
    expect(okR).toHaveLength(10);
    expect(ascending(okR.map((a) => num(a, 'x-ratelimit-remaining-requests')))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Tokens: 1000 per window, 100 per request → 10 admitted, 900 … 0 left.
    const tokenKey = newKey();
    const byTokens = await Promise.all(Array.from({ length: 100 }, () => admit(l, tokenKey, tier(1000, 1000), 100)));
    expect(new Set(byTokens.map((a) => header(a, 'x-ratelimit-limit-tokens')))).toEqual(new Set(['1000']));
    const okT = byTokens.filter((a) => a.ok);
    expect(okT).toHaveLength(10);
    expect(ascending(okT.map((a) => num(a, 'x-ratelimit-remaining-tokens')))).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    for (const a of byTokens) if (!a.ok) expect(a.reason).toBe('tokens');
  });

  it('two replicas sharing one Redis never admit more than the global limit under concurrent load', async () => {
    const [a, b] = [await limiter(), await limiter()];
    const keyId = newKey();
    const t = tier(200, 1_000_000_000);
    let admitted = 0;
    // Waves of concurrent requests through both replicas, so leases grow and drain on both.
    for (let wave = 0; wave < 30; wave++) {
      const batch = Array.from({ length: 20 }, (_, i) => admit(i % 2 === 0 ? a : b, keyId, t, 1));
      for (const r of await Promise.all(batch)) if (r.ok) admitted++;
    }
    const overAdmission = Math.max(0, admitted - 200);
    expect(overAdmission).toBe(0);
    expect(a.stats().decisions.lease_admit + b.stats().decisions.lease_admit).toBeGreaterThan(0);
    // Leases stranded units (under-admission only); once handed back, the rest is admissible
    // and the total is exactly the limit.
    await Promise.all([a.flush(), b.flush()]);
    for (;;) {
      const r = await admit(a, keyId, t, 1);
      if (!r.ok) break;
      admitted++;
    }
    expect(admitted).toBe(200);
  });

  it('two replicas keep the global token limit too', async () => {
    const [a, b] = [await limiter(), await limiter()];
    const keyId = newKey();
    const t = tier(100_000, 30_000);
    let tokens = 0;
    for (let wave = 0; wave < 20; wave++) {
      const replicas = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b));
      const results = await Promise.all(replicas.map((r) => admit(r, keyId, t, { promptTokens: 100, completionTokens: 200 })));
      results.forEach((r, i) => {
        if (!r.ok) return;
        tokens += r.reservation.tokens;
        replicas[i]!.settle(r.reservation, r.reservation.tokens);
      });
    }
    expect(tokens).toBeLessThanOrEqual(30_000);
    // Stranded leases: at most 1.5 leases (10% of 30k each) plus one request per replica.
    expect(tokens).toBeGreaterThanOrEqual(30_000 - 2 * (4500 + 300));
    await Promise.all([a.flush(), b.flush()]);
    for (;;) {
      const r = await admit(b, keyId, t, { promptTokens: 100, completionTokens: 200 });
      if (!r.ok) break;
      tokens += r.reservation.tokens;
    }
    // Refill over the test (30k per day) is well under one request's 300 tokens.
    expect(tokens).toBe(30_000);
  });

  it('settle gives unused tokens back, charges an overrun, and refund returns the request too', async () => {
    const l = await limiter();
    const keyId = newKey();
    const t = tier(100, 10_000);
    const first = await admit(l, keyId, t, reservationFor(100, 900, 4096));
    if (!first.ok) throw new Error('first admission refused');
    expect(first.reservation.tokens).toBe(1000);
    const afterFirst = num(first, 'x-ratelimit-remaining-tokens');
    expect(afterFirst).toBeLessThanOrEqual(9000);
    l.settle(first.reservation, 400);
    l.settle(first.reservation, 0); // second settle is ignored
    const probe = await admit(l, keyId, t, 0);
    expect(num(probe, 'x-ratelimit-remaining-tokens')).toBeGreaterThanOrEqual(afterFirst + 600);

    const second = await admit(l, keyId, t, reservationFor(50, 450, 4096));
    if (!second.ok) throw new Error('second admission refused');
    const requestsAfterSecond = num(second, 'x-ratelimit-remaining-requests');
    const tokensAfterSecond = num(second, 'x-ratelimit-remaining-tokens');
    l.refund(second.reservation);
    const probe2 = await admit(l, keyId, t, 0);
    // The refunded request paid for this one: the count did not go down.
    expect(num(probe2, 'x-ratelimit-remaining-requests')).toBe(requestsAfterSecond);
    expect(num(probe2, 'x-ratelimit-remaining-tokens')).toBeGreaterThanOrEqual(tokensAfterSecond + 500);

    const third = await admit(l, keyId, t, reservationFor(0, 100, 4096));
    if (!third.ok) throw new Error('third admission refused');
    l.settle(third.reservation, 700); // ran 600 past its reservation

    await l.flush();
    const state = await bucket(keyId);
    // 3 requests kept (first, probe, probe2, third = 4; second refunded)
    expect(Math.floor(state.requests)).toBe(100 - 4);
    // 400 + 700 used; a few tokens may have refilled meanwhile (10k per day).
    expect(state.tokens).toBeGreaterThanOrEqual(10_000 - 1100);
    expect(state.tokens).toBeLessThan(10_000 - 1100 + 5);
  });

  it('streamBudget is the reservation plus what the key has left, and shrinks as other requests consume', async () => {
    const l = await limiter();
    const keyId = newKey();
    const t = tier(100, 20_000);
    const stream = await admit(l, keyId, t, { promptTokens: 100, completionTokens: 1000 });
    if (!stream.ok) throw new Error('refused');
    const before = l.streamBudget(stream.reservation);
    expect(before).toBeGreaterThanOrEqual(1000 + 18_000);
    expect(before).toBeLessThanOrEqual(1000 + 18_900 + 5);
    for (let i = 0; i < 5; i++) {
      const r = await admit(l, keyId, t, { promptTokens: 0, completionTokens: 2000 });
      expect(r.ok).toBe(true);
    }
    const after = l.streamBudget(stream.reservation);
    expect(after).toBeLessThanOrEqual(before - 10_000 + 5);
    expect(after).toBeGreaterThanOrEqual(1000);
    l.settle(stream.reservation, 600);
    expect(l.streamBudget(stream.reservation)).toBe(1000);
  });

  it('refuses with the time until the bucket refills, then admits again by itself', async () => {
    const l = await limiter();
    const keyId = newKey();
    // 2 requests per second, a burst of 1: one at once, the next 500 ms later.
    const t = tier(1, 1_000_000, { requestsPerWindow: 2, windowSeconds: 1, burst: 1 });
    expect((await admit(l, keyId, t, 1)).ok).toBe(true);
    const refused = await admit(l, keyId, t, 1);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.retryAfterSeconds).toBe(1);
    expect(header(refused, 'x-ratelimit-reset-requests')).toMatch(/^\d+ms$/);
    // The limit is what a burst can take (1), not the sustained rate per window (2).
    expect(header(refused, 'x-ratelimit-limit-requests')).toBe('1');
    await waitUntil(async () => (await admit(l, keyId, t, 1)).ok, { timeoutMs: 2000, intervalMs: 50, message: 'bucket did not refill' });
  });

  it('a warm lease admits synchronously with few Redis round trips', async () => {
    const l = await limiter();
    const keyId = newKey();
    const t = tier(10_000, 1_000_000_000);
    for (let i = 0; i < 50; i++) await admit(l, keyId, t, 10);
    let sync = 0;
    for (let i = 0; i < 1000; i++) {
      const r = admit(l, keyId, t, 10);
      if (!(r instanceof Promise)) sync++;
      const a = await r;
      expect(a.ok).toBe(true);
      if (a.ok) l.settle(a.reservation, 10);
    }
    expect(sync).toBeGreaterThan(900);
    expect(l.stats().redisCalls).toBeLessThan(150);
  });

  it('a reservation that can never fit is refused at once without Redis', async () => {
    const l = await limiter();
    const r = await admit(l, newKey(), tier(10, 1000), { promptTokens: 500, completionTokens: 600 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('too_large');
    expect(l.stats().redisCalls).toBe(0);
  });

  it('a tier change (penalty) applies the new limits at once; back on its own tier the key ramps up again', async () => {
    const l = await limiter();
    const keyId = newKey();
    // Own tier refills fast (1000 requests per second) so the ramp-up is quick to observe.
    const own = tier(1000, 1_000_000_000, { windowSeconds: 1 });
    for (let i = 0; i < 40; i++) expect((await admit(l, keyId, own, 1)).ok).toBe(true);
    const penalty: TierLimits = {
      id: 'penalty-x',
      requestsPerWindow: 1,
      tokensPerWindow: 1000,
      windowSeconds: 86_400,
      concurrentStreams: 1,
      burst: 1,
    };
    // The account bucket stays on the key's own tier: a penalty restricts the key's bucket only.
    const acct = { id: accountOf(keyId), tier: own };
    const first = await admit(l, keyId, penalty, 1, acct);
    expect(first.ok).toBe(true);
    expect(header(first, 'x-ratelimit-limit-requests')).toBe('1');
    const second = await admit(l, keyId, penalty, 1, acct);
    expect(second.ok).toBe(false);
    // The level carries over, capped by the penalty, and refills at the own tier's rate after.
    await waitUntil(async () => (await admit(l, keyId, own, 1)).ok, { timeoutMs: 1000, message: 'own tier did not resume' });
  });

  it('an idle replica hands its unspent lease back by itself (lease ttl + sweep), and unused reservations too', async () => {
    const l = await limiter({ leaseTtlMs: 200, sweepIntervalMs: 50 });
    const keyId = newKey();
    const t = tier(100, 100_000);
    const held: Admission[] = [];
    for (let i = 0; i < 20; i++) held.push(await admit(l, keyId, t, 100));
    expect(held.every((a) => a.ok)).toBe(true);
    // The lease drew ahead of use: Redis shows fewer units than 100 - 20 right now.
    expect((await bucket(keyId)).requests).toBeLessThan(80);
    for (const a of held) if (a.ok) l.settle(a.reservation, 40);
    await waitUntil(
      async () => {
        const b = await bucket(keyId);
        return Math.floor(b.requests) === 80 && b.tokens >= 100_000 - 20 * 40 && b.tokens < 100_000 - 20 * 40 + 10;
      },
      { timeoutMs: 2000, message: 'lease and reservation remainders did not go back to Redis' },
    );
  });

  it('exposes its decisions and state as Prometheus metrics', async () => {
    const l = await limiter();
    const registry = new Registry();
    registerLimitsMetrics(registry, { limiter: l });
    const keyId = newKey();
    await admit(l, keyId, tier(1), 1);
    await admit(l, keyId, tier(1), 1);
    const text = await registry.metrics();
    expect(text).toContain('fluxgate_rate_limit_decisions_total{decision="redis_admit"} 1');
    expect(text).toContain('fluxgate_rate_limit_decisions_total{decision="redis_refuse"} 1');
    expect(text).toContain('fluxgate_rate_limit_redis_calls_total 2');
    expect(text).toContain('fluxgate_rate_limit_degraded 0');
    expect(text).toContain('fluxgate_rate_limit_accounts 1');
    // Counters only move by what happened since the last scrape.
    await admit(l, keyId, tier(1), 1);
    const again = await registry.metrics();
    expect(again).toContain('fluxgate_rate_limit_decisions_total{decision="cached_refuse"} 1');
    expect(again).toContain('fluxgate_rate_limit_decisions_total{decision="redis_admit"} 1');
  });
});

describe('limits per account: the sum over its keys (issue 12 item 6)', () => {
  const ascending = (xs: number[]) => xs.sort((x, y) => x - y);
  /**
   * Each key alone would have allowed `perKey`: a key refused before using that much was refused
   * by its account, and says so. (A key that used all of its own bucket too is told about its own
   * limit: on a tie the key's limit is named, as for any one-key account.)
   */
  const expectAccountRefusals = (results: Admission[], keyOf: (i: number) => string, perKey: number) => {
    const used = new Map<string, number>();
    results.forEach((r, i) => r.ok && used.set(keyOf(i), (used.get(keyOf(i)) ?? 0) + 1));
    let byAccount = 0;
    results.forEach((r, i) => {
      if (r.ok || (used.get(keyOf(i)) ?? 0) >= perKey) return;
      expect(r.scope).toBe('account');
      byAccount++;
    });
    expect(byAccount).toBeGreaterThan(0);
  };

  it('two keys of one account share its tier: 100 parallel admits across both admit 10 in total; another account keeps its own 10', async () => {
    const l = await limiter();
    const t = tier(10);
    const account = { id: `acct-${newKey()}`, tier: t };
    const [k1, k2] = [newKey(), newKey()];
    const keyOf = (i: number) => (i % 2 ? k1 : k2);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => admit(l, keyOf(i), t, 1, account)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(new Set(results.filter((r) => !r.ok).map((r) => header(r, 'x-ratelimit-remaining-requests')))).toEqual(new Set(['0']));
    expectAccountRefusals(results, keyOf, 10);
    // A key of another account on the same tier is untouched.
    const other = newKey();
    const theirs = await Promise.all(Array.from({ length: 20 }, () => admit(l, other, t, 1)));
    expect(theirs.filter((r) => r.ok)).toHaveLength(10);
  });

  it('tokens too: two keys reserving 100 each against an account of 1000 tokens admit 10 in total', async () => {
    const l = await limiter();
    const t = tier(1000, 1000);
    const account = { id: `acct-${newKey()}`, tier: t };
    const [k1, k2] = [newKey(), newKey()];
    const keyOf = (i: number) => (i % 2 ? k1 : k2);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => admit(l, keyOf(i), t, 100, account)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    for (const r of results) if (!r.ok) expect(r.reason).toBe('tokens');
    expectAccountRefusals(results, keyOf, 10);
  });

  it('two replicas, three keys of one account, waves of concurrent requests: never more than the account allows', async () => {
    const [a, b] = [await limiter(), await limiter()];
    const t = tier(200, 1_000_000_000);
    const account = { id: `acct-${newKey()}`, tier: t };
    const keys = [newKey(), newKey(), newKey()];
    let admitted = 0;
    for (let wave = 0; wave < 30; wave++) {
      const batch = Array.from({ length: 24 }, (_, i) => admit(i % 2 === 0 ? a : b, keys[i % 3]!, t, 1, account));
      for (const r of await Promise.all(batch)) if (r.ok) admitted++;
    }
    expect(admitted).toBeLessThanOrEqual(200);
    expect(a.stats().decisions.lease_admit + b.stats().decisions.lease_admit).toBeGreaterThan(0);
    // Leases only strand units for a while: handed back, the account's rest is admissible, and
    // the total is exactly its limit.
    await Promise.all([a.flush(), b.flush()]);
    for (const keyId of keys) {
      for (;;) {
        const r = await admit(b, keyId, t, 1, account);
        if (!r.ok) break;
        admitted++;
      }
    }
    expect(admitted).toBe(200);
    const level = await tr.redis.hgetall(redisKeys.rateLimitAccount(account.id, 'test'));
    expect(Number(level.r)).toBeLessThan(1);
  });

  it('a refusal says whose limit was hit, and the headers report the tighter of the two', async () => {
    const l = await limiter();
    const wide = tier(100);
    const narrow: TierLimits = { ...tier(3), id: 'narrow' };
    const account = { id: `acct-${newKey()}`, tier: wide };
    // A key held to 3 (a penalty, say) in an account of 100: its own limit binds first.
    const held = newKey();
    const mine = await Promise.all(Array.from({ length: 5 }, () => admit(l, held, narrow, 1, account)));
    const ok = mine.filter((r) => r.ok);
    expect(ok).toHaveLength(3);
    expect(new Set(mine.map((r) => header(r, 'x-ratelimit-limit-requests')))).toEqual(new Set(['3']));
    expect(ascending(ok.map((r) => num(r, 'x-ratelimit-remaining-requests')))).toEqual([0, 1, 2]);
    for (const r of mine) if (!r.ok) expect(r.scope).toBe('key');
    // Its sibling on the account's tier sees the account: 100, of which the held key used 3.
    const sibling = newKey();
    const first = await admit(l, sibling, wide, 1, account);
    expect(first.ok).toBe(true);
    expect(header(first, 'x-ratelimit-limit-requests')).toBe('100');
    expect(num(first, 'x-ratelimit-remaining-requests')).toBe(96);
    // Drain the account through the sibling; then the held key's refusal names the account only
    // once its own bucket is no longer the tighter one — here it still is (0 of 3 left).
    const rest = await Promise.all(Array.from({ length: 120 }, () => admit(l, sibling, wide, 1, account)));
    expect(rest.filter((r) => r.ok)).toHaveLength(96);
    const last = rest.find((r) => !r.ok);
    if (!last || last.ok) throw new Error('expected a refusal');
    expect(last.scope).toBe('account');
    expect(header(last, 'x-ratelimit-limit-requests')).toBe('100');
  });

  it("a penalty on one key leaves its siblings the account's remainder, and what the penalised key does still counts", async () => {
    const l = await limiter();
    const own = tier(10);
    const penalty: TierLimits = { ...tier(2), id: 'penalty-x' };
    const account = { id: `acct-${newKey()}`, tier: own };
    const [bad, good] = [newKey(), newKey()];
    const byBad = await Promise.all(Array.from({ length: 5 }, () => admit(l, bad, penalty, 1, account)));
    expect(byBad.filter((r) => r.ok)).toHaveLength(2);
    const byGood = await Promise.all(Array.from({ length: 20 }, () => admit(l, good, own, 1, account)));
    expect(byGood.filter((r) => r.ok)).toHaveLength(8);
  });
});
