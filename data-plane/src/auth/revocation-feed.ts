import { REVOKED_KEYS_MAX, REVOKED_KEYS_RETENTION_MS, redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import type { KeyStatus } from '../store/keys.js';
import type { KeyCache } from './key-cache.js';
import { publishKeyEvent, type KeyEventInput } from './key-events.js';

/**
 * Revocations that survive a lost pub/sub message. Every path that revokes or suspends a key
 * adds it to one sorted set (redisKeys.revokedKeys, scored by Redis's clock) before publishing;
 * every replica reads that set incrementally once a second and applies what is new to its key
 * cache. Pub/sub stays the fast path (milliseconds); the set bounds a lost message to one poll.
 *
 * Why a feed and not a membership check per request: the check would put a Redis round trip
 * (or an await on one) on the proxy's hot path for every cache hit older than a second; the
 * feed costs one ZRANGEBYSCORE per replica per second whatever the traffic, and requests never
 * wait on it.
 */

export type BlockedStatus = Exclude<KeyStatus, 'active'>;

/** ZADD scored by the server's clock (one clock for every writer), then trim by age and size. */
const RECORD_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
return now`;

interface ScriptClient {
  fgRevokedKeyAdd(key: string, member: string, retentionMs: number, max: number): Promise<number>;
}

export interface FeedLimits {
  retentionMs?: number;
  maxEntries?: number;
}

const member = (status: BlockedStatus, keyId: string) => `${status}:${keyId}`;

function scripts(redis: Redis): ScriptClient {
  if (!('fgRevokedKeyAdd' in redis)) redis.defineCommand('fgRevokedKeyAdd', { numberOfKeys: 1, lua: RECORD_SCRIPT });
  return redis as unknown as ScriptClient;
}

/** Adds a revoked or suspended key to the feed; returns the entry's score (Redis time, ms). */
export function recordKeyBlock(redis: Redis, keyId: string, status: BlockedStatus, limits: FeedLimits = {}): Promise<number> {
  return scripts(redis).fgRevokedKeyAdd(
    redisKeys.revokedKeys(),
    member(status, keyId),
    limits.retentionMs ?? REVOKED_KEYS_RETENTION_MS,
    limits.maxEntries ?? REVOKED_KEYS_MAX,
  );
}

/**
 * What every revoke, suspend or re-activate path calls after committing to Postgres: the feed
 * first (durable for the retention time), then the pub/sub event (fast). Throws only when the
 * feed could not be written; an event lost after that is repaired by the feed within a poll.
 */
export async function announceKeyChange(redis: Redis, event: KeyEventInput, log?: Pick<Logger, 'warn'>): Promise<void> {
  if (event.type === 'revoked' || event.type === 'suspended') await recordKeyBlock(redis, event.keyId, event.type);
  // A re-activated key must not be refused from an old suspension entry.
  if (event.type === 'activated') await redis.zrem(redisKeys.revokedKeys(), member('suspended', event.keyId));
  try {
    await publishKeyEvent(redis, event);
  } catch (err) {
    log?.warn({ err: (err as Error).message, keyId: event.keyId }, 'key event not published; replicas apply it from the revocation feed');
  }
}

export interface RevocationFeed {
  /** Reads once now, then every interval. */
  start(): Promise<void>;
  /** One read; exposed for tests and shutdown-free use. */
  poll(): Promise<number>;
  stop(): void;
  stats(): { polls: number; failures: number; applied: number; failing: boolean };
}

/** Entries up to this much older than the newest seen are read again (Redis clock steps). */
const OVERLAP_MS = 2_000;

export function createRevocationFeed(deps: {
  redis: Redis;
  cache: Pick<KeyCache, 'block'>;
  intervalMs?: number;
  logger?: Logger;
}): RevocationFeed {
  const intervalMs = deps.intervalMs ?? 1_000;
  // The first read takes the whole (bounded) set; after that only what is new.
  let cursor: number | '-inf' = '-inf';
  // Members read in the overlap window, so each is applied once.
  const seen = new Map<string, number>();
  const s = { polls: 0, failures: 0, applied: 0, failing: false };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | null = null;

  async function read(): Promise<number> {
    s.polls++;
    let rows: string[];
    try {
      rows = await deps.redis.zrangebyscore(redisKeys.revokedKeys(), cursor, '+inf', 'WITHSCORES');
    } catch (err) {
      s.failures++;
      if (!s.failing)
        deps.logger?.warn({ err: (err as Error).message }, 'revocation feed unreadable; relying on pub/sub and the key cache TTL');
      s.failing = true;
      return 0;
    }
    s.failing = false;
    let applied = 0;
    let newest = cursor === '-inf' ? Number.NEGATIVE_INFINITY : cursor + OVERLAP_MS;
    for (let i = 0; i + 1 < rows.length; i += 2) {
      const m = rows[i]!;
      const score = Number(rows[i + 1]);
      newest = Math.max(newest, score);
      if (seen.has(m)) continue;
      seen.set(m, score);
      const colon = m.indexOf(':');
      const status = m.slice(0, colon);
      if (status !== 'revoked' && status !== 'suspended') continue;
      deps.cache.block(m.slice(colon + 1), status);
      applied++;
    }
    if (Number.isFinite(newest)) {
      cursor = newest - OVERLAP_MS;
      for (const [m, score] of seen) if (score < cursor) seen.delete(m);
    }
    s.applied += applied;
    return applied;
  }

  const poll = (): Promise<number> => (running ??= read().finally(() => (running = null)));

  return {
    async start() {
      await poll();
      timer ??= setInterval(() => void poll(), intervalMs);
      timer.unref();
    },
    poll,
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    stats: () => ({ ...s }),
  };
}
