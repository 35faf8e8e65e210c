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
 * A tier id this process does not know (issue 18: a tier inserted while the replicas run, whose
 * message was missed or is still on its way) is not served as `free`: `resolve` reloads first
 * (one load shared by every request waiting, begun after they asked) and answers from that. An
 * id that load did not find either is not reloaded for again until MISS_RELOAD_MS later, so a
 * key naming a vanished tier cannot make every request a Postgres query.
 *
 * Fallbacks, so a request is never refused for want of a tier row:
 * - before the first successful load (Postgres down at boot) and for ids Postgres lacks, the
 *   built-in DEFAULT_TIERS of contracts/ (the numbers init.sql seeds);
 * - an id that is in neither (a tier renamed or deleted under a key) gets DEFAULT_TIERS.free,
 *   the least generous ordinary tier, and is logged once. The returned limits then carry
 *   id 'free', so x-fluxgate-tier tells the client what it is actually held to.
 */
export const MISS_RELOAD_MS = 5_000;
const MAX_MISSES = 1000;

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
  #current: Promise<boolean> | null = null;
  #queued: Promise<boolean> | null = null;
  /** Unknown ids → when a reload last failed to find them. */
  readonly #missed = new Map<string, number>();
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
    await this.#queued;
    await this.#current;
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

  /** Whether this id has limits of its own here (loaded, or a built-in default). */
  knows(id: string): boolean {
    return this.#tiers.has(id) || DEFAULTS.has(id);
  }

  /**
   * Limits of a tier id; synchronous when it is known. An unknown id waits for a reload begun
   * after this call (shared with every other caller), then answers as `get` does.
   */
  resolve(id: string): TierLimits | Promise<TierLimits> {
    const known = this.#tiers.get(id) ?? DEFAULTS.get(id);
    if (known) return known;
    const missedAt = this.#missed.get(id);
    if (missedAt !== undefined && Date.now() - missedAt < MISS_RELOAD_MS) return this.get(id);
    return this.refresh().then(() => {
      if (this.knows(id)) this.#missed.delete(id);
      else {
        if (this.#missed.size >= MAX_MISSES) this.#missed.clear();
        this.#missed.set(id, Date.now());
      }
      return this.get(id);
    });
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

  /**
   * Reloads from Postgres; resolves with whether it worked. A call during a load gets the one load
   * queued after it (shared by every such call), so whoever calls sees a load that began after
   * the call: a message or a request never settles for a read that started before the change.
   */
  refresh(): Promise<boolean> {
    if (!this.#current) {
      this.#current = this.#load().finally(() => {
        this.#current = null;
      });
      return this.#current;
    }
    this.#queued ??= this.#current.then(() => {
      this.#queued = null;
      return this.refresh();
    });
    return this.#queued;
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
