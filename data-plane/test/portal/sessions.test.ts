import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionTokens } from '../../src/auth/session.js';
import { startTcpProxy, waitUntil } from '../support/services.js';
import { JWT_SECRET, bearer, caller, cookieAuth, jsonBody, signUp, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  h = await startPortal();
});
afterAll(async () => {
  await h?.close();
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const me = (headers: Record<string, string>) => h.call('GET', '/portal/me', { headers });

describe('forged and stale session tokens', () => {
  it('refuses alg none carrying an admin role, by bearer and by cookie', async () => {
    const s = await signUp(h.call, 'alg-none@example.com');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      sub: s.user.id,
      email: s.user.email,
      tier: 'enterprise',
      role: 'admin',
      iss: 'fluxgate',
      aud: 'fluxgate-portal',
      iat: now,
      exp: now + 600,
      jti: 'n'.repeat(22),
    };
    const forged = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    for (const headers of [bearer(forged), { cookie: `fluxgate_session=${forged}` }]) {
      const res = await me(headers);
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('unauthorized');
    }
  });

  it('refuses a token signed with another key', async () => {
    const s = await signUp(h.call, 'wrong-key@example.com');
    const other = createSessionTokens({ secret: 'not-the-portal-secret-0123456789abcdef' });
    const { token } = await other.issue({ id: s.user.id, email: s.user.email, tier: 'free', role: 'admin' });
    expect((await me(bearer(token))).status).toBe(401);
    expect((await me(bearer(s.token))).status).toBe(200);
  });

  it('refuses an expired token (fake clock on the portal)', async () => {
    let now = Date.now();
    const { call } = h.build({ now: () => now, config: { sessionTtlSeconds: 120 } });
    const s = await signUp(call, 'expiry@example.com');
    expect((await call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(200);
    now += 121_000;
    const res = await call('GET', '/portal/me', { headers: bearer(s.token) });
    expect(res.status).toBe(401);
    expect(res.json.error.message).toMatch(/invalid or has expired/);
  });

  it('refuses a token expired by its own exp although correctly signed', async () => {
    const s = await signUp(h.call, 'old-token@example.com');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: s.user.email, tier: 'free', role: 'user' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(s.user.id)
      .setIssuer('fluxgate')
      .setAudience('fluxgate-portal')
      .setIssuedAt(now - 120)
      .setExpirationTime(now - 60)
      .setJti('e'.repeat(22))
      .sign(new TextEncoder().encode(JWT_SECRET));
    expect((await me(bearer(token))).status).toBe(401);
  });

  it('refuses a revoked token, whichever replica revoked it (shared Redis)', async () => {
    const s = await signUp(h.call, 'revoked@example.com');
    const replica = h.build();
    expect((await replica.call('POST', '/portal/logout', { headers: bearer(s.token) })).status).toBe(200);
    const res = await me(bearer(s.token));
    expect(res.status).toBe(401);
    expect(res.json.error.message).toMatch(/logged out/);
  });
});

describe('CSRF', () => {
  it('refuses cookie-authenticated state changes without x-fluxgate-csrf: 1', async () => {
    const s = await signUp(h.call, 'csrf@example.com');
    for (const [method, path] of [
      ['POST', '/portal/keys'],
      ['POST', '/portal/logout'],
      ['DELETE', `/portal/keys/${crypto.randomUUID()}`],
    ] as const) {
      const res = await h.call(method, path, { headers: cookieAuth(s.cookie, false), body: '{}' });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.error.code).toBe('csrf_failed');
    }
    expect((await h.db.sql`SELECT 1 FROM api_keys WHERE user_id = ${s.user.id}`).length).toBe(0);
    // The session survived the refused logout.
    expect((await me(cookieAuth(s.cookie, false))).status).toBe(200);
  });

  it('accepts them with the header, and bearer sessions without it', async () => {
    const s = await signUp(h.call, 'csrf-ok@example.com');
    expect((await h.call('POST', '/portal/keys', { ...jsonBody({ name: 'a' }), headers: cookieAuth(s.cookie) })).status).toBe(201);
    expect((await h.call('POST', '/portal/keys', { ...jsonBody({ name: 'b' }), headers: bearer(s.token) })).status).toBe(201);
  });

  it('refuses a state change labelled cross-site even with the header', async () => {
    const s = await signUp(h.call, 'csrf-cross@example.com');
    const res = await h.call('POST', '/portal/keys', { body: '{}', headers: { ...cookieAuth(s.cookie), 'sec-fetch-site': 'cross-site' } });
    expect(res.status).toBe(403);
  });
});

describe('Redis unavailable: fail closed', () => {
  it('answers 503 to session routes and to login, and recovers', async () => {
    const s = await signUp(h.call, 'redis-down@example.com');
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(h.tr.url).port || 6379) });
    const redis = new Redis({
      host: '127.0.0.1',
      port: proxy.port,
      keyPrefix: h.tr.prefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
      lazyConnect: true,
    });
    redis.on('error', () => undefined);
    await redis.connect();
    try {
      const call = caller(h.build({ redis }).routes);
      expect((await call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(200);

      await proxy.stop();
      await waitUntil(() => redis.status !== 'ready', { message: 'redis client did not notice the outage' });
      for (const res of [
        await call('GET', '/portal/me', { headers: bearer(s.token) }),
        await call('GET', '/portal/keys', { headers: bearer(s.token) }),
        await call('POST', '/portal/login', jsonBody({ email: 'redis-down@example.com', password: 'violet-Tractor-harbour-93' })),
      ]) {
        expect(res.status).toBe(503);
        expect(res.json.error.code).toBe('service_unavailable');
      }

      await proxy.start();
      await waitUntil(() => redis.status === 'ready', { timeoutMs: 5000, message: 'redis client did not reconnect' });
      expect((await call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(200);
    } finally {
      redis.disconnect();
      await proxy.stop();
    }
  });
});
