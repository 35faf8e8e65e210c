import { graceRecordSchema, parseJsonSafe, redisKeys, type GraceRecord } from '@fluxgate/contracts';
import { parseAllowlistConfig } from '../guard/allowlist.js';
import { allowRowsFor } from '../store/allowlist-admin.js';
import type { McpContext } from './context.js';
import type { KeyInfo } from './keys.js';

/** An allowlist entry that covers a key, from the table or from GUARD_ALLOWLIST. */
export interface AllowMatch {
  kind: 'key' | 'account';
  value: string;
  source: 'database' | 'config';
  reason: string | null;
  expiresAt: string | null;
}

/** The allowlist entries that keep the guard from penalising this key (by key id or its owner), as the guard matches them. */
export async function allowlistFor(ctx: McpContext, key: KeyInfo): Promise<AllowMatch[]> {
  const wanted: Array<{ kind: 'key' | 'account'; value: string }> = [{ kind: 'key', value: key.id }];
  if (key.owner) wanted.push({ kind: 'account', value: key.owner.id }, { kind: 'account', value: key.owner.email });
  const out: AllowMatch[] = [];
  for (const e of parseAllowlistConfig(ctx.config.GUARD_ALLOWLIST).entries) {
    if (e.kind !== 'cidr' && wanted.some((w) => w.kind === e.kind && w.value.toLowerCase() === e.value.toLowerCase()))
      out.push({ kind: e.kind, value: e.value, source: 'config', reason: null, expiresAt: null });
  }
  if (ctx.sql) {
    for (const r of await allowRowsFor(ctx.sql, wanted))
      if (r.kind !== 'cidr') out.push({ kind: r.kind, value: r.value, source: 'database', reason: r.reason, expiresAt: r.expiresAt });
  }
  return out;
}

/** The key's grace after a pardon, while it lasts. */
export async function graceOf(ctx: McpContext, keyId: string, now: number): Promise<GraceRecord | null> {
  const text = await ctx.redis.get(redisKeys.pardonGrace(keyId));
  const g = text === null ? null : graceRecordSchema.safeParse(parseJsonSafe(text));
  return g?.success && g.data.until > now ? g.data : null;
}
