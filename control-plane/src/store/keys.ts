import type { Sql } from './db.js';

/**
 * Key and owner metadata, read-only: the tier that scales a key's thresholds, and what an
 * incident names (display prefix, owner). Never the key's hash or secret.
 */
export interface KeyMeta {
  id: string;
  prefix: string;
  ownerId: string;
  ownerEmail: string;
  /** Effective own tier: the key's override, else the owner's. */
  tier: string;
  status: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function loadKeyMeta(sql: Sql, ids: readonly string[]): Promise<KeyMeta[]> {
  const valid = ids.filter((id) => UUID_RE.test(id));
  if (valid.length === 0) return [];
  const rows = await sql<{ id: string; display_prefix: string; user_id: string; email: string; tier: string; status: string }[]>`
    SELECT k.id, k.display_prefix, k.user_id, u.email, coalesce(k.tier, u.tier) AS tier, k.status
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.id = ANY(${valid}::uuid[])`;
  return rows.map((r) => ({ id: r.id, prefix: r.display_prefix, ownerId: r.user_id, ownerEmail: r.email, tier: r.tier, status: r.status }));
}
