import { guardLeaseSchema, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLease } from '../src/lease/lease.js';
import { ADMIN_TOKEN, startControlPlane, type ControlPlaneProcess } from './support/process.js';
import { connectTestRedis, spawnRedisServer, waitUntil, type SpawnedRedis, type TestRedis } from './support/services.js';

const POLL_SECONDS = 1.5;
const role = async (cp: ControlPlaneProcess): Promise<string> => {
  const res = await request(`${cp.url}/healthz`);
  return ((await res.body.json()) as { role: string }).role;
};

describe('leader lease: two real processes', () => {
  let server: SpawnedRedis;
  let redis: Redis;
  const procs: ControlPlaneProcess[] = [];
  beforeAll(async () => {
    server = await spawnRedisServer();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    redis?.disconnect();
    await server?.kill();
  });
  const start = async (): Promise<ControlPlaneProcess> => {
    const cp = await startControlPlane({ REDIS_URL: server.url, POLL_INTERVAL: String(POLL_SECONDS) });
    procs.push(cp);
    return cp;
  };

  it('one leads, the other stands by; kill -9 the leader and the standby leads within two poll intervals', async () => {
    const a = await start();
    await waitUntil(async () => (await role(a)) === 'leader', { timeoutMs: 5000, message: 'first process never led' });
    const b = await start();
    // The standby has tried at least once (it starts with a try) and must not lead.
    expect(await role(b)).toBe('standby');
    expect(await role(a)).toBe('leader');
    const lease = guardLeaseSchema.parse(JSON.parse((await redis.get(redisKeys.guardLease()))!));
    expect(lease.holder).toBe(a.holder);

    const killedAt = performance.now();
    a.child.kill('SIGKILL');
    await waitUntil(async () => (await role(b)) === 'leader', { timeoutMs: 10_000, intervalMs: 25, message: 'standby never took over' });
    const tookMs = performance.now() - killedAt;
    expect(tookMs).toBeLessThanOrEqual(2 * POLL_SECONDS * 1000);
    expect(JSON.parse((await redis.get(redisKeys.guardLease()))!).holder).toBe(b.holder);

    // The leader's gauge says so on /metrics (behind the admin token).
    const metrics = await request(`${b.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(metrics.statusCode).toBe(200);
    expect(await metrics.body.text()).toMatch(/^fluxgate_guard_leader 1$/m);
  });

  it('a leader stopping cleanly releases the lease at once', async () => {
    const leader = procs.find((p) => p.child.exitCode === null && p.child.signalCode === null)!;
    const next = await start();
    expect(await role(next)).toBe('standby');
    expect(await leader.stop()).toBe(0);
    // Gone at once (or already taken by the standby): never left to expire.
    const after = await redis.get(redisKeys.guardLease());
    expect(after === null || JSON.parse(after).holder === next.holder).toBe(true);
    await waitUntil(async () => (await role(next)) === 'leader', { timeoutMs: 5000, message: 'standby did not take the released lease' });
  });
});

describe('process', () => {
  it('a bad value stops it at boot with one line naming the variable (exit 2), never the value', async () => {
    const err = await startControlPlane({ POLL_INTERVAL: 'soon', ADMIN_TOKEN: 'too-short' }).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/exited with 2 before listening/);
    expect(err).toMatch(/fluxgate control plane: invalid POLL_INTERVAL: /);
    expect(err).toMatch(/fluxgate control plane: invalid ADMIN_TOKEN: must be at least 16 characters/);
    expect(err).not.toContain('too-short');
  });
});

describe('leader lease: compare-and-extend', () => {
  let tr: TestRedis;
  beforeAll(async () => {
    tr = await connectTestRedis();
  });
  afterAll(async () => {
    await tr?.close();
  });

  it('never extends or releases a lease that is no longer its own', async () => {
    let now = 1_000_000;
    const a = createLease({ redis: await tr.connect(), pollIntervalMs: 1000, holder: 'a', now: () => now });
    const b = createLease({ redis: await tr.connect(), pollIntervalMs: 1000, holder: 'b', now: () => now });
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    // a stalls past its TTL; b takes the lease; a's renewal must fail, not extend b's.
    await tr.redis.del(redisKeys.guardLease());
    expect(await b.tick()).toBe(true);
    expect(await a.tick()).toBe(false);
    expect(JSON.parse((await tr.redis.get(redisKeys.guardLease()))!).holder).toBe('b');
    await a.stop();
    expect(JSON.parse((await tr.redis.get(redisKeys.guardLease()))!).holder).toBe('b');
    // Leadership also lapses by the clock when renewals stop getting through.
    now += 5000;
    expect(b.isLeader()).toBe(false);
    await b.stop();
  });
});
