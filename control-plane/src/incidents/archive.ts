import type { Incident } from '@fluxgate/contracts';
import type { Sql } from '../store/db.js';

/**
 * The incident archive in Postgres (init.sql incident_archive): the control plane's only
 * Postgres write. Upserted by id with the incident as Redis has it now (its summary merged in),
 * so writing it again as its episode goes on, after its summary, or after a failed attempt never
 * duplicates it; a summary Redis no longer has is kept.
 */
export async function archiveIncident(sql: Sql, i: Incident): Promise<void> {
  const at = new Date(i.at);
  const updated = new Date(i.updatedAt);
  const expires = i.expiresAt === null ? null : new Date(i.expiresAt);
  const record = sql.json(i as unknown as Parameters<Sql['json']>[0]);
  await sql`
    INSERT INTO incident_archive (id, at, updated_at, source, key_id, key_prefix, owner_email, client_ip, detector, mode, action, level, status, expires_at, summary, summary_source, record)
    VALUES (${i.id}, ${at}, ${updated}, ${i.source}, ${i.keyId}, ${i.keyPrefix}, ${i.ownerEmail}, ${i.clientIp}, ${i.detector}, ${i.mode}, ${i.action}, ${i.level}, ${i.status}, ${expires}, ${i.summary}, ${i.summarySource}, ${record})
    ON CONFLICT (id) DO UPDATE SET
      updated_at = EXCLUDED.updated_at, mode = EXCLUDED.mode, action = EXCLUDED.action, level = EXCLUDED.level,
      status = EXCLUDED.status, expires_at = EXCLUDED.expires_at,
      summary = coalesce(EXCLUDED.summary, incident_archive.summary),
      summary_source = coalesce(EXCLUDED.summary_source, incident_archive.summary_source),
      record = EXCLUDED.record || jsonb_build_object('summary', coalesce(EXCLUDED.summary, incident_archive.summary), 'summarySource', coalesce(EXCLUDED.summary_source, incident_archive.summary_source))`;
}
