import type { Sql } from './db.js';

/**
 * One line of the append-only audit_log (init.sql), as the data plane's CLI and portal write it:
 * who (`mcp:<token name>` here), what (`area.verb`), which key or account, and the details.
 */
export async function writeAudit(
  sql: Sql,
  e: {
    actor: string;
    action: string;
    keyId?: string | null;
    userId?: string | null;
    detail: Record<string, string | number | boolean | null>;
  },
): Promise<void> {
  await sql`
    INSERT INTO audit_log (actor, action, user_id, key_id, detail)
    VALUES (${e.actor}, ${e.action}, ${e.userId ?? null}, ${e.keyId ?? null}, ${sql.json(e.detail)})`;
}
