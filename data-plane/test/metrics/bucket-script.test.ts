import { USAGE_FIELDS, bucketOf, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/log/logger.js';
import { createCounters } from '../../src/metrics/counters.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';
import { usageSample } from '../support/usage-sample.js';

/**
 * Each bucket is written by one script call (metrics/bucket-script.ts). What the flush did with one
 * command per field must still hold: a bucket none of whose writes landed is retried whole, one
 * partly written is not (its sums would count twice), and a script cache emptied under the client
 * (NOSCRIPT) costs a re-send, not the writes. A private redis-server, since these reconfigure it.
 */
const sample = usageSample;

describe('one script call per bucket', () => {
  let srv: SpawnedRedis;
  let hot: Redis;
  let admin: Redis;
  beforeEach(async () => {
    srv = await spawnRedisServer();
    hot = new Redis(srv.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    hot.on('error', () => undefined);
    admin = new Redis(srv.url);
    await waitUntil(() => hot.status === 'ready', { message: 'hot client did not connect' });
  });
  afterEach(async () => {
    hot.disconnect();
    admin.disconnect();
    await srv.kill();
  });

  it('a Redis refusing every write gets nothing, and the buckets are retried whole and written once when it accepts', async () => {
    const at = Date.now();
    const counters = createCounters({ redis: hot });
    counters.record('k1', sample(), at);
    counters.recordFailedCredential('198.51.100.1', at);
    await admin.config('SET', 'min-replicas-to-write', '1'); // every write: NOREPLICAS
    const refused = await counters.flush();
    expect(refused.ok).toBe(false);
    expect(refused.error).toMatch(/NOREPLICAS/);
    expect(refused.requeued).toBe(counters.pendingBuckets());
    expect(refused.requeued).toBe(3 * 3); // k1, its client's IP and the failed credential's, 3 windows each
    expect(await admin.dbsize()).toBe(0);

    await admin.config('SET', 'min-replicas-to-write', '0');
    const accepted = await counters.flush();
    expect(accepted).toMatchObject({ ok: true, written: 9, requeued: 0 });
    for (const w of ['s10', 'm1', 'h1'] as const) {
      const b = bucketOf(w, at);
      expect(await admin.hget(redisKeys.usage('k1', w, b), USAGE_FIELDS.requests)).toBe('1');
      expect(await admin.hget(redisKeys.usage('k1', w, b), USAGE_FIELDS.promptTokens)).toBe('100');
      expect(await admin.hget(redisKeys.usagePrompts('k1', w, b), 'abcdef123456')).toBe('1');
      expect(await admin.hlen(redisKeys.ipUsage('198.51.100.1', w, b))).toBe(1);
    }
  });

  it('a bucket one of whose keys refuses its write is written otherwise and not retried', async () => {
    const at = Date.now();
    const b = bucketOf('m1', at);
    await admin.set(redisKeys.usageIps('k1', 'm1', b), 'not a HyperLogLog');
    const error = vi.fn();
    const logger = { error, warn: vi.fn(), info: vi.fn() } as unknown as Logger;
    const counters = createCounters({ redis: hot, logger });
    counters.record('k1', sample(), at);
    const r = await counters.flush();
    expect(r).toMatchObject({ ok: true, written: 6 });
    // Logged as partly written, with the refusal.
    expect(error).toHaveBeenCalledTimes(1);
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({ buckets: 1, error: expect.stringMatching(/WRONGTYPE/) }),
      expect.any(String),
    );
    expect(counters.pendingBuckets()).toBe(0);
    // Everything after the refused PFADD in the same script call was still written.
    expect(await admin.hget(redisKeys.usage('k1', 'm1', b), USAGE_FIELDS.requests)).toBe('1');
    expect(await admin.pfcount(redisKeys.usageModels('k1', 'm1', b))).toBe(1);
    expect(await admin.hget(redisKeys.usagePrompts('k1', 'm1', b), 'abcdef123456')).toBe('1');
    expect(await admin.ttl(redisKeys.usagePrompts('k1', 'm1', b))).toBeGreaterThan(0);

    // The next flush adds only its own request: nothing counted twice.
    counters.record('k1', sample(), at);
    expect(await counters.flush()).toMatchObject({ ok: true, written: 6 });
    expect(await admin.hget(redisKeys.usage('k1', 'm1', b), USAGE_FIELDS.requests)).toBe('2');
  });

  it('a script cache emptied between flushes (NOSCRIPT) is filled again and every bucket written once', async () => {
    const at = Date.now();
    const counters = createCounters({ redis: hot });
    counters.record('k1', sample(), at);
    expect((await counters.flush()).ok).toBe(true);
    await admin.script('FLUSH');
    for (let i = 0; i < 50; i++) counters.record(`k${i}`, sample(), at);
    expect(await counters.flush()).toMatchObject({ ok: true, written: 50 * 3 + 3 });
    const b = bucketOf('h1', at);
    expect(await admin.hget(redisKeys.usage('k1', 'h1', b), USAGE_FIELDS.requests)).toBe('2');
    for (let i = 0; i < 50; i++)
      expect(await admin.hget(redisKeys.usage(`k${i}`, 'h1', b), USAGE_FIELDS.requests)).toBe(i === 1 ? '2' : '1');
  });
});
