import { IP_FIELDS, USAGE_FIELDS, WINDOWS, bucketOf, redisKeys, usageBucketSchema } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCounters } from '../../src/metrics/counters.js';
import { createGatewayMetrics } from '../../src/metrics/registry.js';
import { connectTestRedis, spawnRedisServer, waitUntil, type SpawnedRedis, type TestRedis } from '../support/services.js';
import { usageSample } from '../support/usage-sample.js';

const sample = usageSample;

const metricValue = async (m: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await m.get()).values[0]?.value ?? 0;

describe('usage counters against the shared Redis', () => {
  let tr: TestRedis;
  let hot: Redis;
  beforeEach(async () => {
    tr = await connectTestRedis();
    hot = await tr.connect({ enableOfflineQueue: false });
  });
  afterEach(async () => {
    await tr.close();
  });

  it('writes every field of every window in one pipeline (one socket write), with TTLs', async () => {
    const at = Date.now();
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    const counters = createCounters({ redis: hot, metrics });
    counters.record('k1', sample({ clientIp: '::ffff:10.0.0.1' }), at);
    counters.record(
      'k1',
      sample({ status: 429, promptTokens: 0, completionTokens: 0, ttfbMs: null, clientIp: '10.0.0.2', model: 'gpt-4o', streamed: false }),
      at,
    );
    counters.record(
      'k1',
      sample({
        status: 502,
        promptTokens: 300,
        completionTokens: 7,
        estimated: true,
        upstreamError: true,
        cut: true,
        promptFingerprint: '0123456789abcdef',
      }),
      at,
    );
    counters.record('k2', sample({ clientIp: '10.0.0.3', durationMs: 12.6 }), at);
    counters.recordFailedCredential('203.0.113.9', at);
    counters.recordFailedCredential('203.0.113.9', at);
    expect(counters.pendingBuckets()).toBe(3 * 2 + 3 * 4); // 2 keys + 4 IPs, 3 windows each

    const pipelineSpy = vi.spyOn(hot, 'pipeline');
    const writeSpy = vi.spyOn(hot.stream, 'write');
    const result = await counters.flush();
    expect(result).toMatchObject({ ok: true, written: 18, requeued: 0 });
    expect(pipelineSpy).toHaveBeenCalledTimes(1);
    expect(writeSpy).toHaveBeenCalledTimes(1);
    expect(counters.pendingBuckets()).toBe(0);

    const r = tr.redis;
    for (const w of ['s10', 'm1', 'h1'] as const) {
      const b = bucketOf(w, at);
      const k1 = usageBucketSchema.parse(await r.hgetall(redisKeys.usage('k1', w, b)));
      expect(k1).toEqual({
        [USAGE_FIELDS.requests]: 3,
        [USAGE_FIELDS.status2xx]: 1,
        [USAGE_FIELDS.status3xx]: 0,
        [USAGE_FIELDS.status4xx]: 1,
        [USAGE_FIELDS.status5xx]: 1,
        [USAGE_FIELDS.rateLimited]: 1,
        [USAGE_FIELDS.promptTokens]: 400,
        [USAGE_FIELDS.completionTokens]: 57,
        [USAGE_FIELDS.estimatedRequests]: 1,
        [USAGE_FIELDS.requestBytes]: 3000,
        [USAGE_FIELDS.responseBytes]: 6000,
        [USAGE_FIELDS.ttfbMsSum]: 60,
        [USAGE_FIELDS.ttfbCount]: 2,
        [USAGE_FIELDS.durationMsSum]: 1200,
        [USAGE_FIELDS.maxPromptTokens]: 300,
        [USAGE_FIELDS.streams]: 2,
        [USAGE_FIELDS.cutStreams]: 1,
        [USAGE_FIELDS.upstreamErrors]: 1,
        [USAGE_FIELDS.lastUsedMs]: at,
      });
      expect(await r.pfcount(redisKeys.usageIps('k1', w, b))).toBe(2);
      expect(await r.pfcount(redisKeys.usageModels('k1', w, b))).toBe(2);
      expect(await r.hgetall(redisKeys.usagePrompts('k1', w, b))).toEqual({ abcdef123456: '2', '0123456789ab': '1' });
      expect((await r.smembers(redisKeys.activeKeys(w, b))).sort()).toEqual(['k1', 'k2']);
      expect(await r.hget(redisKeys.usage('k2', w, b), USAGE_FIELDS.durationMsSum)).toBe('13');
      expect(await r.hgetall(redisKeys.ipUsage('203.0.113.9', w, b))).toEqual({ [IP_FIELDS.failedCredentials]: '2' });
      expect(await r.hgetall(redisKeys.ipUsage('10.0.0.1', w, b))).toEqual({ [IP_FIELDS.requests]: '2' });
      expect((await r.smembers(redisKeys.activeIps(w, b))).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '203.0.113.9']);

      const ttl = WINDOWS[w].ttlSeconds;
      for (const key of [
        redisKeys.usage('k1', w, b),
        redisKeys.usageIps('k1', w, b),
        redisKeys.usageModels('k1', w, b),
        redisKeys.usagePrompts('k1', w, b),
        redisKeys.activeKeys(w, b),
        redisKeys.ipUsage('203.0.113.9', w, b),
        redisKeys.activeIps(w, b),
      ]) {
        const left = await r.ttl(key);
        expect(left, key).toBeGreaterThan(ttl - 5);
        expect(left, key).toBeLessThanOrEqual(ttl);
      }
    }
    expect(await metricValue(metrics.counterFlushFailures)).toBe(0);
  });

  it('adds sums and max-merges maxima across flushes and across replicas', async () => {
    const at = Date.now();
    const replicaA = createCounters({ redis: hot });
    const replicaB = createCounters({ redis: await tr.connect({ enableOfflineQueue: false }) });
    replicaA.record('k1', sample({ promptTokens: 500 }), at);
    await replicaA.flush();
    replicaB.record('k1', sample({ promptTokens: 200 }), at + 5);
    replicaA.record('k1', sample({ promptTokens: 100 }), at + 1);
    await Promise.all([replicaA.flush(), replicaB.flush()]);
    const h = usageBucketSchema.parse(await tr.redis.hgetall(redisKeys.usage('k1', 'h1', bucketOf('h1', at))));
    expect(h[USAGE_FIELDS.requests]).toBe(3);
    expect(h[USAGE_FIELDS.promptTokens]).toBe(800);
    expect(h[USAGE_FIELDS.maxPromptTokens]).toBe(500);
    expect(h[USAGE_FIELDS.lastUsedMs]).toBe(at + 5);
  });

  it('does not retry (double count) a bucket that was partly written', async () => {
    const at = Date.now();
    const b = bucketOf('s10', at);
    await tr.redis.set(redisKeys.usage('k1', 's10', b), 'not a hash');
    const counters = createCounters({ redis: hot });
    counters.record('k1', sample(), at);
    counters.record('k2', sample(), at);
    const r = await counters.flush();
    expect(r.ok).toBe(true);
    expect(counters.pendingBuckets()).toBe(0);
    expect(await tr.redis.hget(redisKeys.usage('k2', 's10', b), USAGE_FIELDS.requests)).toBe('1');
    expect(await tr.redis.pfcount(redisKeys.usageIps('k1', 's10', b))).toBe(1);
  });
});

