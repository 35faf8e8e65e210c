/**
 * /readyz follows Postgres (issue 12, item 13): the gateway reaches Postgres through a TCP relay
 * the test can cut; readiness turns 503 with checks.postgres false while it is cut, and 200
 * again once it is back, with no restart. Liveness never depends on it.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, startTcpProxy, waitUntil, type TcpProxy, type TestDatabase } from '../support/services.js';

let mock: MockUpstream;
let db: TestDatabase;
let relay: TcpProxy;
let gw: Gateway;

interface Readiness {
  status: number;
  body: { status: string; checks: { redis: boolean; postgres: boolean; upstreams: boolean } };
}

const readyz = async (): Promise<Readiness> => {
  const res = await request(`${gw.url}/readyz`, { dispatcher: gw.dispatcher });
  return { status: res.statusCode, body: (await res.body.json()) as Readiness['body'] };
};

beforeAll(async () => {
  mock = await startMockUpstream();
  db = await createTestDatabase();
  const url = new URL(db.url);
  relay = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.host = `127.0.0.1:${relay.port}`;
  gw = await startGateway({ upstreams: mock.url, db: { ...db, url: url.toString() } });
});
afterAll(async () => {
  await gw?.stop();
  await relay?.stop();
  await db?.drop();
  await mock?.close();
});

describe('/readyz and Postgres', () => {
  it('is 503 with checks.postgres false while Postgres is unreachable, and 200 again when it returns', async () => {
    // Ready first: the relay really carries the gateway's Postgres traffic.
    expect(
      await waitUntil(async () => ((await readyz()).status === 200 ? true : null), { timeoutMs: 10_000, message: 'ready at start' }),
    ).toBe(true);

    await relay.stop();
    // Results are cached for a second: poll until the cut is seen.
    const down = await waitUntil(
      async () => {
        const r = await readyz();
        return r.status === 503 ? r : null;
      },
      { timeoutMs: 10_000, message: '/readyz turns 503 with Postgres cut' },
    );
    expect(down.body).toMatchObject({ status: 'not_ready', checks: { postgres: false, redis: true, upstreams: true } });

    // Liveness is not readiness: the process is fine and says so.
    const live = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
    expect(live.statusCode).toBe(200);
    await live.body.text();

    await relay.start();
    const up = await waitUntil(
      async () => {
        const r = await readyz();
        return r.status === 200 ? r : null;
      },
      { timeoutMs: 15_000, message: '/readyz back to 200 once Postgres is reachable' },
    );
    expect(up.body).toMatchObject({ status: 'ready', checks: { postgres: true, redis: true, upstreams: true } });
    expect(gw.child.exitCode).toBeNull();
  });
});
