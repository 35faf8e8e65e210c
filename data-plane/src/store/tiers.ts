import { tierLimitsSchema, type TierLimits } from '@fluxgate/contracts';
import type { Queryable, Sql } from './db.js';
import { StoreError } from './errors.js';

export interface TierRow extends TierLimits {
  isPenalty: boolean;
}

/** Every tier's limits as Postgres has them now (operators may have edited the seeds). */
export async function loadTiers(sql: Sql): Promise<TierRow[]> {
  const rows = await sql<
    {
      id: string;
      requests_per_window: number;
      tokens_per_window: string;
      window_seconds: number;
      concurrent_streams: number;
      burst: number;
      is_penalty: boolean;
    }[]
  >`SELECT id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst, is_penalty FROM tiers ORDER BY id`;
  return rows.map((r) => ({
    ...tierLimitsSchema.parse({
      id: r.id,
      requestsPerWindow: r.requests_per_window,
      // bigint column: the driver returns it as a string.
      tokensPerWindow: Number(r.tokens_per_window),
      windowSeconds: r.window_seconds,
      concurrentStreams: r.concurrent_streams,
      burst: r.burst,
    }),
    isPenalty: r.is_penalty,
  }));
}

/** Users and keys may be given any existing tier except a penalty level (the control plane's). */
export async function assertAssignableTier(q: Queryable, tier: string): Promise<void> {
  const [row] = await q<{ is_penalty: boolean }[]>`SELECT is_penalty FROM tiers WHERE id = ${tier}`;
  if (!row) throw new StoreError('unknown_tier', `unknown tier: ${tier}`);
  if (row.is_penalty) throw new StoreError('penalty_tier', `${tier} is a penalty level, set by the control plane, not assignable`);
}

/**
 * Creates a tier or replaces the limits of one (penalty levels keep `is_penalty`; a new tier is an
 * ordinary one). `created` tells the two apart (xmax is 0 for a freshly inserted row).
 */
export async function upsertTier(q: Queryable, t: TierLimits): Promise<{ tier: TierRow; created: boolean }> {
  const [row] = await q<{ is_penalty: boolean; created: boolean }[]>`
    INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst)
    VALUES (${t.id}, ${t.requestsPerWindow}, ${t.tokensPerWindow}, ${t.windowSeconds}, ${t.concurrentStreams}, ${t.burst})
    ON CONFLICT (id) DO UPDATE SET
      requests_per_window = EXCLUDED.requests_per_window, tokens_per_window = EXCLUDED.tokens_per_window,
      window_seconds = EXCLUDED.window_seconds, concurrent_streams = EXCLUDED.concurrent_streams, burst = EXCLUDED.burst
    RETURNING is_penalty, (xmax = 0) AS created`;
  return { tier: { ...t, isPenalty: row!.is_penalty }, created: row!.created };
}
