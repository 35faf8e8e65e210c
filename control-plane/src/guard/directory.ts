import { DEFAULT_TIERS, type TierLimits } from '@fluxgate/contracts';
import type { Logger } from '../log/logger.js';
import type { Sql } from '../store/db.js';
import { loadKeyMeta, type KeyMeta } from '../store/keys.js';
import { loadTiers } from '../store/tiers.js';

/**
 * Key metadata and tiers from Postgres, read-only, cached: a key's row is read once when it
 * first shows up in a snapshot and again after `ttlMs` (a tier change reaches the guard within
 * that); tiers are re-read every `tiersTtlMs`. Postgres down: the cache keeps serving, unknown
 * keys get the `free` tier until it answers (logged once).
 */
export interface KeyDirectory {
  /** Loads what the cache lacks for these keys (chunked). Never throws. */
  ensure(keyIds: readonly string[], now: number): Promise<void>;
  meta(keyId: string): KeyMeta | null;
  /** The key's own tier's limits. */
  tierOf(keyId: string): TierLimits;
  size(): number;
}

const DEFAULTS = new Map<string, TierLimits>(Object.values(DEFAULT_TIERS).map((t) => [t.id, t]));
const CHUNK = 5000;

export function createKeyDirectory(opts: {
  sql: Sql | null;
  ttlMs?: number;
  tiersTtlMs?: number;
  maxEntries?: number;
  log?: Logger;
}): KeyDirectory {
  const ttlMs = opts.ttlMs ?? 60_000;
  const tiersTtlMs = opts.tiersTtlMs ?? 30_000;
  const maxEntries = opts.maxEntries ?? 500_000;
  const entries = new Map<string, { meta: KeyMeta | null; at: number }>();
  let tiers: ReadonlyMap<string, TierLimits> = DEFAULTS;
  let tiersAt = 0;
  let failing = false;

  const fail = (err: unknown): void => {
    if (!failing) opts.log?.warn({ err: (err as Error).message }, 'key metadata unavailable; keeping the cache');
    failing = true;
  };

  return {
    async ensure(keyIds, now) {
      if (!opts.sql) return;
      if (now - tiersAt > tiersTtlMs) {
        try {
          const rows = await loadTiers(opts.sql);
          tiers = new Map([...DEFAULTS, ...rows.map((t) => [t.id, t] as const)]);
          tiersAt = now;
        } catch (err) {
          fail(err);
        }
      }
      const missing = keyIds.filter((id) => {
        const e = entries.get(id);
        return !e || now - e.at > ttlMs;
      });
      for (let i = 0; i < missing.length; i += CHUNK) {
        const chunk = missing.slice(i, i + CHUNK);
        try {
          const rows = await loadKeyMeta(opts.sql, chunk);
          const found = new Map(rows.map((r) => [r.id, r]));
          for (const id of chunk) {
            entries.delete(id);
            entries.set(id, { meta: found.get(id) ?? null, at: now });
          }
          if (failing) opts.log?.info('key metadata available again');
          failing = false;
        } catch (err) {
          fail(err);
          return;
        }
      }
      // Oldest first out: Map keeps insertion order and refreshed entries are re-inserted.
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    },
    meta: (id) => entries.get(id)?.meta ?? null,
    tierOf(id) {
      const tierId = entries.get(id)?.meta?.tier ?? 'free';
      return tiers.get(tierId) ?? DEFAULT_TIERS.free;
    },
    size: () => entries.size,
  };
}
