/**
 * Rate tiers end to end (issue 4): real gateway processes, real Redis, real Postgres, the
 * mock model server speaking OpenAI SSE and Ollama NDJSON. Two replicas (A and B) share one
 * database and one Redis, as a deployment would.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, spawnRedisServer, waitUntil, type TestDatabase } from '../support/services.js';

let mock: MockUpstream;
let db: TestDatabase;
let a: InProcessGateway;
let b: InProcessGateway;

/** Test tiers: windows of a day, so refill is negligible while a test runs. */
const TIERS: Array<[id: string, requests: number, tokens: number, streams: number, burst: number]> = [
  ['e2e-ten', 10, 10_000_000, 1000, 10],
  ['e2e-tokens', 1000, 3000, 100, 1000],
  ['e2e-refund', 2, 5000, 100, 2],
  ['e2e-wide', 100_000, 100_000_000, 1000, 100_000],
  ['e2e-streams', 100_000, 100_000_000, 2, 100_000],
];

beforeAll(async () => {
  mock = await startMockUpstream({ events: 8 });
  db = await createTestDatabase();
  for (const [id, requests, tokens, streams, burst] of TIERS) {
    await db.sql`INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst, is_penalty)
                 VALUES (${id}, ${requests}, ${tokens}, 86400, ${streams}, ${burst}, false)`;
  }
  // No retries: the refund test's three upstream 500s stay below the breaker's threshold (5).
  const env = { PER_KEY_CONCURRENCY: '1000', PENALTY_RESYNC_MS: '60000', UPSTREAM_MAX_RETRIES: '0' };
  [a, b] = await Promise.all([
    startInProcessGateway({ upstreams: mock.url, db, env }),
    startInProcessGateway({ upstreams: mock.url, db, env }),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await db?.drop();
  await mock?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

async function call(gw: InProcessGateway, key: string, body: Record<string, unknown> = {}, path = '/v1/chat/completions'): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hello there' }], ...body }),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) headers[k] = String(v);
  return { status: res.statusCode, headers, text: await res.body.text() };
}

async function admin(
  gw: InProcessGateway,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  token = ADMIN_TOKEN,
): Promise<{ status: number; json: any }> {
  const res = await request(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : null };
}

const tierSeen = async (gw: InProcessGateway, key: string): Promise<string> => {
  const res = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher, headers: { authorization: `Bearer ${key}` } });
  await res.body.text();
  return String(res.headers['x-fluxgate-tier']);
};

describe('admission across replicas', () => {
  it('100 parallel requests against a limit of 10 admit exactly 10; the 429s are OpenAI-shaped with Retry-After and x-ratelimit-*', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-ten');
    const seen = mock.requests.length;
    const answers = await Promise.all(Array.from({ length: 100 }, () => call(a, secret, { max_tokens: 5 })));
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    expect(ok).toHaveLength(10);
    expect(limited).toHaveLength(90);

    const first = ok[0]!;
    expect(first.headers['x-fluxgate-tier']).toBe('e2e-ten');
    expect(first.headers['x-ratelimit-limit-requests']).toBe('10');
    expect(first.headers['x-ratelimit-limit-tokens']).toBe('10000000');
    expect(Number(first.headers['x-ratelimit-remaining-requests'])).toBeLessThan(10);
    expect(first.headers['x-ratelimit-reset-requests']).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+h\d+m|^\d+m/);

    const r = limited[0]!;
    expect(r.headers['content-type']).toBe('application/json');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(r.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(r.headers['x-fluxgate-tier']).toBe('e2e-ten');
    const err = JSON.parse(r.text).error;
    expect(err).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(err.message).toMatch(/too many requests/);
    // Refused requests never reached the model server.
    expect(mock.requests.length - seen).toBe(10);
  });

  it("an upstream's own x-request-id and x-ratelimit-* never reach the client beside the gateway's: each header comes once, the gateway's", async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-wide');
    mock.set({ headers: { 'x-ratelimit-limit-requests': '999', 'x-ratelimit-remaining-tokens': '1', 'openai-processing-ms': '7' } });
    try {
      const res = await request(`${a.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: a.dispatcher,
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      // The mock sends x-request-id: req_mock on every stream; undici joins repeats into an array.
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers['x-ratelimit-limit-requests']).toBe('100000');
      expect(res.headers['x-ratelimit-remaining-tokens']).toMatch(/^\d+$/);
      expect(res.headers['x-ratelimit-remaining-tokens']).not.toBe('1');
      expect(res.headers['openai-processing-ms']).toBe('7'); // other upstream headers pass
    } finally {
      mock.set({ headers: {} });
    }
  });

  it('two data-plane processes sharing one Redis keep the global limit (over-admission measured: 0)', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-ten');
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i % 2 === 0 ? a : b, secret, { max_tokens: 5 })));
    const admitted = answers.filter((r) => r.status === 200).length;
    expect(answers.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(admitted).toBe(10);
  });

  it('settle gives back what a reservation did not use; an upstream failure refunds the request and its tokens', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-refund'); // 2 requests, 5000 tokens
    mock.set({ status: 500 });
    try {
      for (let i = 0; i < 3; i++) expect((await call(a, secret, { max_tokens: 4000 })).status).toBeGreaterThanOrEqual(500);
    } finally {
      mock.reset();
    }
    // Without refunds the failures would have used both requests and 12 000 tokens.
    const first = await call(a, secret, { max_tokens: 4000 });
    expect(first.status).toBe(200);
    // Without settling, 4000 reserved + 4000 more would pass the 5000-token limit.
    const second = await call(a, secret, { max_tokens: 4000 });
    expect(second.status).toBe(200);
    const third = await call(a, secret, { max_tokens: 10 });
    expect(third.status).toBe(429);
    expect(JSON.parse(third.text).error.message).toMatch(/too many requests/);
  });

  it('a reservation larger than the whole tier is refused at once with advice to lower max_tokens', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-tokens');
    const r = await call(a, secret, { max_tokens: 1_000_000 });
    expect(r.status).toBe(429);
    expect(JSON.parse(r.text).error.message).toMatch(/lower max_tokens/);
    expect(mock.requests.some((q) => q.body.includes('1000000'))).toBe(false);
  });
});

describe('one definition of a tier (issue 12): the row, the headers and what is admitted agree', () => {
  it('10 per window with burst 10: of 100 parallel requests exactly the announced x-ratelimit-limit-requests (10) pass, remaining counting 9 down to 0', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-ten'); // row: requests_per_window 10, burst 10
    const answers = await Promise.all(Array.from({ length: 100 }, () => call(a, secret, { max_tokens: 5 })));
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(100);
    // Every answer announces the same limit, and exactly that many were admitted (not burst + 1).
    expect(new Set(answers.map((r) => r.headers['x-ratelimit-limit-requests']))).toEqual(new Set(['10']));
    expect(ok).toHaveLength(10);
    // Each admission used one unit of what was announced: 9, 8, … 0 left, each exactly once.
    const remaining = ok.map((r) => Number(r.headers['x-ratelimit-remaining-requests'])).sort((x, y) => x - y);
    expect(remaining).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const r of limited) expect(r.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(new Set(answers.map((r) => r.headers['x-ratelimit-limit-tokens']))).toEqual(new Set(['10000000']));
  });
});

describe('limits per account (issue 12 item 6): more keys never mean more quota', () => {
  it('two keys of one account, 100 parallel requests through two replicas: exactly the tier (10) in total, refusals name the account; another account is unaffected', async () => {
    const email = `split-${Math.random().toString(36).slice(2)}@example.com`;
    const [one, two] = [await a.issueKey(email, 'e2e-ten'), await a.issueKey(email, 'e2e-ten')];
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(i % 2 === 0 ? a : b, i % 4 < 2 ? one.secret : two.secret, { max_tokens: 5 })),
    );
    expect(answers.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(10);
    const messages = answers.filter((r) => r.status === 429).map((r) => JSON.parse(r.text).error.message as string);
    expect(
      messages.some((m) => /too many requests for this API key's account \(the limit applies to all its keys together\)/.test(m)),
    ).toBe(true);

    // A third key of the same account finds nothing left; a key of another account has its own 10.
    const third = await a.issueKey(email, 'e2e-ten');
    const late = await call(b, third.secret, { max_tokens: 5 });
    expect(late.status).toBe(429);
    expect(late.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(JSON.parse(late.text).error.message).toMatch(/account/);
    const stranger = await a.issueKey(undefined, 'e2e-ten');
    const theirs = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 === 0 ? a : b, stranger.secret, { max_tokens: 5 })));
    expect(theirs.filter((r) => r.status === 200)).toHaveLength(10);
  });

  it("an account's open requests are capped at its tier's concurrent_streams across its keys (per replica)", async () => {
    const email = `streams-${Math.random().toString(36).slice(2)}@example.com`;
    const [one, two] = [await a.issueKey(email, 'e2e-streams'), await a.issueKey(email, 'e2e-streams')]; // 2 streams
    // Streams that last a minute unless the client leaves: they hold their slots meanwhile.
    mock.set({ events: 600, eventDelayMs: 100 });
    const open: Array<Awaited<ReturnType<typeof request>>> = [];
    try {
      for (let i = 0; i < 2; i++) {
        const res = await request(`${a.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: a.dispatcher,
          headers: { authorization: `Bearer ${one.secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock-model', stream: true, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
        });
        expect(res.statusCode).toBe(200);
        open.push(res);
      }
      // The other key has no stream of its own open, but its account has both of its two.
      const refused = await call(a, two.secret, { max_tokens: 5 });
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.text).error).toMatchObject({ code: 'too_many_streams' });
      expect(JSON.parse(refused.text).error.message).toMatch(/for this account \(at most 2 across all its API keys/);
    } finally {
      for (const res of open) res.body.destroy();
      mock.reset();
    }
    // The streams' clients left: their slots are free again.
    await waitUntil(async () => (await call(a, two.secret, { max_tokens: 5 })).status === 200, {
      timeoutMs: 5000,
      intervalMs: 50,
      message: 'account slots not released',
    });
  });
});

describe('the mid-stream cut', () => {
  it("an SSE stream that outruns the key's tokens ends with one rate_limit_exceeded event, no [DONE], and the upstream aborted", async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-tokens'); // 3000 tokens; no max_tokens → 1024 reserved
    // Paced, so the model server is still sending when the gateway cuts the stream.
    mock.set({ bodyBytes: 400_000, eventDelayMs: 2 });
    try {
      const seen = mock.requests.length;
      const r = await call(a, secret, { stream: true });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
      const events = r.text.split('\n\n').filter((e) => e.startsWith('data: '));
      const last = events.at(-1)!;
      expect(JSON.parse(last.slice(6)).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
      expect(events.filter((e) => e.includes('rate_limit_exceeded'))).toHaveLength(1);
      expect(r.text).not.toContain('[DONE]');
      expect(r.text.endsWith('\n\n')).toBe(true); // cut at an event boundary
      expect(events.length).toBeGreaterThan(3); // it did stream before the cut
      expect(r.text.length).toBeLessThan(200_000);
      expect(await mock.requests[seen]!.closed).toEqual({ early: true });
    } finally {
      mock.reset();
    }
    // The overrun was charged: the key has no tokens left.
    const next = await call(a, secret, { max_tokens: 10 });
    expect(next.status).toBe(429);
    expect(JSON.parse(next.text).error.message).toMatch(/too many tokens/);
  });

  it('an Ollama NDJSON stream is cut with one error line and a clean end', async () => {
    const { secret } = await a.issueKey(undefined, 'e2e-tokens');
    mock.set({ bodyBytes: 400_000 });
    try {
      const r = await call(a, secret, { stream: true }, '/api/chat');
      expect(r.status).toBe(200);
      const lines = r.text.split('\n').filter(Boolean);
      const last = JSON.parse(lines.at(-1)!);
      expect(last.error).toMatch(/Rate limit exceeded/);
      expect(lines.some((l) => l.includes('"done":true'))).toBe(false);
      expect(r.text.endsWith('\n')).toBe(true);
    } finally {
      mock.reset();
    }
  });
});

describe('the penalty override', () => {
  it('set on replica A, seen by replica B within a second; pardon and expiry return the key to its own tier', async () => {
    const { secret, id } = await a.issueKey(undefined, 'e2e-wide');
    expect(await tierSeen(b, secret)).toBe('e2e-wide');

    const set = await admin(a, 'POST', `/admin/penalty/${id}`, { level: 'penalty-1', reason: 'e2e', durationSeconds: 600 });
    expect(set.status).toBe(201);
    expect(set.json.penalty).toMatchObject({ keyId: id, level: 'penalty-1', setBy: 'operator', reason: 'e2e' });
    const t0 = performance.now();
    await waitUntil(async () => (await tierSeen(b, secret)) === 'penalty-1', {
      timeoutMs: 1000,
      intervalMs: 20,
      message: 'penalty reached replica B',
    });
    const reachedMs = performance.now() - t0;
    expect(reachedMs).toBeLessThan(1000);

    const got = await admin(b, 'GET', `/admin/penalty/${id}`);
    expect(got.json).toMatchObject({ keyId: id, tier: 'e2e-wide', effectiveTier: 'penalty-1', penalty: { level: 'penalty-1' } });
    expect((await admin(b, 'GET', '/admin/penalty')).json.penalties.map((p: { keyId: string }) => p.keyId)).toContain(id);

    // Under penalty-1 (10 requests, burst 1): the second request at once is refused, and says why.
    const limited = await call(b, secret);
    expect(limited.status).toBe(429);
    expect(limited.headers['x-fluxgate-tier']).toBe('penalty-1');
    expect(JSON.parse(limited.text).error.message).toMatch(/restricted \(penalty-1\) until/);

    const pardon = await admin(a, 'DELETE', `/admin/penalty/${id}`);
    expect(pardon).toMatchObject({
      status: 200,
      json: { keyId: id, lifted: true, dryRun: false, after: { effectiveTier: 'e2e-wide', penalty: null } },
    });
    await waitUntil(async () => (await tierSeen(b, secret)) === 'e2e-wide', {
      timeoutMs: 1000,
      intervalMs: 20,
      message: 'pardon reached replica B',
    });
    // Its own tier's buckets were left as they were: the penalty drained only its own.
    expect((await call(b, secret)).status).toBe(200);
    expect((await admin(a, 'DELETE', `/admin/penalty/${id}`)).json.lifted).toBe(false);

    // Expiry: no message is needed, every replica ends it on time by itself.
    expect((await admin(a, 'POST', `/admin/penalty/${id}`, { level: 'penalty-2', durationSeconds: 1 })).status).toBe(201);
    await waitUntil(async () => (await tierSeen(b, secret)) === 'penalty-2', {
      timeoutMs: 1000,
      intervalMs: 20,
      message: 'short penalty reached B',
    });
    await waitUntil(async () => (await tierSeen(b, secret)) === 'e2e-wide', {
      timeoutMs: 2500,
      intervalMs: 50,
      message: 'penalty expired on B',
    });
  });

  it('the admin penalty routes refuse bad input clearly', async () => {
    const { id } = await a.issueKey(undefined, 'e2e-wide');
    expect((await admin(a, 'GET', `/admin/penalty/${id}`, undefined, 'wrong-token-wrong-token')).status).toBe(401);
    const unknownLevel = await admin(a, 'POST', `/admin/penalty/${id}`, { level: 'penalty-9' });
    expect(unknownLevel.status).toBe(400);
    expect(unknownLevel.json.error.message).toMatch(/^level: /);
    expect((await admin(a, 'POST', `/admin/penalty/${id}`, '{"level":')).json.error.code).toBe('invalid_json');
    expect((await admin(a, 'POST', `/admin/penalty/${id}`, { level: 'penalty-1', durationSeconds: -5 })).status).toBe(400);
    expect((await admin(a, 'POST', `/admin/penalty/${id}`, { level: 'penalty-1', extra: true })).status).toBe(400);
    expect((await admin(a, 'POST', '/admin/penalty/00000000-0000-4000-8000-000000000000', { level: 'penalty-1' })).status).toBe(404);
    expect((await admin(a, 'GET', "/admin/penalty/'%20OR%201=1")).status).toBe(404);
    expect((await admin(a, 'GET', `/admin/penalty/${id}`)).json).toMatchObject({ penalty: null, effectiveTier: 'e2e-wide' });
    expect(await a.serving()).toBe(true);
  });
});

describe('Redis killed and restarted under load', () => {
  it('keeps serving under local limits, shows it in /readyz and metrics, and goes back to shared limits by itself', async () => {
    const redis = await spawnRedisServer();
    const gw = await startInProcessGateway({ upstreams: mock.url, db, redisUrl: redis.url, env: { PER_KEY_CONCURRENCY: '1000' } });
    let running = true;
    let workers: Promise<void>[] = [];
    try {
      const { secret } = await gw.issueKey(undefined, 'e2e-wide');
      const statuses = new Map<number, number>();
      let degradedOk = 0;
      let degraded = false;
      const worker = async () => {
        while (running) {
          const r = await call(gw, secret, { max_tokens: 5 });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (degraded && r.status === 200) degradedOk++;
        }
      };
      workers = Array.from({ length: 8 }, worker);
      const ready = async () => {
        const res = await request(`${gw.url}/readyz`, { dispatcher: gw.dispatcher });
        return { status: res.statusCode, body: (await res.body.json()) as { rateLimits: string } };
      };
      const degradedMetric = async () => {
        const res = await request(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        return /^fluxgate_rate_limit_degraded (\d)/m.exec(await res.body.text())?.[1];
      };
      await waitUntil(() => (statuses.get(200) ?? 0) >= 20, { timeoutMs: 10_000, message: 'load running' });
      expect((await ready()).body.rateLimits).toBe('shared');

      await redis.kill();
      await waitUntil(async () => (await ready()).body.rateLimits.startsWith('local'), {
        timeoutMs: 5000,
        message: 'readyz shows local limits',
      });
      degraded = true;
      await waitUntil(async () => (await ready()).status === 503, { timeoutMs: 3000, message: 'readyz not ready while Redis is down' });
      expect(await degradedMetric()).toBe('1');
      await waitUntil(() => degradedOk >= 50, { timeoutMs: 10_000, message: 'serving while Redis is down' });

      await redis.start();
      await waitUntil(async () => (await ready()).body.rateLimits === 'shared', {
        timeoutMs: 15_000,
        intervalMs: 100,
        message: 'shared limits again',
      });
      degraded = false;
      expect(await degradedMetric()).toBe('0');
      const before = statuses.get(200) ?? 0;
      await waitUntil(() => (statuses.get(200) ?? 0) >= before + 20, { timeoutMs: 10_000, message: 'serving after recovery' });
      running = false;
      await Promise.all(workers);

      // Every request was answered 200: the outage cost the clients nothing.
      expect([...statuses.keys()]).toEqual([200]);
      expect(await gw.serving()).toBe(true);
    } finally {
      running = false;
      await Promise.allSettled(workers);
      await gw.stop();
      await redis.kill();
    }
  });
});
