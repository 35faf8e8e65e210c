import { liftIpBlock, setIpBlock, type IpBlockRecord } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';

/**
 * Issue 13: IP blocks the guard writes for credential abuse are enforced by the data plane before
 * authentication, in each family's error shape. A private redis-server: a block is global, and
 * blocking an address on the machine's Redis would refuse other tests' clients.
 */
let server: SpawnedRedis;
let redis: Redis;
let mock: MockUpstream;
let gw: InProcessGateway;
let key: string;

const BLOCKED = '203.0.113.7';
const OTHER = '198.51.100.9';

beforeAll(async () => {
  server = await spawnRedisServer();
  redis = new Redis(server.url);
  mock = await startMockUpstream({ events: 2 });
  // Resync every 10 minutes: a block that takes effect at once arrived over pub/sub.
  gw = await startInProcessGateway({
    upstreams: mock.url,
    redisUrl: server.url,
    env: { TRUSTED_PROXIES: '127.0.0.1', IP_BLOCK_RESYNC_MS: '600000' },
  });
  key = (await gw.issueKey()).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
  redis?.disconnect();
  await server?.kill();
});

const send = (path: string, opts: { from?: string; key?: string | null; body?: unknown; method?: 'GET' | 'POST' } = {}) =>
  request(`${gw.url}${path}`, {
    method: opts.method ?? 'POST',
    dispatcher: gw.dispatcher,
    headers: {
      ...(opts.from ? { 'x-forwarded-for': opts.from } : {}),
      ...(opts.key === null ? {} : { authorization: `Bearer ${opts.key ?? key}` }),
      'content-type': 'application/json',
    },
    ...(opts.method === 'GET'
      ? {}
      : { body: JSON.stringify(opts.body ?? { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }) }),
  });

const block = (ip: string, seconds: number): IpBlockRecord => ({
  ip,
  expiresAt: Date.now() + seconds * 1000,
  reason: 'credential_stuffing (guard)',
  incidentId: null,
  setBy: 'guard',
  setAt: Date.now(),
});

describe('IP blocks', () => {
  it('a block written through the contracts protocol refuses that client at once, in each family, before authentication; others are served', async () => {
    await setIpBlock(redis, block(BLOCKED, 120));
    const first = await waitUntil(
      async () => {
        const res = await send('/v1/chat/completions', { from: BLOCKED });
        const body = await res.body.text();
        return res.statusCode === 403 ? { res, body } : null;
      },
      { timeoutMs: 5000, message: 'the blocked client refused (the periodic resync is 10 minutes away)' },
    );
    expect(JSON.parse(first.body)).toEqual({
      error: { message: expect.stringMatching(/blocked/), type: 'permission_error', code: 'ip_blocked' },
    });
    const retryAfter = Number(first.res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(120);
    expect(first.res.headers['connection']).toBe('close');
    expect(first.res.headers['x-request-id']).toBeTruthy();

    // Before authentication: no key, a malformed key, the Ollama family, the portal.
    const noKey = await send('/v1/models', { from: BLOCKED, key: null, method: 'GET' });
    expect(noKey.statusCode).toBe(403);
    expect(((await noKey.body.json()) as { error: { code: string } }).error.code).toBe('ip_blocked');
    const badKey = await send('/v1/chat/completions', { from: BLOCKED, key: 'not-a-key' });
    expect(badKey.statusCode).toBe(403);
    await badKey.body.text();
    const ollama = await send('/api/chat', { from: BLOCKED });
    expect(ollama.statusCode).toBe(403);
    expect(Object.keys((await ollama.body.json()) as object)).toEqual(['error']);
    for (const path of ['/portal/login', '/portal/register']) {
      const res = await send(path, {
        from: BLOCKED,
        key: null,
        body: { email: 'a@example.com', password: 'correct horse battery staple' },
      });
      expect(res.statusCode, path).toBe(403);
      expect(res.headers['retry-after']).toBeDefined();
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('ip_blocked');
    }
    // Nothing of theirs reached the model server.
    expect(mock.requests.filter((r) => r.headers['x-forwarded-for']?.toString().includes(BLOCKED))).toHaveLength(0);

    // TRUSTED_PROXIES: the client is the address the proxy names, not the proxy itself.
    const other = await send('/v1/chat/completions', { from: OTHER });
    expect(other.statusCode).toBe(200);
    await other.body.text();
    const proxyItself = await send('/v1/chat/completions');
    expect(proxyItself.statusCode).toBe(200);
    await proxyItself.body.text();
    // An address forged to the left of a trusted hop does not matter: the rightmost untrusted hop is the client.
    const forged = await send('/v1/chat/completions', { from: `${OTHER}, ${BLOCKED}` });
    expect(forged.statusCode).toBe(403);
    await forged.body.text();
    const hiding = await send('/v1/chat/completions', { from: `${BLOCKED}, ${OTHER}` });
    expect(hiding.statusCode).toBe(200);
    await hiding.body.text();

    const snapshot = (await (
      await request(`${gw.adminUrl}/admin/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).body.json()) as { ipBlocks: { size: number; refused: number } };
    expect(snapshot.ipBlocks.size).toBe(1);
    expect(snapshot.ipBlocks.refused).toBeGreaterThanOrEqual(7);
  });

  it('a lifted block is served again at once', async () => {
    await setIpBlock(redis, block(BLOCKED, 120));
    await waitUntil(
      async () => {
        const res = await send('/v1/chat/completions', { from: BLOCKED });
        await res.body.text();
        return res.statusCode === 403;
      },
      { timeoutMs: 5000 },
    );
    expect(await liftIpBlock(redis, BLOCKED)).toBe(true);
    await waitUntil(
      async () => {
        const res = await send('/v1/chat/completions', { from: BLOCKED });
        await res.body.text();
        return res.statusCode === 200;
      },
      { timeoutMs: 5000, message: 'the lifted client served again' },
    );
  });

  it('a block ends by itself at its expiry, with no message', async () => {
    await setIpBlock(redis, block(BLOCKED, 2));
    const blocked = await waitUntil(
      async () => {
        const res = await send('/v1/chat/completions', { from: BLOCKED });
        await res.body.text();
        return res.statusCode === 403 ? res : null;
      },
      { timeoutMs: 5000 },
    );
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(2);
    await waitUntil(
      async () => {
        const res = await send('/v1/chat/completions', { from: BLOCKED });
        await res.body.text();
        return res.statusCode === 200;
      },
      { timeoutMs: 10_000, intervalMs: 200, message: 'served after the block expired' },
    );
  });
});
