import { WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import { appendBucket, defineBucketScript, partialError } from './bucket-script.js';
import type { PendingBucket } from './buckets.js';
import { appendPacked, definePackedScript } from './packed-writer.js';

export function defineCounterScripts(redis: Redis): void {
  defineBucketScript(redis);
  definePackedScript(redis);
}

export interface WriteOutcome {
  /** Buckets none of whose commands reached Redis: safe to retry whole. */
  retry: PendingBucket[];
  /** Buckets partly written (not retried: their sums would count twice). */
  partial: number;
  commands: number;
  error?: string;
}

/**
 * Writes buckets in one pipeline: the guard's packed s10 windows first (packed-writer.ts; before
 * the active sets, so an active member always has its packed entry), then active-set membership
 * (grouped per window bucket; SADD is idempotent, so re-sending it with a retried bucket is
 * harmless), then one script call per bucket (bucket-script.ts: HINCRBY per field, max-merge,
 * PFADD for the HyperLogLogs, fingerprint counts, and EXPIRE with the window's TTL on every key
 * written), then whatever `extra` appends. Rejects only when the pipeline as a whole failed.
 */
export async function writeBuckets(
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
  const at: Array<{ b: PendingBucket; i: number }> = [];
  for (const b of buckets) {
    at.push({ b, i: p.length });
    appendBucket(p, b);
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
  for (const { b, i } of at) {
    // A bucket's commands: its script call, and the packed call that carries it (if any).
    const packed = packedAt.get(b);
    const indexes = packed === undefined ? [i] : [packed, i];
    let errors = 0;
    for (const j of indexes) {
      const e = results[j]?.[0];
      if (e) {
        errors++;
        error ??= e.message;
      }
    }
    const halfWritten = partialError(results[i]?.[1]);
    error ??= halfWritten;
    if (errors === indexes.length) retry.push(b);
    else if (errors > 0 || halfWritten !== undefined) partial++;
  }
  return { retry, partial, commands, error };
}
