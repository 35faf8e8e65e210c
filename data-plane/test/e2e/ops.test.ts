import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bucketOf, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishKeyEvent } from '../../src/auth/key-events.js';
import { setKeyStatus } from '../../src/store/keys.js';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { spawnRedisServer, TEST_REDIS_URL, waitUntil } from '../support/services.js';

let mock: MockUpstream;
let gw: InProcessGateway;
let redis: Redis;

beforeAll(async () => {
  mock = await startMockUpstream({ events: 5 });
  gw = await startInProcessGateway({ upstreams: mock.url });
  redis = new Redis(TEST_REDIS_URL);
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
  redis?.disconnect();
});

const call = (g: InProcessGateway, key: string, body: Record<string, unknown> = {}) =>
  request(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: g.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'same prompt' }], ...body }),
  });

describe('admin listener', () => {
  it('refuses requests without the bearer token', async () => {
    for (const path of ['/metrics', '/admin/metrics', '/admin/upstreams', '/anything']) {
      const res = await request(`${gw.adminUrl}${path}`, { headers: { authorization: 'Bearer wrong' } });
      expect(res.statusCode).toBe(401);
      await res.body.text();
    }
  });

  it("answers /healthz without the token (this replica's liveness, nothing more), and only /healthz", async () => {
    const res = await request(`${gw.adminUrl}/healthz`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ status: 'ok' });
    for (const path of ['/readyz', '/healthz/x', '/metrics']) {
      const other = await request(`${gw.adminUrl}${path}`);
      expect(other.statusCode).toBe(401);
      await other.body.text();
    }
  });

  it('serves Prometheus metrics with bounded labels and no secrets', async () => {
    const { secret } = await gw.issueKey();
    await (await call(gw, secret)).body.text();
    const res = await request(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    const text = await res.body.text();
    expect(text).toMatch(/fluxgate_http_requests_total\{route_family="openai",status_class="2xx"\} [1-9]/);
    expect(text).toContain('fluxgate_open_streams');
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/key_id|fgk_/);
  });

  it('reports upstream state and a JSON snapshot', async () => {
    const up = await request(`${gw.adminUrl}/admin/upstreams`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = (await up.body.json()) as { upstreams: Array<{ url: string; state: string }> };
    expect(body.upstreams).toHaveLength(1);
    expect(body.upstreams[0]!.state).toBe('healthy');
    // The earlier request's counters are flushed within one interval (200 ms here).
    const s = await waitUntil(
      async () => {
        const snap = await request(`${gw.adminUrl}/admin/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        const body = (await snap.body.json()) as { counters: { flushes: number; failing: boolean }; keyCache: { entries: number } };
        return body.counters.flushes > 0 ? body : null;
      },
      { timeoutMs: 3000, intervalMs: 50 },
    );
    expect(s.counters.failing).toBe(false);
    expect(s.keyCache.entries).toBeGreaterThan(0);
  });
});

describe('usage counters', () => {
  it('are flushed to Redis under the contracts/ names', async () => {
    const { secret, id } = await gw.issueKey();
    const at = Date.now();
    for (let i = 0; i < 3; i++) await (await call(gw, secret)).body.text();
    await (await call(gw, secret, { stream: true })).body.text();
    const key = redisKeys.usage(id, 's10', bucketOf('s10', at));
    const fields = await waitUntil(
      async () => {
        const h = await redis.hgetall(key);
        return Number(h.req) >= 4 ? h : null;
      },
      { timeoutMs: 3000 },
    );
    expect(Number(fields.req)).toBe(4);
    expect(Number(fields.s2xx)).toBe(4);
    expect(Number(fields.ptok)).toBe(4 * 9); // the mock reports 9 prompt tokens per request
    expect(Number(fields.ctok)).toBeGreaterThan(0);
    expect(Number(fields.streams)).toBe(1);
    expect(await redis.ttl(key)).toBeGreaterThan(0);
    expect(await redis.sismember(redisKeys.activeKeys('s10', bucketOf('s10', at)), id)).toBe(1);
    // The same prompt four times shows up as one fingerprint with count 4.
    const fps = await redis.hgetall(redisKeys.usagePrompts(id, 's10', bucketOf('s10', at)));
    expect(Object.values(fps).map(Number)).toEqual([4]);
  });

  it('count failed credential attempts per client IP', async () => {
    const at = Date.now();
    for (let i = 0; i < 3; i++) await (await call(gw, `fgk_${'x'.repeat(49)}`)).body.text();
    const key = redisKeys.ipUsage('127.0.0.1', 's10', bucketOf('s10', at));
    const n = await waitUntil(async () => Number((await redis.hget(key, 'badkey')) ?? 0) >= 3 || null, { timeoutMs: 3000 });
    expect(n).toBe(true);
  });
});

describe('keys', () => {
  it('a revoked key stops working within a second', async () => {
    const { secret, id } = await gw.issueKey();
    expect((await call(gw, secret)).statusCode).toBe(200);
    const change = await setKeyStatus(gw.db.sql, id, 'revoked');
    const t0 = performance.now();
    await publishKeyEvent(redis, { type: 'revoked', keyId: id, keyHash: change.keyHash });
    await waitUntil(
      async () => {
        const res = await call(gw, secret);
        await res.body.text();
        return res.statusCode === 401 || null;
      },
      { timeoutMs: 1000, intervalMs: 20 },
    );
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('readiness and configuration', () => {
  it('readyz is 200 when everything answers and 503 when no upstream does', async () => {
    const ok = await request(`${gw.url}/readyz`, { dispatcher: gw.dispatcher });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.json()).toMatchObject({
      status: 'ready',
      checks: { redis: { status: 'ok' }, postgres: { status: 'ok' }, upstreams: { status: 'ok', reason: '1 of 1 available' } },
    });
    const dead = await startInProcessGateway({ upstreams: 'http://127.0.0.1:9', env: { UPSTREAM_PROBE_INTERVAL_MS: '100' } });
    try {
      const body = await waitUntil(
        async () => {
          const res = await request(`${dead.url}/readyz`, { dispatcher: dead.dispatcher });
          const b = (await res.body.json()) as { failing: string[]; checks: { upstreams: { status: string; reason: string } } };
          return res.statusCode === 503 ? b : null;
        },
        { timeoutMs: 5000, intervalMs: 200 },
      );
      expect(body.failing).toEqual(['upstreams']);
      expect(body.checks.upstreams).toEqual({ status: 'failing', reason: 'none of 1 available (failing probes or circuit open)' });
    } finally {
      await dead.stop();
    }
  });

  it('a bad variable stops the process with one line naming it', async () => {
    const main = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
    const child = spawn(process.execPath, [main], {
      env: { PATH: process.env.PATH ?? '', PUBLIC_PORT: 'not-a-port', JWT_SECRET: 'too-short-secret' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid PUBLIC_PORT/);
    expect(stderr).toMatch(/invalid JWT_SECRET: must be at least 32 bytes/);
    expect(stderr).not.toContain('too-short-secret');
  });
});

describe('Redis failure', () => {
  it('keeps serving while Redis is down and flushes the counters it kept once Redis is back', async () => {
    const own = await spawnRedisServer();
    const g = await startInProcessGateway({ upstreams: mock.url, redisUrl: own.url });
    const probe = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      const { secret, id } = await g.issueKey();
      expect((await call(g, secret)).statusCode).toBe(200);
      await own.kill();
      const at = Date.now();
      for (let i = 0; i < 5; i++) {
        const res = await call(g, secret);
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }
      await own.start();
      await probe.connect();
      // The five requests may straddle a window boundary on a loaded machine: sum their windows.
      const windows = Array.from({ length: bucketOf('s10', Date.now()) - bucketOf('s10', at) + 1 }, (_, i) =>
        redisKeys.usage(id, 's10', bucketOf('s10', at) + i),
      );
      const sent = async () => (await Promise.all(windows.map((w) => probe.hget(w, 'req')))).reduce((n, v) => n + Number(v ?? 0), 0);
      const req = await waitUntil(async () => (await sent()) >= 5 || null, {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      expect(req).toBe(true);
      expect(await g.serving()).toBe(true);
    } finally {
      probe.disconnect();
      await g.stop();
      await own.kill();
    }
  });
});
