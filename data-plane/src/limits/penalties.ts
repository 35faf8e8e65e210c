import { channels, penaltyEventSchema, type PenaltyRecord, type TierLimits } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { getPenalty, listPenalties } from './penalty-store.js';
import { parseJson } from './subscription.js';
import { SyncedRecords, type SyncedRecordsStats } from './synced-records.js';

export { buildPenaltyRecord, getPenalty, liftPenalty, listPenalties, setPenalty, type PenaltyInput } from './penalty-store.js';

/**
 * The penalty override of every key, held in process so the hot path answers "which limits
 * apply to this key now?" synchronously, with no Redis wait per request (DESIGN §3: the penalty
 * wins over the key's own tier while it lasts; it ends by expiry or pardon). Kept current by
 * channels.penalties, a periodic resync and local expiry (synced-records.ts).
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
  readonly #records: SyncedRecords<PenaltyRecord>;
  readonly #tierOf: (id: string) => TierLimits;

  constructor(opts: PenaltyCacheOptions) {
    this.#tierOf = opts.tierOf;
    this.#records = new SyncedRecords<PenaltyRecord>({
      what: 'penalty',
      redis: opts.redis,
      subscriber: opts.subscriber,
      channel: channels.penalties,
      parseEvent: (m) => {
        const e = penaltyEventSchema.safeParse(parseJson(m));
        return e.success ? { id: e.data.keyId, type: e.data.type } : null;
      },
      list: (redis, now) => listPenalties(redis, now),
      get: (redis, keyId, now) => getPenalty(redis, keyId, now),
      idOf: (r) => r.keyId,
      resyncIntervalMs: opts.resyncIntervalMs,
      now: opts.now,
      logger: opts.logger,
    });
  }

  /** Subscribes first, then reads the box, so nothing published in between is missed. */
  start(): Promise<void> {
    return this.#records.start();
  }

  close(): Promise<void> {
    return this.#records.close();
  }

  /** The live penalty of a key, or null. Synchronous: the hot path's question. */
  get(keyId: string): PenaltyRecord | null {
    return this.#records.get(keyId);
  }

  /** The limits that apply to this key now: its penalty level while one lasts, else its own tier. */
  effectiveTier(keyId: string, ownTier: TierLimits): EffectiveTier {
    const penalty = this.get(keyId);
    return penalty ? { tier: this.#tierOf(penalty.level), penalty } : { tier: ownTier, penalty: null };
  }

  get size(): number {
    return this.#records.size;
  }

  stats(): SyncedRecordsStats {
    return this.#records.stats();
  }

  /** Re-reads every live penalty. Concurrent calls share one read. */
  resync(): Promise<void> {
    return this.#records.resync();
  }
}

export function createPenaltyCache(opts: PenaltyCacheOptions): PenaltyCache {
  return new PenaltyCache(opts);
}
