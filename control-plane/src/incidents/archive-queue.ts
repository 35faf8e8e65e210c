import type { Logger } from '../log/logger.js';
import type { Sql } from '../store/db.js';
import { archiveIncident } from './archive.js';
import type { IncidentStore } from './store.js';

/**
 * Incidents waiting to be archived, by id: written after Redis (stored first), flushed every
 * cycle, kept while Postgres is down (bounded: the oldest ids go first; Redis still has them).
 */
export interface ArchiveQueue {
  push(id: string): void;
  flush(): Promise<void>;
  readonly pending: number;
}

export function createArchiveQueue(opts: { sql: Sql | null; store: IncidentStore; log?: Logger; max?: number }): ArchiveQueue {
  const pending = new Set<string>();
  const max = opts.max ?? 10_000;
  let failing = false;
  let flushing: Promise<void> | null = null;

  async function doFlush(): Promise<void> {
    if (!opts.sql) return pending.clear();
    for (const id of [...pending]) {
      const incident = await opts.store.get(id);
      if (!incident) {
        pending.delete(id);
        continue;
      }
      try {
        await archiveIncident(opts.sql, incident);
        pending.delete(id);
        if (failing) opts.log?.info('incident archive writes work again');
        failing = false;
      } catch (err) {
        if (!failing) opts.log?.warn({ err: (err as Error).message }, 'incident archive write failed; will retry');
        failing = true;
        return;
      }
    }
  }

  return {
    push(id) {
      pending.delete(id);
      pending.add(id);
      while (pending.size > max) pending.delete(pending.values().next().value!);
    },
    flush() {
      flushing ??= doFlush().finally(() => {
        flushing = null;
      });
      return flushing;
    },
    get pending() {
      return pending.size;
    },
  };
}
