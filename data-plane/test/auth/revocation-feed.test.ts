/**
 * The revocation feed against real Redis and Postgres: a revocation whose pub/sub message is
 * lost still reaches every replica within a poll, the set stays bounded, and reading it never
 * sits on the request path.
 */
import { redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { issueKey } from '../../src/auth/issue.js';
import { createKeyCache } from '../../src/auth/key-cache.js';
import { attachKeyCache } from '../../src/auth/key-events.js';
import { announceKeyChange, createRevocationFeed, recordKeyBlock, type RevocationFeed } from '../../src/auth/revocation-feed.js';
import { GatewayError } from '../../src/errors.js';
import { findKeyByHash, setKeyStatus } from '../../src/store/keys.js';
import { connectTestRedis, createTestDatabase, freePort, waitUntil, type TestDatabase, type TestRedis } from '../support/services.js';

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

const req = (secret: string) => ({ headers: new Map([['authorization', `Bearer ${secret}`]]), remoteAddress: '127.0.0.1' });
const codeOf = (r: unknown) => (r instanceof GatewayError ? r.code : 'ok');

/** A replica: key cache over Postgres (TTL far longer than any test) and a feed on its own connection. */
async function replica(intervalMs = 100) {
  const cache = createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h), ttlMs: 10 * 60_000 });
  const feed = createRevocationFeed({ redis: await tr.connect({ enableOfflineQueue: false }), cache, intervalMs });
  await feed.start();
  return { cache, feed, auth: createAuthenticator({ cache }) };
}

describe('revocation feed', () => {
  it('a revocation whose pub/sub message is lost reaches every replica within a poll', async () => {
    const issued = await issueKey(db.sql, { email: 'lost-event@example.com' });
    const replicas = [await replica(), await replica()];
    try {
      for (const r of replicas) expect(await r.auth(req(issued.secret))).toMatchObject({ keyId: issued.key.id });
      // What the CLI and the portal do, minus the publish that got lost.
      await setKeyStatus(db.sql, issued.key.id, 'revoked');
      await recordKeyBlock(tr.redis, issued.key.id, 'revoked');
      for (const r of replicas) {
        await waitUntil(async () => codeOf(await r.auth(req(issued.secret))) === 'key_revoked', {
          timeoutMs: 5000,
          message: 'a replica kept accepting the revoked key',
        });
      }
    } finally {
      for (const r of replicas) r.feed.stop();
    }
  });

  it('a suspension is lifted by re-activation even though the feed saw it, and the entry is removed', async () => {
    const issued = await issueKey(db.sql, { email: 'suspend-feed@example.com' });
    const r = await replica();
    // Re-activation travels by pub/sub only (a lost one leaves the key refused until its TTL: the safe side).
    const sub = await attachKeyCache(await tr.connect(), r.cache);
    try {
      expect(codeOf(await r.auth(req(issued.secret)))).toBe('ok');
      await setKeyStatus(db.sql, issued.key.id, 'suspended');
      await recordKeyBlock(tr.redis, issued.key.id, 'suspended');
      await waitUntil(async () => codeOf(await r.auth(req(issued.secret))) === 'key_suspended', {
        timeoutMs: 5000,
        message: 'suspension not applied',
      });
      await setKeyStatus(db.sql, issued.key.id, 'active');
      await announceKeyChange(tr.redis, { type: 'activated', keyId: issued.key.id });
      expect(await tr.redis.zscore(redisKeys.revokedKeys(), `suspended:${issued.key.id}`)).toBeNull();
      await waitUntil(async () => codeOf(await r.auth(req(issued.secret))) === 'ok', {
        timeoutMs: 5000,
        message: 're-activation not applied',
      });
      // Later polls do not suspend it again.
      await r.feed.poll();
      expect(codeOf(await r.auth(req(issued.secret)))).toBe('ok');
    } finally {
      r.feed.stop();
      await sub.close();
    }
  });

  it('announceKeyChange writes the feed before publishing, and survives a publish that fails', async () => {
    const issued = await issueKey(db.sql, { email: 'announce@example.com' });
    const order: string[] = [];
    const spy = await tr.connect();
    const realPublish = spy.publish.bind(spy);
    vi.spyOn(spy, 'publish').mockImplementation(async (..._args: Parameters<Redis['publish']>) => {
      order.push(
        `publish:${(await tr.redis.zscore(redisKeys.revokedKeys(), `revoked:${issued.key.id}`)) === null ? 'before-feed' : 'after-feed'}`,
      );
      void realPublish;
      throw new Error('connection lost');
    });
    const warnings: string[] = [];
    await announceKeyChange(spy, { type: 'revoked', keyId: issued.key.id }, {
      warn: (_: unknown, msg: string) => warnings.push(msg),
    } as never);
    expect(order).toEqual(['publish:after-feed']);
    expect(warnings).toEqual(['key event not published; replicas apply it from the revocation feed']);
  });

  it('applies each entry once, re-reading only a short overlap', async () => {
    const block = vi.fn();
    const feed = createRevocationFeed({ redis: tr.redis, cache: { block }, intervalMs: 60_000 });
    await feed.poll();
    const before = block.mock.calls.length;
    for (const id of ['a1', 'a2', 'a3']) await recordKeyBlock(tr.redis, `once-${id}`, 'revoked');
    await feed.poll();
    await feed.poll();
    await recordKeyBlock(tr.redis, 'once-a4', 'suspended');
    await feed.poll();
    expect(block.mock.calls.slice(before)).toEqual([
      ['once-a1', 'revoked'],
      ['once-a2', 'revoked'],
      ['once-a3', 'revoked'],
      ['once-a4', 'suspended'],
    ]);
  });

  it('stays bounded: trimmed to the newest entries and by age on every write', async () => {
    const key = redisKeys.revokedKeys();
    await tr.redis.del(key);
    const redisNow = async () => {
      const [sec, usec] = await tr.redis.time();
      return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    };
    // One write per Redis millisecond, so "newest" is well defined.
    for (let i = 0; i < 12; i++) {
      const at = await recordKeyBlock(tr.redis, `cap-${i}`, 'revoked', { maxEntries: 5 });
      await waitUntil(async () => (await redisNow()) > at);
    }
    expect(await tr.redis.zrange(key, 0, -1)).toEqual([
      'revoked:cap-7',
      'revoked:cap-8',
      'revoked:cap-9',
      'revoked:cap-10',
      'revoked:cap-11',
    ]);
    const first = await recordKeyBlock(tr.redis, 'old', 'revoked');
    // Let Redis's clock move on, then write with a 1 ms retention: everything older goes.
    await waitUntil(async () => (await redisNow()) > first + 1);
    await recordKeyBlock(tr.redis, 'new', 'revoked', { retentionMs: 1 });
    expect(await tr.redis.zrange(key, 0, -1)).toEqual(['revoked:new']);
  });

  it('while Redis is unreachable the feed fails quietly and authentication never waits on it', async () => {
    const issued = await issueKey(db.sql, { email: 'feed-down@example.com' });
    const dead = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    dead.on('error', () => undefined);
    const cache = createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h) });
    const feed: RevocationFeed = createRevocationFeed({ redis: dead, cache, intervalMs: 60_000 });
    await feed.start();
    try {
      expect(feed.stats()).toMatchObject({ polls: 1, failures: 1, failing: true });
      const auth = createAuthenticator({ cache });
      for (let i = 0; i < 3; i++) expect(await auth(req(issued.secret))).toMatchObject({ keyId: issued.key.id });
    } finally {
      feed.stop();
      dead.disconnect();
    }
  });
});
