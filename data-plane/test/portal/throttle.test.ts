/**
 * Login throttling against real Redis: growing per-account delays instead of a lock-out, a
 * per-client window (IPv6 grouped by /64), and the owner never locked out from a known-good
 * address or with a valid session.
 */
import { redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginThrottle } from '../../src/auth/throttle.js';
import { waitUntil } from '../support/services.js';
import { STRONG_PASSWORD, bearer, jsonBody, signUp, startPortal, type CallOptions, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  // 3 free attempts, then 60 s, 120 s, … (far longer than any test: a delay never runs out here).
  h = await startPortal({ config: { loginFreeFailures: 3, loginBaseDelayMs: 60_000, loginMaxPerIp: 6, loginWindowSeconds: 600 } });
});
afterAll(async () => {
  await h?.close();
});

const login = (email: string, password: string, ip: string, more: CallOptions = {}) =>
  h.call('POST', '/portal/login', {
    ...jsonBody({ email, password }),
    ip,
    ...more,
    headers: { 'content-type': 'application/json', ...more.headers },
  });
const register = (email: string, ip: string) =>
  h.call('POST', '/portal/register', { ...jsonBody({ email, password: STRONG_PASSWORD }), ip });

describe('per-account delays', () => {
  it('an attacker hammering from other addresses never locks the owner out of a known-good address', async () => {
    const owner = await signUp(h.call, 'owner@example.com', STRONG_PASSWORD, '203.0.113.5');
    expect(owner.user.email).toBe('owner@example.com');
    // Forty guesses from ten addresses: three go through, the rest wait (429, not 401).
    const statuses = [];
    for (let i = 0; i < 40; i++)
      statuses.push((await login('owner@example.com', `guess-${i}-xxxxxxxx`, `198.51.100.${10 + (i % 10)}`)).status);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(new Set(statuses.slice(3))).toEqual(new Set([429]));
    // Today's lock-out refused the owner for 15 minutes here; the owner's address is known-good.
    const res = await login('Owner@Example.com', STRONG_PASSWORD, '203.0.113.5');
    expect(res.status).toBe(200);
    expect(res.header('set-cookie')).toMatch(/^fluxgate_session=/);
    // A trusted login leaves the attacker's delay where it was (no fresh free guesses).
    expect((await login('owner@example.com', 'guess-again-xxxxxxxx', '198.51.100.10')).status).toBe(429);
    // From an address it never used, the owner waits like anyone else…
    const elsewhere = await login('owner@example.com', STRONG_PASSWORD, '192.0.2.77');
    expect(elsewhere.status).toBe(429);
    expect(Number(elsewhere.header('retry-after'))).toBeGreaterThan(0);
    // …unless it brings a valid session of this account.
    expect((await login('owner@example.com', STRONG_PASSWORD, '192.0.2.77', { headers: bearer(res.json.token) })).status).toBe(200);
  });

  it('a session of another account, or a forged one, vouches for nothing', async () => {
    const other = await signUp(h.call, 'bystander@example.com', STRONG_PASSWORD, '203.0.113.6');
    await signUp(h.call, 'target@example.com', STRONG_PASSWORD, '203.0.113.7');
    for (let i = 0; i < 3; i++) await login('target@example.com', `wrong-${i}-xxxxxxxx`, '198.51.100.50');
    expect((await login('target@example.com', STRONG_PASSWORD, '198.51.100.51', { headers: bearer(other.token) })).status).toBe(429);
    expect((await login('target@example.com', STRONG_PASSWORD, '198.51.100.51', { headers: bearer(`${other.token}x`) })).status).toBe(429);
  });

  it('delays grow with each failure past the free ones, up to the cap, and a success clears them', async () => {
    // Sub-second steps so the test can wait them out: 2 free, then 20 ms doubling up to 1 s.
    const throttle = createLoginThrottle(h.tr.redis, { freeFailures: 2, baseDelayMs: 20, maxDelaySeconds: 1, maxPerIp: 10_000 });
    const account = 'grow@example.com';
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      // Wait out the current delay (refused attempts do not extend it), then record the next one.
      const d = await waitUntil(
        async () => {
          const r = await throttle.attemptLogin('192.0.2.10', account);
          return r.allowed ? r : null;
        },
        { timeoutMs: 5000, intervalMs: 5, message: `attempt ${i} never allowed` },
      );
      delays.push(d.delayAfterMs);
    }
    expect(delays).toEqual([0, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    const refused = await throttle.attemptLogin('192.0.2.11', account);
    expect(refused).toMatchObject({ allowed: false, scope: 'account', retryAfterSeconds: 1 });
    await throttle.succeeded('192.0.2.10', account, true);
    expect(await h.tr.redis.exists(redisKeys.loginDelay(account))).toBe(0);
    expect(await throttle.attemptLogin('192.0.2.12', account)).toEqual({ allowed: true, accountCharged: true, delayAfterMs: 0 });
  });

  it('counts before checking the password: a concurrent burst gets exactly the free attempts', async () => {
    await register('burst@example.com', '192.0.2.99');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => login('burst@example.com', 'wrong-password-0000', `192.0.2.${i + 1}`)),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
  });

  it('registering someone’s email does not delay their logins', async () => {
    await signUp(h.call, 'popular@example.com', STRONG_PASSWORD, '203.0.113.8');
    for (let i = 0; i < 5; i++) expect((await register('popular@example.com', `198.51.100.${130 + i}`)).status).toBe(409);
    expect((await login('popular@example.com', STRONG_PASSWORD, '198.51.100.140')).status).toBe(200);
  });
});

