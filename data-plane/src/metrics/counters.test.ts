import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createCounters, normaliseIp, type UsageSample } from './counters.js';
import { createGatewayMetrics } from './registry.js';

const sample = (over: Partial<UsageSample> = {}): UsageSample => ({
  status: 200,
  promptTokens: 1,
  completionTokens: 1,
  estimated: false,
  requestBytes: 1,
  responseBytes: 1,
  ttfbMs: 1,
  durationMs: 1,
  clientIp: '10.0.0.1',
  model: 'm',
  promptFingerprint: null,
  streamed: false,
  cut: false,
  upstreamError: false,
  ...over,
});

// Never connected (lazyConnect, no offline queue): every flush fails at once, as when Redis is down.
const clients: Redis[] = [];
const offlineRedis = () => {
  const r = new Redis({ lazyConnect: true, enableOfflineQueue: false });
  clients.push(r);
  return r;
};
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

const value = async (m: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await m.get()).values[0]?.value ?? 0;

describe('usage counters (no Redis)', () => {
  it('caps pending buckets, dropping the oldest and counting the dropped samples', async () => {
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    const counters = createCounters({ redis: offlineRedis(), metrics, maxPendingBuckets: 12 });
    const at = Date.now();
    // Each key adds 3 key buckets (one per window); the shared IP adds 3 more once.
    for (let i = 0; i < 10; i++) counters.record(`key-${i}`, sample(), at);
    expect(counters.pendingBuckets()).toBe(12);
    const dropped = counters.stats().droppedSamples;
    expect(dropped).toBeGreaterThan(0);
    expect(await value(metrics.counterDroppedSamples)).toBe(dropped);
    expect(await value(metrics.counterPendingBuckets)).toBe(12);

    const r = await counters.flush();
    expect(r).toMatchObject({ ok: false, written: 0, requeued: 12 });
    expect(counters.pendingBuckets()).toBe(12);
    expect(await value(metrics.counterFlushFailures)).toBe(1);
  });

  it('merges requeued buckets with new samples instead of duplicating them', async () => {
    const counters = createCounters({ redis: offlineRedis() });
    const at = Date.now();
    counters.record('k', sample(), at);
    await counters.flush();
    counters.record('k', sample(), at);
    await counters.flush();
    expect(counters.pendingBuckets()).toBe(6);
    expect(counters.stats()).toMatchObject({ flushFailures: 2, failing: true, droppedSamples: 0 });
  });

  it('drops buckets whose window TTL has passed while Redis was down', async () => {
    let now = Date.now();
    const counters = createCounters({ redis: offlineRedis(), now: () => now });
    counters.record('k', sample());
    now += 15 * 60_000 + 20_000; // past the s10 TTL, within m1 and h1
    await counters.flush();
    expect(counters.pendingBuckets()).toBe(4); // m1 + h1, for the key and the IP
    expect(counters.stats().droppedSamples).toBe(2);
  });

  it('never throws from the hot path, whatever the sample holds', () => {
    const counters = createCounters({ redis: offlineRedis() });
    expect(() =>
      counters.record(
        'k',
        sample({
          promptTokens: Number.NaN,
          durationMs: -5,
          ttfbMs: Infinity,
          clientIp: '',
          model: 'x'.repeat(10_000),
          promptFingerprint: 'NOT HEX',
        }),
      ),
    ).not.toThrow();
    expect(counters.pendingBuckets()).toBe(6);
  });

  it('normalises IPv4-mapped IPv6 addresses', () => {
    expect(normaliseIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(normaliseIp('2001:DB8::1')).toBe('2001:db8::1');
    expect(normaliseIp('')).toBe('unknown');
  });
});
