import { DEFAULT_TIERS, type TierLimits } from '@fluxgate/contracts';
import { loadTiers } from '../store/tiers.js';
import type { McpContext } from './context.js';

const TTL_MS = 30_000;
const cache = new WeakMap<McpContext, { at: number; tiers: Map<string, TierLimits> }>();

/** A tier's limits as Postgres has them (cached 30 s per context), else the contracts' defaults. */
export async function tierLimits(ctx: McpContext, id: string | null): Promise<TierLimits | null> {
  if (id === null) return null;
  let entry = cache.get(ctx);
  if (ctx.sql && (!entry || ctx.now() - entry.at > TTL_MS)) {
    const rows = await loadTiers(ctx.sql);
    entry = { at: ctx.now(), tiers: new Map(rows.map((t) => [t.id, t])) };
    cache.set(ctx, entry);
  }
  return entry?.tiers.get(id) ?? (DEFAULT_TIERS as Record<string, TierLimits>)[id] ?? null;
}
