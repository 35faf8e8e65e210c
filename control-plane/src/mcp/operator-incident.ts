import { randomBytes } from 'node:crypto';
import {
  formatIncidentId,
  INCIDENT_SCHEMA_VERSION,
  redisKeys,
  type DetectorId,
  type DetectorMode,
  type Incident,
  type IncidentAction,
  type IncidentStatus,
  type PenaltyLevel,
} from '@fluxgate/contracts';
import { watchMember } from '../guard/members.js';
import type { McpContext } from './context.js';
import type { McpIdentity } from './identity.js';
import type { KeyInfo } from './keys.js';

/**
 * Every operator action through MCP is an incident of source `operator` naming the token's name
 * (actor) and the reason (issue 18), stored through the same ring buffer and archive as the
 * guard's. `detector` says which abuse the action answers (the schema requires one): the
 * incident acted on, else the operator's choice. Its summary is written at once from the facts
 * (source `template`): a model has nothing to add to an operator's own words.
 */
export interface OperatorAction {
  identity: McpIdentity;
  reason: string;
  key: KeyInfo | null;
  detector: DetectorId;
  mode?: DetectorMode;
  action: IncidentAction;
  level: PenaltyLevel | null;
  expiresAt: number | null;
  status: IncidentStatus;
  evidence: Record<string, number>;
  thresholds?: Record<string, number>;
  /** The summary's sentence on what was done. */
  what: string;
}

export const newIncidentId = (now: number): string => formatIncidentId(now, randomBytes(4).toString('hex'));

export function operatorIncident(a: OperatorAction, now: number, id = newIncidentId(now)): Incident {
  return {
    v: INCIDENT_SCHEMA_VERSION,
    id,
    at: now,
    updatedAt: now,
    source: 'operator',
    keyId: a.key?.id ?? null,
    keyPrefix: a.key?.prefix ?? null,
    ownerId: a.key?.owner?.id ?? null,
    ownerEmail: a.key?.owner?.email ?? null,
    tier: a.key?.tier ?? null,
    clientIp: null,
    detector: a.detector,
    mode: a.mode ?? 'enforce',
    evidence: a.evidence,
    thresholds: a.thresholds ?? {},
    alsoTripped: [],
    action: a.action,
    level: a.level,
    expiresAt: a.expiresAt,
    wouldAction: null,
    wouldLevel: null,
    suppressedBy: null,
    cappedFrom: null,
    priorOffences: 0,
    status: a.status,
    endedAt: a.status === 'open' ? null : now,
    polls: 1,
    lastSeenAt: now,
    actor: `mcp:${a.identity.name}`.slice(0, 200),
    reason: a.reason.slice(0, 500),
    summary: null,
    summarySource: null,
  };
}

/** Stores the incident, its summary and archive row; then `act` runs. Returns the stored incident. */
export async function recordOperatorIncident(ctx: McpContext, incident: Incident, what: string): Promise<Incident> {
  await ctx.store.add(incident);
  const summary = `${what} Reason given by ${incident.actor}: ${incident.reason ?? ''}`.slice(0, 4000);
  await ctx.store.saveSummary({ id: incident.id, summary, source: 'template', model: null, at: incident.at });
  await ctx.archive(incident.id);
  return { ...incident, summary, summarySource: 'template' };
}

/** The action failed after its incident was stored: the incident and its summary say nothing was done. */
export async function markNotDone(ctx: McpContext, incident: Incident, now: number): Promise<void> {
  await ctx.store
    .update({ ...incident, action: 'none', level: null, expiresAt: null, status: 'closed', endedAt: now, updatedAt: now })
    .catch(() => false);
  const summary = `Not carried out (the write to Redis failed): ${incident.summary ?? ''}`.slice(0, 4000);
  await ctx.store.saveSummary({ id: incident.id, summary, source: 'template', model: null, at: now }).catch(() => false);
  await ctx.archive(incident.id);
}

/** The guard closes the incident when the penalty ends or is lifted (guard/watch.ts), as for its own. */
export async function watchPenalty(ctx: McpContext, incident: Incident & { keyId: string; expiresAt: number }): Promise<void> {
  await ctx.redis.zadd(
    redisKeys.guardWatch(),
    incident.expiresAt,
    watchMember({ incidentId: incident.id, subject: incident.keyId, detector: incident.detector }),
  );
}
