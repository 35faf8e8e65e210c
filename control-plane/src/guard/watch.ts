import { getIpBlock, getPenalty, parseJsonSafe, redisKeys, type DetectorId, type IncidentStatus } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { IncidentStore } from '../incidents/store.js';
import type { GuardMetrics } from '../metrics/registry.js';
import { watchMemberSchema as memberSchema } from './members.js';
import { applyPardon } from './pardon.js';

/**
 * What happens to the guard's penalties and blocks after it set them (redisKeys.guardWatch,
 * member = JSON {incidentId, subject, detector}, score = expiry):
 * - expiry is an automatic pardon: the record's own TTL ends it on every replica; here the
 *   incident is closed as `expired`;
 * - a penalty gone before its expiry was pardoned (an operator, MCP, the portal): the incident is
 *   closed as `pardoned`, the key gets a grace (GUARD_PARDON_GRACE_SECONDS, issue 18) so no
 *   detector re-penalises it meanwhile, and the offence is taken back (a pardon says it was a
 *   false positive: escalation resets for that episode);
 * - replaced by a penalty of another incident (an operator's): closed as `closed`.
 */

export interface WatchDeps {
  redis: Redis;
  store: IncidentStore;
  metrics: GuardMetrics;
  graceSeconds: number;
  archive: (id: string) => void;
}

export async function checkWatch(deps: WatchDeps, now: number): Promise<{ expired: number; pardoned: number }> {
  const { redis, store } = deps;
  const raw = await redis.zrange(redisKeys.guardWatch(), 0, -1, 'WITHSCORES');
  let expiredCount = 0;
  let pardonedCount = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const member = raw[i]!;
    const until = Number(raw[i + 1]);
    const parsed = memberSchema.safeParse(parseJsonSafe(member));
    if (!parsed.success) {
      deps.metrics.countMalformed('episode');
      await redis.zrem(redisKeys.guardWatch(), member);
      continue;
    }
    const { incidentId, subject, detector } = parsed.data;
    const isIp = subject.startsWith('ip:');
    let status: IncidentStatus | null = null;
    if (until <= now) status = 'expired';
    else {
      const live = isIp ? await getIpBlock(redis, subject.slice(3), now) : await getPenalty(redis, subject, now);
      if (!live) status = 'pardoned';
      else if (live.incidentId !== incidentId) status = 'closed';
    }
    if (!status) continue;
    if (status === 'pardoned' && !isIp) {
      await onPardon(deps, subject, detector, incidentId, now);
      pardonedCount++;
    }
    if (status === 'expired') expiredCount++;
    const incident = await store.get(incidentId);
    if (incident && incident.status === 'open') {
      await store.update({ ...incident, status, endedAt: status === 'expired' ? until : now, updatedAt: now });
      deps.archive(incidentId);
    }
    await redis.zrem(redisKeys.guardWatch(), member);
  }
  return { expired: expiredCount, pardoned: pardonedCount };
}

async function onPardon(deps: WatchDeps, keyId: string, detector: DetectorId, incidentId: string, now: number): Promise<void> {
  await applyPardon(deps.redis, { keyId, incidentId, detector, graceSeconds: deps.graceSeconds, now });
}
