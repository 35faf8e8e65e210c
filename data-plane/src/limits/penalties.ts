import { channels, penaltyEventSchema, type PenaltyRecord, type TierLimits } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { getPenalty, listPenalties } from './penalty-store.js';
import { parseJson, subscribeChannel, type ChannelSubscription } from './subscription.js';

export { buildPenaltyRecord, getPenalty, liftPenalty, listPenalties, setPenalty, type PenaltyInput } from './penalty-store.js';

/**
 * The penalty override of every key, held in process so the hot path answers "which limits
 * apply to this key now?" synchronously, with no Redis wait per request (DESIGN §3: the penalty
 * wins over the key's own tier while it lasts; it ends by expiry or pardon).
 *
 * Three paths keep every replica right:
 * - channels.penalties messages: a 'lifted' drops the entry at once; a 'set' re-reads the record
 *   (one GET), so a change reaches every replica within a round trip of the publish;
 * - a periodic resync (every `resyncIntervalMs`, and after every reconnect of the subscriber)
 *   re-reads the whole box from the index, so a lost message (a replica that was reconnecting,
 *   a writer that crashed between writing and publishing) is repaired within one interval;
 * - local expiry: an entry past its `expiresAt` is ignored and dropped on sight, so a penalty
 *   ends on time everywhere with no message and no Redis.
 * Event/resync races are settled by a generation count: a resync snapshot taken before an event
 * never overwrites what that event established.
 */
export interface EffectiveTier {
  tier: TierLimits;
  penalty: PenaltyRecord | null;
}

export interface PenaltyCacheOptions {
  /** Commands client (the hot-path one is fine: a failed read leaves the cache as it was). */
  redis: Redis;
  /** Dedicated pub/sub connection (may be shared with other channels). */
  subscriber: Redis;
  /** Limits of a penalty level (tier-registry.ts `get`). */
  tierOf: (id: string) => TierLimits;
  resyncIntervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

export class PenaltyCache {
  readonly #opts: PenaltyCacheOptions;
  readonly #now: () => number;
  #entries = new Map<string, PenaltyRecord>();
  /** keyId → generation of the last event about it. */
  readonly #touched = new Map<string, number>();
  #generation = 0;
  #resyncing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #subscription: ChannelSubscription | undefined;
  #lastResyncAt = 0;
  #resyncFailures = 0;
  #failing = false;

  constructor(opts: PenaltyCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Subscribes first, then reads the box, so nothing published in between is missed. */
  async start(): Promise<void> {
    this.#subscription = await subscribeChannel(this.#opts.subscriber, channels.penalties, {
      onMessage: (m) => this.#onMessage(m),
      onResync: () => void this.resync(),
      logger: this.#opts.logger,
    });
    this.#timer = setInterval(() => void this.resync(), this.#opts.resyncIntervalMs ?? 5000);
    this.#timer.unref();
    await this.resync();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#subscription?.close();
    await this.#resyncing;
  }

  /** The live penalty of a key, or null. Synchronous: the hot path's question. */
  get(keyId: string): PenaltyRecord | null {
    if (this.#entries.size === 0) return null;
    const rec = this.#entries.get(keyId);
    if (!rec) return null;
    if (rec.expiresAt <= this.#now()) {
      this.#entries.delete(keyId);
      return null;
    }
    return rec;
  }

  /** The limits that apply to this key now: its penalty level while one lasts, else its own tier. */
  effectiveTier(keyId: string, ownTier: TierLimits): EffectiveTier {
    const penalty = this.get(keyId);
    return penalty ? { tier: this.#opts.tierOf(penalty.level), penalty } : { tier: ownTier, penalty: null };
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): { size: number; lastResyncAt: number; resyncFailures: number } {
    return { size: this.#entries.size, lastResyncAt: this.#lastResyncAt, resyncFailures: this.#resyncFailures };
  }

  /** Re-reads every live penalty. Concurrent calls share one read. */
  resync(): Promise<void> {
    this.#resyncing ??= this.#doResync().finally(() => {
      this.#resyncing = null;
    });
    return this.#resyncing;
  }

  async #doResync(): Promise<void> {
    const startGen = this.#generation;
    let records: PenaltyRecord[];
    try {
      records = await listPenalties(this.#opts.redis, this.#now());
    } catch (err) {
      // Redis down: keep what we have (entries still expire locally) and try again next interval.
      // Logged once per outage, not every interval.
      this.#resyncFailures++;
      if (!this.#failing) this.#opts.logger?.warn({ err: (err as Error).message }, 'penalty resync failed; keeping the cached penalty box');
      this.#failing = true;
      return;
    }
    if (this.#failing) this.#opts.logger?.info('penalty resync works again');
    this.#failing = false;
    const next = new Map(records.map((r) => [r.keyId, r]));
    // Entries an event touched after this snapshot began are newer than the snapshot: keep them.
    for (const [keyId, gen] of this.#touched) {
      if (gen <= startGen) continue;
      const current = this.#entries.get(keyId);
      if (current) next.set(keyId, current);
      else next.delete(keyId);
    }
    for (const [keyId, gen] of this.#touched) if (gen <= startGen) this.#touched.delete(keyId);
    this.#entries = next;
    this.#lastResyncAt = this.#now();
  }

  #onMessage(message: string): void {
    const parsed = penaltyEventSchema.safeParse(parseJson(message));
    if (!parsed.success) {
      this.#opts.logger?.warn({ message: message.slice(0, 200) }, 'ignored malformed penalty event');
      return;
    }
    const { keyId, type } = parsed.data;
    const gen = ++this.#generation;
    this.#touched.set(keyId, gen);
    if (type === 'lifted') {
      this.#entries.delete(keyId);
      return;
    }
    getPenalty(this.#opts.redis, keyId, this.#now()).then(
      (rec) => {
        // A later event about this key wins over this read.
        if (this.#touched.get(keyId) !== gen) return;
        if (rec) this.#entries.set(keyId, rec);
        else this.#entries.delete(keyId);
      },
      (err: unknown) => this.#opts.logger?.warn({ err: (err as Error).message, keyId }, 'penalty read failed; the next resync repairs it'),
    );
  }
}

export function createPenaltyCache(opts: PenaltyCacheOptions): PenaltyCache {
  return new PenaltyCache(opts);
}
