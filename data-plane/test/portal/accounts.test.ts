import { IP_FIELDS, bucketOf, redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueKey } from '../../src/auth/issue.js';
import { STRONG_PASSWORD, bearer, cookieAuth, jsonBody, signUp, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  h = await startPortal();
});
afterAll(async () => {
  await h?.close();
});

const register = (body: unknown, ip?: string) => h.call('POST', '/portal/register', { ...jsonBody(body), ip });
const login = (email: string, password: string, ip?: string) => h.call('POST', '/portal/login', { ...jsonBody({ email, password }), ip });

describe('POST /portal/register', () => {
  it('creates the account with a normalised email and an Argon2id hash; 201 {user}', async () => {
    const res = await register({ email: '  Grace.Hopper@Example.COM ', password: STRONG_PASSWORD });
    expect(res.status).toBe(201);
    expect(res.readBodySync).toBe(true);
    expect(res.header('cache-control')).toBe('no-store');
    expect(res.json.user).toEqual({ id: expect.any(String), email: 'grace.hopper@example.com', tier: 'free', role: 'user' });
    const [row] = await h.db.sql`SELECT email, password_hash FROM users WHERE id = ${res.json.user.id}`;
    expect(row?.email).toBe('grace.hopper@example.com');
    expect(row?.password_hash).toMatch(/^\$argon2id\$v=19\$/);
    expect(row?.password_hash).not.toContain(STRONG_PASSWORD);
    const audit = await h.db.sql`SELECT action, actor FROM audit_log WHERE user_id = ${res.json.user.id}`;
    expect(audit).toEqual([{ action: 'user.registered', actor: `portal:${res.json.user.id}` }]);
  });

  it('answers 409 for a taken email in any case, without database details', async () => {
    await register({ email: 'dup@example.com', password: STRONG_PASSWORD });
    const res = await register({ email: 'DUP@Example.com', password: 'another-Strong-passphrase-7' });
    expect(res.status).toBe(409);
    expect(res.json.error).toEqual({
      code: 'email_taken',
      type: 'invalid_request_error',
      message: 'An account with this email already exists.',
    });
    expect(res.body).not.toMatch(/users|constraint|duplicate|lower\(/i);
  });

  it('never takes over an account the CLI created without a password', async () => {
    const { key } = await issueKey(h.db.sql, { email: 'cli-made@example.com' });
    const res = await register({ email: 'cli-made@example.com', password: STRONG_PASSWORD });
    expect(res.status).toBe(409);
    const [row] = await h.db.sql`SELECT password_hash FROM users WHERE id = ${key.userId}`;
    expect(row?.password_hash).toBeNull();
  });

  it.each([
    [{ email: 'weak1@example.com', password: 'short' }, 400, 'weak_password', /at least 12/],
    [{ email: 'weak2@example.com', password: 'password123456' }, 400, 'weak_password', /too common/],
    [{ email: 'weak3@example.com', password: 'zzzzzzzzzzzzzzzz' }, 400, 'weak_password', /different characters/],
    [{ email: 'not-an-email', password: STRONG_PASSWORD }, 400, 'invalid_email', /not valid/],
    [{ email: 42, password: STRONG_PASSWORD }, 400, 'bad_request', /^email: /],
    [{ email: 'x@example.com' }, 400, 'bad_request', /^password: /],
    [['email', 'password'], 400, 'bad_request', /expected object/],
  ])('refuses %j with %i %s', async (body, status, code, message) => {
    const res = await register(body);
    expect(res.status).toBe(status);
    expect(res.json.error.code).toBe(code);
    expect(res.json.error.message).toMatch(message);
  });

  it('answers 400 invalid_json to malformed JSON, bad UTF-8 and an empty body', async () => {
    for (const body of ['{"email": "a@b.co", "password": ', '', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]) {
      const res = await h.call('POST', '/portal/register', { body, headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('invalid_json');
    }
  });

  it('answers 413 to a body over 16 KiB', async () => {
    const res = await register({ email: 'big@example.com', password: 'p'.repeat(17 * 1024) });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('payload_too_large');
    const rows = await h.db.sql`SELECT 1 FROM users WHERE email = 'big@example.com'`;
    expect(rows.length).toBe(0);
  });

  it('stores SQL-looking input as plain data', async () => {
    const email = "o'brien+1@example.com";
    const password = "'); DROP TABLE users; -- xyz";
    const res = await register({ email, password });
    expect(res.status).toBe(201);
    expect((await login(email, password)).status).toBe(200);
    const [{ n } = { n: 0 }] = await h.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
    expect(n).toBeGreaterThan(1);
  });
});

describe('POST /portal/login', () => {
  it('sets the session cookie with every attribute and returns {token, user}', async () => {
    await register({ email: 'ada@example.com', password: STRONG_PASSWORD });
    const res = await login(' ADA@example.com ', STRONG_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.readBodySync).toBe(true);
    expect(res.json.user).toEqual({ id: expect.any(String), email: 'ada@example.com', tier: 'free', role: 'user' });
    expect(res.json.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(Date.parse(res.json.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    expect(res.header('set-cookie')).toBe(`fluxgate_session=${res.json.token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600`);
    expect(res.header('cache-control')).toBe('no-store');
    const [row] = await h.db.sql`SELECT last_login_at FROM users WHERE id = ${res.json.user.id}`;
    expect(row?.last_login_at).toBeInstanceOf(Date);
  });

  it('gives the same 401 for a wrong password, an unknown email and a password-less account', async () => {
    await register({ email: 'same-answer@example.com', password: STRONG_PASSWORD });
    await issueKey(h.db.sql, { email: 'no-password@example.com' });
    const answers = await Promise.all([
      login('same-answer@example.com', 'wrong-password-0000'),
      login('nobody-here@example.com', 'wrong-password-0000'),
      login('no-password@example.com', 'wrong-password-0000'),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.header('set-cookie')).toBeUndefined();
    }
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers[0]!.json.error.code).toBe('invalid_credentials');
  });

  it('counts failed logins per client IP in the usage counters', async () => {
    const from = Date.now();
    await login('ghost@example.com', 'wrong-password-0000', '203.0.113.7');
    await login('ghost@example.com', 'wrong-password-0000', '203.0.113.7');
    const to = Date.now();
    await h.counters.flush();
    // The two logins may straddle a minute: sum every m1 window they fell in.
    const buckets = [...new Set([bucketOf('m1', from), bucketOf('m1', to)])];
    const values = await Promise.all(
      buckets.map((b) => h.tr.redis.hget(redisKeys.ipUsage('203.0.113.7', 'm1', b), IP_FIELDS.failedLogins)),
    );
    expect(values.reduce((sum, v) => sum + Number(v ?? 0), 0)).toBe(2);
  });

  it('tells a disabled account so only after the right password', async () => {
    await register({ email: 'disabled@example.com', password: STRONG_PASSWORD });
    await h.db.sql`UPDATE users SET disabled_at = now() WHERE email = 'disabled@example.com'`;
    expect((await login('disabled@example.com', 'wrong-password-0000')).json.error.code).toBe('invalid_credentials');
    const res = await login('disabled@example.com', STRONG_PASSWORD);
    expect(res.status).toBe(403);
    expect(res.header('set-cookie')).toBeUndefined();
  });

  it('refuses malformed input with 400 and a cross-site login with 403', async () => {
    expect(
      (await h.call('POST', '/portal/login', { body: '{"email":', headers: { 'content-type': 'application/json' } })).json.error.code,
    ).toBe('invalid_json');
    expect((await h.call('POST', '/portal/login', jsonBody({ email: 'a@example.com' }))).json.error.code).toBe('bad_request');
    const cross = await h.call('POST', '/portal/login', {
      ...jsonBody({ email: 'ada@example.com', password: STRONG_PASSWORD }),
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(cross.status).toBe(403);
    expect(cross.json.error.code).toBe('csrf_failed');
  });
});

describe('GET /portal/me and POST /portal/logout', () => {
  it('answers {id, email, tier, role} for a cookie or a bearer session, 401 without one', async () => {
    const s = await signUp(h.call, 'me@example.com');
    for (const headers of [cookieAuth(s.cookie, false), bearer(s.token)]) {
      const res = await h.call('GET', '/portal/me', { headers });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ id: s.user.id, email: 'me@example.com', tier: 'free', role: 'user' });
    }
    const none = await h.call('GET', '/portal/me');
    expect(none.status).toBe(401);
    expect(none.header('www-authenticate')).toBe('Bearer');
  });

  it('reads tier and role from Postgres, so changes apply to open sessions', async () => {
    const s = await signUp(h.call, 'promoted@example.com');
    await h.db.sql`UPDATE users SET tier = 'pro', role = 'operator' WHERE id = ${s.user.id}`;
    const res = await h.call('GET', '/portal/me', { headers: bearer(s.token) });
    expect(res.json).toMatchObject({ tier: 'pro', role: 'operator' });
  });

  it('logout revokes the session server-side until its expiry and clears the cookie', async () => {
    const s = await signUp(h.call, 'bye@example.com');
    const res = await h.call('POST', '/portal/logout', { headers: cookieAuth(s.cookie) });
    expect(res.status).toBe(200);
    expect(res.header('set-cookie')).toBe('fluxgate_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0');
    const jti = JSON.parse(Buffer.from(s.token.split('.')[1]!, 'base64url').toString()).jti as string;
    const ttl = await h.tr.redis.ttl(redisKeys.revokedSession(jti));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3601);
    // The same token, by cookie or bearer, is dead.
    expect((await h.call('GET', '/portal/me', { headers: cookieAuth(s.cookie) })).status).toBe(401);
    expect((await h.call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(401);
    const again = await h.call('POST', '/portal/logout', { headers: bearer(s.token) });
    expect(again.status).toBe(401);
    expect(again.header('set-cookie')).toContain('Max-Age=0');
  });

  it('a session of a deleted or disabled account stops working at once', async () => {
    const s = await signUp(h.call, 'gone@example.com');
    await h.db.sql`UPDATE users SET disabled_at = now() WHERE id = ${s.user.id}`;
    expect((await h.call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(401);
    await h.db.sql`DELETE FROM users WHERE id = ${s.user.id}`;
    expect((await h.call('GET', '/portal/me', { headers: bearer(s.token) })).status).toBe(401);
  });
});

describe('login and register take application/json only', () => {
  it.each([
    ['text/plain', '/portal/register'],
    ['text/plain;charset=UTF-8', '/portal/login'],
    ['application/x-www-form-urlencoded', '/portal/login'],
    ['multipart/form-data; boundary=x', '/portal/register'],
    [undefined, '/portal/login'],
    ['application/jsonp', '/portal/register'],
  ])('answers 415 to %s on %s, before looking at the body', async (type, path) => {
    const email = `ctype-${Math.random().toString(36).slice(2)}@example.com`;
    const res = await h.call('POST', path, {
      body: JSON.stringify({ email, password: STRONG_PASSWORD }),
      headers: type === undefined ? {} : { 'content-type': type },
    });
    expect(res.status).toBe(415);
    expect(res.json.error).toEqual({
      code: 'unsupported_media_type',
      type: 'invalid_request_error',
      message: 'Send the request body as application/json.',
    });
    expect(await h.db.sql`SELECT 1 FROM users WHERE email = ${email}`).toHaveLength(0);
  });

  it('accepts the media type in any case and with parameters', async () => {
    const email = 'ctype-ok@example.com';
    const headers = { 'content-type': 'Application/JSON; charset=utf-8' };
    expect((await h.call('POST', '/portal/register', { body: JSON.stringify({ email, password: STRONG_PASSWORD }), headers })).status).toBe(
      201,
    );
    expect((await h.call('POST', '/portal/login', { body: JSON.stringify({ email, password: STRONG_PASSWORD }), headers })).status).toBe(
      200,
    );
  });
});
