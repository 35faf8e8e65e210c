import type { Queryable, Sql } from './db.js';
import { StoreError } from './errors.js';
import { assertAssignableTier } from './tiers.js';
import type { UserRole } from './users.js';

export { StoreError, type StoreErrorCode } from './errors.js';

export const KEY_STATUSES = ['active', 'revoked', 'suspended'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

/** What the hot path needs to authenticate a request. */
export interface KeyRecord {
  id: string;
  userId: string;
  /** `suspended` also when the owner's account is disabled (unless the key is revoked). */
  status: KeyStatus;
  /** Effective tier: the key's override, else the owner's tier. */
  tier: string;
  prefix: string;
  ownerEmail: string;
  /** The owner's role: model management through the proxy is for operators (proxy/surface.ts). */
  role: UserRole;
}

/** A key as listed to its owner or an operator. Never contains the secret or its hash. */
export interface KeyInfo {
  id: string;
  userId: string;
  ownerEmail: string;
  name: string;
  prefix: string;
  status: KeyStatus;
  tier: string;
  tierOverride: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Generated key material (see auth/key-format.ts); the secret itself never reaches the store. */
export interface KeyMaterial {
  hash: string;
  displayPrefix: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids come from URLs and argv: anything that is not a uuid is simply not found (no SQL error). */
export const isUuid = (s: string): boolean => UUID_RE.test(s);

interface KeyRow {
  id: string;
  user_id: string;
  owner_email: string;
  name: string;
  display_prefix: string;
  status: KeyStatus;
  owner_disabled: boolean;
  tier: string;
  tier_override: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const effectiveStatus = (r: Pick<KeyRow, 'status' | 'owner_disabled'>): KeyStatus =>
  r.status === 'active' && r.owner_disabled ? 'suspended' : r.status;

const toInfo = (r: KeyRow): KeyInfo => ({
  id: r.id,
  userId: r.user_id,
  ownerEmail: r.owner_email,
  name: r.name,
  prefix: r.display_prefix,
  status: effectiveStatus(r),
  tier: r.tier,
  tierOverride: r.tier_override,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** The hot-path lookup (one indexed query; the key cache in front of it makes it rare). */
export async function findKeyByHash(sql: Sql, hash: string): Promise<KeyRecord | null> {
  const rows = await sql<
    Array<Pick<KeyRow, 'id' | 'user_id' | 'status' | 'owner_disabled' | 'tier' | 'display_prefix' | 'owner_email'> & { role: UserRole }>
  >`
    SELECT k.id, k.user_id, k.status, u.disabled_at IS NOT NULL AS owner_disabled,
           coalesce(k.tier, u.tier) AS tier, k.display_prefix, u.email AS owner_email, u.role
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.key_hash = ${hash}`;
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id,
    userId: r.user_id,
    status: effectiveStatus(r),
    tier: r.tier,
    prefix: r.display_prefix,
    ownerEmail: r.owner_email,
    role: r.role,
  };
}

export interface CreateKeyInput {
  email: string;
  name?: string;
  /** Effective tier wanted for this key (default: the owner's tier; a new owner gets 'free'). */
  tier?: string;
  key: KeyMaterial;
}

export interface CreateKeyResult {
  key: KeyInfo;
  userCreated: boolean;
}

/**
 * Creates a key for the user with this email, creating the user (no password: cannot log in
 * until the portal sets one) when absent. A new user gets `tier` (default 'free') as the account
 * tier; for an existing user a `tier` different from the account's becomes the key's override.
 */
export async function createKey(sql: Sql, input: CreateKeyInput): Promise<CreateKeyResult> {
  // Stored lower-cased, as the portal does: one spelling per account whatever the caller typed.
  const email = input.email.trim().toLowerCase();
  if (email.length < 3 || email.length > 320 || email.indexOf('@') < 1)
    throw new StoreError('invalid_email', `not an email address: ${email}`);
  return sql.begin(async (tx) => {
    if (input.tier !== undefined) await assertAssignableTier(tx, input.tier);
    const inserted = await tx<{ id: string; tier: string }[]>`
      INSERT INTO users (email, tier) VALUES (${email}, ${input.tier ?? 'free'})
      ON CONFLICT ((lower(email))) DO NOTHING
      RETURNING id, tier`;
    const user =
      inserted[0] ?? (await tx<{ id: string; tier: string }[]>`SELECT id, tier FROM users WHERE lower(email) = lower(${email})`)[0];
    if (!user) throw new Error('user row vanished during key creation');
    const override = input.tier !== undefined && input.tier !== user.tier ? input.tier : null;
    const key = await insertKey(tx, user.id, input.name ?? '', override, input.key);
    return { key, userCreated: inserted.length > 0 };
  });
}

/** Creates a key for an existing user (the portal's path). Null when the user does not exist. */
export async function createKeyForUser(
  sql: Sql,
  input: { userId: string; name?: string; tier?: string; key: KeyMaterial },
): Promise<KeyInfo | null> {
  if (!isUuid(input.userId)) return null;
  return sql.begin(async (tx) => {
    if (input.tier !== undefined) await assertAssignableTier(tx, input.tier);
    const [user] = await tx<{ id: string; tier: string }[]>`SELECT id, tier FROM users WHERE id = ${input.userId}`;
    if (!user) return null;
    const override = input.tier !== undefined && input.tier !== user.tier ? input.tier : null;
    return insertKey(tx, user.id, input.name ?? '', override, input.key);
  });
}

async function insertKey(tx: Queryable, userId: string, name: string, tier: string | null, key: KeyMaterial): Promise<KeyInfo> {
  const [row] = await tx<{ id: string }[]>`
    INSERT INTO api_keys (user_id, name, display_prefix, key_hash, tier)
    VALUES (${userId}, ${name}, ${key.displayPrefix}, ${key.hash}, ${tier})
    RETURNING id`;
  const info = row && (await selectKeys(tx, { id: row.id }))[0];
  if (!info) throw new Error('inserted key not found');
  return info;
}

async function selectKeys(q: Queryable, where: { id?: string; userId?: string; email?: string }, limit = 1000): Promise<KeyInfo[]> {
  const rows = await q<KeyRow[]>`
    SELECT k.id, k.user_id, u.email AS owner_email, k.name, k.display_prefix, k.status,
           u.disabled_at IS NOT NULL AS owner_disabled, coalesce(k.tier, u.tier) AS tier,
           k.tier AS tier_override, k.created_at, k.last_used_at, k.revoked_at
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE true
      ${where.id === undefined ? q`` : q`AND k.id = ${where.id}`}
      ${where.userId === undefined ? q`` : q`AND k.user_id = ${where.userId}`}
      ${where.email === undefined ? q`` : q`AND lower(u.email) = lower(${where.email.trim()})`}
    ORDER BY k.created_at DESC, k.id
    LIMIT ${limit}`;
  return rows.map(toInfo);
}

/** Keys, newest first; filtered by owner (email or user id) when given. */
export async function listKeys(sql: Sql, filter: { email?: string; userId?: string; limit?: number } = {}): Promise<KeyInfo[]> {
  if (filter.userId !== undefined && !isUuid(filter.userId)) return [];
  return selectKeys(sql, { email: filter.email, userId: filter.userId }, filter.limit ?? 1000);
}

export async function getKey(sql: Sql, id: string, opts: { userId?: string } = {}): Promise<KeyInfo | null> {
  if (!isUuid(id) || (opts.userId !== undefined && !isUuid(opts.userId))) return null;
  return (await selectKeys(sql, { id, userId: opts.userId }))[0] ?? null;
}

/** Result of a change that caches must hear about: the hash lets them drop the entry directly. */
export interface KeyChange {
  key: KeyInfo;
  keyHash: string;
  /** False when the key already was in the requested state (nothing written). */
  changed: boolean;
}

/**
 * Sets a key's status. Revocation is final (a revoked secret may have leaked): suspending or
 * re-activating a revoked key fails with `revoked_is_final`. `userId` scopes the change to one
 * owner (the portal); absent for operators and the CLI.
 */
export async function setKeyStatus(sql: Sql, id: string, status: KeyStatus, opts: { userId?: string } = {}): Promise<KeyChange> {
  if (!isUuid(id) || (opts.userId !== undefined && !isUuid(opts.userId))) throw notFound(id);
  return sql.begin(async (tx) => {
    const [cur] = await tx<{ status: KeyStatus; key_hash: string }[]>`
      SELECT status, key_hash FROM api_keys
      WHERE id = ${id} ${opts.userId === undefined ? tx`` : tx`AND user_id = ${opts.userId}`}
      FOR UPDATE`;
    if (!cur) throw notFound(id);
    if (cur.status === 'revoked' && status !== 'revoked') {
      throw new StoreError('revoked_is_final', `key ${id} is revoked; revocation cannot be undone`);
    }
    const changed = cur.status !== status;
    if (changed) {
      await tx`
        UPDATE api_keys SET status = ${status}, revoked_at = ${status === 'revoked' ? tx`now()` : null}
        WHERE id = ${id}`;
    }
    const [key] = await selectKeys(tx, { id });
    if (!key) throw notFound(id);
    return { key, keyHash: cur.key_hash, changed };
  });
}

/** Sets (or with null clears) a key's tier override. */
export async function setKeyTier(sql: Sql, id: string, tier: string | null): Promise<KeyChange> {
  if (!isUuid(id)) throw notFound(id);
  return sql.begin(async (tx) => {
    if (tier !== null) await assertAssignableTier(tx, tier);
    const [cur] = await tx<{ tier: string | null; key_hash: string }[]>`SELECT tier, key_hash FROM api_keys WHERE id = ${id} FOR UPDATE`;
    if (!cur) throw notFound(id);
    const changed = cur.tier !== tier;
    if (changed) await tx`UPDATE api_keys SET tier = ${tier} WHERE id = ${id}`;
    const [key] = await selectKeys(tx, { id });
    if (!key) throw notFound(id);
    return { key, keyHash: cur.key_hash, changed };
  });
}

/** Sets a user's tier; returns the user's keys (id + hash) so caches can drop them all. */
export async function setUserTier(sql: Sql, userId: string, tier: string): Promise<Array<{ id: string; keyHash: string }>> {
  if (!isUuid(userId)) throw notFound(userId, 'user');
  return sql.begin(async (tx) => {
    await assertAssignableTier(tx, tier);
    const updated = await tx`UPDATE users SET tier = ${tier} WHERE id = ${userId} AND tier <> ${tier} RETURNING id`;
    if (updated.count === 0) {
      const [exists] = await tx`SELECT 1 FROM users WHERE id = ${userId}`;
      if (!exists) throw notFound(userId, 'user');
    }
    const keys = await tx<{ id: string; key_hash: string }[]>`SELECT id, key_hash FROM api_keys WHERE user_id = ${userId}`;
    return keys.map((k) => ({ id: k.id, keyHash: k.key_hash }));
  });
}

/**
 * Marks keys as used now, in one statement for the whole batch (see last-used.ts, which
 * collects ids from the hot path). Returns the number of rows touched.
 */
export async function touchLastUsed(sql: Sql, ids: readonly string[]): Promise<number> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (valid.length === 0) return 0;
  const res = await sql`
    UPDATE api_keys SET last_used_at = now()
    WHERE id = ANY(${valid}::uuid[]) AND (last_used_at IS NULL OR last_used_at < now())`;
  return res.count;
}

const notFound = (id: string, what = 'key'): StoreError => new StoreError('not_found', `no such ${what}: ${id}`);
