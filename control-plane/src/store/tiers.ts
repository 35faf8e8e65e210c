import { tierLimitsSchema, type TierLimits } from '@fluxgate/contracts';
import type { Sql } from './db.js';

/** Every tier's limits as Postgres has them (operators may have edited the seeded rows). */
export async function loadTiers(sql: Sql): Promise<TierLimits[]> {
  const rows = await sql<
    {
      id: string;
      requests_per_window: number;
      tokens_per_window: string;
      window_seconds: number;
      concurrent_streams: number;
      burst: number;
    }[]
  >`
    SELECT id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst FROM tiers`;
  return rows.flatMap((r) => {
    const parsed = tierLimitsSchema.safeParse({
      id: r.id,
      requestsPerWindow: r.requests_per_window,
      tokensPerWindow: Number(r.tokens_per_window),
      windowSeconds: r.window_seconds,
      concurrentStreams: r.concurrent_streams,
      burst: r.burst,
    });
    return parsed.success ? [parsed.data] : [];
  });
}
