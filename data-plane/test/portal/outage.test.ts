import { redisKeys } from '@fluxgate/contracts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/auth/password.js';
import { createSql, type Sql } from '../../src/store/db.js';
import { startTcpProxy, type TcpProxy } from '../support/services.js';
import { STRONG_PASSWORD, bearer, jsonBody, signUp, startPortal, type Call, type PortalHarness } from './support.js';

let h: PortalHarness;
let proxy: TcpProxy;
let sql: Sql;
beforeAll(async () => {
  h = await startPortal();
});
afterAll(async () => {
  await h?.close();
});

/** Routes whose Postgres connection runs through a relay the test can cut. */
async function viaProxy(extra: Parameters<PortalHarness['build']>[0] = {}): Promise<Call> {
  const target = new URL(h.db.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  target.port = String(proxy.port);
  sql = createSql(target.toString(), { max: 2, connectTimeoutSeconds: 1 });
  return h.build({ sql, ...extra }).call;
}
afterEach(async () => {
  await sql?.end({ timeout: 1 });
  await proxy?.stop();
});

const login = (call: Call, email: string, password = STRONG_PASSWORD) => call('POST', '/portal/login', jsonBody({ email, password }));

describe('Postgres unavailable', () => {
  it('login, register and session routes answer a clear 503, write nothing, and recover', async () => {
    const call = await viaProxy();
    const s = await signUp(call, 'pg-down@example.com');
    await proxy.stop();

    const answers = [
      // From an address the account has not logged in from, so the account's delay is charged too.
      await call('POST', '/portal/login', {
        ...jsonBody({ email: 'pg-down@example.com', password: STRONG_PASSWORD }),
        ip: '198.51.100.200',
      }),
      await call('POST', '/portal/register', jsonBody({ email: 'pg-new@example.com', password: STRONG_PASSWORD })),
      await call('GET', '/portal/me', { headers: bearer(s.token) }),
      await call('POST', '/portal/keys', { ...jsonBody({ name: 'x' }), headers: bearer(s.token) }),
    ];
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.json.error).toEqual({
        code: 'service_unavailable',
        type: 'server_error',
        message: expect.stringMatching(/unavailable; retry shortly/),
      });
      expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);
    }
    expect(answers[0]!.header('set-cookie')).toBeUndefined();
    expect((await h.db.sql`SELECT 1 FROM users WHERE email = 'pg-new@example.com'`).length).toBe(0);
    // An outage is not a failed attempt: the throttle gave the attempts back.
    expect(await h.tr.redis.hget(redisKeys.loginDelay('pg-down@example.com'), 'f')).toBe('0');
    expect(await h.tr.redis.get(redisKeys.loginThrottleIp('198.51.100.200'))).toBe('0');
    expect(await h.tr.redis.get(redisKeys.loginThrottleIp('127.0.0.1'))).toBe('1');

    await proxy.start();
    expect((await login(call, 'pg-down@example.com')).status).toBe(200);
  });

  it('Postgres going away mid-login (after the password check) gives 503 and no session', async () => {
    const real = createPasswordHasher();
    const call = await viaProxy({
      passwords: {
        ...real,
        async verify(stored, password) {
          const ok = await real.verify(stored, password);
          await proxy.stop();
          return ok;
        },
      },
    });
    await call('POST', '/portal/register', jsonBody({ email: 'mid-login@example.com', password: STRONG_PASSWORD }));
    const res = await login(call, 'mid-login@example.com');
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe('service_unavailable');
    expect(res.header('set-cookie')).toBeUndefined();
    expect(res.json.token).toBeUndefined();
    const [row] = await h.db.sql`SELECT last_login_at FROM users WHERE email = 'mid-login@example.com'`;
    expect(row?.last_login_at).toBeNull();
  });
});
