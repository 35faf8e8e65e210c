import { channels, tiersEventSchema } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { recordAudit } from '../store/audit.js';
import type { Sql } from '../store/db.js';
import { loadTiers, upsertTier, type TierRow } from '../store/tiers.js';

/**
 * Creating or changing a tier (the CLI's `tiers set` and the admin route's PUT): one row in
 * Postgres with its audit entry in the same transaction, then a message on channels.tiers so
 * every replica reloads at once (issue 18). A replica that misses the message still never serves
 * a key of a new tier as `free`: it reloads when it meets the id (limits/tier-registry.ts).
 */
const int32 = z.number().int().positive().max(2_147_483_647);
export const TIER_ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The five limits of a tier, all required (a PUT replaces them all). */
export const tierLimitsInputSchema = z.strictObject({
  requestsPerWindow: int32,
  tokensPerWindow: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  windowSeconds: int32,
  concurrentStreams: int32,
  burst: int32,
});
export type TierLimitsInput = z.infer<typeof tierLimitsInputSchema>;

export interface TierChange {
  tier: TierRow;
  created: boolean;
  /** False when the message could not be published: replicas reload within TIERS_REFRESH_MS, or on first meeting a new id. */
  notified: boolean;
}

export async function putTier(
  deps: { sql: Sql; redis: () => Promise<Redis> },
  id: string,
  limits: TierLimitsInput,
  actor: string,
): Promise<TierChange> {
  const { tier, created } = await deps.sql.begin(async (tx) => {
    const change = await upsertTier(tx, { id, ...limits });
    await recordAudit(tx, { actor, action: change.created ? 'tier.created' : 'tier.updated', detail: { tier: id, ...limits } });
    return change;
  });
  let notified = true;
  try {
    const message = JSON.stringify(tiersEventSchema.parse({ tierId: id, at: Date.now() }));
    await (await deps.redis()).publish(channels.tiers, message);
  } catch {
    notified = false;
  }
  return { tier, created, notified };
}

export const listTierRows = (sql: Sql): Promise<TierRow[]> => loadTiers(sql);
