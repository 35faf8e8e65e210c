import { encodePacked, packedShardOf, PACKED_SHARDS, redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBulkReader, type BulkReader } from '../src/collect/bulk-reader.js';
import { createCollector } from '../src/collect/collector.js';
import { connectTestRedis, type TestRedis } from './support/services.js';

/**
 * Issue 13's cycle aim: the collector reads the packed s10 windows (contracts packed-windows.ts)
 * the data plane writes beside each key's own hash, and falls back to the own hashes for a
 * window whose packed shards do not hold every active member.
 */
type Counters = { req: number; s4xx: number; r429: number; ptok: number; ctok: number; ptok_max: number };

/** A key's window as the data plane writes it now: its own hash, its packed entry, then the active set. */
async function seed(
  tr: TestRedis,
  keyId: string,
  bucket: number,
  c: Counters,
  opts: { packed?: boolean; own?: boolean } = {},
): Promise<void> {
  const p = tr.redis.pipeline();
  if (opts.own !== false) p.hset(redisKeys.usage(keyId, 's10', bucket), c);
  if (opts.packed !== false)
    p.hset(
      redisKeys.packedUsage('s10', bucket, packedShardOf(keyId)),
      keyId,
      encodePacked([c.req, c.s4xx, c.r429, c.ptok, c.ctok, c.ptok_max]),
    );
  p.sadd(redisKeys.activeKeys('s10', bucket), keyId);
  await p.exec();
}

const counters = (req: number): Counters => ({ req, s4xx: 1, r429: 2, ptok: req * 100, ctok: req * 50, ptok_max: req * 10 });

describe('collector over packed windows', () => {
  let tr: TestRedis;
  let reader: BulkReader;
  beforeAll(async () => {
    tr = await connectTestRedis();
    reader = createBulkReader({ url: tr.url, keyPrefix: tr.prefix });
  });
  afterAll(async () => {
    reader?.close();
    await tr?.close();
  });

  it('reads every key and IP from the packed shards alone, as the own hashes would give them', async () => {
    const t = 1_900_001_000_000 + 5_000;
    const b = Math.floor(t / 10_000);
    const ids = Array.from({ length: 300 }, (_, i) => `key-${i}`);
    // Packed entries only: the answer can only come from the packed shards.
    for (const [i, id] of ids.entries()) await seed(tr, id, b, counters(i + 1), { own: false });
    await seed(tr, 'key-0', b - 1, { req: 5, s4xx: 0, r429: 0, ptok: 0, ctok: 0, ptok_max: 9999 }, { own: false });
    await tr.redis.hset(redisKeys.packedIpUsage('s10', b, packedShardOf('10.1.2.3')), '10.1.2.3', encodePacked([30, 2, 40]));
    await tr.redis.sadd(redisKeys.activeIps('s10', b), '10.1.2.3');
    expect(new Set(ids.map(packedShardOf)).size).toBe(PACKED_SHARDS);

    const malformed: string[] = [];
    const collector = createCollector({
      reader,
      lookbackBuckets: 2,
      needsDetail: () => false,
      countMalformed: (k, n) => malformed.push(...Array<string>(n).fill(k)),
      now: () => t,
    });
    const snap = await collector.collect();
    expect(snap.keys).toHaveLength(300);
    const byId = new Map(snap.keys.map((k) => [k.keyId, k.totals]));
    expect(byId.get('key-41')).toEqual({
      requests: 42,
      status4xx: 1,
      rateLimited: 2,
      promptTokens: 4200,
      completionTokens: 2100,
      maxPromptTokens: 420,
    });
    // Two windows: sums added, the largest prompt max-merged.
    expect(byId.get('key-0')).toEqual({
      requests: 6,
      status4xx: 1,
      rateLimited: 2,
      promptTokens: 100,
      completionTokens: 50,
      maxPromptTokens: 9999,
    });
    expect(snap.ips).toEqual([{ ip: '10.1.2.3', failedCredentials: 30, failedLogins: 2, requests: 40 }]);
    expect(malformed).toEqual([]);

    // The current window again, grown and changed (a shard's field order moves as its hash
    // grows): every member still gets its own numbers.
    for (let i = 300; i < 600; i++) await seed(tr, `key-${i}`, b, counters(i + 1), { own: false });
    await seed(tr, 'key-41', b, counters(1000), { own: false });
    // Moved to the end of its shard: every member after it in that shard shifts one place.
    const shard5 = redisKeys.packedUsage('s10', b, packedShardOf('key-5'));
    const v5 = (await tr.redis.hget(shard5, 'key-5'))!;
    await tr.redis.hdel(shard5, 'key-5');
    await tr.redis.hset(shard5, 'key-5', v5);
    const again = new Map((await collector.collect()).keys.map((k) => [k.keyId, k.totals]));
    expect(again.size).toBe(600);
    for (let i = 0; i < 600; i++) expect(again.get(`key-${i}`)!.requests, `key-${i}`).toBe(i === 41 ? 1000 : i === 0 ? 6 : i + 1);
  });

  it('a window whose packed shards miss active members (an older data plane) is read from the own hashes', async () => {
    const t = 1_900_002_000_000 + 5_000;
    const b = Math.floor(t / 10_000);
    await seed(tr, 'new-writer', b, counters(3));
    await seed(tr, 'old-writer', b, counters(4), { packed: false });
    const collector = createCollector({ reader, lookbackBuckets: 1, needsDetail: () => false, now: () => t });
    const byId = new Map((await collector.collect()).keys.map((k) => [k.keyId, k.totals.requests]));
    expect(byId).toEqual(
      new Map([
        ['new-writer', 3],
        ['old-writer', 4],
      ]),
    );
  });

  it('skips and counts a malformed packed value, and keeps the rest', async () => {
    const t = 1_900_003_000_000 + 5_000;
    const b = Math.floor(t / 10_000);
    await seed(tr, 'fine', b, counters(2));
    for (const [id, junk] of [
      ['short', '1,2,3'],
      ['text', 'a,b,c,d,e,f'],
      ['negative', '-1,0,0,0,0,0'],
      ['long', '1,2,3,4,5,6,7'],
    ]) {
      await tr.redis.hset(redisKeys.packedUsage('s10', b, packedShardOf(id!)), id!, junk!);
      await tr.redis.sadd(redisKeys.activeKeys('s10', b), id!);
    }
    const counts = new Map<string, number>();
    const collector = createCollector({
      reader,
      lookbackBuckets: 1,
      needsDetail: () => false,
      countMalformed: (k, n) => counts.set(k, (counts.get(k) ?? 0) + n),
      now: () => t,
    });
    const snap = await collector.collect();
    expect(snap.keys.map((k) => k.keyId)).toEqual(['fine']);
    expect(counts.get('usage')).toBe(4);
  });
});
