import * as net from 'node:net';
import { redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBulkReader, type BulkReader } from '../src/collect/bulk-reader.js';
import { createCollector, FINAL_AFTER_MS } from '../src/collect/collector.js';
import { connectTestRedis, type TestRedis } from './support/services.js';

/** Writes one key's window the way the data plane's counter writer does (contracts names). */
async function seedKey(
  tr: TestRedis,
  keyId: string,
  bucket: number,
  fields: Record<string, number | string>,
  extra: { ips?: string[]; models?: string[]; prompts?: Record<string, number> } = {},
): Promise<void> {
  const p = tr.redis.pipeline();
  p.sadd(redisKeys.activeKeys('s10', bucket), keyId);
  p.hset(redisKeys.usage(keyId, 's10', bucket), fields);
  if (extra.ips) p.pfadd(redisKeys.usageIps(keyId, 's10', bucket), ...extra.ips);
  if (extra.models) p.pfadd(redisKeys.usageModels(keyId, 's10', bucket), ...extra.models);
  if (extra.prompts) p.hset(redisKeys.usagePrompts(keyId, 's10', bucket), extra.prompts);
  await p.exec();
}

describe('collector', () => {
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

  it('sums the lookback windows of active keys and IPs, with details for heavy keys only', async () => {
    const t = 1_900_000_000_000 + 5_000; // 5 s into a bucket
    const b = Math.floor(t / 10_000);
    await seedKey(
      tr,
      'heavy',
      b,
      { req: 30, r429: 4, ptok: 1000, ctok: 2000, ptok_max: 400, s4xx: 5 },
      { ips: ['1.1.1.1', '2.2.2.2'], models: ['a'], prompts: { aaa: 20, bbb: 1 } },
    );
    await seedKey(tr, 'heavy', b - 1, { req: 10, ptok_max: 900 }, { ips: ['3.3.3.3'], models: ['b'], prompts: { aaa: 5 } });
    await seedKey(tr, 'light', b - 2, { req: 1 });
    await seedKey(tr, 'old', b - 3, { req: 99 }); // outside a 3-bucket lookback
    await tr.redis.sadd(redisKeys.activeIps('s10', b), '10.0.0.9');
    await tr.redis.hset(redisKeys.ipUsage('10.0.0.9', 's10', b), { badkey: 7, req: 7 });

    const malformed: string[] = [];
    const collector = createCollector({
      reader,
      lookbackBuckets: 3,
      needsDetail: (_id, c) => c.requests >= 10,
      countMalformed: (k, n) => malformed.push(...Array<string>(n).fill(k)),
      now: () => t,
    });
    const snap = await collector.collect();
    const byId = new Map(snap.keys.map((k) => [k.keyId, k]));
    expect([...byId.keys()].sort()).toEqual(['heavy', 'light']);
    expect(byId.get('heavy')!.totals).toEqual({
      requests: 40,
      status4xx: 5,
      rateLimited: 4,
      promptTokens: 1000,
      completionTokens: 2000,
      maxPromptTokens: 900,
    });
    expect(byId.get('heavy')!.detail).toEqual({ distinctIps: 3, distinctModels: 2, topPromptCount: 25 });
    expect(byId.get('light')!.detail).toBeNull();
    expect(snap.ips).toEqual([{ ip: '10.0.0.9', failedCredentials: 7, failedLogins: 0, requests: 7 }]);
    // b-1 ended 5 s ago (> FINAL_AFTER_MS): final, so it is the rate-spike sample.
    expect(FINAL_AFTER_MS).toBeLessThan(5000);
    expect(snap.lastCompleteBucket).toBe(b - 1);
    expect(byId.get('heavy')!.lastWindowRequests).toBe(10);
    expect(malformed).toEqual([]);
  });

  it('skips and counts malformed and wrong-type records, and keeps going', async () => {
    const t = 1_900_000_100_000 + 1_000;
    const b = Math.floor(t / 10_000);
    await seedKey(tr, 'good', b, { req: 3 });
    await seedKey(tr, 'junk', b, { req: 'lots', ptok: 1 });
    await seedKey(tr, 'negative', b, { req: -4 });
    await tr.redis.sadd(redisKeys.activeKeys('s10', b), 'wrongtype');
    await tr.redis.set(redisKeys.usage('wrongtype', 's10', b), 'not a hash');
    await tr.redis.sadd(redisKeys.activeIps('s10', b), 'bad-ip');
    await tr.redis.hset(redisKeys.ipUsage('bad-ip', 's10', b), { badkey: '1e9' });
    const counts = new Map<string, number>();
    const collector = createCollector({
      reader,
      lookbackBuckets: 1,
      needsDetail: () => false,
      countMalformed: (k, n) => counts.set(k, (counts.get(k) ?? 0) + n),
      now: () => t,
    });
    const snap = await collector.collect();
    expect(snap.keys.map((k) => k.keyId)).toEqual(['good']);
    expect(counts.get('usage')).toBe(3);
    expect(counts.get('ip_usage')).toBe(1);
  });

  it('reads a bucket until it is final, then serves it from memory', async () => {
    let t = 1_900_000_200_000 + 1_000;
    const b = Math.floor(t / 10_000);
    await seedKey(tr, 'k', b, { req: 1 });
    const collector = createCollector({ reader, lookbackBuckets: 2, needsDetail: () => false, now: () => t });
    expect((await collector.collect()).keys[0]!.totals.requests).toBe(1);
    // A late flush into the same bucket before it is final is seen.
    await tr.redis.hincrby(redisKeys.usage('k', 's10', b), 'req', 1);
    t = (b + 1) * 10_000 + FINAL_AFTER_MS; // now final
    expect((await collector.collect()).keys[0]!.totals.requests).toBe(2);
    // Past finality the bucket is not read again.
    await tr.redis.hincrby(redisKeys.usage('k', 's10', b), 'req', 100);
    expect((await collector.collect()).keys[0]!.totals.requests).toBe(2);
    collector.reset();
    expect((await collector.collect()).keys[0]!.totals.requests).toBe(102);
  });

  it('fails the cycle (not the process) when Redis is unreachable', async () => {
    const dead = createBulkReader({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 });
    const collector = createCollector({ reader: dead, lookbackBuckets: 1, needsDetail: () => false });
    await expect(collector.collect()).rejects.toThrow();
    dead.close();
  });
});

