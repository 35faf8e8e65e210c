import { channels } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { issueKey } from '../../src/auth/issue.js';
import { createKeyCache, type KeyCache } from '../../src/auth/key-cache.js';
import { attachKeyCache, publishKeyEvent, subscribeKeyEvents, type KeyEventSubscription } from '../../src/auth/key-events.js';
import { generateKey, hashKey } from '../../src/auth/key-format.js';
import { GatewayError } from '../../src/errors.js';
import { createSql } from '../../src/store/db.js';
import { findKeyByHash, setKeyStatus, setKeyTier } from '../../src/store/keys.js';
import {
  connectTestRedis,
  createTestDatabase,
  spawnRedisServer,
  startTcpProxy,
  waitUntil,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

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

const req = (secret: string, ip = '127.0.0.1') => ({ headers: new Map([['authorization', `Bearer ${secret}`]]), remoteAddress: ip });

/** A cache over the real store that counts the queries it makes. */
function countingCache(sql = db.sql) {
  const counter = { queries: 0 };
  const cache = createKeyCache({
    lookup: (hash) => {
      counter.queries++;
      return findKeyByHash(sql, hash);
    },
  });
  return { cache, counter };
}

describe('key cache over Postgres', () => {
  it('one query for 500 concurrent requests with one uncached key, none for the next 500', async () => {
    const { secret } = await issueKey(db.sql, { email: 'burst@example.com' });
    const { cache, counter } = countingCache();
    const auth = createAuthenticator({ cache });
    const first = await Promise.all(Array.from({ length: 500 }, () => auth(req(secret))));
    expect(counter.queries).toBe(1);
    expect(first.every((r) => !(r instanceof GatewayError))).toBe(true);
    await Promise.all(Array.from({ length: 500 }, () => auth(req(secret))));
    expect(counter.queries).toBe(1);
  });

  it('a flood of well-formed unknown keys costs one query per distinct key, and repeats cost none', async () => {
    const { cache, counter } = countingCache();
    const auth = createAuthenticator({ cache });
    const bogus = Array.from({ length: 50 }, () => generateKey().secret);
    for (let round = 0; round < 5; round++) {
      const rs = await Promise.all(bogus.map((s) => auth(req(s))));
      expect(rs.every((r) => r instanceof GatewayError && r.code === 'invalid_api_key')).toBe(true);
    }
    expect(counter.queries).toBe(50);
  });
});

describe('revocation over Redis pub/sub', () => {
  it('reaches a second replica within one second', async () => {
    const issued = await issueKey(db.sql, { email: 'revoke@example.com' });
    const replicas: Array<{ cache: KeyCache; sub: KeyEventSubscription }> = [];
    for (let i = 0; i < 2; i++) {
      const cache = createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h) });
      replicas.push({ cache, sub: await attachKeyCache(await tr.connect(), cache) });
    }
    try {
      const auths = replicas.map((r) => createAuthenticator({ cache: r.cache }));
      for (const auth of auths) expect(await auth(req(issued.secret))).toMatchObject({ keyId: issued.key.id });

      // What the CLI and the portal do: commit, then publish.
      const change = await setKeyStatus(db.sql, issued.key.id, 'revoked');
      const t0 = performance.now();
      expect(await publishKeyEvent(tr.redis, { type: 'revoked', keyId: change.key.id, keyHash: change.keyHash })).toBeGreaterThanOrEqual(2);
      for (const auth of auths) {
        await waitUntil(
          async () => {
            const r = await auth(req(issued.secret));
            return r instanceof GatewayError && r.code === 'key_revoked';
          },
          { timeoutMs: 1000, message: 'revocation did not reach a replica' },
        );
      }
      expect(performance.now() - t0).toBeLessThan(1000);
    } finally {
      for (const r of replicas) await r.sub.close();
    }
  });

  it('drops by key id alone, so tier changes apply at once too', async () => {
    const issued = await issueKey(db.sql, { email: 'retier-live@example.com' });
    const cache = createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h) });
    const sub = await attachKeyCache(await tr.connect(), cache);
    try {
      expect((await cache.get(hashKey(issued.secret)))?.tier).toBe('free');
      await setKeyTier(db.sql, issued.key.id, 'pro');
      await publishKeyEvent(tr.redis, { type: 'tier_changed', keyId: issued.key.id });
      await waitUntil(async () => (await cache.get(hashKey(issued.secret)))?.tier === 'pro', {
        timeoutMs: 1000,
        message: 'tier change not seen',
      });
    } finally {
      await sub.close();
    }
  });

  it('ignores malformed messages and keeps serving', async () => {
    const warnings: string[] = [];
    const logger = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined } as never;
    const onEvent = vi.fn();
    const subscriber = await tr.connect();
    const sub = await subscribeKeyEvents(subscriber, { onEvent, logger });
    try {
      await tr.redis.publish(channels.keys, 'not json');
      await tr.redis.publish(channels.keys, JSON.stringify({ type: 'exploded', keyId: 'x', at: 1 }));
      await tr.redis.publish(channels.keys, JSON.stringify({ type: 'revoked', keyId: 'k-valid', at: Date.now() }));
      await waitUntil(() => onEvent.mock.calls.some(([e]) => e.keyId === 'k-valid'), { message: 'valid event not delivered' });
      expect(onEvent.mock.calls.every(([e]) => e.keyId !== 'x')).toBe(true);
      expect(warnings.filter((w) => w === 'ignored malformed key event').length).toBeGreaterThanOrEqual(2);
    } finally {
      await sub.close();
    }
  });

  it('refuses to publish an invalid event', async () => {
    await expect(publishKeyEvent(tr.redis, { type: 'revoked', keyId: '', keyHash: 'xyz' })).rejects.toThrow();
  });

  it('expires cached keys after the subscriber reconnects (events may have been missed)', async () => {
    const srv = await spawnRedisServer();
    const { Redis } = await import('ioredis');
    const subscriber: Redis = new Redis(srv.url, { retryStrategy: () => 25 });
    subscriber.on('error', () => undefined);
    const resyncs = vi.fn();
    try {
      const sub = await subscribeKeyEvents(subscriber, { onEvent: () => undefined, onResync: resyncs });
      await srv.kill();
      await waitUntil(() => subscriber.status !== 'ready', { message: 'subscriber did not notice the outage' });
      expect(resyncs).not.toHaveBeenCalled();
      await srv.start();
      await waitUntil(() => resyncs.mock.calls.length === 1, { timeoutMs: 5000, message: 'no resync after reconnect' });
      // And it is subscribed again: an event published now arrives.
      const got = vi.fn();
      const sub2 = await subscribeKeyEvents(subscriber, { onEvent: got });
      const pub = new Redis(srv.url);
      await pub.publish(channels.keys, JSON.stringify({ type: 'revoked', keyId: 'after-reconnect', at: Date.now() }));
      await waitUntil(() => got.mock.calls.length === 1, { message: 'not resubscribed' });
      pub.disconnect();
      await sub.close();
      await sub2.close();
    } finally {
      subscriber.disconnect();
      await srv.kill();
    }
  });
});

