import { parseJsonSafe, REPLICA_TTL_MS, redisKeys, replicaRecordSchema } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';

/**
 * The data-plane replicas that will see a change (a dry run says so): the live members of the
 * replica registry (heartbeat younger than REPLICA_TTL_MS), each id once.
 */
export async function liveReplicaIds(redis: Redis, now: number = Date.now()): Promise<string[]> {
  const members = await redis.zrangebyscore(redisKeys.replicas(), `(${now - REPLICA_TTL_MS}`, '+inf');
  const ids = new Set<string>();
  for (const m of members) {
    const r = replicaRecordSchema.safeParse(parseJsonSafe(m));
    if (r.success) ids.add(r.data.id);
  }
  return [...ids].sort();
}
