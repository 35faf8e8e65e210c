import {
  formatIncidentId,
  incidentSchema,
  INCIDENT_SCHEMA_VERSION,
  type DetectorId,
  type DetectorMode,
  type Incident,
  type IncidentAction,
} from './incident.js';
import { addIncident } from './incident-protocol.js';
import type { RedisLike } from './redis-client.js';
import type { PenaltyLevel } from './tiers.js';

/**
 * Issue 18: every operator action, from every surface (the data plane's admin routes, the
 * `fluxgate` CLI, the SPA's operator portal, the control plane's MCP tools), is one incident of
 * source `operator` naming who acted and why. This is the one place such an incident is built
 * and written, so every surface records the same thing:
 *
 *   operator_throttle  a penalty an operator set (forced past MCP_MAX_PENALTY: evidence.forced = 1)
 *   pardon             a penalty lifted early (of the guard's or an operator's; relatesTo names
 *                      the incident behind it). A pardon with nothing to lift records nothing.
 *   allowlist_add      an allowlist entry added or renewed
 *   allowlist_remove   an allowlist entry removed (nothing removed: nothing recorded)
 *   mode_change        a detector's run-time mode set or cleared (`mode` is the new one)
 *
 * The incident is closed at once (it records an act, not an episode that goes on; the penalty it
 * set has its own expiry) and carries its summary, a template built from the facts (source
 * `template`): a model has nothing to add to an operator's own words, so none is asked. Dry runs
 * record nothing. `detector` is the detector the action answers, or null when it answers none.
 */
export const OPERATOR_ACTIONS = [
  'operator_throttle',
  'pardon',
  'allowlist_add',
  'allowlist_remove',
  'mode_change',
] as const satisfies readonly IncidentAction[];
export type OperatorActionKind = (typeof OPERATOR_ACTIONS)[number];

/** Who acted, as every surface names them in incidents and the audit log. */
export const operatorActors = {
  admin: 'admin-token',
  cli: (osUser: string): string => `cli:${osUser || 'unknown'}`,
  mcp: (tokenName: string): string => `mcp:${tokenName}`,
  portal: (email: string): string => `portal:${email}`,
} as const;

/** The key an action is about, as both planes know it. */
export interface OperatorActionKey {
  id: string;
  prefix: string | null;
  ownerId: string | null;
  ownerEmail: string | null;
  /** The key's own tier. */
  tier: string | null;
}

export interface OperatorActionInput {
  action: OperatorActionKind;
  /** `admin-token`, `cli:<os user>`, `mcp:<token name>`, `portal:<email>` (operatorActors). */
  actor: string;
  reason: string | null;
  at: number;
  /** Default: a fresh id at `at`. */
  id?: string;
  key?: OperatorActionKey | null;
  /** An account the action is about (an allowlisted account), when there is no key. */
  owner?: { id: string | null; email: string | null } | null;
  detector?: DetectorId | null;
  /** mode_change: the mode the detector has from now on. Otherwise `enforce`. */
  mode?: DetectorMode;
  /** operator_throttle: the level set; pardon: the level lifted. */
  level?: PenaltyLevel | null;
  /** operator_throttle: when the penalty ends; allowlist_add: when the entry does. */
  expiresAt?: number | null;
  evidence?: Record<string, number>;
  thresholds?: Record<string, number>;
  /** The incident acted on: the one a pardon lifted, the one a throttle answers. */
  relatesTo?: string | null;
  /** One sentence on what was done, naming what it was done to when that is not a key (an allowlist entry). Default: from the fields. */
  what?: string;
}

const hex8 = (): string =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
export const newIncidentId = (at: number): string => formatIncidentId(at, hex8());

const VERBS: Record<OperatorActionKind, string> = {
  operator_throttle: 'throttled',
  pardon: 'pardoned',
  allowlist_add: 'allowlisted',
  allowlist_remove: 'removed from the allowlist',
  mode_change: 'changed the mode of',
};

/** The sentence on what was done, from the incident's fields alone (older records, or no `what`). */
export function describeOperatorAction(
  i: Pick<Incident, 'action' | 'keyPrefix' | 'keyId' | 'detector' | 'mode' | 'level' | 'expiresAt' | 'relatesTo'>,
): string {
  const subject = i.keyId
    ? `API key ${i.keyPrefix ?? i.keyId}`
    : i.action === 'mode_change'
      ? `detector ${i.detector ?? 'unknown'}`
      : 'an entry';
  const verb = (VERBS as Record<string, string>)[i.action] ?? i.action;
  const detail =
    i.action === 'operator_throttle'
      ? ` to ${i.level ?? 'a penalty'}${i.expiresAt ? ` until ${new Date(i.expiresAt).toISOString()}` : ''}`
      : i.action === 'pardon'
        ? `${i.level ? `, lifting ${i.level}` : ''}${i.relatesTo ? ` (incident ${i.relatesTo})` : ''}`
        : i.action === 'mode_change'
          ? ` to ${i.mode}`
          : '';
  return `Operator ${verb} ${subject}${detail}.`;
}

/** The template summary of an operator incident: what was done, who did it, why. */
export function operatorActionSummary(i: Incident, what: string = describeOperatorAction(i)): string {
  return `${what} By ${i.actor ?? 'an operator'}; reason: ${i.reason ?? 'none given'}.`.slice(0, 4000);
}

/** Builds the closed incident of an operator action, its summary included (validated). */
export function operatorActionIncident(input: OperatorActionInput): Incident {
  const k = input.key ?? null;
  const draft: Incident = {
    v: INCIDENT_SCHEMA_VERSION,
    id: input.id ?? newIncidentId(input.at),
    at: input.at,
    updatedAt: input.at,
    source: 'operator',
    keyId: k?.id ?? null,
    keyPrefix: k?.prefix ?? null,
    ownerId: k?.ownerId ?? input.owner?.id ?? null,
    ownerEmail: k?.ownerEmail ?? input.owner?.email ?? null,
    tier: k?.tier ?? null,
    clientIp: null,
    detector: input.detector ?? null,
    mode: input.mode ?? 'enforce',
    evidence: input.evidence ?? {},
    thresholds: input.thresholds ?? {},
    alsoTripped: [],
    action: input.action,
    level: input.level ?? null,
    expiresAt: input.expiresAt ?? null,
    wouldAction: null,
    wouldLevel: null,
    suppressedBy: null,
    cappedFrom: null,
    priorOffences: 0,
    status: 'closed',
    endedAt: input.at,
    polls: 1,
    lastSeenAt: input.at,
    actor: input.actor.slice(0, 200),
    reason: input.reason === null ? null : input.reason.slice(0, 500),
    summary: null,
    summarySource: null,
    relatesTo: input.relatesTo ?? null,
  };
  return incidentSchema.parse({ ...draft, summary: operatorActionSummary(draft, input.what), summarySource: 'template' });
}

/**
 * Records an operator action: its incident joins the ring buffer (contracts addIncident, the
 * guard's own script) with its summary in one write. The control plane's guard archives recent
 * operator incidents in Postgres at its next backfill. Returns the stored incident.
 */
export async function recordOperatorAction(redis: RedisLike, input: OperatorActionInput, capacity: number): Promise<Incident> {
  const incident = operatorActionIncident(input);
  await addIncident(redis, incident, capacity);
  return incident;
}
