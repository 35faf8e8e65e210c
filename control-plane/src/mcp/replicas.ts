import {
  parseJsonSafe,
  redisKeys,
  REPLICA_RECORD_STALE_MS,
  REPLICA_TTL_MS,
  replicaMetricsSchema,
  replicaRecordSchema,
  type ReplicaMetrics,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { iso } from './schemas.js';

/** The live data-plane replicas (contracts' replica registry: heartbeat younger than REPLICA_TTL_MS). */
export async function liveReplicas(
  redis: Redis,
  now: number,
): Promise<Array<{ id: string; address: string; port: number; lastHeartbeat: string }>> {
  const raw = await redis.zrangebyscore(redisKeys.replicas(), now - REPLICA_TTL_MS, '+inf', 'WITHSCORES');
  const out: Array<{ id: string; address: string; port: number; lastHeartbeat: string }> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const r = replicaRecordSchema.safeParse(parseJsonSafe(raw[i]!));
    if (r.success) out.push({ ...r.data, lastHeartbeat: iso(Number(raw[i + 1])) });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** Each replica's latest metrics record that is not stale (a dead replica's record is ignored). */
export async function replicaMetrics(redis: Redis, now: number): Promise<ReplicaMetrics[]> {
  const all = await redis.hgetall(redisKeys.replicaMetrics());
  return Object.values(all).flatMap((text) => {
    const r = replicaMetricsSchema.safeParse(parseJsonSafe(text));
    return r.success && now - r.data.at <= REPLICA_RECORD_STALE_MS ? [r.data] : [];
  });
}
