/**
 * Made-up keys with valid checksums pass the format check and each cost a Postgres lookup. The
 * per-client quota caps what one address (IPv6: one /64) can make the store do.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { issueKey } from '../../src/auth/issue.js';
import { createKeyCache } from '../../src/auth/key-cache.js';
import { generateKey } from '../../src/auth/key-format.js';
import { createLookupQuota } from '../../src/auth/lookup-quota.js';
import { GatewayError } from '../../src/errors.js';
import { findKeyByHash } from '../../src/store/keys.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, type TestDatabase } from '../support/services.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const req = (secret: string, ip: string) => ({ headers: new Map([['authorization', `Bearer ${secret}`]]), remoteAddress: ip });
const codeOf = (r: unknown) => (r instanceof GatewayError ? r.code : 'ok');

function setup() {
  const counter = { queries: 0 };
  const cache = createKeyCache({
    lookup: (hash) => {
      counter.queries++;
      return findKeyByHash(db.sql, hash);
    },
  });
  // A burst of 5, and (for the length of a test) no refill.
  const lookupQuota = createLookupQuota({ perSecond: 0.001, burst: 5 });
  return { counter, auth: createAuthenticator({ cache, lookupQuota }) };
}

describe('per-client cap on lookups of unknown keys', () => {
  it('one address gets its burst of Postgres lookups, then 429 with Retry-After and no query', async () => {
    const { counter, auth } = setup();
    const answers = [];
    for (let i = 0; i < 30; i++) answers.push(await auth(req(generateKey().secret, '203.0.113.9')));
    expect(answers.slice(0, 5).map(codeOf)).toEqual(Array(5).fill('invalid_api_key'));
    expect(answers.slice(5).map(codeOf)).toEqual(Array(25).fill('rate_limit_exceeded'));
    const refused = answers[5] as GatewayError;
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.find(([n]) => n === 'retry-after')?.[1])).toBeGreaterThanOrEqual(1);
    expect(counter.queries).toBe(5);
    // Another client is not affected.
    expect(codeOf(await auth(req(generateKey().secret, '203.0.113.10')))).toBe('invalid_api_key');
    expect(counter.queries).toBe(6);
  });

  it('keys this replica knows, and repeats of an unknown key, cost the quota nothing', async () => {
    const { counter, auth } = setup();
    const real = await issueKey(db.sql, { email: 'quota-known@example.com' });
    const bogus = generateKey().secret;
    expect(await auth(req(real.secret, '203.0.113.20'))).toMatchObject({ keyId: real.key.id });
    expect(codeOf(await auth(req(bogus, '203.0.113.20')))).toBe('invalid_api_key');
    for (let i = 0; i < 20; i++) {
      expect(await auth(req(real.secret, '203.0.113.20'))).toMatchObject({ keyId: real.key.id });
      expect(codeOf(await auth(req(bogus, '203.0.113.20')))).toBe('invalid_api_key');
    }
    expect(counter.queries).toBe(2);
    // Three of the five lookups are left.
    const rest = [];
    for (let i = 0; i < 4; i++) rest.push(codeOf(await auth(req(generateKey().secret, '203.0.113.20'))));
    expect(rest).toEqual(['invalid_api_key', 'invalid_api_key', 'invalid_api_key', 'rate_limit_exceeded']);
    expect(await auth(req(real.secret, '203.0.113.20'))).toMatchObject({ keyId: real.key.id });
  });

  it('IPv6 addresses in one /64 share one budget; the next /64 has its own', async () => {
    const { auth } = setup();
    const from = async (ip: string) => codeOf(await auth(req(generateKey().secret, ip)));
    const answers = [];
    for (let i = 1; i <= 6; i++) answers.push(await from(`2001:db8:77:1::${i.toString(16)}`));
    expect(answers).toEqual([...Array(5).fill('invalid_api_key'), 'rate_limit_exceeded']);
    expect(await from('2001:db8:77:1:dead:beef:0:1')).toBe('rate_limit_exceeded');
    expect(await from('2001:db8:77:2::1')).toBe('invalid_api_key');
  });
});

describe('through the real gateway', () => {
  let mock: MockUpstream;
  let gw: InProcessGateway;
  beforeAll(async () => {
    mock = await startMockUpstream({ events: 2 });
    gw = await startInProcessGateway({
      upstreams: mock.url,
      env: { KEY_LOOKUPS_PER_IP_BURST: '3', KEY_LOOKUPS_PER_IP_PER_SECOND: '0.01' },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await mock?.close();
  });

  const call = (key: string) =>
    request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: gw.dispatcher,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('answers 429 in the OpenAI shape once a client has guessed its burst of keys, and keeps serving known keys', async () => {
    const { secret } = await gw.issueKey();
    const known = await call(secret);
    expect(known.statusCode).toBe(200);
    await known.body.text();
    const statuses = [];
    let last;
    for (let i = 0; i < 6; i++) {
      last = await call(generateKey().secret);
      statuses.push(last.statusCode);
      if (i < 5) await last.body.text();
    }
    // The real key's first use spent one of the three.
    expect(statuses).toEqual([401, 401, 429, 429, 429, 429]);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await last!.body.json()).toEqual({
      error: {
        message: 'Too many unknown API keys from this address; retry later.',
        type: 'rate_limit_error',
        code: 'rate_limit_exceeded',
      },
    });
    const again = await call(secret);
    expect(again.statusCode).toBe(200);
    await again.body.text();
  });
});
