import {
  REPLICA_RECORD_STALE_MS,
  redisKeys,
  replicaMetricsSchema,
  upstreamHealthReportSchema,
  type ReplicaMetrics,
  type UpstreamHealthReport,
} from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import type { UpstreamStatus } from '../proxy/types.js';
import type { ReplicaStats } from './replica-stats.js';

/**
 * This replica's records for the control plane and MCP (contracts health.ts): its upstream health
 * and its metrics, each a field (= replica id) of one shared hash, written with every counter
 * flush in the same pipeline (metrics/counters.ts), never per request.
 *
 * Hash fields have no TTL of their own (Redis < 7.4), so each write also drops the fields of
 * replicas that stopped writing — a field whose `at` is older than REPLICA_RECORD_STALE_MS, or
 * that is not a record at all — and keeps the whole hash's TTL at REPLICA_RECORD_STALE_MS. A dead
 * replica's record is therefore gone at the first write of a live one after it went stale, and
 * every record is gone that long after the last replica stopped.
 */
const WRITE_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local minAt = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  local at = ok and type(rec) == 'table' and tonumber(rec['at']) or nil
  if at == nil or at < minAt then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

type WithWrite = { fgReplicaRecord(key: string, replicaId: string, json: string, minAt: number, ttlMs: number): unknown };

export interface ReplicaRecordSources {
  replicaId: string;
  startedAt: number;
  stats: ReplicaStats;
  upstreams: () => UpstreamStatus[];
  now?: () => number;
}

/** The two records as of now (validated: a bug here must not write junk the readers skip). */
export function buildReplicaRecords(src: ReplicaRecordSources, at: number): { metrics: ReplicaMetrics; health: UpstreamHealthReport } {
  const s = src.stats.take();
  const metrics = replicaMetricsSchema.parse({ replicaId: src.replicaId, at, startedAt: src.startedAt, ...s });
  const health = upstreamHealthReportSchema.parse({
    replicaId: src.replicaId,
    at,
    upstreams: src.upstreams().map((u) => ({
      name: u.name.slice(0, 200),
      url: credentialFree(u.url),
      state: u.state,
      outstanding: u.outstanding,
      consecutiveFailures: u.consecutiveFailures,
      ejectedUntil: u.ejectedUntil,
      lastError: u.lastError === null ? null : u.lastError.slice(0, 500),
      requests: u.requests,
      failures: u.failures,
    })),
  });
  return { metrics, health };
}

/** Scheme, host and path only: whatever else a URL holds (userinfo, query) could be a secret. */
function credentialFree(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`.slice(0, 2000);
  } catch {
    return '';
  }
}

/** Returns the hook the counter flush calls to append this replica's records to its pipeline. */
export function replicaRecordWriter(redis: Redis, src: ReplicaRecordSources): (p: ChainableCommander) => void {
  redis.defineCommand('fgReplicaRecord', { numberOfKeys: 1, lua: WRITE_SCRIPT });
  const now = src.now ?? Date.now;
  return (p) => {
    const at = now();
    const { metrics, health } = buildReplicaRecords(src, at);
    const w = p as unknown as WithWrite;
    const minAt = at - REPLICA_RECORD_STALE_MS;
    w.fgReplicaRecord(redisKeys.replicaMetrics(), src.replicaId, JSON.stringify(metrics), minAt, REPLICA_RECORD_STALE_MS);
    w.fgReplicaRecord(redisKeys.upstreamHealth(), src.replicaId, JSON.stringify(health), minAt, REPLICA_RECORD_STALE_MS);
  };
}

/** A replica that stops gracefully takes its records with it (a crashed one's go stale, above). */
export async function removeReplicaRecords(redis: Redis, replicaId: string): Promise<void> {
  await redis.multi().hdel(redisKeys.replicaMetrics(), replicaId).hdel(redisKeys.upstreamHealth(), replicaId).exec();
}
