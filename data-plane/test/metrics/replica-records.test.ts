import {
  REPLICA_RECORD_STALE_MS,
  redisKeys,
  replicaMetricsSchema,
  upstreamHealthReportSchema,
  type ReplicaMetrics,
} from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';

/**
 * Issue 13: the replica's records for the control plane (contracts health.ts), written with every
 * counter flush. A private redis-server: the records are shared hashes, and other test gateways
 * on the machine's Redis write their own fields into them.
 */
let server: SpawnedRedis;
let redis: Redis;
let mock: MockUpstream;
let gw: Gateway;

beforeAll(async () => {
  server = await spawnRedisServer();
  redis = new Redis(server.url);
  mock = await startMockUpstream({ events: 3 });
  // One flush a second: a record's interval quantiles stay readable for a second.
  gw = await startGateway({ upstreams: mock.url, redisUrl: server.url, env: { COUNTER_FLUSH_MS: '1000', UPSTREAM_MAX_RETRIES: '0' } });
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
  redis?.disconnect();
  await server?.kill();
});

const chat = (key: string) =>
  request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
  });

const field = async (hash: string, id: string): Promise<unknown> => {
  const text = await redis.hget(hash, id);
  return text === null ? null : JSON.parse(text);
};

describe('replica records', () => {
  it('after traffic, the metrics and upstream-health records exist, parse with the contract and show the numbers', async () => {
    const { secret } = await gw.issueKey();
    for (let i = 0; i < 3; i++) {
      const res = await chat(secret);
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    mock.set({ status: 503 });
    const failed = await chat(secret);
    expect(failed.statusCode).toBeGreaterThanOrEqual(500);
    await failed.body.text();
    mock.reset();

    // The first record written after the four requests carries their latency (later ones: null).
    const metrics = await waitUntil(
      async () => {
        const m = replicaMetricsSchema.parse(await field(redisKeys.replicaMetrics(), gw.replicaId));
        return m.requests === 4 && m.latencyMs !== null ? m : null;
      },
      { timeoutMs: 10_000, intervalMs: 20, message: 'a metrics record with the four requests and their latency' },
    );
    expect(metrics).toMatchObject<Partial<ReplicaMetrics>>({
      replicaId: gw.replicaId,
      requests: 4,
      errors: 1,
      rateLimited: 0,
      openStreams: 0,
    });
    expect(metrics.latencyMs!.p50).toBeGreaterThan(0);
    expect(metrics.latencyMs!.p99).toBeGreaterThanOrEqual(metrics.latencyMs!.p50);
    expect(metrics.ttfbMs?.p50).toBeGreaterThan(0);
    expect(metrics.startedAt).toBeLessThanOrEqual(metrics.at);

    const health = upstreamHealthReportSchema.parse(await field(redisKeys.upstreamHealth(), gw.replicaId));
    expect(health.replicaId).toBe(gw.replicaId);
    expect(health.upstreams).toHaveLength(1);
    expect(health.upstreams[0]).toMatchObject({ url: `${mock.url}/`, state: 'healthy', requests: 4, failures: 1, outstanding: 0 });

    // Both hashes live at most REPLICA_RECORD_STALE_MS past the last write.
    for (const key of [redisKeys.replicaMetrics(), redisKeys.upstreamHealth()]) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(REPLICA_RECORD_STALE_MS);
    }
  });

  it("a dead replica's records disappear at a live replica's next flush once stale; junk goes too", async () => {
    const at = Date.now() - REPLICA_RECORD_STALE_MS - 1000;
    // What a replica killed more than REPLICA_RECORD_STALE_MS ago left behind.
    const dead = replicaMetricsSchema.parse({
      replicaId: 'dead',
      at,
      startedAt: at - 1000,
      requests: 1,
      errors: 0,
      rateLimited: 0,
      openStreams: 0,
      latencyMs: null,
      ttfbMs: null,
    });
    await redis.hset(redisKeys.replicaMetrics(), 'dead', JSON.stringify(dead), 'junk', 'not json');
    await redis.hset(redisKeys.upstreamHealth(), 'dead', JSON.stringify({ replicaId: 'dead', at, upstreams: [] }));
    // A recently dead one (younger than the threshold) is kept: readers still see its last state.
    const recent = { ...dead, replicaId: 'recent', at: Date.now() };
    await redis.hset(redisKeys.replicaMetrics(), 'recent', JSON.stringify(recent));

    await waitUntil(
      async () =>
        (await redis.hexists(redisKeys.replicaMetrics(), 'dead')) === 0 && (await redis.hexists(redisKeys.upstreamHealth(), 'dead')) === 0,
      {
        timeoutMs: 10_000,
        message: "the stale replica's fields removed",
      },
    );
    expect(await redis.hexists(redisKeys.replicaMetrics(), 'junk')).toBe(0);
    expect(await redis.hexists(redisKeys.replicaMetrics(), 'recent')).toBe(1);
    expect(await redis.hexists(redisKeys.replicaMetrics(), gw.replicaId)).toBe(1);
    await redis.hdel(redisKeys.replicaMetrics(), 'recent');
  });

  it('an idle replica keeps its records fresh, and a stopped one takes them with it', async () => {
    const second = await startGateway({ upstreams: mock.url, redisUrl: server.url, env: { COUNTER_FLUSH_MS: '200' } });
    const first = await waitUntil(async () => (await field(redisKeys.replicaMetrics(), second.replicaId)) as ReplicaMetrics | null, {
      timeoutMs: 10_000,
    });
    // No traffic at all: the record is still rewritten every flush.
    await waitUntil(async () => ((await field(redisKeys.replicaMetrics(), second.replicaId)) as ReplicaMetrics).at > first.at, {
      timeoutMs: 10_000,
    });
    expect(await second.stop()).toBe(0);
    expect(await redis.hexists(redisKeys.replicaMetrics(), second.replicaId)).toBe(0);
    expect(await redis.hexists(redisKeys.upstreamHealth(), second.replicaId)).toBe(0);
  });
});
