import { operatorActors, recordOperatorAction, type Incident, type OperatorActionInput, type OperatorActionKey } from '@fluxgate/contracts';
import type { McpContext } from './context.js';
import type { McpIdentity } from './identity.js';
import type { KeyInfo } from './keys.js';

/**
 * Every operator action through MCP is an incident of source `operator` naming the token's name
 * (actor `mcp:<name>`) and the reason (issue 18), built and written by the contracts function
 * every operator surface uses (contracts/src/operator-action.ts: closed at once, its template
 * summary included), then archived. Stored before the action: an action is never taken without
 * its incident; if the action then fails, markNotDone says so.
 */
export type McpOperatorAction = Omit<OperatorActionInput, 'actor' | 'at' | 'key'> & { key: KeyInfo | null };

export const keyRef = (k: KeyInfo): OperatorActionKey => ({
  id: k.id,
  prefix: k.prefix,
  ownerId: k.owner?.id ?? null,
  ownerEmail: k.owner?.email ?? null,
  tier: k.tier,
});

export const mcpActor = (identity: McpIdentity): string => operatorActors.mcp(identity.name);

/** Stores the incident (record and summary in one write) and its archive row. Returns the stored incident. */
export async function recordOperatorIncident(ctx: McpContext, identity: McpIdentity, a: McpOperatorAction): Promise<Incident> {
  const incident = await recordOperatorAction(
    ctx.redis,
    { ...a, key: a.key ? keyRef(a.key) : null, actor: mcpActor(identity), at: ctx.now() },
    ctx.config.INCIDENT_CAPACITY,
  );
  await ctx.archive(incident.id);
  return incident;
}

/** The action failed after its incident was stored: the incident and its summary say nothing was done. */
export async function markNotDone(ctx: McpContext, incident: Incident, now: number): Promise<void> {
  const summary = `Not carried out (the write to Redis failed): ${incident.summary ?? ''}`.slice(0, 4000);
  await ctx.store
    .update({ ...incident, action: 'none', level: null, expiresAt: null, updatedAt: now, summary, summarySource: 'template' })
    .catch(() => false);
  await ctx.archive(incident.id);
}
