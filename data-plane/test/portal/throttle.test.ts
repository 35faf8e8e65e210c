import { redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginThrottle } from '../../src/auth/throttle.js';
import { waitUntil } from '../support/services.js';
import { STRONG_PASSWORD, jsonBody, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  h = await startPortal({ config: { loginMaxPerAccount: 3, loginMaxPerIp: 6, loginWindowSeconds: 600 } });
});
afterAll(async () => {
  await h?.close();
});

const login = (email: string, password: string, ip: string) => h.call('POST', '/portal/login', { ...jsonBody({ email, password }), ip });
const register = (email: string, ip: string) => h.call('POST', '/portal/register', { ...jsonBody({ email, password: STRONG_PASSWORD }), ip });

describe('login throttling', () => {
  it('blocks an account after 3 failures with 429 and Retry-After, even for the right password', async () => {
    await register('brute@example.com', '198.51.100.1');
    for (let i = 0; i < 3; i++) expect((await login('brute@example.com', `guess-number-${i}-xx`, `198.51.100.${10 + i}`)).status).toBe(401);
    const blocked = await login('Brute@Example.com', STRONG_PASSWORD, '198.51.100.20');
    expect(blocked.status).toBe(429);
    expect(blocked.json.error.code).toBe('too_many_attempts');
    const retryAfter = Number(blocked.header('retry-after'));
    expect(retryAfter).toBeGreaterThan(590);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(blocked.header('set-cookie')).toBeUndefined();
    const pttl = await h.tr.redis.pttl(redisKeys.loginThrottleAccount('brute@example.com'));
    expect(pttl).toBeGreaterThan(590_000);
  });

  it('blocks an IP that sprays many accounts', async () => {
    const ip = '198.51.100.66';
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push((await login(`spray-${i}@example.com`, 'wrong-password-0000', ip)).status);
    expect(answers).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    // Another IP is unaffected.
    expect((await login('spray-0@example.com', 'wrong-password-0000', '198.51.100.67')).status).toBe(401);
  });

  it('counts before checking the password: a concurrent burst cannot exceed the limit', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => login('burst@example.com', 'wrong-password-0000', `192.0.2.${i + 1}`)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
  });

  it('a successful login clears the account’s failures and gives its own attempt back', async () => {
    const ip = '198.51.100.90';
    await register('forgetful@example.com', ip);
    for (let i = 0; i < 2; i++) await login('forgetful@example.com', 'wrong-password-0000', ip);
    expect((await login('forgetful@example.com', STRONG_PASSWORD, ip)).status).toBe(200);
    expect(await h.tr.redis.exists(redisKeys.loginThrottleAccount('forgetful@example.com'))).toBe(0);
    // register + 2 failures stay counted for the IP; the success does not.
    expect(await h.tr.redis.get(redisKeys.loginThrottleIp(ip))).toBe('3');
    for (let i = 0; i < 2; i++) expect((await login('forgetful@example.com', 'wrong-password-0000', ip)).status).toBe(401);
  });

  it('throttles registrations per IP too', async () => {
    const ip = '198.51.100.120';
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await register(`mass-${i}@example.com`, ip)).status);
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 429]);
    expect((await h.db.sql`SELECT 1 FROM users WHERE email = 'mass-6@example.com'`).length).toBe(0);
  });

  it('the window is fixed: attempts made while blocked do not extend it, and it expires', async () => {
    const throttle = createLoginThrottle(h.tr.redis, { maxPerIp: 100, maxPerAccount: 1, windowSeconds: 1 });
    expect(await throttle.attempt('192.0.2.200', 'window@example.com')).toEqual({ allowed: true });
    const blocked = await throttle.attempt('192.0.2.200', 'window@example.com');
    expect(blocked).toMatchObject({ allowed: false, scope: 'account', retryAfterSeconds: 1 });
    const key = redisKeys.loginThrottleAccount('window@example.com');
    const pttl = await h.tr.redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    await waitUntil(async () => (await h.tr.redis.exists(key)) === 0, { timeoutMs: 2500, message: 'window did not expire' });
    expect(await throttle.attempt('192.0.2.200', 'window@example.com')).toEqual({ allowed: true });
    // Refund never creates a counter without a TTL.
    await h.tr.redis.del(key);
    await throttle.refund(null, 'window@example.com');
    expect(await h.tr.redis.exists(key)).toBe(0);
  });
});
