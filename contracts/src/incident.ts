import { z } from 'zod';
import { PENALTY_LEVELS } from './tiers.js';

export const DETECTORS = [
  'context_flooding',
  'token_overconsumption',
  'credential_stuffing',
  'rate_spike',
  'hammering_429',
  'token_ratio_spike',
  'repeated_prompt',
  'model_enumeration',
  'leaked_key',
] as const;
export type DetectorId = (typeof DETECTORS)[number];

/** Detectors that watch a client IP rather than an API key. */
export const IP_DETECTORS: readonly DetectorId[] = ['credential_stuffing'];

export const DETECTOR_MODES = ['enforce', 'shadow'] as const;
export type DetectorMode = (typeof DETECTOR_MODES)[number];

/** Who opened the incident: the guard's detectors, or an operator (MCP, admin route, CLI). */
export const INCIDENT_SOURCES = ['guard', 'operator'] as const;
export type IncidentSource = (typeof INCIDENT_SOURCES)[number];

export const INCIDENT_ACTIONS = [
  'penalty',
  'escalate',
  'ip_block',
  'none',
  'pardon',
  'operator_throttle',
  'allowlist_add',
  'allowlist_remove',
  'mode_change',
] as const;
export type IncidentAction = (typeof INCIDENT_ACTIONS)[number];

/**
 * Why a decision was recorded but not carried out (issue 18's rails): the detector is in shadow
 * mode, the key/account/IP is allowlisted, the key is in its grace after a pardon. `ceiling`
 * is not a suppression: the action happened, capped at the configured highest level.
 */
export const SUPPRESSIONS = ['shadow_mode', 'allowlist', 'grace'] as const;
export type Suppression = (typeof SUPPRESSIONS)[number];

/** open: the episode goes on; expired: its penalty ended by itself (an automatic pardon); pardoned: lifted early. */
export const INCIDENT_STATUSES = ['open', 'expired', 'pardoned', 'closed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

export const SUMMARY_SOURCES = ['model', 'template'] as const;
export type SummarySource = (typeof SUMMARY_SOURCES)[number];

/** Incident ids: `inc_<epoch ms base36>_<8 hex>`, so they sort by time and carry no user data. */
export const INCIDENT_ID_RE = /^inc_[0-9a-z]{6,12}_[0-9a-f]{8}$/;
export const incidentIdSchema = z.string().regex(INCIDENT_ID_RE, 'expected an incident id like inc_<time>_<8 hex>');
export const formatIncidentId = (atMs: number, randomHex8: string): string => `inc_${atMs.toString(36)}_${randomHex8}`;

/** Bumped when the record's shape changes; readers skip (and count) records of other versions. */
export const INCIDENT_SCHEMA_VERSION = 1;

const numbers = z.record(z.string(), z.number());
const ms = z.number().int().positive();

/**
 * One incident: one episode of one detector on one key (or IP), created once and updated as the
 * episode goes on (never one per poll); or one operator action (source `operator`, closed at
 * once, see operator-action.ts). Stored in redisKeys.incidentRecords (current state),
 * appended once to the redisKeys.incidents stream, and archived in Postgres (incident_archive).
 * Evidence is numbers only: no prompt text, no secret ever enters a record.
 */
export const incidentSchema = z
  .object({
    v: z.literal(INCIDENT_SCHEMA_VERSION),
    id: incidentIdSchema,
    /** Epoch ms when the episode was first seen. */
    at: ms,
    updatedAt: ms,
    source: z.enum(INCIDENT_SOURCES),
    /** API key id, or null for per-IP incidents (credential stuffing). */
    keyId: z.string().nullable(),
    /** The key's display prefix (fgk_…), safe to show. */
    keyPrefix: z.string().nullable(),
    ownerId: z.string().nullable(),
    ownerEmail: z.string().nullable(),
    /** The key's own tier when detected (thresholds were scaled to it). */
    tier: z.string().nullable(),
    clientIp: z.string().nullable(),
    /**
     * The detector whose episode this is. Required for the guard's incidents; an operator's action
     * names the detector it answers, or null when it concerns none (an allowlist change, a throttle
     * of a key no detector flagged).
     */
    detector: z.enum(DETECTORS).nullable(),
    mode: z.enum(DETECTOR_MODES),
    /** The numbers that tripped the detector, by name (peak over the episode). */
    evidence: numbers,
    /** The thresholds those numbers crossed, by the same names. */
    thresholds: numbers,
    /**
     * Other detectors that tripped on the same key during this episode (the first detector's
     * incident holds the episode; a key already in the guard's penalty box opens no second one).
     */
    alsoTripped: z.array(z.enum(DETECTORS)).max(DETECTORS.length),
    action: z.enum(INCIDENT_ACTIONS),
    level: z.enum(PENALTY_LEVELS).nullable(),
    /** When the penalty or IP block ends by itself. */
    expiresAt: ms.nullable(),
    /** What would have been done, when `suppressedBy` kept it from being done. */
    wouldAction: z.enum(INCIDENT_ACTIONS).nullable(),
    wouldLevel: z.enum(PENALTY_LEVELS).nullable(),
    suppressedBy: z.enum(SUPPRESSIONS).nullable(),
    /** The level the escalation asked for when the configured ceiling capped it. */
    cappedFrom: z.enum(PENALTY_LEVELS).nullable(),
    /** Offences of this key within the escalation memory before this episode. */
    priorOffences: z.number().int().nonnegative(),
    status: z.enum(INCIDENT_STATUSES),
    endedAt: ms.nullable(),
    /** Polls that saw the episode, and the last one. */
    polls: z.number().int().positive(),
    lastSeenAt: ms,
    /** Operator incidents: the token name that acted and why. */
    actor: z.string().max(200).nullable(),
    reason: z.string().max(500).nullable(),
    summary: z.string().nullable(),
    summarySource: z.enum(SUMMARY_SOURCES).nullable(),
    /** Operator incidents: the incident they act on (e.g. the guard incident a pardon lifted). Optional, so older records parse. */
    relatesTo: incidentIdSchema.nullable().optional(),
  })
  .refine((i) => i.source !== 'guard' || i.detector !== null, { path: ['detector'], message: "the guard's incidents name their detector" });
export type Incident = z.infer<typeof incidentSchema>;

/** A summary, stored in redisKeys.incidentSummaries after the incident itself. */
export const incidentSummarySchema = z.object({
  id: incidentIdSchema,
  summary: z.string().min(1).max(4000),
  source: z.enum(SUMMARY_SOURCES),
  /** The model that wrote it (null for templates). */
  model: z.string().nullable(),
  at: ms,
});
export type IncidentSummary = z.infer<typeof incidentSummarySchema>;

/**
 * A decision recorded but not carried out (shadow mode, allowlist, grace), one per episode, on
 * redisKeys.shadowDecisions (capped like the incidents), so operators can compare a detector's
 * would-be actions with their evidence before enforcing it.
 */
export const shadowDecisionSchema = z.object({
  at: ms,
  incidentId: incidentIdSchema.nullable(),
  detector: z.enum(DETECTORS),
  keyId: z.string().nullable(),
  clientIp: z.string().nullable(),
  wouldAction: z.enum(INCIDENT_ACTIONS),
  wouldLevel: z.enum(PENALTY_LEVELS).nullable(),
  suppressedBy: z.enum(SUPPRESSIONS),
  evidence: numbers,
  thresholds: numbers,
});
export type ShadowDecision = z.infer<typeof shadowDecisionSchema>;

/** Stream fields of an incident stream entry and a shadow-decision entry. */
export const STREAM_FIELDS = { id: 'id', data: 'data' } as const;