describe('usage counters while Redis is down', () => {
  let srv: SpawnedRedis;
  let hot: Redis;
  let reader: Redis;
  beforeEach(async () => {
    srv = await spawnRedisServer();
    hot = new Redis(srv.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 25 });
    hot.on('error', () => undefined);
    await waitUntil(() => hot.status === 'ready', { message: 'hot client did not connect' });
  });
  afterEach(async () => {
    hot.disconnect();
    reader?.disconnect();
    await srv.kill();
  });

  it('keeps the aggregates, never blocks record(), and flushes them once Redis is back (by itself)', async () => {
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    const counters = createCounters({ redis: hot, metrics, intervalMs: 20 });
    const at = Date.now();
    counters.record('k1', sample({ promptTokens: 10 }), at);
    await srv.kill();
    await waitUntil(() => hot.status !== 'ready', { message: 'client did not notice the outage' });

    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) counters.record('k1', sample({ promptTokens: 10 }), at);
    counters.recordFailedCredential('198.51.100.1', at);
    expect(performance.now() - t0).toBeLessThan(200);

    const failed = await counters.flush();
    expect(failed.ok).toBe(false);
    expect(counters.pendingBuckets()).toBeGreaterThan(0);
    expect(await metricValue(metrics.counterFlushFailures)).toBe(1);
    counters.record('k1', sample({ promptTokens: 10, model: 'other-model' }), at);

    counters.start();
    await srv.start();
    reader = new Redis(srv.url);
    const key = redisKeys.usage('k1', 'm1', bucketOf('m1', at));
    await waitUntil(async () => (await reader.hget(key, USAGE_FIELDS.requests)) === '1002', {
      timeoutMs: 5000,
      message: 'pending counters were not flushed after Redis came back',
    });
    await counters.stop();
    expect(await reader.hget(key, USAGE_FIELDS.promptTokens)).toBe('10020');
    expect(await reader.pfcount(redisKeys.usageModels('k1', 'm1', bucketOf('m1', at)))).toBe(2);
    expect(await reader.hget(redisKeys.ipUsage('198.51.100.1', 'm1', bucketOf('m1', at)), IP_FIELDS.failedCredentials)).toBe('1');
    expect(counters.stats()).toMatchObject({ pendingBuckets: 0, droppedSamples: 0, failing: false });
  });
});
