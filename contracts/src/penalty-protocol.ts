import { penaltyEventSchema, type PenaltyEvent } from './events.js';
import { channels, redisKeys } from './redis-keys.js';
import { asString, asStrings, parseJsonSafe, runSteps, type RedisLike } from './redis-client.js';
import { PENALTY_DURATION_SECONDS, penaltyRecordSchema, type PenaltyLevel, type PenaltyRecord } from './tiers.js';

/**
 * The penalty box in Redis, as both planes write it (the data plane's admin listener, the
 * control plane's guard, later MCP and the portal):
 *   redisKeys.penalty(keyId)   JSON PenaltyRecord, PX = time left until expiresAt
 *   redisKeys.penaltyIndex()   ZSET member keyId, score expiresAt (ms)
 *   channels.penalties         PenaltyEvent {type: 'set' | 'lifted', keyId, at}
 *
 * The record is the truth and the index only a hint of which records to read: readers GET the
 * record and ignore index members without one, and the record's own TTL ends a penalty even if
 * no one cleans the index. So the writers order their steps to keep that true even without a
 * transaction: set = index first, then record, then publish; lift = record first, then index,
 * then publish. On a single Redis they also run in one MULTI (atomic); on Redis Cluster the
 * record and the index live in different slots, so there they run in that order, one by one.
 */

export interface PenaltyInput {
  keyId: string;
  level: PenaltyLevel;
  setBy: PenaltyRecord['setBy'];
  reason?: string;
  incidentId?: string | null;
  /** Defaults to the level's PENALTY_DURATION_SECONDS. */
  durationSeconds?: number;
  now?: number;
  /** Operator penalties: who set it, and whether it was forced past MCP_MAX_PENALTY. */
  actor?: string;
  forced?: boolean;
}

/** A valid record from what an operator or the guard decided (the admin POST body, an MCP call). */
export function buildPenaltyRecord(input: PenaltyInput): PenaltyRecord {
  const now = input.now ?? Date.now();
  const seconds = input.durationSeconds ?? PENALTY_DURATION_SECONDS[input.level];
  return penaltyRecordSchema.parse({
    keyId: input.keyId,
    level: input.level,
    expiresAt: now + Math.round(seconds * 1000),
    reason: input.reason ?? '',
    incidentId: input.incidentId ?? null,
    setBy: input.setBy,
    setAt: now,
    ...(input.actor === undefined ? {} : { actor: input.actor }),
    ...(input.forced ? { forced: true } : {}),
  });
}

const event = (type: PenaltyEvent['type'], keyId: string, at: number): string =>
  JSON.stringify(penaltyEventSchema.parse({ type, keyId, at }));

/** Puts a key in the penalty box (or changes its penalty); every replica hears of it at once. */
export async function setPenalty(redis: RedisLike, record: PenaltyRecord, now: number = Date.now()): Promise<void> {
  const rec = penaltyRecordSchema.parse(record);
  const ttl = rec.expiresAt - now;
  if (ttl <= 0) throw new RangeError(`penalty for ${rec.keyId} expires in the past (expiresAt ${rec.expiresAt}, now ${now})`);
  await runSteps(redis, [
    ['ZADD', redisKeys.penaltyIndex(), rec.expiresAt, rec.keyId],
    ['SET', redisKeys.penalty(rec.keyId), JSON.stringify(rec), 'PX', ttl],
    // Index members of ended penalties are dead weight for every resync: drop them here.
    ['ZREMRANGEBYSCORE', redisKeys.penaltyIndex(), '-inf', now],
    ['PUBLISH', channels.penalties, event('set', rec.keyId, now)],
  ]);
}

/** Pardon: the key returns to its own tier on every replica. True when it had a penalty. */
export async function liftPenalty(redis: RedisLike, keyId: string, now: number = Date.now()): Promise<boolean> {
  const [deleted] = await runSteps(redis, [
    ['DEL', redisKeys.penalty(keyId)],
    ['ZREM', redisKeys.penaltyIndex(), keyId],
    ['PUBLISH', channels.penalties, event('lifted', keyId, now)],
  ]);
  return deleted === 1;
}

/** A stored record that is well-formed and not yet over; anything else counts as no penalty. */
export function parsePenalty(text: string | null, now: number): PenaltyRecord | null {
  if (text === null) return null;
  const parsed = penaltyRecordSchema.safeParse(parseJsonSafe(text));
  return parsed.success && parsed.data.expiresAt > now ? parsed.data : null;
}

export async function getPenalty(redis: RedisLike, keyId: string, now: number = Date.now()): Promise<PenaltyRecord | null> {
  return parsePenalty(asString(await redis.call('GET', redisKeys.penalty(keyId))), now);
}

/**
 * Every live penalty. One GET per member rather than MGET: the records sit in different Cluster
 * slots; ioredis pipelines concurrent calls on one connection anyway.
 */
export async function listPenalties(redis: RedisLike, now: number = Date.now()): Promise<PenaltyRecord[]> {
  const ids = asStrings(await redis.call('ZRANGEBYSCORE', redisKeys.penaltyIndex(), `(${now}`, '+inf'));
  const texts = await Promise.all(ids.map(async (id) => asString(await redis.call('GET', redisKeys.penalty(id)))));
  const out: PenaltyRecord[] = [];
  texts.forEach((text, i) => {
    const rec = parsePenalty(text, now);
    // A record under another key's name would be a writer bug; never apply it to the wrong key.
    if (rec && rec.keyId === ids[i]) out.push(rec);
  });
  return out;
}