describe('bulk reader', () => {
  let tr: TestRedis;
  beforeAll(async () => {
    tr = await connectTestRedis();
  });
  afterAll(async () => {
    await tr?.close();
  });

  it('keeps replies in order across concurrent batches large enough to wait for drain', async () => {
    const n = 30_000;
    for (let i = 0; i < n; i += 5000) {
      const p = tr.redis.pipeline();
      for (let j = i; j < i + 5000; j++) p.hset(`h:${j}`, 'v', j);
      await p.exec();
    }
    // A relay that can stop reading from the reader, so its writes back up as under a slow Redis.
    let client: net.Socket | undefined;
    const relay = net.createServer((c) => {
      client = c;
      const upstream = net.connect(6379, '127.0.0.1');
      c.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => c.write(d));
      c.on('close', () => upstream.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const reader = createBulkReader({ url: `redis://127.0.0.1:${(relay.address() as net.AddressInfo).port}`, keyPrefix: tr.prefix });
    try {
      expect(await reader.pipeline([['PING']])).toEqual(['PONG']);
      client!.pause();
      const names = (count: number, reverse = false): string[] =>
        Array.from({ length: count }, (_, k) => `${tr.prefix}h:${(reverse ? count - 1 - k : k) % n}`);
      // ~20 MB of commands: more than the socket buffers hold while the relay does not read.
      const big = 10 * n;
      const a: number[] = [];
      const b: number[] = [];
      const all = Promise.all([
        reader.each('HMGET', names(big), big, ['v'], (r) => void a.push((r as number[])[0]!), true),
        reader.each('HMGET', names(1000, true), 1000, ['v'], (r) => void b.push((r as number[])[0]!), true),
        reader.pipeline([['HGET', `${tr.prefix}h:7`, 'v']]),
      ]);
      // Every batch has been issued (the writer is blocked on drain); let Redis read again.
      await new Promise((r) => setImmediate(r));
      client!.resume();
      const [, , c] = await all;
      expect(c).toEqual(['7']);
      expect(a.length).toBe(big);
      expect(a.every((v, k) => v === k % n)).toBe(true);
      expect(b).toEqual(Array.from({ length: 1000 }, (_, k) => 999 - k));
    } finally {
      reader.close();
      relay.close();
    }
  });
});
