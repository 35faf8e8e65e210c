import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';

let mock: MockUpstream;
let gw: InProcessGateway;

beforeAll(async () => {
  mock = await startMockUpstream({ events: 3 });
  gw = await startInProcessGateway({ upstreams: mock.url, env: { JWT_SECRET: 'e2e-secret-that-is-at-least-32-bytes-long' } });
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});

const portal = (method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}) =>
  request(`${gw.url}${path}`, {
    method: method as 'GET',
    dispatcher: gw.dispatcher,
    headers: { 'content-type': 'application/json', ...opts.headers },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });

describe('a newcomer, end to end over TLS', () => {
  it('registers, logs in, creates a key, uses it, and logs out', async () => {
    const email = `NewComer-${Date.now()}@Example.com`;
    const password = 'correct horse battery staple';
    const reg = await portal('POST', '/portal/register', { body: { email, password } });
    expect(reg.statusCode).toBe(201);
    await reg.body.text();

    const dup = await portal('POST', '/portal/register', { body: { email: email.toLowerCase(), password } });
    expect(dup.statusCode).toBe(409);
    expect(await dup.body.text()).not.toMatch(/duplicate|constraint|users_/i);

    const login = await portal('POST', '/portal/login', { body: { email, password } });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']);
    expect(cookie).toMatch(/^fluxgate_session=[^;]+;/);
    for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) expect(cookie).toContain(attr);
    const { token, user } = (await login.body.json()) as { token: string; user: { email: string; tier: string } };
    expect(user.email).toBe(email.toLowerCase());
    const session = cookie.split(';')[0]!;

    // Cookie-authenticated state change without the CSRF header is refused.
    const noCsrf = await portal('POST', '/portal/keys', { body: { name: 'laptop' }, headers: { cookie: session } });
    expect(noCsrf.statusCode).toBe(403);
    await noCsrf.body.text();

    const created = await portal('POST', '/portal/keys', {
      body: { name: 'laptop' },
      headers: { cookie: session, 'x-fluxgate-csrf': '1' },
    });
    expect(created.statusCode).toBe(201);
    const { secret, key } = (await created.body.json()) as { secret: string; key: { id: string } };
    expect(secret).toMatch(/^fgk_/);

    const chat = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: gw.dispatcher,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.statusCode).toBe(200);
    expect(((await chat.body.json()) as { object: string }).object).toBe('chat.completion');

    const listed = await portal('GET', '/portal/keys', { headers: { authorization: `Bearer ${token}` } });
    const keys = ((await listed.body.json()) as { keys: Array<{ id: string }> }).keys;
    expect(keys.map((k) => k.id)).toEqual([key.id]);
    expect(JSON.stringify(keys)).not.toContain(secret);

    const logout = await portal('POST', '/portal/logout', { headers: { authorization: `Bearer ${token}` } });
    expect(logout.statusCode).toBe(200);
    expect(String(logout.headers['set-cookie'])).toMatch(/Max-Age=0/);
    await logout.body.text();
    const after = await portal('GET', '/portal/me', { headers: { authorization: `Bearer ${token}` } });
    expect(after.statusCode).toBe(401);
    await after.body.text();
  });

  it('refuses an alg:none token', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const forged = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', role: 'admin', exp: 9_999_999_999 })}.`;
    const res = await portal('GET', '/portal/me', { headers: { authorization: `Bearer ${forged}` } });
    expect(res.statusCode).toBe(401);
    await res.body.text();
  });
});
