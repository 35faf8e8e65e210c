/**
 * /readyz says why (issues 12 and 16): the gateway reaches Postgres through a TCP relay the test
 * can cut, and Redis is a private redis-server the test kills. Readiness turns 503 naming the
 * failing check with a short reason (never an address), and 200 again once the dependency is
 * back, with no restart. Liveness never depends on either.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import {
  createTestDatabase,
  spawnRedisServer,
  startTcpProxy,
  waitUntil,
  type SpawnedRedis,
  type TcpProxy,
  type TestDatabase,
} from '../support/services.js';

let mock: MockUpstream;
let db: TestDatabase;
let relay: TcpProxy;
let redis: SpawnedRedis;
let gw: InProcessGateway;

interface Check {
  status: 'ok' | 'failing';
  reason?: string;
}
interface Readiness {
  status: number;
  text: string;
  body: { status: string; failing?: string[]; checks: { redis: Check; postgres: Check; upstreams: Check } };
}

const readyz = async (): Promise<Readiness> => {
  const res = await request(`${gw.url}/readyz`, { dispatcher: gw.dispatcher });
  const text = await res.body.text();
  return { status: res.statusCode, text, body: JSON.parse(text) as Readiness['body'] };
};
const readyzUntil = (want: (r: Readiness) => boolean, message: string) =>
  waitUntil(
    async () => {
      const r = await readyz();
      return want(r) ? r : null;
    },
    { timeoutMs: 15_000, intervalMs: 200, message },
  );

beforeAll(async () => {
  mock = await startMockUpstream();
  db = await createTestDatabase();
  redis = await spawnRedisServer();
  const url = new URL(db.url);
  relay = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.host = `127.0.0.1:${relay.port}`;
  gw = await startInProcessGateway({ upstreams: mock.url, redisUrl: redis.url, db: { ...db, url: url.toString() } });
});
afterAll(async () => {
  await gw?.stop();
  await relay?.stop();
  await redis?.kill();
  await db?.drop();
  await mock?.close();
});

const ALL_OK = { redis: { status: 'ok' }, postgres: { status: 'ok' }, upstreams: { status: 'ok', reason: '1 of 1 available' } };

describe('/readyz', () => {
  it('is 200 naming every check ok when everything answers', async () => {
    const r = await readyzUntil((x) => x.status === 200, 'ready at start');
    expect(r.body).toEqual({ status: 'ready', checks: ALL_OK, rateLimits: 'shared' });
  });

  it('is 503 with postgres failing and why while Postgres is unreachable, and 200 again when it returns', async () => {
    await relay.stop();
    // Results are cached for a second: poll until the cut is seen.
    const down = await readyzUntil((r) => r.status === 503, '/readyz turns 503 with Postgres cut');
    expect(down.body).toMatchObject({
      status: 'not_ready',
      failing: ['postgres'],
      checks: { redis: { status: 'ok' }, upstreams: { status: 'ok' } },
    });
    expect(down.body.checks.postgres.status).toBe('failing');
    // The relay's listener is closed: a new connection is refused, one in use is cut.
    expect(down.body.checks.postgres.reason).toMatch(/^(connection refused|connection reset|connection lost|no answer within 1000 ms)$/);
    // Public endpoint: no address, port or driver text.
    expect(down.text).not.toContain('127.0.0.1');
    expect(down.text).not.toContain(String(relay.port));

    // Liveness is not readiness: the process is fine and says so.
    const live = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
    expect(live.statusCode).toBe(200);
    await live.body.text();

    await relay.start();
    const up = await readyzUntil((r) => r.status === 200, '/readyz back to 200 once Postgres is reachable');
    expect(up.body.checks).toEqual(ALL_OK);
    expect(await gw.serving()).toBe(true);
  });

  it('is 503 with redis failing and why while Redis is down, and 200 again when it returns', async () => {
    await redis.kill();
    const down = await readyzUntil((r) => r.status === 503, '/readyz turns 503 with Redis killed');
    expect(down.body).toMatchObject({
      status: 'not_ready',
      failing: ['redis'],
      checks: { postgres: { status: 'ok' }, upstreams: { status: 'ok' } },
    });
    expect(down.body.checks.redis).toEqual({
      status: 'failing',
      reason: expect.stringMatching(/^not connected \((connecting|reconnecting|close|end)\)$/),
    });
    expect(down.text).not.toContain(String(redis.port));

    await redis.start();
    const up = await readyzUntil((r) => r.status === 200, '/readyz back to 200 once Redis is back');
    expect(up.body.checks).toEqual(ALL_OK);
    expect(await gw.serving()).toBe(true);
  });
});