describe('Postgres down', () => {
  it('cached keys keep working, uncached keys get 503, and it recovers', async () => {
    const cachedKey = await issueKey(db.sql, { email: 'pgdown@example.com' });
    const uncachedKey = await issueKey(db.sql, { email: 'pgdown@example.com' });
    const url = new URL(db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(proxy.port);
    const sql = createSql(url.toString(), { max: 2, connectTimeoutSeconds: 1 });
    try {
      const cache = createKeyCache({ lookup: (h) => findKeyByHash(sql, h), lookupTimeoutMs: 2000 });
      const auth = createAuthenticator({ cache });
      expect(await auth(req(cachedKey.secret))).toMatchObject({ keyId: cachedKey.key.id });

      await proxy.stop();
      expect(await auth(req(cachedKey.secret))).toMatchObject({ keyId: cachedKey.key.id });
      const down = await auth(req(uncachedKey.secret));
      expect(down).toBeInstanceOf(GatewayError);
      expect((down as GatewayError).code).toBe('service_unavailable');
      expect((down as GatewayError).status).toBe(503);
      // Unknown-while-down is not remembered as unknown.
      expect(cache.stats().negativeEntries).toBe(0);

      await proxy.start();
      await waitUntil(async () => !((await auth(req(uncachedKey.secret))) instanceof GatewayError), {
        timeoutMs: 5000,
        message: 'did not recover after Postgres came back',
      });
    } finally {
      await sql.end({ timeout: 0 });
      await proxy.stop();
    }
  });
});
