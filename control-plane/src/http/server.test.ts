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
