import { episodeRecordSchema, parseJsonSafe, setPardonGrace, PENALTY_LEVELS, redisKeys, type DetectorId } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { offenceMember } from './members.js';

/**
 * What a pardon of a penalty means for the guard (issue 18), whoever pardons (the guard's watch
 * on seeing a penalty lifted early, MCP's pardon_key): the key gets a grace
 * (redisKeys.pardonGrace) so no detector re-penalises it meanwhile; the pardoned incident's
 * offences are taken back (it was a false positive: the escalation resets for that episode); the
 * episode marker stays (its incident is the pardoned one) but no longer holds a penalty.
 * Idempotent: a second call moves the grace's end, nothing else.
 */
export async function applyPardon(
  redis: Redis,
  args: { keyId: string; incidentId: string | null; detector: DetectorId | null; graceSeconds: number; now: number },
): Promise<{ graceUntil: number }> {
  const { keyId, incidentId, detector, graceSeconds, now } = args;
  const until = now + graceSeconds * 1000;
  await setPardonGrace(redis, { keyId, until, incidentId, at: now }, now);
  if (incidentId === null) return { graceUntil: until };
  await redis.zrem(redisKeys.offences(keyId), ...PENALTY_LEVELS.map((l) => offenceMember(incidentId, l)));
  if (detector === null) return { graceUntil: until };
  const epKey = redisKeys.episode(keyId, detector);
  const ep = episodeRecordSchema.safeParse(parseJsonSafe((await redis.get(epKey)) ?? ''));
  if (ep.success && ep.data.incidentId === incidentId) {
    await redis.set(epKey, JSON.stringify({ ...ep.data, level: null, expiresAt: null }), 'PX', Math.max(graceSeconds * 1000, 60_000));
  }
  return { graceUntil: until };
}
