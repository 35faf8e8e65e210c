import type { Sql } from './db.js';

/**
 * The guard_allowlist rows (init.sql) as operators manage them through MCP (issue 18); the guard
 * re-reads the table every poll (store/allowlist.ts), so a change applies within one poll.
 */
export interface AllowRow {
  id: number;
  kind: 'key' | 'account' | 'cidr';
  value: string;
  reason: string;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
}

type DbRow = {
  id: string;
  kind: AllowRow['kind'];
  value: string;
  reason: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
};
const toRow = (r: DbRow): AllowRow => ({
  id: Number(r.id),
  kind: r.kind,
  value: r.value,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  expiresAt: r.expires_at?.toISOString() ?? null,
});

/** Live rows (not expired) after `afterId`, by id. */
export async function listAllowRows(sql: Sql, opts: { kind?: AllowRow['kind']; afterId: number; limit: number }): Promise<AllowRow[]> {
  const rows = await sql<DbRow[]>`
    SELECT id, kind, value, reason, created_by, created_at, expires_at FROM guard_allowlist
    WHERE id > ${opts.afterId} AND (expires_at IS NULL OR expires_at > now())
      ${opts.kind ? sql`AND kind = ${opts.kind}` : sql``}
    ORDER BY id LIMIT ${opts.limit}`;
  return rows.map(toRow);
}

/** Live rows naming any of these values (a key id, an owner's id or email). */
export async function allowRowsFor(sql: Sql, values: ReadonlyArray<{ kind: AllowRow['kind']; value: string }>): Promise<AllowRow[]> {
  if (values.length === 0) return [];
  const kinds = values.map((v) => v.kind);
  const vals = values.map((v) => v.value.toLowerCase());
  const rows = await sql<DbRow[]>`
    SELECT a.id, a.kind, a.value, a.reason, a.created_by, a.created_at, a.expires_at
    FROM guard_allowlist a JOIN unnest(${kinds}::text[], ${vals}::text[]) AS w(kind, value) ON a.kind = w.kind AND lower(a.value) = w.value
    WHERE a.expires_at IS NULL OR a.expires_at > now() ORDER BY a.id`;
  return rows.map(toRow);
}

export async function findAllowRow(sql: Sql, kind: AllowRow['kind'], value: string): Promise<AllowRow | null> {
  const [row] = await sql<
    DbRow[]
  >`SELECT id, kind, value, reason, created_by, created_at, expires_at FROM guard_allowlist WHERE kind = ${kind} AND value = ${value}`;
  return row ? toRow(row) : null;
}

/** Adds the entry, or replaces the reason and expiry of the same (kind, value). */
export async function upsertAllowRow(
  sql: Sql,
  e: { kind: AllowRow['kind']; value: string; reason: string; createdBy: string; expiresAt: Date | null },
): Promise<AllowRow> {
  const [row] = await sql<DbRow[]>`
    INSERT INTO guard_allowlist (kind, value, reason, created_by, expires_at)
    VALUES (${e.kind}, ${e.value}, ${e.reason}, ${e.createdBy}, ${e.expiresAt})
    ON CONFLICT (kind, value) DO UPDATE SET reason = EXCLUDED.reason, created_by = EXCLUDED.created_by, created_at = now(), expires_at = EXCLUDED.expires_at
    RETURNING id, kind, value, reason, created_by, created_at, expires_at`;
  return toRow(row!);
}

export async function deleteAllowRow(sql: Sql, kind: AllowRow['kind'], value: string): Promise<AllowRow | null> {
  const [row] = await sql<
    DbRow[]
  >`DELETE FROM guard_allowlist WHERE kind = ${kind} AND value = ${value} RETURNING id, kind, value, reason, created_by, created_at, expires_at`;
  return row ? toRow(row) : null;
}
