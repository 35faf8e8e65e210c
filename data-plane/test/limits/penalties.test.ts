import { DEFAULT_TIERS, redisKeys, type PenaltyLevel, type TierLimits } from '@fluxgate/contracts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPenaltyRecord,
  createPenaltyCache,
  getPenalty,
  liftPenalty,
  listPenalties,
  setPenalty,
  type PenaltyCache,
  type PenaltyCacheOptions,
} from '../../src/limits/penalties.js';
import { createRateLimiter } from '../../src/limits/rate-limiter.js';
import { connectTestRedis, waitUntil, type TestRedis } from '../support/services.js';

let tr: TestRedis;
const caches: PenaltyCache[] = [];
beforeAll(async () => {
  tr = await connectTestRedis();
});
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await tr?.close();
});

const tierOf = (id: string): TierLimits => DEFAULT_TIERS[id as PenaltyLevel] ?? DEFAULT_TIERS.free;
let seq = 0;
const newKey = (): string => `pk-${process.pid}-${++seq}`;
const record = (keyId: string, level: PenaltyLevel = 'penalty-2', durationSeconds = 600) =>
  buildPenaltyRecord({ keyId, level, setBy: 'operator', reason: 'test', durationSeconds });

/** A "replica": its own commands client and its own subscriber connection. */
async function replica(opts: Partial<PenaltyCacheOptions> = {}): Promise<PenaltyCache> {
  const cache = createPenaltyCache({
    redis: await tr.connect({ enableOfflineQueue: false }),
    subscriber: await tr.connect(),
    tierOf,
    ...opts,
  });
  caches.push(cache);
  await cache.start();
  return cache;
}

describe('penalty box store', () => {
  it('set, get, list and lift the record and its index', async () => {
    const keyId = newKey();
    const rec = record(keyId);
    await setPenalty(tr.redis, rec);
    expect(await getPenalty(tr.redis, keyId)).toEqual(rec);
    const ttl = await tr.redis.pttl(redisKeys.penalty(keyId));
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
    expect(await tr.redis.zscore(redisKeys.penaltyIndex(), keyId)).toBe(String(rec.expiresAt));
    expect((await listPenalties(tr.redis)).map((r) => r.keyId)).toContain(keyId);
    expect(await liftPenalty(tr.redis, keyId)).toBe(true);
    expect(await liftPenalty(tr.redis, keyId)).toBe(false);
    expect(await getPenalty(tr.redis, keyId)).toBeNull();
    expect(await tr.redis.zscore(redisKeys.penaltyIndex(), keyId)).toBeNull();
  });

  it('refuses a record that has already ended, and defaults the duration to the level', async () => {
    const rec = buildPenaltyRecord({ keyId: newKey(), level: 'penalty-1', setBy: 'guard', now: 1000 });
    expect(rec.expiresAt).toBe(1000 + 15 * 60 * 1000);
    await expect(setPenalty(tr.redis, rec)).rejects.toThrow(/past/);
  });

  it('ignores a malformed record and one stored under another key', async () => {
    const keyId = newKey();
    await tr.redis.set(redisKeys.penalty(keyId), '{"not":"a record"}');
    expect(await getPenalty(tr.redis, keyId)).toBeNull();
    const other = newKey();
    const rec = record(other);
    await tr.redis.set(redisKeys.penalty(keyId), JSON.stringify(rec), 'PX', 60_000);
    await tr.redis.zadd(redisKeys.penaltyIndex(), rec.expiresAt, keyId);
    expect((await listPenalties(tr.redis)).map((r) => r.keyId)).not.toContain(keyId);
  });
});

