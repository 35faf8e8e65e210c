import {
  PACKED_ADD_SCRIPT,
  PACKED_IP_FIELDS,
  PACKED_KEY_FIELDS,
  PACKED_KEY_MAX_FROM,
  PACKED_WINDOW,
  WINDOWS,
  packedShardOf,
  redisKeys,
} from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import type { PendingBucket } from './buckets.js';

/**
 * The s10 windows packed for the guard (contracts packed-windows.ts): per window and shard, one
 * script call adding every key's (or IP's) detector counters to one hash, so a guard cycle reads
 * a window in PACKED_SHARDS commands. Calls carry at most MEMBERS_PER_CALL members, so no single
 * script holds Redis for long.
 */
const MEMBERS_PER_CALL = 1000;

type WithPacked = { fgPackedAdd(key: string, ttl: number, width: number, maxFrom: number, ...args: Array<string | number>): unknown };

export function definePackedScript(redis: Redis): void {
  redis.defineCommand('fgPackedAdd', { numberOfKeys: 1, lua: PACKED_ADD_SCRIPT });
}

const keyValues = (b: PendingBucket): number[] =>
  PACKED_KEY_FIELDS.map((f, i) => (i >= PACKED_KEY_MAX_FROM ? (b.maxes.get(f) ?? 0) : (b.sums.get(f) ?? 0)));
const ipValues = (b: PendingBucket): number[] => PACKED_IP_FIELDS.map((f) => b.sums.get(f) ?? 0);

/**
 * Appends the packed writes of `buckets` (those of the packed window) to `p`, and returns, for
 * each bucket packed, the index of the command that carries it.
 */
export function appendPacked(p: ChainableCommander, buckets: readonly PendingBucket[]): Map<PendingBucket, number> {
  const groups = new Map<string, { kind: 'key' | 'ip'; members: PendingBucket[] }>();
  for (const b of buckets) {
    if (b.window !== PACKED_WINDOW) continue;
    const shard = packedShardOf(b.owner);
    const key = b.kind === 'key' ? redisKeys.packedUsage(b.window, b.bucket, shard) : redisKeys.packedIpUsage(b.window, b.bucket, shard);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { kind: b.kind, members: [] }));
    g.members.push(b);
  }
  const indexOf = new Map<PendingBucket, number>();
  const ttl = WINDOWS[PACKED_WINDOW].ttlSeconds;
  for (const [key, g] of groups) {
    const width = g.kind === 'key' ? PACKED_KEY_FIELDS.length : PACKED_IP_FIELDS.length;
    const maxFrom = g.kind === 'key' ? PACKED_KEY_MAX_FROM : width;
    for (let i = 0; i < g.members.length; i += MEMBERS_PER_CALL) {
      const chunk = g.members.slice(i, i + MEMBERS_PER_CALL);
      const args: Array<string | number> = [];
      for (const b of chunk) {
        args.push(b.owner, ...(g.kind === 'key' ? keyValues(b) : ipValues(b)));
        indexOf.set(b, p.length);
      }
      (p as unknown as WithPacked).fgPackedAdd(key, ttl, width, maxFrom, ...args);
    }
  }
  return indexOf;
}
