/**
 * Fuzzing the real data plane (the built process, TLS, real Redis and Postgres, a mock model
 * server) with fast-check: raw request heads and bodies, JSON bodies on /v1/* and /api/*, and
 * portal JSON. Properties, for every input: the gateway answers below 500 or closes the
 * connection (a well-formed request always gets exactly one complete, well-framed answer); and
 * after each batch it is alive, answers /healthz, holds no more sockets than before, and its RSS
 * is back near where it started. Seeds are fixed (support.ts); counts go to the test report.
 */
import fc from 'fast-check';
import { request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { spawnRedisServer, type SpawnedRedis } from '../support/services.js';
import { finals, wireConversation, wireExchange } from '../support/http-wire.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { mib, openSockets, rssBytes } from '../support/proc.js';
import { waitUntil } from '../support/services.js';
import { damaged, INFERENCE_PATHS, jsonBody, PORTAL_TYPES, portalBody, serialise, wellFormed } from './arbitraries.js';
import { fuzzParams, fuzzTimeout } from './support.js';

let mock: MockUpstream;
let gw: Gateway;
let redis: SpawnedRedis;
let key: string;
let session: string;
let baseline: { rss: number; sockets: number };

const send = (method: Dispatcher.HttpMethod, path: string, headers: Record<string, string>, body?: string) =>
  request(`${gw.url}${path}`, { method, dispatcher: gw.dispatcher, headers, ...(body !== undefined ? { body } : {}) });

/** One of each kind of request, so pools and caches exist before the baseline is taken. */
async function warmUp(): Promise<void> {
  for (const path of ['/v1/chat/completions', '/api/chat']) {
    const res = await send(
      'POST',
      path,
      { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(res.statusCode).toBe(200);
    await res.body.text();
  }
  const me = await send('GET', '/portal/me', { authorization: `Bearer ${session}` });
  expect(me.statusCode).toBe(200);
  await me.body.text();
}

beforeAll(async () => {
  mock = await startMockUpstream({ events: 3 });
  // A private Redis: the portal inputs fill the per-IP login and register throttles of
  // 127.0.0.1, which on the shared Redis would refuse the next test file's sign-up.
  redis = await spawnRedisServer();
  gw = await startGateway({ upstreams: mock.url, redisUrl: redis.url, env: { LOG_LEVEL: 'error' } });
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
  const email = `fuzz-${Date.now()}@example.com`;
  const password = 'violet-Tractor-harbour-93';
  const reg = await send('POST', '/portal/register', { 'content-type': 'application/json' }, JSON.stringify({ email, password }));
  expect(reg.statusCode).toBe(201);
  await reg.body.text();
  const login = await send('POST', '/portal/login', { 'content-type': 'application/json' }, JSON.stringify({ email, password }));
  expect(login.statusCode).toBe(200);
  session = ((await login.body.json()) as { token: string }).token;
  await warmUp();
  baseline = { rss: await rssBytes(gw.child.pid!), sockets: await openSockets(gw.child.pid!) };
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
  await redis?.kill();
});

/**
 * After a batch: the process lives and answers, its sockets are back to the baseline (every
 * fuzz connection was closed on its side too), and its RSS stays near the baseline.
 */
async function healthyAfter(label: string, annotate: (m: string) => Promise<unknown>, allowanceMiB = 96): Promise<void> {
  expect(gw.child.exitCode, gw.output()).toBeNull();
  const res = await send('GET', '/healthz', {});
  expect(res.statusCode).toBe(200);
  await res.body.text();
  const pid = gw.child.pid!;
  // Slack for pooled connections (Postgres, Redis, upstream keep-alive) that a batch may open.
  const sockets = await waitUntil(
    async () => {
      const n = await openSockets(pid);
      return n <= baseline.sockets + 4 ? n : null;
    },
    { timeoutMs: 10_000, message: `${label}: gateway sockets back to ${baseline.sockets} (+4)` },
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}; now ${await openSockets(pid)}`);
  });
  const rss = await rssBytes(pid);
  await annotate(`${label}: RSS ${mib(baseline.rss)} → ${mib(rss)} MiB, sockets ${baseline.sockets} → ${sockets}`);
  // V8 keeps some heap it grew into; a leak per input would show as growth far beyond that.
  expect(rss - baseline.rss, `${label}: RSS growth`).toBeLessThan(allowanceMiB * 1024 * 1024);
}

const tally = (m: Map<number, number>): string =>
  [...m]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');

describe('fuzzing the real gateway', () => {
  it(
    'well-formed raw requests each get one complete answer below 500, and the connection serves the next one',
    async ({ annotate }) => {
      const statuses = new Map<number, number>();
      let tried = 0;
      await fc.assert(
        fc.asyncProperty(wellFormed, async (spec) => {
          tried++;
          const bytes = serialise(spec, key);
          // Then a probe on the same connection: the answer must really have ended (a response
          // uWS still counts as pending would make it close the connection instead).
          const probe = 'GET /healthz HTTP/1.1\r\nHost: fuzz.example\r\n\r\n';
          const ex = await wireConversation(gw.publicPort, [bytes, probe], { idleMs: 10_000, heads: [spec.method === 'HEAD', false] });
          const where = JSON.stringify(bytes.slice(0, 300));
          expect(ex.error, where).toBeNull();
          const [answer, probed] = ex.answers;
          expect(answer, `no answer (closed=${ex.closed}) to ${where}`).toBeDefined();
          const status = answer!.status;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          expect(status, where).toBeLessThan(500);
          if (!/close/i.test(answer!.headers.get('connection')?.join(',') ?? ''))
            expect(probed?.status, `the connection after ${where}`).toBe(200);
        }),
        fuzzParams(1, 150),
      );
      await annotate(`raw well-formed: ${tried} inputs; statuses ${tally(statuses)}`);
      await healthyAfter('raw well-formed', annotate);
    },
    fuzzTimeout(60_000),
  );

  it(
    'damaged raw requests get an answer below 500 or a closed connection, never broken framing',
    async ({ annotate }) => {
      const outcomes = new Map<number, number>();
      let tried = 0;
      // Heads this uWS build cannot parse are held, not answered (see http/malformed-heads), so
      // each run sends a batch at once and ends each exchange after a short silence; our close
      // releases the server's socket.
      await fc.assert(
        fc.asyncProperty(fc.array(damaged(key), { minLength: 8, maxLength: 8 }), async (batch) => {
          tried += batch.length;
          const exchanges = await Promise.all(
            batch.map((bytes) => wireExchange(gw.publicPort, bytes, { responses: 1, idleMs: 300, head: bytes.startsWith('HEAD ') })),
          );
          exchanges.forEach((ex, i) => {
            const where = JSON.stringify(batch[i]!.slice(0, 300));
            expect(ex.error, where).toBeNull();
            const status = finals(ex.responses)[0]?.status ?? 0;
            outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
            expect(status, where).toBeLessThan(500);
          });
        }),
        fuzzParams(2, 20),
      );
      await annotate(`raw damaged: ${tried} inputs; statuses (0 = no answer) ${tally(outcomes)}`);
      await healthyAfter('raw damaged', annotate);
    },
    fuzzTimeout(60_000),
  );

  it(
    'random and malformed JSON on /v1/* and /api/* is answered below 500, errors in the family shape',
    async ({ annotate }) => {
      const statuses = new Map<number, number>();
      let tried = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...INFERENCE_PATHS),
          jsonBody,
          fc.constantFrom('application/json', 'text/plain', ''),
          async (path, body, type) => {
            tried++;
            const res = await send('POST', path, { authorization: `Bearer ${key}`, ...(type ? { 'content-type': type } : {}) }, body);
            const text = await res.body.text();
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            const where = `${path} ${type} ${JSON.stringify(body.slice(0, 200))} → ${text.slice(0, 200)}`;
            expect(res.statusCode, where).toBeLessThan(500);
            // The gateway's own refusals (the mock model server never sends these codes).
            if (res.statusCode === 413 || res.statusCode === 429 || (res.statusCode === 400 && /invalid_json|not valid JSON/.test(text))) {
              const parsed = JSON.parse(text) as { error: unknown };
              if (path.startsWith('/api/')) expect(typeof parsed.error, where).toBe('string');
              else
                expect(parsed.error, where).toMatchObject({
                  message: expect.any(String),
                  type: expect.any(String),
                  code: expect.any(String),
                });
            }
          },
        ),
        fuzzParams(3, 150),
      );
      await annotate(`JSON bodies: ${tried} inputs; statuses ${tally(statuses)}`);
      await healthyAfter('JSON bodies', annotate);
    },
    fuzzTimeout(60_000),
  );

  it(
    'random portal JSON on register, login and keys is answered below 500 with a JSON error',
    async ({ annotate }) => {
      const statuses = new Map<number, number>();
      let tried = 0;
      const routes = [
        { path: '/portal/register', auth: false },
        { path: '/portal/login', auth: false },
        { path: '/portal/keys', auth: true },
      ] as const;
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), portalBody, fc.constantFrom(...PORTAL_TYPES), async (route, body, type) => {
          tried++;
          const headers: Record<string, string> = type ? { 'content-type': type } : {};
          if (route.auth) headers.authorization = `Bearer ${session}`;
          const res = await send('POST', route.path, headers, body);
          const text = await res.body.text();
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          const where = `${route.path} ${type} ${JSON.stringify(body.slice(0, 200))} → ${text.slice(0, 200)}`;
          expect(res.statusCode, where).toBeLessThan(500);
          if (res.statusCode >= 400) expect(JSON.parse(text), where).toMatchObject({ error: expect.anything() });
        }),
        fuzzParams(4, 60),
      );
      await annotate(`portal JSON: ${tried} inputs; statuses ${tally(statuses)}`);
      // Argon2id (m = 19 MiB) hashes on libuv's four threadpool threads, and each thread's malloc
      // arena keeps what it grew to: about 4 × 19 MiB that is retained, not leaked (measured:
      // +80 MiB after 1,200 inputs, +23 MiB after 60).
      await healthyAfter('portal JSON', annotate, 96 + 4 * 19);
    },
    fuzzTimeout(60_000),
  );
});
