import { pino } from 'pino';
import { Registry, Counter } from 'prom-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMatches, createHttpServer, listen } from './server.js';

const TOKEN = 'admin-token-0123456789abcdef';

describe('control-plane HTTP', () => {
  const registry = new Registry();
  new Counter({ name: 'test_total', help: 'x', registers: [registry] }).inc();
  const server = createHttpServer({
    registry,
    adminToken: () => TOKEN,
    health: () => ({ role: 'standby' }),
    log: pino({ level: 'silent' }),
  });
  let base = '';
  beforeAll(async () => {
    base = `http://127.0.0.1:${await listen(server, '127.0.0.1', 0)}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('answers /healthz without a token', async () => {
    const res = await request(`${base}/healthz`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ status: 'ok', role: 'standby' });
  });

  it('serves /metrics only with the admin bearer token', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await request(`${base}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const ok = await request(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toMatch(/^test_total 1$/m);
  });

  it('refuses everyone when no token is configured, and 404s unknown paths', async () => {
    expect(bearerMatches(`Bearer ${TOKEN}`, null)).toBe(false);
    const res = await request(`${base}/nope`);
    expect(res.statusCode).toBe(404);
    await res.body.dump();
  });
});

describe('control-plane /readyz', () => {
  const state = { redis: true, postgres: true };
  const fail = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.9:6379`), { code });
  const start = (postgres: boolean) => {
    const server = createHttpServer({
      registry: new Registry(),
      adminToken: () => TOKEN,
      health: () => ({ role: 'leader' }),
      readiness: {
        redis: async () => {
          if (!state.redis) throw fail('ECONNREFUSED');
        },
        postgres: postgres
          ? async () => {
              if (!state.postgres) throw fail('28P01');
            }
          : null,
        cacheMs: 0,
      },
      log: pino({ level: 'silent' }),
    });
    return server;
  };
  const servers: ReturnType<typeof start>[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
  const get = async (postgres = true) => {
    const server = start(postgres);
    servers.push(server);
    const res = await request(`http://127.0.0.1:${await listen(server, '127.0.0.1', 0)}/readyz`);
    const text = await res.body.text();
    return { status: res.statusCode, text, body: JSON.parse(text) as Record<string, unknown> };
  };

  it('is 200 naming each check ok, with the guard role', async () => {
    expect(await get()).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { redis: { status: 'ok' }, postgres: { status: 'ok' } }, role: 'leader' },
    });
    // Without DATABASE_URL the control plane runs (no key metadata): ready, and it says so.
    expect((await get(false)).body.checks).toEqual({ redis: { status: 'ok' }, postgres: { status: 'ok', reason: 'not configured' } });
  });

  it('is 503 naming the failing checks and why, never the driver’s text', async () => {
    state.redis = false;
    state.postgres = false;
    const r = await get();
    state.redis = true;
    state.postgres = true;
    expect(r.status).toBe(503);
    expect(r.body).toEqual({
      status: 'not_ready',
      failing: ['redis', 'postgres'],
      checks: {
        redis: { status: 'failing', reason: 'connection refused' },
        postgres: { status: 'failing', reason: 'authentication failed' },
      },
      role: 'leader',
    });
    expect(r.text).not.toContain('10.0.0.9');
  });
});
