import { WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import type { PendingBucket } from '../../src/metrics/buckets.js';
import type { WriteOutcome } from '../../src/metrics/counter-writer.js';
import { appendPacked, definePackedScript } from '../../src/metrics/packed-writer.js';

/**
 * The counter writer as it was before issue 17's scripted flush: one command per field (HINCRBY,
 * PFADD, EXPIRE, one fgHmax call per bucket). Kept unchanged, with reference-counters.ts, as the
 * reference whose Redis contents the scripted writer must reproduce (fold-equivalence.test.ts).
 *
 * fgHmax key field value [field value …]: sets each field to max(current, value) — one script
 * call per bucket instead of read-modify-write round trips. Defined with ioredis defineCommand
 * (EVAL on a connection's first use, EVALSHA after, re-sent on NOSCRIPT).
 */
const HMAX_SCRIPT = `
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  local v = tonumber(ARGV[i + 1])
  if cur == nil or v > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1`;

type WithHmax = { fgHmax(key: string, ...fieldValues: Array<string | number>): unknown };

export function defineReferenceScripts(redis: Redis): void {
  redis.defineCommand('fgHmax', { numberOfKeys: 1, lua: HMAX_SCRIPT });
  definePackedScript(redis);
}

/**
 * Writes buckets in one pipeline: the guard's packed s10 windows first (packed-writer.ts; before
 * the active sets, so an active member always has its packed entry), then active-set membership
 * (grouped per window bucket; SADD is idempotent, so re-sending it with a retried bucket is
 * harmless), then each bucket's
 * HINCRBY per field, max-merge, PFADD for the HyperLogLogs, fingerprint counts, and EXPIRE with
 * the window's TTL on every key written, then whatever `extra` appends. Rejects only when the
 * pipeline as a whole failed.
 */
export async function writeBucketsPerField(
  redis: Redis,
  buckets: readonly PendingBucket[],
  extra?: (p: ChainableCommander) => void,
): Promise<WriteOutcome> {
  const p = redis.pipeline();
  const packedAt = appendPacked(p, buckets);
  const active = new Map<string, { ttl: number; members: Set<string> }>();
  for (const b of buckets) {
    const key = b.kind === 'key' ? redisKeys.activeKeys(b.window, b.bucket) : redisKeys.activeIps(b.window, b.bucket);
    let a = active.get(key);
    if (!a) active.set(key, (a = { ttl: WINDOWS[b.window].ttlSeconds, members: new Set() }));
    a.members.add(b.owner);
  }
  for (const [key, a] of active) {
    p.sadd(key, ...a.members);
    p.expire(key, a.ttl);
  }
  const ranges: Array<{ b: PendingBucket; start: number; end: number }> = [];
  for (const b of buckets) {
    const start = p.length;
    appendBucket(p, b);
    ranges.push({ b, start, end: p.length });
  }
  // Snapshots (the replica's own records) ride in the same pipeline, after the buckets; their
  // failure is not the buckets' (the next flush writes fresh ones).
  extra?.(p);
  const commands = p.length;
  const results = await p.exec();
  if (!results) throw new Error('pipeline returned no results');

  const retry: PendingBucket[] = [];
  let partial = 0;
  let error: string | undefined;
  for (const { b, start, end } of ranges) {
    // A bucket's commands: its own, and the packed call that carries it (if any).
    const packed = packedAt.get(b);
    const indexes = packed === undefined ? [] : [packed];
    for (let i = start; i < end; i++) indexes.push(i);
    let errors = 0;
    for (const i of indexes) {
      const e = results[i]?.[0];
      if (e) {
        errors++;
        error ??= e.message;
      }
    }
    if (errors === indexes.length) retry.push(b);
    else if (errors > 0) partial++;
  }
  return { retry, partial, commands, error };
}

function appendBucket(p: ChainableCommander, b: PendingBucket): void {
  const ttl = WINDOWS[b.window].ttlSeconds;
  if (b.kind === 'ip') {
    const key = redisKeys.ipUsage(b.owner, b.window, b.bucket);
    for (const [f, n] of b.sums) p.hincrby(key, f, n);
    p.expire(key, ttl);
    return;
  }
  const key = redisKeys.usage(b.owner, b.window, b.bucket);
  for (const [f, n] of b.sums) p.hincrby(key, f, n);
  if (b.maxes.size > 0) (p as unknown as WithHmax).fgHmax(key, ...[...b.maxes].flat());
  p.expire(key, ttl);
  if (b.ips.size > 0) {
    const k = redisKeys.usageIps(b.owner, b.window, b.bucket);
    p.pfadd(k, ...b.ips);
    p.expire(k, ttl);
  }
  if (b.models.size > 0) {
    const k = redisKeys.usageModels(b.owner, b.window, b.bucket);
    p.pfadd(k, ...b.models);
    p.expire(k, ttl);
  }
  if (b.fingerprints.size > 0) {
    const k = redisKeys.usagePrompts(b.owner, b.window, b.bucket);
    for (const [fp, n] of b.fingerprints) p.hincrby(k, fp, n);
    p.expire(k, ttl);
  }
}
