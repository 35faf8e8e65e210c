import { hostname } from 'node:os';
import { guardLeaseSchema, guardLeaseTiming, redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';

/**
 * One guard acts at a time: the holder of redisKeys.guardLease.
 * - acquire: SET key value NX PX ttl (only when nobody holds it);
 * - renew: a script that extends the TTL only if the value is still ours (compare-and-extend),
 *   so a leader that stalled past its TTL and lost the lease can never extend someone else's;
 * - release on shutdown: a script that deletes it only if it is ours.
 * Locally, leadership also lapses by the clock: `isLeader()` turns false `ttl − margin` after
 * the last renewal was *sent*, so a leader cut off from Redis stops acting before a standby can
 * have taken over (the standby must first see the key expire).
 */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type LeaseCommands = {
  fgLeaseExtend(key: string, value: string, ttlMs: number): Promise<number>;
  fgLeaseRelease(key: string, value: string): Promise<number>;
};

export interface LeaseOptions {
  redis: Redis;
  pollIntervalMs: number;
  /** Unique id of this process (default: host:pid:random). */
  holder: string;
  log?: Logger;
  onChange?: (leader: boolean) => void;
  now?: () => number;
}

export interface Lease {
  start(): Promise<void>;
  /** Releases the lease if held (standbys then take over at their next try instead of after the TTL). */
  stop(): Promise<void>;
  isLeader(): boolean;
  /** One acquire-or-renew step (the timer calls it; tests may too). */
  tick(): Promise<boolean>;
  readonly holder: string;
}

export function createLease(opts: LeaseOptions): Lease {
  const { redis, log } = opts;
  const now = opts.now ?? Date.now;
  const { ttlMs, renewEveryMs } = guardLeaseTiming(opts.pollIntervalMs);
  // Stop acting a little before the TTL could run out under us (clock drift, a slow round trip).
  const marginMs = Math.min(250, Math.floor(ttlMs / 10));
  const value = JSON.stringify(
    guardLeaseSchema.parse({ holder: opts.holder, pid: process.pid, host: hostname().slice(0, 255), since: now() }),
  );
  const key = redisKeys.guardLease();
  redis.defineCommand('fgLeaseExtend', { numberOfKeys: 1, lua: EXTEND });
  redis.defineCommand('fgLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
  const cmd = redis as unknown as LeaseCommands;

  let validUntil = 0;
  let leader = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | null = null;
  let stopped = false;

  const setLeader = (next: boolean): void => {
    if (next === leader) return;
    leader = next;
    log?.info({ holder: opts.holder }, next ? 'guard lease acquired: this process leads' : 'guard lease lost: standing by');
    opts.onChange?.(next);
  };

  async function step(): Promise<boolean> {
    const sentAt = now();
    try {
      if (leader && validUntil > sentAt) {
        const extended = await cmd.fgLeaseExtend(key, value, ttlMs);
        if (extended === 1) validUntil = sentAt + ttlMs - marginMs;
        else validUntil = 0;
      } else {
        const ok = await redis.set(key, value, 'PX', ttlMs, 'NX');
        if (ok === 'OK') validUntil = sentAt + ttlMs - marginMs;
      }
    } catch (err) {
      // Redis unreachable: keep acting only while the last renewal is still valid by the clock.
      log?.debug({ err: (err as Error).message }, 'guard lease step failed');
    }
    setLeader(validUntil > now());
    return leader;
  }

  const tick = (): Promise<boolean> => {
    running ??= step().finally(() => {
      running = null;
    });
    return running;
  };

  return {
    holder: opts.holder,
    async start() {
      stopped = false;
      await tick();
      timer = setInterval(() => {
        if (!stopped) void tick();
      }, renewEveryMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      if (leader) {
        try {
          await cmd.fgLeaseRelease(key, value);
        } catch (err) {
          log?.warn({ err: (err as Error).message }, 'guard lease not released (it expires by itself)');
        }
      }
      validUntil = 0;
      setLeader(false);
    },
    isLeader: () => leader && validUntil > now(),
    tick,
  };
}
