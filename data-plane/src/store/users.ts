import { recordAudit } from './audit.js';
import type { Sql } from './db.js';
import { isUuid } from './keys.js';

/** users.role values (init.sql CHECK constraint). */
export const USER_ROLES = ['user', 'operator', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];
export const isUserRole = (s: string): s is UserRole => (USER_ROLES as readonly string[]).includes(s);

/** An account as the portal shows and authorises it. Never carries the password hash. */
export interface UserRecord {
  id: string;
  email: string;
  tier: string;
  role: UserRole;
  disabled: boolean;
  createdAt: Date;
  lastLoginAt: Date | null;
}

/** An account with its stored Argon2id hash (null: created by the CLI, cannot log in). */
export interface UserCredentials extends UserRecord {
  passwordHash: string | null;
}

interface UserRow {
  id: string;
  email: string;
  tier: string;
  role: UserRole;
  disabled: boolean;
  created_at: Date;
  last_login_at: Date | null;
  password_hash: string | null;
}

const toRecord = (r: UserRow): UserRecord => ({
  id: r.id,
  email: r.email,
  tier: r.tier,
  role: r.role,
  disabled: r.disabled,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at,
});

/**
 * Creates an account with a password, and its audit row, in one transaction. Null when the
 * email is taken (case-insensitively) — whether by a portal account or one the CLI created
 * without a password: without email verification, registering must never take over an
 * existing account and its keys.
 */
export async function createUserWithPassword(sql: Sql, input: { email: string; passwordHash: string }): Promise<UserRecord | null> {
  return sql.begin(async (tx) => {
    const [row] = await tx<UserRow[]>`
      INSERT INTO users (email, password_hash) VALUES (${input.email}, ${input.passwordHash})
      ON CONFLICT ((lower(email))) DO NOTHING
      RETURNING id, email, tier, role, disabled_at IS NOT NULL AS disabled, created_at, last_login_at, password_hash`;
    if (!row) return null;
    await recordAudit(tx, { actor: `portal:${row.id}`, action: 'user.registered', userId: row.id });
    return toRecord(row);
  });
}

/** Case-insensitive lookup (uses the unique index on lower(email)). */
export async function findUserByEmail(sql: Sql, email: string): Promise<UserCredentials | null> {
  const [row] = await sql<UserRow[]>`
    SELECT id, email, tier, role, disabled_at IS NOT NULL AS disabled, created_at, last_login_at, password_hash
    FROM users WHERE lower(email) = lower(${email.trim()})`;
  return row ? { ...toRecord(row), passwordHash: row.password_hash } : null;
}

export async function findUserById(sql: Sql, id: string): Promise<UserRecord | null> {
  if (!isUuid(id)) return null;
  const [row] = await sql<UserRow[]>`
    SELECT id, email, tier, role, disabled_at IS NOT NULL AS disabled, created_at, last_login_at, password_hash
    FROM users WHERE id = ${id}`;
  return row ? toRecord(row) : null;
}

/** Stamps last_login_at; with `rehash`, also replaces a hash made with outdated parameters. */
export async function recordLogin(sql: Sql, id: string, rehash?: string): Promise<void> {
  await sql`
    UPDATE users SET last_login_at = now()
      ${rehash === undefined ? sql`` : sql`, password_hash = ${rehash}`}
    WHERE id = ${id}`;
}

/**
 * Sets an account's role (operator CLI: `users promote`). Null when no account has this email;
 * `changed` is false when it already had the role. Audited in the same transaction.
 * Portal authorisation reads the role from this row on every request, so a change applies to
 * open sessions at once.
 */
export async function setUserRole(
  sql: Sql,
  email: string,
  role: UserRole,
  opts: { actor?: string } = {},
): Promise<{ user: UserRecord; previousRole: UserRole; changed: boolean } | null> {
  if (!isUserRole(role)) throw new RangeError(`role must be one of ${USER_ROLES.join(', ')}`);
  return sql.begin(async (tx) => {
    const [cur] = await tx<UserRow[]>`
      SELECT id, email, tier, role, disabled_at IS NOT NULL AS disabled, created_at, last_login_at, password_hash
      FROM users WHERE lower(email) = lower(${email.trim()}) FOR UPDATE`;
    if (!cur) return null;
    if (cur.role === role) return { user: toRecord(cur), previousRole: cur.role, changed: false };
    await tx`UPDATE users SET role = ${role} WHERE id = ${cur.id}`;
    await recordAudit(tx, {
      actor: opts.actor ?? 'cli',
      action: 'user.role_changed',
      userId: cur.id,
      detail: { from: cur.role, to: role },
    });
    return { user: { ...toRecord(cur), role }, previousRole: cur.role, changed: true };
  });
}

/** Active keys of one account (the portal's per-account key limit). */
export async function countActiveKeys(sql: Sql, userId: string): Promise<number> {
  if (!isUuid(userId)) return 0;
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM api_keys WHERE user_id = ${userId} AND status = 'active'`;
  return row?.n ?? 0;
}
