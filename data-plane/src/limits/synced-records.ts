import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { subscribeChannel, type ChannelSubscription } from './subscription.js';

/**
 * A set of expiring Redis records (the penalty box, IP blocks) held in process, so the hot path
 * asks "is there a live record for this id?" synchronously, with no Redis wait per request.
 * The writers follow one protocol (contracts penalty-protocol.ts, ip-block.ts): the record with
 * its own TTL is the truth, an index lists them, and a channel announces each set and lift.
 *
 * Three paths keep every replica right:
 * - channel messages: a 'lifted' drops the entry at once; a 'set' re-reads the record (one GET),
 *   so a change reaches every replica within a round trip of the publish;
 * - a periodic resync (every `resyncIntervalMs`, and after every reconnect of the subscriber)
 *   re-reads every record from the index, so a lost message (a replica that was reconnecting, a
 *   writer that crashed between writing and publishing) is repaired within one interval;
 * - local expiry: an entry past its `expiresAt` is ignored and dropped on sight, so a record
 *   ends on time everywhere with no message and no Redis.
 * Event/resync races are settled by a generation count: a resync snapshot taken before an event
 * never overwrites what that event established.
 */
export interface SyncedRecordsOptions<T extends { expiresAt: number }> {
  /** What the records are, for logs ("penalty", "IP block"). */
  what: string;
  /** Commands client (the hot-path one is fine: a failed read leaves the cache as it was). */
  redis: Redis;
  /** Dedicated pub/sub connection (may be shared with other channels). */
  subscriber: Redis;
  channel: string;
  /** A channel message: which id it is about and whether the record was set or lifted; null = junk. */
  parseEvent(message: string): { id: string; type: 'set' | 'lifted' } | null;
  /** Every live record (the index's members whose record exists and is well-formed). */
  list(redis: Redis, now: number): Promise<T[]>;
  /** One live record, or null. */
  get(redis: Redis, id: string, now: number): Promise<T | null>;
  idOf(record: T): string;
  resyncIntervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface SyncedRecordsStats {
  size: number;
  lastResyncAt: number;
  resyncFailures: number;
}

export class SyncedRecords<T extends { expiresAt: number }> {
  readonly #opts: SyncedRecordsOptions<T>;
  readonly #now: () => number;
  #entries = new Map<string, T>();
  /** id → generation of the last event about it. */
  readonly #touched = new Map<string, number>();
  #generation = 0;
  #resyncing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #subscription: ChannelSubscription | undefined;
  #lastResyncAt = 0;
  #resyncFailures = 0;
  #failing = false;

  constructor(opts: SyncedRecordsOptions<T>) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Subscribes first, then reads every record, so nothing published in between is missed. */
  async start(): Promise<void> {
    this.#subscription = await subscribeChannel(this.#opts.subscriber, this.#opts.channel, {
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

  /** The live record of an id, or null. Synchronous: the hot path's question. */
  get(id: string): T | null {
    if (this.#entries.size === 0) return null;
    const rec = this.#entries.get(id);
    if (!rec) return null;
    if (rec.expiresAt <= this.#now()) {
      this.#entries.delete(id);
      return null;
    }
    return rec;
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): SyncedRecordsStats {
    return { size: this.#entries.size, lastResyncAt: this.#lastResyncAt, resyncFailures: this.#resyncFailures };
  }

  /** Re-reads every record. Concurrent calls share one read. */
  resync(): Promise<void> {
    this.#resyncing ??= this.#doResync().finally(() => {
      this.#resyncing = null;
    });
    return this.#resyncing;
  }

  async #doResync(): Promise<void> {
    const { what, logger } = this.#opts;
    const startGen = this.#generation;
    let records: T[];
    try {
      records = await this.#opts.list(this.#opts.redis, this.#now());
    } catch (err) {
      // Redis down: keep what we have (entries still expire locally) and try again next interval.
      // Logged once per outage, not every interval.
      this.#resyncFailures++;
      if (!this.#failing) logger?.warn({ err: (err as Error).message }, `${what} resync failed; keeping the cached records`);
      this.#failing = true;
      return;
    }
    if (this.#failing) logger?.info(`${what} resync works again`);
    this.#failing = false;
    const next = new Map(records.map((r) => [this.#opts.idOf(r), r]));
    // Entries an event touched after this snapshot began are newer than the snapshot: keep them.
    for (const [id, gen] of this.#touched) {
      if (gen <= startGen) continue;
      const current = this.#entries.get(id);
      if (current) next.set(id, current);
      else next.delete(id);
    }
    for (const [id, gen] of this.#touched) if (gen <= startGen) this.#touched.delete(id);
    this.#entries = next;
    this.#lastResyncAt = this.#now();
  }

  #onMessage(message: string): void {
    const { what, logger } = this.#opts;
    const event = this.#opts.parseEvent(message);
    if (!event) {
      logger?.warn({ message: message.slice(0, 200) }, `ignored malformed ${what} event`);
      return;
    }
    const { id, type } = event;
    const gen = ++this.#generation;
    this.#touched.set(id, gen);
    if (type === 'lifted') {
      this.#entries.delete(id);
      return;
    }
    this.#opts.get(this.#opts.redis, id, this.#now()).then(
      (rec) => {
        // A later event about this id wins over this read.
        if (this.#touched.get(id) !== gen) return;
        if (rec) this.#entries.set(id, rec);
        else this.#entries.delete(id);
      },
      (err: unknown) => logger?.warn({ err: (err as Error).message, id }, `${what} read failed; the next resync repairs it`),
    );
  }
}
