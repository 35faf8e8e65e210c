import { INCIDENT_SCHEMA_VERSION, type Incident, type IncidentAction, type PenaltyLevel, type Suppression } from '@fluxgate/contracts';
import type { KeyMeta } from '../store/keys.js';
import type { Decision } from './policy.js';

/** The incident a decision opens (pure). */
export function openIncident(
  d: Decision,
  args: {
    id: string;
    at: number;
    meta: KeyMeta | null;
    priorOffences: number;
    suppressedBy: Suppression | null;
    wouldLevel: PenaltyLevel | null;
    cappedFrom: PenaltyLevel | null;
  },
): Incident {
  const key = d.subject.kind === 'key' ? d.subject : null;
  const wouldAction: IncidentAction = d.action === 'ip_block' ? 'ip_block' : 'penalty';
  return {
    v: INCIDENT_SCHEMA_VERSION,
    id: args.id,
    at: args.at,
    updatedAt: args.at,
    source: 'guard',
    keyId: key?.keyId ?? null,
    keyPrefix: args.meta?.prefix ?? null,
    ownerId: args.meta?.ownerId ?? null,
    ownerEmail: args.meta?.ownerEmail ?? null,
    tier: key?.tierId ?? null,
    clientIp: d.subject.kind === 'ip' ? d.subject.ip : null,
    detector: d.trip.detector,
    mode: d.mode,
    evidence: { ...d.trip.evidence },
    thresholds: { ...d.trip.thresholds },
    alsoTripped: [...d.alsoTripped],
    action: 'none',
    level: null,
    expiresAt: null,
    wouldAction: args.suppressedBy ? wouldAction : null,
    wouldLevel: args.suppressedBy ? args.wouldLevel : null,
    suppressedBy: args.suppressedBy,
    cappedFrom: args.cappedFrom,
    priorOffences: args.priorOffences,
    status: 'open',
    endedAt: null,
    polls: 1,
    lastSeenAt: args.at,
    actor: null,
    reason: null,
    summary: null,
    summarySource: null,
  };
}

/** Another poll of the same episode: peak evidence, one more poll (pure). */
export function seenAgain(i: Incident, d: Decision, at: number): Incident {
  const evidence = { ...i.evidence };
  for (const [k, v] of Object.entries(d.trip.evidence)) evidence[k] = Math.max(evidence[k] ?? v, v);
  return {
    ...i,
    evidence,
    thresholds: { ...d.trip.thresholds },
    alsoTripped: union(i.alsoTripped, d.alsoTripped),
    polls: i.polls + 1,
    lastSeenAt: at,
    updatedAt: at,
  };
}

export const union = <T>(a: readonly T[], b: readonly T[]): T[] => [...new Set([...a, ...b])];
