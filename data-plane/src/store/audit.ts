import type { Queryable } from './db.js';

export interface AuditEntry {
  /** 'cli', 'portal:<user id>', 'operator:<user id>', 'guard'. */
  actor: string;
  /** `<subject>.<verb>`, e.g. key.created, key.revoked, user.created. */
  action: string;
  userId?: string | null;
  keyId?: string | null;
  detail?: Record<string, string | number | boolean | null>;
}

/** Appends one row to audit_log. Never put secrets or hashes in `detail`. */
export async function recordAudit(sql: Queryable, e: AuditEntry): Promise<void> {
  await sql`
    INSERT INTO audit_log (actor, action, user_id, key_id, detail)
    VALUES (${e.actor}, ${e.action}, ${e.userId ?? null}, ${e.keyId ?? null}, ${sql.json(e.detail ?? {})})`;
}
