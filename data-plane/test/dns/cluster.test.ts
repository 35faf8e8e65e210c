/**
 * CLUSTER_DOMAIN answers from the replica registry in the real Redis: two replicas heartbeat,
 * one stops (a crash: no deregistration) and drops out once its heartbeat is older than
 * REPLICA_TTL_MS. Only Date is faked (the registry's clock); Redis and timers run for real.
 */
import { REPLICA_TTL_MS, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerReplica, watchReplicas, type ReplicaView, type StopHeartbeat } from '../../src/dns/replica-registry.js';
import { connectTestRedis, spawnRedisServer, waitUntil, type TestRedis } from '../support/services.js';
import { buildResolver } from './support.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const addressesOf = async (r: ReturnType<typeof buildResolver>['resolver'], name: string) =>
  (await r.resolve(name, 'A')).addresses.sort().join(',');

describe('CLUSTER_DOMAIN from the Redis replica registry', () => {
  it('answers the live replicas, one by id, and drops a replica whose heartbeat stopped', async () => {
    const t: TestRedis = await connectTestRedis();
    cleanups.push(() => t.close());
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const stopA: StopHeartbeat = registerReplica(t.redis, { id: 'dp-a', address: '10.1.0.1', port: 8443 }, 50);
    const stopB: StopHeartbeat = registerReplica(t.redis, { id: 'dp-b', address: '10.1.0.2', port: 8443 }, 50);
    cleanups.push(
      () => stopA(),
      () => stopB(),
    );
    const view: ReplicaView = watchReplicas(t.redis, { refreshMs: 20 });
    cleanups.push(() => view.stop());
    const { resolver } = buildResolver({ overrides: { clusterDomain: 'fluxgate.internal', replicas: view } });

    await waitUntil(async () => (await addressesOf(resolver, 'fluxgate.internal')) === '10.1.0.1,10.1.0.2', { message: 'both replicas' });
    expect(await addressesOf(resolver, 'dp-b.fluxgate.internal')).toBe('10.1.0.2');
    // The private addresses are fine: override names are exempt from the SSRF guard.
    expect(await resolver.resolve('fluxgate.internal', 'A')).toMatchObject({ rcode: 'NOERROR', ttl: 5, source: 'override' });

    // dp-b crashes: no more heartbeats, and no deregistration.
    await stopB({ deregister: false });
    vi.setSystemTime(t0 + REPLICA_TTL_MS + 1_000);
    await waitUntil(async () => (await addressesOf(resolver, 'fluxgate.internal')) === '10.1.0.1', { message: 'dp-b dropped' });
    expect(await resolver.resolve('dp-b.fluxgate.internal', 'A')).toMatchObject({ rcode: 'NXDOMAIN', addresses: [] });
    // dp-a's next heartbeat pruned the stale member from Redis as well.
    await waitUntil(async () => (await t.redis.zcard(redisKeys.replicas())) === 1, { message: 'stale member pruned' });

    // A graceful stop deregisters at once.
    await stopA();
    expect(await t.redis.zcard(redisKeys.replicas())).toBe(0);
  });

  it('never waits on Redis: before the first read a lookup fails fast, and an outage keeps the last view', async () => {
    const server = await spawnRedisServer();
    cleanups.push(() => server.kill());
    const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 200 });
    redis.on('error', () => undefined);
    cleanups.push(() => redis.disconnect());
    await waitUntil(() => redis.status === 'ready');

    const errors: unknown[] = [];
    const stop = registerReplica(redis, { id: 'dp-1', address: '10.2.0.1', port: 8443 }, 50, { onError: (e) => errors.push(e) });
    cleanups.push(() => stop({ deregister: false }));
    const view = watchReplicas(redis, { refreshMs: 20, onError: (e) => errors.push(e) });
    cleanups.push(() => view.stop());
    const { resolver } = buildResolver({ overrides: { clusterDomain: 'c.internal', replicas: view } });
    // Until the registry has been read once, the cluster name is a temporary failure, answered at
    // once: the override is matched synchronously, before the first ZRANGEBYSCORE can return.
    const first = resolver.resolve('c.internal', 'A');
    expect(view.live()).toBeNull();
    expect((await first).rcode).toBe('SERVFAIL');

    await waitUntil(async () => (await addressesOf(resolver, 'c.internal')) === '10.2.0.1');
    await server.kill();
    await waitUntil(() => errors.length > 0, { message: 'the outage is noticed' });
    // The view is answered synchronously from what was last read: nothing to wait for.
    expect(view.live()?.map((r) => r.address)).toEqual(['10.2.0.1']);
    expect(await addressesOf(resolver, 'c.internal')).toBe('10.2.0.1');
  });

  it('at start-up, beats and reads as soon as the hot-path client is ready, not a period later', async () => {
    const t = await connectTestRedis();
    cleanups.push(() => t.close());
    // The client main.ts builds: no offline queue, so anything sent before 'ready' fails at once.
    const fresh = new Redis(t.url, { keyPrefix: t.prefix, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    cleanups.push(() => fresh.disconnect());
    expect(fresh.status).not.toBe('ready');
    const errors: unknown[] = [];
    // Periods far longer than the waits below: only the 'ready' event can make these pass.
    const stop = registerReplica(fresh, { id: 'dp-early', address: '10.3.0.1', port: 8443 }, REPLICA_TTL_MS / 2, {
      onError: (e) => errors.push(e),
    });
    cleanups.push(() => stop());
    const view = watchReplicas(fresh, { refreshMs: 60_000, onError: (e) => errors.push(e) });
    cleanups.push(() => view.stop());

    await waitUntil(async () => (await t.redis.zcard(redisKeys.replicas())) === 1, { message: 'first heartbeat written' });
    await waitUntil(() => view.live()?.length === 1, { message: 'first registry read' });
    expect(view.live()?.[0]).toMatchObject({ id: 'dp-early', address: '10.3.0.1' });
    expect(errors).toEqual([]);
  });
});
