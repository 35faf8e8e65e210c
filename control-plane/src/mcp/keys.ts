import type { Sql } from '../store/db.js';
import { ToolInputError } from './errors.js';

/**
 * Keys are addressed by id or display prefix, never by secret (issue 14). What comes back is
 * what an operator may see: never the key's hash, never the owner's password hash.
 */
export interface KeyInfo {
  id: string;
  prefix: string | null;
  name: string | null;
  status: string | null;
  /** The key's own tier: its override, else the owner's (null: no Postgres). */
  tier: string | null;
  tierOverride: string | null;
  createdAt: string | null;
  lastUsedAt: string | null;
  owner: { id: string; email: string; role: string; tier: string; disabled: boolean } | null;
}

export type KeyLookup = { found: true; key: KeyInfo } | { found: false; message: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** fgk_ + 43 random + 6 checksum characters: anything past the 8 shown in the display prefix is secret material. */
const SECRET_LIKE_RE = /^fgk_[0-9A-Za-z]{9,}$/;
const PREFIX_RE = /^fgk_[0-9A-Za-z]{1,8}$/;
const MAX_CANDIDATES = 5;

type Row = {
  id: string;
  display_prefix: string;
  name: string;
  status: string;
  key_tier: string | null;
  created_at: Date;
  last_used_at: Date | null;
  user_id: string;
  email: string;
  role: string;
  user_tier: string;
  disabled_at: Date | null;
};

const toInfo = (r: Row): KeyInfo => ({
  id: r.id,
  prefix: r.display_prefix,
  name: r.name,
  status: r.status,
  tier: r.key_tier ?? r.user_tier,
  tierOverride: r.key_tier,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
  owner: { id: r.user_id, email: r.email, role: r.role, tier: r.user_tier, disabled: r.disabled_at !== null },
});

/** What a reference names: an id, a prefix, or an argument error (never echoing a secret). */
export function classifyKeyRef(ref: string, argument = 'key'): { id: string } | { prefix: string } {
  const r = ref.trim().replace(/(…|\.\.\.)$/, '');
  if (UUID_RE.test(r)) return { id: r.toLowerCase() };
  if (SECRET_LIKE_RE.test(r)) {
    throw new ToolInputError(
      `${argument}: that looks like an API key secret, which is never accepted or shown here; give the key's id or its display prefix (fgk_ and the next 8 characters)`,
    );
  }
  if (PREFIX_RE.test(r)) return { prefix: r };
  // Not echoed: whatever was pasted here might be a credential of another kind.
  throw new ToolInputError(
    `${argument}: expected an API key id (UUID) or a display prefix like fgk_7Hq2x9Ab (fgk_ and 1-8 letters or digits)`,
  );
}

export async function resolveKey(sql: Sql | null, ref: string, argument = 'key'): Promise<KeyLookup> {
  const what = classifyKeyRef(ref, argument);
  if (!sql) {
    if ('id' in what)
      return {
        found: true,
        key: {
          id: what.id,
          prefix: null,
          name: null,
          status: null,
          tier: null,
          tierOverride: null,
          createdAt: null,
          lastUsedAt: null,
          owner: null,
        },
      };
    throw new ToolInputError(
      `${argument}: display prefixes need key metadata from Postgres, and DATABASE_URL is not set; give the key id instead`,
    );
  }
  const rows =
    'id' in what
      ? await sql<Row[]>`
          SELECT k.id, k.display_prefix, k.name, k.status, k.tier AS key_tier, k.created_at, k.last_used_at,
                 u.id AS user_id, u.email, u.role, u.tier AS user_tier, u.disabled_at
          FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ${what.id}::uuid`
      : await sql<Row[]>`
          SELECT k.id, k.display_prefix, k.name, k.status, k.tier AS key_tier, k.created_at, k.last_used_at,
                 u.id AS user_id, u.email, u.role, u.tier AS user_tier, u.disabled_at
          FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.display_prefix LIKE ${`${what.prefix}%`} ORDER BY k.created_at DESC LIMIT ${MAX_CANDIDATES + 1}`;
  if (rows.length === 0)
    return { found: false, message: `no API key has ${'id' in what ? `id ${what.id}` : `a display prefix starting ${what.prefix}`}` };
  if (rows.length > 1) {
    const list = rows
      .slice(0, MAX_CANDIDATES)
      .map((r) => `${r.display_prefix} (${r.id})`)
      .join(', ');
    throw new ToolInputError(
      `${argument}: the prefix ${'prefix' in what ? what.prefix : ''} matches several keys (${list}${rows.length > MAX_CANDIDATES ? ', …' : ''}); give more characters or the id`,
    );
  }
  return { found: true, key: toInfo(rows[0]!) };
}

/** Display prefixes of these keys (for lists), from Postgres when there is one. */
export async function prefixesOf(
  sql: Sql | null,
  ids: readonly string[],
): Promise<Map<string, { prefix: string; email: string; tier: string }>> {
  const valid = [...new Set(ids)].filter((id) => UUID_RE.test(id));
  if (!sql || valid.length === 0) return new Map();
  const rows = await sql<{ id: string; display_prefix: string; email: string; tier: string }[]>`
    SELECT k.id, k.display_prefix, u.email, coalesce(k.tier, u.tier) AS tier
    FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ANY(${valid}::uuid[])`;
  return new Map(rows.map((r) => [r.id, { prefix: r.display_prefix, email: r.email, tier: r.tier }]));
}
