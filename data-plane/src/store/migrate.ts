import { readFile } from 'node:fs/promises';
import type { Sql } from './db.js';

/**
 * Advisory lock id serialising schema application across replicas that boot at once: two
 * concurrent `CREATE TABLE IF NOT EXISTS` can both pass the existence check and one then fails
 * on the catalog's unique index. ('FLXG' in ASCII.)
 */
export const SCHEMA_LOCK_ID = 0x464c5847n;

/**
 * Applies init.sql (idempotent) in one transaction under a transaction-scoped advisory lock,
 * so the lock is released however the transaction ends.
 */
export async function applySchema(sql: Sql, initSqlPath: string): Promise<void> {
  const script = await readFile(initSqlPath, 'utf8');
  await applySchemaText(sql, script);
}

export async function applySchemaText(sql: Sql, script: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_ID.toString()}::bigint)`;
    // The script is a trusted file shipped with the build, never request input; unsafe() without
    // parameters uses the simple query protocol, which is what allows several statements.
    await tx.unsafe(script);
  });
}
