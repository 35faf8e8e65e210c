import { allowlistInputSchema, type AllowlistEntry, type AllowlistKind, type OperatorActionInput } from '@fluxgate/contracts';
import { z } from 'zod';
import type { Sql } from '../store/db.js';
import { listAllowlist, removeAllowlist, upsertAllowlist } from '../store/allowlist.js';
import { getKey, isUuid } from '../store/keys.js';
import { audit } from './audit.js';
import { keyRef, recordAction, type ActionRecorderDeps } from './record.js';

/**
 * The guard's allowlist as the admin routes and the CLI change it (issue 18). Validated with the
 * contracts schema every writer uses; each change is audited and leaves an operator incident
 * (allowlist_add / allowlist_remove, naming the key or account when it is one). The guard
 * re-reads the table at every poll (control-plane/src/guard/guard.ts refreshAllowlist), so a
 * change reaches it within one POLL_INTERVAL with nothing to publish.
 */
export { allowlistInputSchema };

export interface AllowlistDeps extends ActionRecorderDeps {
  sql: Sql;
}

export const listAllowlistEntries = (deps: Pick<AllowlistDeps, 'sql'>): Promise<AllowlistEntry[]> => listAllowlist(deps.sql);

export async function addAllowlistEntry(
  deps: AllowlistDeps,
  input: z.input<typeof allowlistInputSchema>,
  actor: string,
): Promise<{ entry: AllowlistEntry; created: boolean; incidentId: string | null }> {
  const e = allowlistInputSchema.parse(input);
  const result = await upsertAllowlist(deps.sql, e, actor);
  const { entry } = result;
  const until = entry.expiresAt === null ? '' : ` until ${new Date(entry.expiresAt).toISOString()}`;
  const incidentId = await recordAction(deps, {
    ...(await subjectOf(deps.sql, entry)),
    action: 'allowlist_add',
    actor,
    reason: entry.reason || null,
    at: Date.now(),
    expiresAt: entry.expiresAt,
    what: `Operator ${result.created ? 'allowlisted' : 'renewed the allowlist entry'} ${entry.kind}:${entry.value}${until}: the guard stops penalising it from its next poll.`,
  });
  await audit(deps, {
    actor,
    action: 'allowlist.added',
    detail: { kind: e.kind, value: e.value, reason: e.reason, expiresAt: entry.expiresAt, incidentId },
  });
  return { ...result, incidentId };
}

export async function removeAllowlistEntry(
  deps: AllowlistDeps,
  by: { id: number } | { kind: AllowlistKind; value: string },
  actor: string,
  reason: string | null = null,
): Promise<{ removed: AllowlistEntry; incidentId: string | null } | null> {
  const removed = await removeAllowlist(deps.sql, 'id' in by ? by : { kind: by.kind, value: by.value.trim().toLowerCase() });
  if (!removed) return null;
  const incidentId = await recordAction(deps, {
    ...(await subjectOf(deps.sql, removed)),
    action: 'allowlist_remove',
    actor,
    reason,
    at: Date.now(),
    what: `Operator removed ${removed.kind}:${removed.value} from the allowlist: the guard may penalise it again from its next poll.`,
  });
  await audit(deps, {
    actor,
    action: 'allowlist.removed',
    detail: { kind: removed.kind, value: removed.value, id: removed.id, reason, incidentId },
  });
  return { removed, incidentId };
}

/** The key or account an entry names, so the incident is found by key or owner; nothing for a CIDR. */
async function subjectOf(sql: Sql, e: AllowlistEntry): Promise<Pick<OperatorActionInput, 'key' | 'owner'>> {
  if (e.kind === 'key') {
    const key = await getKey(sql, e.value).catch(() => null);
    return { key: key ? keyRef(key) : { id: e.value, prefix: null, ownerId: null, ownerEmail: null, tier: null } };
  }
  if (e.kind === 'account') return { owner: isUuid(e.value) ? { id: e.value, email: null } : { id: null, email: e.value } };
  return {};
}
