import { channels, DEFAULT_TIERS, type TierLimits } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import type { Sql } from '../store/db.js';
import { loadTiers, type TierRow } from '../store/tiers.js';
import { subscribeChannel, type ChannelSubscription } from './subscription.js';

/**
 * Every tier's limits, from Postgres (operators may edit the seeded rows), held in process so
 * the hot path looks a tier up synchronously. Reloaded when anyone publishes on channels.tiers
 * (any message: the table is a handful of rows, so reloading all of it is simpler than diffing),
 * after a reconnect of the subscriber, and every `refreshIntervalMs` in case a message was lost.
 *
 * Fallbacks, so a request is never refused for want of a tier row:
 * - before the first successful load (Postgres down at boot) and for ids Postgres lacks, the
 *   built-in DEFAULT_TIERS of contracts/ (the numbers init.sql seeds);
 * - an id that is in neither (a tier renamed or deleted under a key) gets DEFAULT_TIERS.free,
 *   the least generous ordinary tier, and is logged once. The returned limits then carry
 *   id 'free', so x-fluxgate-tier tells the client what it is actually held to.
 */
export interface TierRegistryOptions {
  sql: Sql;
  /** Dedicated pub/sub connection (may be shared with other channels); none = periodic only. */
  subscriber?: Redis;
  refreshIntervalMs?: number;
  logger?: Logger;
  /** The loader; tests may wrap it to count or fail loads. */
  load?: (sql: Sql) => Promise<TierRow[]>;
}

const DEFAULTS: ReadonlyMap<string, TierLimits> = new Map(Object.values(DEFAULT_TIERS).map((t) => [t.id, t]));

const sameTier = (a: TierLimits, b: TierLimits): boolean =>
  a.requestsPerWindow === b.requestsPerWindow &&
  a.tokensPerWindow === b.tokensPerWindow &&
  a.windowSeconds === b.windowSeconds &&
  a.concurrentStreams === b.concurrentStreams &&
  a.burst === b.burst;

export class TierRegistry {
  readonly #opts: TierRegistryOptions;
  #tiers: ReadonlyMap<string, TierLimits> = DEFAULTS;
  #penaltyIds = new Set<string>();
  #loadedAt = 0;
  #refreshing: Promise<boolean> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #subscription: ChannelSubscription | undefined;
  readonly #warned = new Set<string>();

  constructor(opts: TierRegistryOptions) {
    this.#opts = opts;
  }

  /** Subscribes, then loads. A failed first load is logged and retried; defaults serve meanwhile. */
  async start(): Promise<void> {
    if (this.#opts.subscriber) {
      this.#subscription = await subscribeChannel(this.#opts.subscriber, channels.tiers, {
        onMessage: () => void this.refresh(),
        onResync: () => void this.refresh(),
        logger: this.#opts.logger,
      });
    }
    this.#timer = setInterval(() => void this.refresh(), this.#opts.refreshIntervalMs ?? 60_000);
    this.#timer.unref();
    await this.refresh();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#subscription?.close();
    await this.#refreshing;
  }

  /** Limits of a tier id; never throws (see the fallbacks above). */
  get(id: string): TierLimits {
    const t = this.#tiers.get(id) ?? DEFAULTS.get(id);
    if (t) return t;
    if (!this.#warned.has(id) && this.#warned.size < 1000) {
      this.#warned.add(id);
      this.#opts.logger?.warn({ tier: id }, "unknown tier: applying the 'free' tier's limits");
    }
    return DEFAULT_TIERS.free;
  }

  /** Whether Postgres (once loaded) has this id as a penalty level. */
  isPenalty(id: string): boolean {
    return this.#penaltyIds.has(id);
  }

  all(): TierLimits[] {
    return [...this.#tiers.values()];
  }

  /** Epoch ms of the last successful load (0: still on the defaults). */
  get loadedAt(): number {
    return this.#loadedAt;
  }

  /** Reloads from Postgres. Calls during a load queue exactly one more load. */
  refresh(): Promise<boolean> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = this.#load().finally(() => {
      this.#refreshing = null;
      if (this.#again) {
        this.#again = false;
        void this.refresh();
      }
    });
    return this.#refreshing;
  }

  async #load(): Promise<boolean> {
    let rows: TierRow[];
    try {
      rows = await (this.#opts.load ?? loadTiers)(this.#opts.sql);
    } catch (err) {
      this.#opts.logger?.warn({ err: (err as Error).message }, 'tier reload failed; keeping the current tiers');
      return false;
    }
    const next = new Map<string, TierLimits>();
    for (const row of rows) {
      const { isPenalty: _isPenalty, ...limits } = row;
      // Keep the old object when nothing changed: the rate limiter caches per tier object.
      const old = this.#tiers.get(limits.id);
      next.set(limits.id, old && sameTier(old, limits) ? old : limits);
    }
    this.#tiers = next;
    this.#penaltyIds = new Set(rows.filter((r) => r.isPenalty).map((r) => r.id));
    this.#loadedAt = Date.now();
    return true;
  }
}

export function createTierRegistry(opts: TierRegistryOptions): TierRegistry {
  return new TierRegistry(opts);
}

/** Tells every replica to reload the tiers (after an UPDATE of the tiers table). */
export function publishTiersChanged(redis: Redis, tierId?: string): Promise<number> {
  return redis.publish(channels.tiers, JSON.stringify({ tierId: tierId ?? null, at: Date.now() }));
}
