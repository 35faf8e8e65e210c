import { describe, expect, it } from 'vitest';
import { bucketOf, usageBucketSchema, WINDOWS } from './usage.js';
import { redisKeys } from './redis-keys.js';

describe('usage windows', () => {
  it('buckets by the window size', () => {
    expect(bucketOf('s10', 19_999)).toBe(1);
    expect(bucketOf('s10', 20_000)).toBe(2);
    expect(bucketOf('m1', 60_000 * 5 + 1)).toBe(5);
    expect(WINDOWS.h1.seconds).toBe(3600);
  });
  it('parses a Redis hash with missing fields as zeros', () => {
    const parsed = usageBucketSchema.parse({ req: '3', ptok: '10' });
    expect(parsed.req).toBe(3);
    expect(parsed.ctok).toBe(0);
  });
  it('keeps every per-key record in one cluster slot', () => {
    const tag = /\{[^}]+\}/;
    const keys = [redisKeys.usage('abc', 's10', 1), redisKeys.penalty('abc'), redisKeys.concurrency('abc')];
    const tags = keys.map((k) => k.match(tag)?.[0]);
    expect(new Set(tags)).toEqual(new Set(['{k:abc}']));
  });
  it("keeps a key's rate-limit buckets in its account's slot, apart from other keys' and tiers'", () => {
    const tag = /\{[^}]+\}/;
    const keys = [
      redisKeys.rateLimit('u1', 'abc', 'free'),
      redisKeys.rateLimit('u1', 'def', 'pro'),
      redisKeys.rateLimitAccount('u1', 'free'),
    ];
    expect(new Set(keys.map((k) => k.match(tag)?.[0]))).toEqual(new Set(['{a:u1}']));
    expect(new Set(keys).size).toBe(3);
    expect(redisKeys.rateLimitAccount('u1', 'free')).not.toBe(redisKeys.rateLimitAccount('u1', 'pro'));
  });
});
