import type { AllowlistEntry, AllowlistInput, AllowlistKind } from '@fluxgate/contracts';
import type { Queryable } from './db.js';

/**
 * guard_allowlist (init.sql): what the guard never penalises. The control plane only reads it
 * (re-read every poll); the operator surfaces write it. One row per kind and value: adding an
 * entry again replaces its reason and expiry.
 */
interface Row {
  id: string;
  kind: AllowlistKind;
  value: string;
  reason: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
}

const entry = (r: Row): AllowlistEntry => ({
  // bigint identity: the driver returns it as a string.
  id: Number(r.id),
  kind: r.kind,
  value: r.value,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: r.created_at.getTime(),
  expiresAt: r.expires_at ? r.expires_at.getTime() : null,
});

/** Live entries (expired ones are as good as gone: the guard ignores them too). */
export async function listAllowlist(q: Queryable): Promise<AllowlistEntry[]> {
  const rows = await q<Row[]>`
    SELECT id, kind, value, reason, created_by, created_at, expires_at FROM guard_allowlist
    WHERE expires_at IS NULL OR expires_at > now() ORDER BY id`;
  return rows.map(entry);
}

export async function upsertAllowlist(
  q: Queryable,
  e: AllowlistInput,
  createdBy: string,
): Promise<{ entry: AllowlistEntry; created: boolean }> {
  const expires = e.expiresInSeconds === undefined ? null : new Date(Date.now() + e.expiresInSeconds * 1000);
  const [row] = await q<(Row & { created: boolean })[]>`
    INSERT INTO guard_allowlist (kind, value, reason, created_by, expires_at)
    VALUES (${e.kind}, ${e.value}, ${e.reason}, ${createdBy}, ${expires})
    ON CONFLICT (kind, value) DO UPDATE SET reason = EXCLUDED.reason, created_by = EXCLUDED.created_by, created_at = now(), expires_at = EXCLUDED.expires_at
    RETURNING id, kind, value, reason, created_by, created_at, expires_at, (xmax = 0) AS created`;
  return { entry: entry(row!), created: row!.created };
}

/** Deletes by id, or by kind and value; returns the entry removed, or null when there was none. */
export async function removeAllowlist(
  q: Queryable,
  by: { id: number } | { kind: AllowlistKind; value: string },
): Promise<AllowlistEntry | null> {
  const rows =
    'id' in by
      ? await q<
          Row[]
        >`DELETE FROM guard_allowlist WHERE id = ${by.id} RETURNING id, kind, value, reason, created_by, created_at, expires_at`
      : await q<
          Row[]
        >`DELETE FROM guard_allowlist WHERE kind = ${by.kind} AND value = ${by.value} RETURNING id, kind, value, reason, created_by, created_at, expires_at`;
  return rows[0] ? entry(rows[0]) : null;
}
