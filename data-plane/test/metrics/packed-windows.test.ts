import { decodePacked, packedShardOf, PACKED_IP_FIELDS, PACKED_KEY_FIELDS, WINDOWS, bucketOf, redisKeys } from '@fluxgate/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCounters } from '../../src/metrics/counters.js';
import { connectTestRedis, type TestRedis } from '../support/services.js';
import { usageSample } from '../support/usage-sample.js';

/**
 * Issue 13's cycle aim: every counter flush also adds each key's (and IP's) s10 detector counters
 * to the packed window hashes (contracts packed-windows.ts), atomically, so the guard reads a
 * window in a handful of commands; the numbers are the ones the key's own hash holds.
 */
const sample = usageSample;

describe('packed s10 windows from the counter flush', () => {
  let tr: TestRedis;
  beforeEach(async () => {
    tr = await connectTestRedis();
  });
  afterEach(async () => {
    await tr.close();
  });

  it('two replicas flushing the same key and IP add up in the packed entry, equal to the own hash', async () => {
    const at = Date.now();
    const b = bucketOf('s10', at);
    const a = createCounters({ redis: await tr.connect({ enableOfflineQueue: false }) });
    const c = createCounters({ redis: await tr.connect({ enableOfflineQueue: false }) });
    a.record('k1', sample({ promptTokens: 900 }), at);
    a.record('k1', sample({ status: 429, promptTokens: 0, completionTokens: 0 }), at);
    c.record('k1', sample({ status: 404, promptTokens: 4000, completionTokens: 7 }), at);
    c.record('k2', sample(), at);
    a.recordFailedCredential('203.0.113.9', at);
    c.recordFailedCredential('203.0.113.9', at);
    c.recordFailedLogin('203.0.113.9', at);
    // Both flush at once: the script's read-modify-write is atomic, nothing is lost.
    const [ra, rc] = await Promise.all([a.flush(), c.flush()]);
    expect(ra.ok && rc.ok).toBe(true);

    const packed = async (id: string) =>
      decodePacked((await tr.redis.hget(redisKeys.packedUsage('s10', b, packedShardOf(id)), id))!, PACKED_KEY_FIELDS.length);
    // 404 and 429 are both 4xx; completion tokens 50 + 0 + 7; the largest prompt 4000.
    expect(await packed('k1')).toEqual([3, 2, 1, 4900, 57, 4000]);
    const own = await tr.redis.hmget(redisKeys.usage('k1', 's10', b), ...PACKED_KEY_FIELDS);
    expect(own.map(Number)).toEqual(await packed('k1'));
    expect(await packed('k2')).toEqual([1, 0, 0, 100, 50, 100]);

    const ipKey = redisKeys.packedIpUsage('s10', b, packedShardOf('203.0.113.9'));
    expect(decodePacked((await tr.redis.hget(ipKey, '203.0.113.9'))!, PACKED_IP_FIELDS.length)).toEqual([2, 1, 0]);
    // The requesting client (10.0.0.1) has its request count packed too.
    expect(decodePacked((await tr.redis.hget(redisKeys.packedIpUsage('s10', b, packedShardOf('10.0.0.1')), '10.0.0.1'))!, 3)).toEqual([
      0, 0, 4,
    ]);
    const ttl = await tr.redis.ttl(ipKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOWS.s10.ttlSeconds);
    // Only s10 is packed: the chart windows keep their own hashes alone.
    expect(await tr.redis.exists(redisKeys.packedUsage('m1', bucketOf('m1', at), packedShardOf('k1')))).toBe(0);
    // Every active member has its packed entry (the reader's completeness check relies on it).
    for (const id of await tr.redis.smembers(redisKeys.activeKeys('s10', b))) expect(await packed(id)).not.toBeNull();
  });

  it('a stored value that is not a packed one is replaced, never added to', async () => {
    const at = Date.now();
    const b = bucketOf('s10', at);
    const key = redisKeys.packedUsage('s10', b, packedShardOf('k9'));
    await tr.redis.hset(key, 'k9', 'garbage');
    const counters = createCounters({ redis: await tr.connect({ enableOfflineQueue: false }) });
    counters.record('k9', sample(), at);
    expect((await counters.flush()).ok).toBe(true);
    expect(decodePacked((await tr.redis.hget(key, 'k9'))!, PACKED_KEY_FIELDS.length)).toEqual([1, 0, 0, 100, 50, 100]);
  });
});
