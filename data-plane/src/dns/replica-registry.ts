/**
 * The registry of live data-plane replicas that CLUSTER_DOMAIN answers from: a Redis sorted
 * set (redisKeys.replicas()) whose members are JSON ReplicaRecords scored by their last
 * heartbeat (ms). A replica is live while its score is younger than REPLICA_TTL_MS.
 *
 * Writers heartbeat with ZADD and prune stale members in the same MULTI; readers poll in the
 * background and filter by age at the moment of each lookup, so a replica that stops beating
 * drops out on time even while Redis is unreachable, and no lookup ever waits on Redis.
 *
 * Both act on the client's 'ready' event as well: the hot-path client has no offline queue, so
 * a command sent while it is still connecting fails at once; at start-up the first beat and
 * the first read wait for the connection instead of failing and waiting a whole period (and
 * after a Redis restart the registry is refilled and re-read at once).
 */
import { REPLICA_TTL_MS, redisKeys, replicaRecordSchema, type ReplicaRecord } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';

export interface RegisterOptions {
  now?: () => number;
  onError?: (err: unknown) => void;
}

/** Stops the heartbeat; by default also removes the member (graceful shutdown). */
export type StopHeartbeat = (opts?: { deregister?: boolean }) => Promise<void>;

/** Same record, same member string: ZADD then updates the score instead of adding a member. */
const memberOf = (r: ReplicaRecord): string => JSON.stringify({ id: r.id, address: r.address, port: r.port });

export function registerReplica(redis: Redis, record: ReplicaRecord, intervalMs: number, opts: RegisterOptions = {}): StopHeartbeat {
  if (!(intervalMs > 0 && intervalMs * 2 <= REPLICA_TTL_MS)) {
    // Two beats must fit in the TTL, or one slow beat makes a healthy replica look dead.
    throw new Error(`replica heartbeat interval must be in (0, ${REPLICA_TTL_MS / 2}] ms, got ${intervalMs}`);
  }
  const now = opts.now ?? (() => Date.now());
  const key = redisKeys.replicas();
  const member = memberOf(replicaRecordSchema.parse(record));
  let stopped = false;
  const beat = async (): Promise<void> => {
    const t = now();
    try {
      await redis
        .multi()
        .zadd(key, t, member)
        .zremrangebyscore(key, '-inf', `(${t - REPLICA_TTL_MS}`)
        .exec();
    } catch (err) {
      opts.onError?.(err);
    }
  };
  let inFlight: Promise<void> = Promise.resolve();
  const beatNow = (): void => {
    inFlight = beat();
  };
  if (redis.status === 'ready') beatNow();
  redis.on('ready', beatNow);
  const timer = setInterval(beatNow, intervalMs);
  timer.unref();
  return async ({ deregister = true } = {}) => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    redis.off('ready', beatNow);
    await inFlight;
    if (!deregister) return;
    try {
      await redis.zrem(key, member);
    } catch (err) {
      opts.onError?.(err);
    }
  };
}

export interface ReplicaView {
  /** Live replicas (one per id, its latest registration), or null before the first read. */
  live(): ReplicaRecord[] | null;
  /** Reads the registry now (the background loop calls this). */
  refresh(): Promise<void>;
  stop(): void;
}

export interface WatchOptions {
  /** Background read period. Default 1 s (REPLICA_TTL_MS is 15 s). */
  refreshMs?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

export function watchReplicas(redis: Redis, opts: WatchOptions = {}): ReplicaView {
  const now = opts.now ?? (() => Date.now());
  const key = redisKeys.replicas();
  let seen: { record: ReplicaRecord; at: number }[] | null = null;
  let running: Promise<void> | null = null;

  const read = async (): Promise<void> => {
    const raw = await redis.zrangebyscore(key, `(${now() - REPLICA_TTL_MS}`, '+inf', 'WITHSCORES');
    const next: { record: ReplicaRecord; at: number }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw[i] as string);
      } catch {
        continue; // someone else's garbage must not hide the healthy members
      }
      const r = replicaRecordSchema.safeParse(parsed);
      if (r.success) next.push({ record: r.data, at: Number(raw[i + 1]) });
    }
    seen = next;
  };
  const refresh = (): Promise<void> => {
    running ??= read()
      .catch((err: unknown) => opts.onError?.(err))
      .finally(() => {
        running = null;
      });
    return running;
  };

  const onReady = (): void => void refresh();
  if (redis.status === 'ready') onReady();
  redis.on('ready', onReady);
  const timer = setInterval(onReady, opts.refreshMs ?? 1_000);
  timer.unref();

  return {
    live() {
      if (seen === null) return null;
      const cutoff = now() - REPLICA_TTL_MS;
      const byId = new Map<string, { record: ReplicaRecord; at: number }>();
      for (const s of seen) {
        if (s.at <= cutoff) continue;
        const prev = byId.get(s.record.id);
        if (prev === undefined || prev.at < s.at) byId.set(s.record.id, s);
      }
      return [...byId.values()].map((s) => s.record);
    },
    refresh,
    stop() {
      clearInterval(timer);
      redis.off('ready', onReady);
    },
  };
}
