import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, spawnRedisServer, waitUntil, type SpawnedRedis, type TestDatabase } from '../support/services.js';

/**
 * Issue 18, "tier changes reach replicas at once": two replicas over one database and one Redis
 * (private: tier messages are global), with the periodic tier reload a minute away, so only
 * what this change adds can explain a replica honouring a new or changed tier at once.
 */
let server: SpawnedRedis;
let db: TestDatabase;
let mock: MockUpstream;
let a: InProcessGateway;
let b: InProcessGateway;

beforeAll(async () => {
  server = await spawnRedisServer();
  db = await createTestDatabase();
  mock = await startMockUpstream({ events: 2 });
  const env = { TIERS_REFRESH_MS: '60000' };
  [a, b] = await Promise.all([
    startInProcessGateway({ upstreams: mock.url, redisUrl: server.url, db, env }),
    startInProcessGateway({ upstreams: mock.url, redisUrl: server.url, db, env }),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await mock?.close();
  await db?.drop();
  await server?.kill();
});

/** The tier a replica applies to a key, and the request bucket it reports. */
async function seen(gw: InProcessGateway, secret: string): Promise<{ tier: string; limit: string }> {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  expect(res.statusCode).toBe(200);
  return { tier: String(res.headers['x-fluxgate-tier']), limit: String(res.headers['x-ratelimit-limit-requests']) };
}

const admin = async (gw: InProcessGateway, method: 'GET' | 'PUT', path: string, body?: unknown) => {
  const res = await request(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, any>) : null };
};

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    { DATABASE_URL: db.url, REDIS_URL: server.url, USER: 'tester' },
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
  );
  return { code, stdout, stderr };
}

describe('tier changes reach every replica at once', () => {
  it('a tier inserted while two replicas run is honoured by every replica on its first request (no message sent)', async () => {
    // Straight into Postgres, as an operator's SQL would: no message on the tiers channel.
    await db.sql`INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst) VALUES ('team', 120, 500000, 60, 8, 7)`;
    const first = await a.issueKey(undefined, 'team');
    const second = await a.issueKey(undefined, 'team');
    // Both replicas' first request for each key, at once: the reload is shared, the answer right.
    const answers = await Promise.all([seen(a, first.secret), seen(b, first.secret), seen(a, second.secret), seen(b, second.secret)]);
    for (const s of answers) expect(s).toEqual({ tier: 'team', limit: '7' });
  });

  it('PUT /admin/tiers/:id creates a tier and changes one, and every replica applies the change at once', async () => {
    const created = await admin(a, 'PUT', '/admin/tiers/partner', {
      requestsPerWindow: 100,
      tokensPerWindow: 400_000,
      windowSeconds: 60,
      concurrentStreams: 6,
      burst: 5,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ created: true, notified: true, tier: { id: 'partner', burst: 5, isPenalty: false } });
    const { secret } = await a.issueKey(undefined, 'partner');
    expect(await seen(a, secret)).toEqual({ tier: 'partner', limit: '5' });
    expect(await seen(b, secret)).toEqual({ tier: 'partner', limit: '5' });

    const updated = await admin(b, 'PUT', '/admin/tiers/partner', {
      requestsPerWindow: 100,
      tokensPerWindow: 400_000,
      windowSeconds: 60,
      concurrentStreams: 6,
      burst: 9,
    });
    expect(updated).toMatchObject({ status: 200, json: { created: false, notified: true } });
    for (const gw of [a, b]) {
      await waitUntil(async () => (await seen(gw, secret)).limit === '9', {
        timeoutMs: 5000,
        message: 'the changed burst applied (the periodic reload is a minute away)',
      });
    }
    const listed = await admin(a, 'GET', '/admin/tiers');
    expect(listed.json!.tiers.find((t: { id: string }) => t.id === 'partner')).toMatchObject({ burst: 9 });
    const audit = await db.sql<
      { actor: string; action: string }[]
    >`SELECT actor, action FROM audit_log WHERE detail->>'tier' = 'partner' ORDER BY id`;
    expect(audit).toEqual([
      { actor: 'admin-token', action: 'tier.created' },
      { actor: 'admin-token', action: 'tier.updated' },
    ]);
  });

  it('fluxgate tiers set changes the limits given and tells every replica', async () => {
    const { secret } = await a.issueKey(undefined, 'team');
    expect((await seen(b, secret)).limit).toBe('7');
    const r = await cli(['tiers', 'set', 'team', '--burst', '11']);
    expect(r).toMatchObject({ code: 0, stdout: 'updated tier team\n' });
    for (const gw of [a, b])
      await waitUntil(async () => (await seen(gw, secret)).limit === '11', { timeoutMs: 5000, message: 'the CLI change applied' });
    const [row] = await db.sql<
      { requests_per_window: number; burst: number }[]
    >`SELECT requests_per_window, burst FROM tiers WHERE id = 'team'`;
    expect(row).toEqual({ requests_per_window: 120, burst: 11 });
    expect((await db.sql`SELECT 1 FROM audit_log WHERE actor = 'cli:tester' AND action = 'tier.updated'`).length).toBe(1);
  });

  it('refuses bad tier input clearly, on both surfaces', async () => {
    const noBurst = await admin(a, 'PUT', '/admin/tiers/x1', {
      requestsPerWindow: 1,
      tokensPerWindow: 1,
      windowSeconds: 1,
      concurrentStreams: 1,
    });
    expect(noBurst.status).toBe(400);
    expect(noBurst.json!.error.message).toMatch(/^burst: /);
    expect(
      (
        await admin(a, 'PUT', '/admin/tiers/x1', {
          requestsPerWindow: 0,
          tokensPerWindow: 1,
          windowSeconds: 1,
          concurrentStreams: 1,
          burst: 1,
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await admin(a, 'PUT', '/admin/tiers/Bad%20Id', {
          requestsPerWindow: 1,
          tokensPerWindow: 1,
          windowSeconds: 1,
          concurrentStreams: 1,
          burst: 1,
        })
      ).status,
    ).toBe(400);
    const cliNew = await cli(['tiers', 'set', 'brand-new', '--burst', '3']);
    expect(cliNew.code).toBe(2);
    expect(cliNew.stderr).toMatch(/a new tier needs --requests-per-window, --tokens-per-window, --window-seconds, --concurrent-streams/);
    expect((await cli(['tiers', 'set', 'team', '--burst', '-1'])).code).toBe(2);
    expect((await db.sql`SELECT 1 FROM tiers WHERE id IN ('x1', 'brand-new')`).length).toBe(0);
    // A refusal before the body was read (the bad id) must not take the replica down.
    expect((await admin(a, 'GET', '/admin/tiers')).status).toBe(200);
    expect(await a.serving()).toBe(true);
  });
});