describe('penalty cache across replicas', () => {
  it('a penalty set through one replica reaches another within a second; pardon too', async () => {
    const [a, b] = [await replica(), await replica()];
    const keyId = newKey();
    const own = DEFAULT_TIERS.pro;
    expect(b.effectiveTier(keyId, own)).toEqual({ tier: own, penalty: null });

    const started = performance.now();
    await setPenalty(tr.redis, record(keyId, 'penalty-2'));
    await waitUntil(() => a.get(keyId) && b.get(keyId), { timeoutMs: 1000, message: 'penalty not seen within 1 s' });
    const setMs = performance.now() - started;
    expect(setMs).toBeLessThan(1000);
    const eff = b.effectiveTier(keyId, own);
    expect(eff.tier).toEqual(DEFAULT_TIERS['penalty-2']);
    expect(eff.penalty?.level).toBe('penalty-2');

    const liftStarted = performance.now();
    await liftPenalty(tr.redis, keyId);
    await waitUntil(() => a.get(keyId) === null && b.get(keyId) === null, { timeoutMs: 1000, message: 'pardon not seen within 1 s' });
    expect(performance.now() - liftStarted).toBeLessThan(1000);
    expect(b.effectiveTier(keyId, own)).toEqual({ tier: own, penalty: null });
  });

  it('a changed level replaces the old one on every replica', async () => {
    const b = await replica();
    const keyId = newKey();
    await setPenalty(tr.redis, record(keyId, 'penalty-1'));
    await waitUntil(() => b.get(keyId)?.level === 'penalty-1', { timeoutMs: 1000 });
    await setPenalty(tr.redis, record(keyId, 'penalty-3'));
    await waitUntil(() => b.get(keyId)?.level === 'penalty-3', { timeoutMs: 1000, message: 'escalation not seen' });
  });

  it('a penalty ends at its expiry with no message and no Redis', async () => {
    let now = Date.now();
    const b = await replica({ now: () => now });
    const keyId = newKey();
    const rec = record(keyId, 'penalty-1', 60);
    await setPenalty(tr.redis, rec);
    await waitUntil(() => b.get(keyId), { timeoutMs: 1000 });
    now = rec.expiresAt - 1;
    expect(b.get(keyId)).not.toBeNull();
    now = rec.expiresAt;
    // The record is still in Redis (60 s TTL) and nothing was published: the cache ends it itself.
    expect(await tr.redis.exists(redisKeys.penalty(keyId))).toBe(1);
    expect(b.get(keyId)).toBeNull();
    expect(b.effectiveTier(keyId, DEFAULT_TIERS.free).tier).toBe(DEFAULT_TIERS.free);
  });

  it('a lost message is repaired by the periodic resync', async () => {
    const fast = await replica({ resyncIntervalMs: 300 });
    const slow = await replica({ resyncIntervalMs: 60_000 });
    const keyId = newKey();
    const rec = record(keyId, 'penalty-2');
    // Written the way setPenalty does, but the PUBLISH is "lost".
    await tr.redis.zadd(redisKeys.penaltyIndex(), rec.expiresAt, keyId);
    await tr.redis.set(redisKeys.penalty(keyId), JSON.stringify(rec), 'PX', 600_000);
    const started = performance.now();
    await waitUntil(() => fast.get(keyId), { timeoutMs: 2000, message: 'resync did not pick up the record' });
    expect(performance.now() - started).toBeLessThan(1000);
    // Only the resync could have told it: the replica that has not resynced yet still does not know.
    expect(slow.get(keyId)).toBeNull();
    // A lost pardon too: deleted without a message, gone after the next resync.
    await tr.redis.del(redisKeys.penalty(keyId));
    await waitUntil(() => fast.get(keyId) === null, { timeoutMs: 2000, message: 'resync did not drop the lifted record' });
  });

  it('a new replica starts with the box as it is', async () => {
    const keyId = newKey();
    await setPenalty(tr.redis, record(keyId, 'penalty-1'));
    const late = await replica();
    expect(late.get(keyId)?.level).toBe('penalty-1');
    expect(late.stats().lastResyncAt).toBeGreaterThan(0);
  });

  it('the rate limiter applies the penalty level another replica set', async () => {
    const b = await replica();
    const limiter = createRateLimiter({ redis: await tr.connect({ enableOfflineQueue: false }) });
    try {
      const keyId = newKey();
      const own = DEFAULT_TIERS.pro;
      const admitAs = () => {
        const { tier } = b.effectiveTier(keyId, own);
        return limiter.admit(keyId, tier, 10, { id: `acct-${keyId}`, tier: own });
      };
      for (let i = 0; i < 5; i++) expect((await admitAs()).ok).toBe(true);
      await setPenalty(tr.redis, record(keyId, 'penalty-2'));
      await waitUntil(() => b.get(keyId), { timeoutMs: 1000 });
      // penalty-2: one request at once (burst 1, the header's limit), then one per 30 s.
      const first = await admitAs();
      expect(first.ok).toBe(true);
      expect(first.headers).toContainEqual(['x-ratelimit-limit-requests', '1']);
      const second = await admitAs();
      expect(second.ok).toBe(false);
      if (!second.ok) expect(second.retryAfterSeconds).toBeGreaterThan(20);
    } finally {
      await limiter.close();
    }
  });
});
