/**
 * The control plane's /readyz says why (issue 16), against real dependencies: a private
 * redis-server the test kills and restarts, and Postgres through a relay the test cuts.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlaneProcess } from './support/process.js';
import {
  createTestDatabase,
  spawnRedisServer,
  startTcpProxy,
  waitUntil,
  type SpawnedRedis,
  type TcpProxy,
  type TestDatabase,
} from './support/services.js';

let redis: SpawnedRedis;
let db: TestDatabase;
let relay: TcpProxy;
let cp: ControlPlaneProcess;

interface Readiness {
  status: number;
  text: string;
  body: { status: string; failing?: string[]; checks: Record<string, { status: string; reason?: string }>; role: string };
}
const readyz = async (): Promise<Readiness> => {
  const res = await request(`${cp.url}/readyz`);
  const text = await res.body.text();
  return { status: res.statusCode, text, body: JSON.parse(text) as Readiness['body'] };
};
const until = (want: (r: Readiness) => boolean, message: string) =>
  waitUntil(
    async () => {
      const r = await readyz();
      return want(r) ? r : null;
    },
    { timeoutMs: 15_000, intervalMs: 200, message },
  );

beforeAll(async () => {
  redis = await spawnRedisServer();
  db = await createTestDatabase();
  const url = new URL(db.url);
  relay = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.host = `127.0.0.1:${relay.port}`;
  cp = await startControlPlane({ REDIS_URL: redis.url, DATABASE_URL: url.toString() });
});
afterAll(async () => {
  await cp?.stop();
  await relay?.stop();
  await redis?.kill();
  await db?.drop();
});

describe('control plane /readyz', () => {
  it('is 200 with redis and postgres ok once both answer', async () => {
    const r = await until((x) => x.status === 200, 'ready at start');
    expect(r.body).toMatchObject({ status: 'ready', checks: { redis: { status: 'ok' }, postgres: { status: 'ok' } } });
    expect(['leader', 'standby']).toContain(r.body.role);
  });

  it('is 503 naming postgres and why while Postgres is cut, then 200 again', async () => {
    await relay.stop();
    const down = await until((x) => x.status === 503, '/readyz turns 503 with Postgres cut');
    expect(down.body.failing).toEqual(['postgres']);
    expect(down.body.checks.postgres!.reason).toMatch(/^(connection refused|connection reset|connection lost|no answer within 1000 ms)$/);
    expect(down.text).not.toContain(String(relay.port));
    await relay.start();
    await until((x) => x.status === 200, '/readyz back to 200 with Postgres back');
  });

  it('is 503 naming redis and why while Redis is down, then 200 again; liveness never follows', async () => {
    await redis.kill();
    const down = await until((x) => x.status === 503, '/readyz turns 503 with Redis killed');
    expect(down.body.failing).toEqual(['redis']);
    expect(down.body.checks.redis!.reason).toMatch(/^not connected \((connecting|reconnecting|close|end)\)$/);
    const live = await request(`${cp.url}/healthz`);
    expect(live.statusCode).toBe(200);
    await live.body.dump();
    await redis.start();
    await until((x) => x.status === 200, '/readyz back to 200 with Redis back');
    expect(cp.child.exitCode).toBeNull();
  });
});
