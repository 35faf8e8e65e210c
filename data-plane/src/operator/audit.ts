import { operatorActors } from '@fluxgate/contracts';
import { recordAudit, type AuditEntry } from '../store/audit.js';
import type { Sql } from '../store/db.js';

/** Who acted, as the audit log and operator incidents name them (contracts operatorActors). */
export const ADMIN_ACTOR = operatorActors.admin;
export const cliActor = operatorActors.cli;

/** The audit row follows a change that already happened: failing to write it must not undo or hide it. */
export async function audit(deps: { sql: Sql; warn?: (message: string) => void }, entry: AuditEntry): Promise<void> {
  try {
    await recordAudit(deps.sql, entry);
  } catch (err) {
    deps.warn?.(`audit log not written (${(err as Error).message.split('\n')[0]})`);
  }
}
