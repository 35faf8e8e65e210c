import type { TierLimits } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type AccountRef, type RateLimiter, type RateLimiterOptions } from '../../src/limits/rate-limiter.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';

// A private redis-server this file may kill, restart and pause without touching the shared one.
let srv: SpawnedRedis;
let running = false;
const kill = async (): Promise<void> => {
  await srv.kill();
  running = false;
};
const restart = async (): Promise<void> => {
  await srv.start();
  running = true;
};
const clients: Redis[] = [];
const limiters: RateLimiter[] = [];
beforeAll(async () => {
  srv = await spawnRedisServer();
  running = true;
});
afterEach(async () => {
  await Promise.all(limiters.splice(0).map((l) => l.close()));
  for (const c of clients.splice(0)) c.disconnect();
  // Each test starts with the server up (spawnRedisServer tracks one child: never start it twice).
  if (!running) await restart();
});
afterAll(async () => {
  await srv?.kill();
});

function hotClient(): Redis {
  // As main.ts builds the hot-path client: no offline queue, so an outage fails fast.
  const c = new Redis(srv.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

async function limiter(opts: Partial<RateLimiterOptions> = {}): Promise<RateLimiter> {
  const redis = hotClient();
  await waitUntil(() => redis.status === 'ready', { message: 'hot client did not connect' });
  const l = createRateLimiter({ redis, ...opts });
  limiters.push(l);
  return l;
}

const tier = (capacity: number): TierLimits => ({
  id: 'test',
  requestsPerWindow: capacity,
  tokensPerWindow: 1_000_000,
  windowSeconds: 86_400,
  concurrentStreams: 4,
  burst: capacity,
});

/** Each key is its own account's only key unless a test says otherwise. */
const admit = (l: RateLimiter, keyId: string, t: TierLimits, tokens: number, account: AccountRef = { id: `acct-${keyId}`, tier: t }) =>
  l.admit(keyId, t, tokens, account);

async function admitted(l: RateLimiter, keyId: string, t: TierLimits, n: number, account?: AccountRef): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await admit(l, keyId, t, 1, account)).ok) ok++;
  return ok;
}

describe('rate limiter with Redis unavailable', () => {
  it('keeps serving under local limits while Redis is down, and recovers by itself when it returns', async () => {
    const l = await limiter();
    const t = tier(5);
    expect(await admitted(l, 'seen', t, 2)).toBe(2);
    const up = l.stats();
    await kill();

    // A key seen before the outage continues from what it had left (3), not a fresh allowance.
    expect(await admitted(l, 'seen', t, 10)).toBe(3);
    expect(l.degraded).toBe(true);
    // A key not seen before gets the tier (÷ LIMITS_ASSUMED_REPLICAS, here 1) locally.
    expect(await admitted(l, 'unseen', t, 10)).toBe(5);
    const refusal = await admit(l, 'unseen', t, 1);
    expect(refusal.ok).toBe(false);
    if (!refusal.ok) expect(refusal.reason).toBe('requests');
    const down = l.stats();
    // Units already leased before the outage are spent first; the rest is decided locally.
    expect(down.decisions.fallback_admit + down.decisions.lease_admit - up.decisions.lease_admit).toBe(8);
    expect(down.decisions.fallback_admit).toBeGreaterThanOrEqual(7);
    expect(down.decisions.fallback_refuse).toBeGreaterThanOrEqual(8);
    expect(down.outages).toBe(1);

    await restart(); // empty again: no persistence
    await waitUntil(() => !l.degraded, { timeoutMs: 5000, message: 'limiter still degraded after Redis returned' });
    const callsBefore = l.stats().redisCalls;
    const back = await admit(l, 'unseen', t, 1);
    expect(back.ok).toBe(true);
    if (back.ok) expect(back.reservation.source).toBe('redis');
    expect(l.stats().redisCalls).toBeGreaterThan(callsBefore);
  });

  it("bounds each account too while down: two keys of one account share the account's local allowance", async () => {
    const l = await limiter({ assumedReplicas: 2 });
    const t = tier(10);
    const account = { id: 'acct-shared', tier: t };
    await kill();
    // tier 10 ÷ 2 assumed replicas = 5 for the account here, however many keys it uses.
    const byTwoKeys = (await admitted(l, 'one', t, 4, account)) + (await admitted(l, 'two', t, 10, account));
    expect(byTwoKeys).toBe(5);
    const refusal = await admit(l, 'two', t, 1, account);
    expect(refusal.ok).toBe(false);
    if (!refusal.ok) expect([refusal.reason, refusal.scope]).toEqual(['requests', 'account']);
    // Another account is not affected.
    expect(await admitted(l, 'three', t, 10)).toBe(5);
  });

  it('splits the tier between LIMITS_ASSUMED_REPLICAS while down', async () => {
    const l = await limiter({ assumedReplicas: 4 });
    await kill();
    expect(await admitted(l, 'k', tier(20), 30)).toBe(5);
  });

  it("policy 'closed' refuses as unavailable, 'open' admits everything", async () => {
    const closed = await limiter({ redisDownPolicy: 'closed' });
    const open = await limiter({ redisDownPolicy: 'open' });
    await kill();
    const c = await admit(closed, 'k', tier(5), 1);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.reason).toBe('unavailable');
    expect(await admitted(closed, 'k', tier(5), 5)).toBe(0);
    expect(await admitted(open, 'k', tier(5), 50)).toBe(50);
    expect(open.degraded).toBe(true);
  });

  it('a Redis that hangs (CLIENT PAUSE) times out into local limits, and a probe clears it after', async () => {
    const l = await limiter({ redisTimeoutMs: 150, probeIntervalMs: 200 });
    const admin = new Redis(srv.url);
    clients.push(admin);
    await admin.call('CLIENT', 'PAUSE', '1000', 'ALL');
    const started = performance.now();
    const first = await admit(l, 'k', tier(5), 1);
    expect(first.ok).toBe(true);
    if (first.ok) expect(first.reservation.source).toBe('fallback');
    expect(performance.now() - started).toBeLessThan(900);
    expect(l.degraded).toBe(true);
    // The connection never dropped, so no 'ready' event: only a successful probe ends it.
    await waitUntil(
      async () => {
        await admit(l, 'k', tier(5), 1);
        return !l.degraded;
      },
      { timeoutMs: 5000, intervalMs: 100, message: 'probe did not clear degraded' },
    );
  });
});
