import { IP_FIELDS, bucketOf, redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { issueKey } from '../../src/auth/issue.js';
import { createKeyCache } from '../../src/auth/key-cache.js';
import { generateKey } from '../../src/auth/key-format.js';
import { createCounters } from '../../src/metrics/counters.js';
import { createGatewayMetrics } from '../../src/metrics/registry.js';
import { findKeyByHash, setKeyStatus } from '../../src/store/keys.js';
import { connectTestRedis, createTestDatabase, type TestDatabase, type TestRedis } from '../support/services.js';

let db: TestDatabase;
let tr: TestRedis;
beforeAll(async () => {
  db = await createTestDatabase();
  tr = await connectTestRedis();
});
afterAll(async () => {
  await tr?.close();
  await db?.drop();
});

it('counts guessed keys per client IP in Redis and by reason in Prometheus', async () => {
  const metrics = createGatewayMetrics({ defaultMetrics: false });
  // A fixed clock keeps every sample in one s10 bucket even if the test straddles a boundary.
  const at = Date.now();
  const counters = createCounters({ redis: await tr.connect({ enableOfflineQueue: false }), metrics, now: () => at });
  const auth = createAuthenticator({ cache: createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h) }), counters, metrics });
  const revoked = await issueKey(db.sql, { email: 'ip@example.com' });
  await setKeyStatus(db.sql, revoked.key.id, 'revoked');
  const from = (ip: string, key?: string) => ({ headers: new Map(key === undefined ? [] : [['x-api-key', key]]), remoteAddress: ip });

  await auth(from('::ffff:198.51.100.23', 'sk-guess-1'));
  await auth(from('198.51.100.23', generateKey().secret));
  await auth(from('198.51.100.23', generateKey().secret));
  await auth(from('203.0.113.5', revoked.secret)); // a real (revoked) key: not a guess
  await auth(from('203.0.113.5')); // no key at all: not a guess
  expect((await counters.flush()).ok).toBe(true);

  const s10 = bucketOf('s10', at);
  expect(await tr.redis.hget(redisKeys.ipUsage('198.51.100.23', 's10', s10), IP_FIELDS.failedCredentials)).toBe('3');
  expect(await tr.redis.exists(redisKeys.ipUsage('203.0.113.5', 's10', s10))).toBe(0);
  expect(await tr.redis.smembers(redisKeys.activeIps('s10', s10))).toEqual(['198.51.100.23']);
  const text = await metrics.registry.metrics();
  expect(text).toContain('fluxgate_auth_failures_total{reason="malformed"} 1');
  expect(text).toContain('fluxgate_auth_failures_total{reason="unknown"} 2');
  expect(text).toContain('fluxgate_auth_failures_total{reason="revoked"} 1');
  expect(text).toContain('fluxgate_auth_failures_total{reason="missing"} 1');
});