describe('per-client window', () => {
  it('blocks an address that sprays many accounts, with Retry-After for the rest of the window', async () => {
    const ip = '198.51.100.66';
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push((await login(`spray-${i}@example.com`, 'wrong-password-0000', ip)).status);
    expect(answers).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    const blocked = await login('spray-0@example.com', 'wrong-password-0000', ip);
    expect(Number(blocked.header('retry-after'))).toBeGreaterThan(590);
    expect(blocked.json.error.message).toMatch(/^Too many attempts from this address; retry in \d+ s\.$/);
    expect((await login('spray-0@example.com', 'wrong-password-0000', '198.51.100.67')).status).toBe(401);
  });

  it('IPv6 addresses in one /64 share one counter; the next /64 has its own', async () => {
    const answers = [];
    for (let i = 1; i <= 7; i++)
      answers.push((await login(`v6-${i}@example.com`, 'wrong-password-0000', `2001:db8:5:1::${i.toString(16)}`)).status);
    expect(answers).toEqual([401, 401, 401, 401, 401, 401, 429]);
    expect((await login('v6-1@example.com', 'wrong-password-0000', '2001:db8:5:1:ffff:1:2:3')).status).toBe(429);
    expect((await login('v6-1@example.com', 'wrong-password-0000', '2001:db8:5:2::1')).status).toBe(401);
    expect(await h.tr.redis.get(redisKeys.loginThrottleIp('2001:db8:5:1::/64'))).toBe('8');
  });

  it('a successful login gives its own attempt back; registrations stay counted', async () => {
    const ip = '198.51.100.90';
    await register('forgetful@example.com', ip);
    for (let i = 0; i < 2; i++) await login('forgetful@example.com', 'wrong-password-0000', ip);
    expect((await login('forgetful@example.com', STRONG_PASSWORD, ip)).status).toBe(200);
    expect(await h.tr.redis.exists(redisKeys.loginDelay('forgetful@example.com'))).toBe(0);
    expect(await h.tr.redis.get(redisKeys.loginThrottleIp(ip))).toBe('3');
  });

  it('throttles registrations per address too', async () => {
    const ip = '198.51.100.120';
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await register(`mass-${i}@example.com`, ip)).status);
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 429]);
    expect((await h.db.sql`SELECT 1 FROM users WHERE email = 'mass-6@example.com'`).length).toBe(0);
  });

  it('the window is fixed: attempts made while blocked do not extend it, and it expires', async () => {
    const throttle = createLoginThrottle(h.tr.redis, { maxPerIp: 1, windowSeconds: 1 });
    expect(await throttle.attemptRegister('192.0.2.200')).toEqual({ allowed: true, accountCharged: false, delayAfterMs: 0 });
    expect(await throttle.attemptRegister('192.0.2.200')).toMatchObject({ allowed: false, scope: 'ip', retryAfterSeconds: 1 });
    const key = redisKeys.loginThrottleIp('192.0.2.200');
    const pttl = await h.tr.redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    await waitUntil(async () => (await h.tr.redis.exists(key)) === 0, { timeoutMs: 2500, message: 'window did not expire' });
    expect(await throttle.attemptRegister('192.0.2.200')).toEqual({ allowed: true, accountCharged: false, delayAfterMs: 0 });
    // Refund never creates a counter without a TTL.
    await h.tr.redis.del(key);
    await throttle.refund('192.0.2.200', null);
    expect(await h.tr.redis.exists(key)).toBe(0);
  });
});
