import { allowlistInputSchema, type AllowlistEntry, type AllowlistKind } from '@fluxgate/contracts';
import { z } from 'zod';
import type { Sql } from '../store/db.js';
import { listAllowlist, removeAllowlist, upsertAllowlist } from '../store/allowlist.js';
import { audit } from './audit.js';

/**
 * The guard's allowlist as the admin routes and the CLI change it (issue 18). Validated with the
 * contracts schema every writer uses; each change is audited. The guard re-reads the table at
 * every poll (control-plane/src/guard/guard.ts refreshAllowlist), so a change reaches it within
 * one POLL_INTERVAL with nothing to publish.
 */
export { allowlistInputSchema };

export interface AllowlistDeps {
  sql: Sql;
  warn?: (message: string) => void;
}

export const listAllowlistEntries = (deps: AllowlistDeps): Promise<AllowlistEntry[]> => listAllowlist(deps.sql);

export async function addAllowlistEntry(
  deps: AllowlistDeps,
  input: z.input<typeof allowlistInputSchema>,
  actor: string,
): Promise<{ entry: AllowlistEntry; created: boolean }> {
  const e = allowlistInputSchema.parse(input);
  const result = await upsertAllowlist(deps.sql, e, actor);
  await audit(deps, {
    actor,
    action: 'allowlist.added',
    detail: { kind: e.kind, value: e.value, reason: e.reason, expiresAt: result.entry.expiresAt },
  });
  return result;
}

export async function removeAllowlistEntry(
  deps: AllowlistDeps,
  by: { id: number } | { kind: AllowlistKind; value: string },
  actor: string,
): Promise<AllowlistEntry | null> {
  const removed = await removeAllowlist(deps.sql, 'id' in by ? by : { kind: by.kind, value: by.value.trim().toLowerCase() });
  if (removed)
    await audit(deps, { actor, action: 'allowlist.removed', detail: { kind: removed.kind, value: removed.value, id: removed.id } });
  return removed;
}
