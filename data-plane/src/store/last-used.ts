import type { Logger } from '../log/logger.js';
import type { Sql } from './db.js';
import { touchLastUsed } from './keys.js';

export interface LastUsedTracker {
  /** Hot path: remember that this key was used (no I/O). */
  mark(keyId: string): void;
  /** Writes the marked ids in one UPDATE; ids of a failed write are kept for the next one. */
  flush(): Promise<void>;
  /** Starts the periodic flush (unref'd timer). */
  start(): void;
  /** Stops the timer and flushes what is left. */
  stop(): Promise<void>;
  pending(): number;
}

/**
 * `api_keys.last_used_at` for the portal, written in batches: one statement per interval for
 * every key used since, never one query per request. Minute precision is all the portal shows.
 */
export function createLastUsedTracker(sql: Sql, opts: { intervalMs?: number; maxPending?: number; logger?: Logger } = {}): LastUsedTracker {
  const intervalMs = opts.intervalMs ?? 30_000;
  const maxPending = opts.maxPending ?? 100_000;
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;

  const write = async (): Promise<void> => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Set();
    try {
      await touchLastUsed(sql, [...batch]);
    } catch (err) {
      // Postgres down: keep the ids (bounded) and try again next interval.
      for (const id of batch) if (pending.size < maxPending) pending.add(id);
      opts.logger?.warn({ err, keys: batch.size }, 'last_used_at update failed; will retry');
    }
  };

  const flush = (): Promise<void> => {
    inFlight ??= write().finally(() => (inFlight = undefined));
    return inFlight;
  };

  return {
    mark(keyId) {
      if (pending.size < maxPending) pending.add(keyId);
    },
    flush,
    start() {
      timer ??= setInterval(() => void flush(), intervalMs).unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await inFlight;
      await flush();
    },
    pending: () => pending.size,
  };
}
