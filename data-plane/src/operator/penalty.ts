import { randomBytes } from 'node:crypto';
import {
  addIncident,
  buildPenaltyRecord,
  checkPenaltyCap,
  formatIncidentId,
  getIncidentRecord,
  getPenalty,
  isDetector,
  liftPenalty,
  operatorPardonIncident,
  PENALTY_DURATION_SECONDS,
  setPardonGrace,
  setPenalty,
  type DetectorId,
  type PenaltyLevel,
  type PenaltyRecord,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Sql } from '../store/db.js';
import { StoreError } from '../store/errors.js';
import { getKey, type KeyInfo } from '../store/keys.js';
import { audit } from './audit.js';
import { liveReplicaIds } from './replicas.js';

/**
 * An operator's throttle and pardon of one key, shared by the admin routes and the CLI, through
 * the same contracts protocols the guard and MCP use (penalty box, grace list, incident ring):
 * - throttle: a penalty longer than MCP_MAX_PENALTY needs `force`, and the record says it was
 *   forced and who set it;
 * - pardon: lifting a penalty the guard set first puts the key on the guard's grace list (so its
 *   next poll cannot re-penalise it), then lifts it on every replica, then leaves an operator
 *   incident naming the guard's incident and who acted;
 * - dry run: the same answer (effective tier before and after, until when, the live replicas
 *   that would see it), with nothing written.
 * Every change is audited (audit_log), after it happened.
 */
export interface OperatorDeps {
  sql: Sql;
  redis: Redis;
  /** MCP_MAX_PENALTY in seconds. */
  capSeconds: number;
  /** GUARD_PARDON_GRACE_SECONDS. */
  graceSeconds: number;
  /** INCIDENT_CAPACITY: the ring buffer an operator incident joins. */
  incidentCapacity: number;
  now?: () => number;
  /** Told when the audit row of a change that did happen could not be written. */
  warn?: (message: string) => void;
}

export interface TierState {
  effectiveTier: string;
  penalty: PenaltyRecord | null;
}

export interface PenaltyOutcome {
  dryRun: boolean;
  keyId: string;
  keyPrefix: string;
  /** The key's own tier. */
  tier: string;
  before: TierState;
  after: TierState;
  /** When what `after` describes ends (epoch ms; null: the key is on its own tier). */
  until: number | null;
  /** Live data-plane replicas that see the change within a second (pub/sub). */
  replicas: string[];
}

export interface ThrottleInput {
  keyId: string;
  level: PenaltyLevel;
  durationSeconds?: number;
  reason?: string;
  incidentId?: string | null;
  force?: boolean;
  dryRun?: boolean;
}

export interface PardonInput {
  keyId: string;
  reason?: string;
  dryRun?: boolean;
}

export interface PardonOutcome extends PenaltyOutcome {
  lifted: boolean;
  /** Grace given on the guard's list (a guard penalty was lifted), until when. */
  graceUntil: number | null;
  /** The operator incident recorded (or, in a dry run, that would be): null when none is. */
  incidentId: string | null;
}

const state = (key: KeyInfo, penalty: PenaltyRecord | null): TierState => ({ effectiveTier: penalty ? penalty.level : key.tier, penalty });

async function knownKey(sql: Sql, keyId: string): Promise<KeyInfo> {
  const key = await getKey(sql, keyId);
  if (!key) throw new StoreError('not_found', 'No API key with this id.');
  return key;
}

export async function throttleKey(
  deps: OperatorDeps,
  input: ThrottleInput,
  actor: string,
): Promise<PenaltyOutcome & { penalty: PenaltyRecord; forced: boolean }> {
  const now = (deps.now ?? Date.now)();
  const key = await knownKey(deps.sql, input.keyId);
  const seconds = input.durationSeconds ?? PENALTY_DURATION_SECONDS[input.level];
  const cap = checkPenaltyCap(seconds, deps.capSeconds, input.force === true);
  if (!cap.ok) throw new StoreError('penalty_over_cap', cap.message);
  const record = buildPenaltyRecord({
    keyId: key.id,
    level: input.level,
    setBy: 'operator',
    reason: input.reason ?? 'set by an operator',
    incidentId: input.incidentId ?? null,
    durationSeconds: seconds,
    actor,
    forced: cap.forced,
    now,
  });
  const [current, replicas] = await Promise.all([getPenalty(deps.redis, key.id, now), liveReplicaIds(deps.redis, now)]);
  const outcome = {
    dryRun: input.dryRun === true,
    keyId: key.id,
    keyPrefix: key.prefix,
    tier: key.tier,
    before: state(key, current),
    after: state(key, record),
    until: record.expiresAt,
    replicas,
    penalty: record,
    forced: cap.forced,
  };
  if (outcome.dryRun) return outcome;
  await setPenalty(deps.redis, record, now);
  await audit(deps, {
    actor,
    action: 'penalty.set',
    keyId: key.id,
    userId: key.userId,
    detail: { level: record.level, durationSeconds: seconds, forced: cap.forced, reason: record.reason, expiresAt: record.expiresAt },
  });
  return outcome;
}

export async function pardonKey(deps: OperatorDeps, input: PardonInput, actor: string): Promise<PardonOutcome> {
  const now = (deps.now ?? Date.now)();
  const key = await knownKey(deps.sql, input.keyId);
  const [current, replicas] = await Promise.all([getPenalty(deps.redis, key.id, now), liveReplicaIds(deps.redis, now)]);
  const byGuard = current?.setBy === 'guard';
  const pardoned = byGuard ? await guardIncidentOf(deps.redis, current) : null;
  const outcome: PardonOutcome = {
    dryRun: input.dryRun === true,
    keyId: key.id,
    keyPrefix: key.prefix,
    tier: key.tier,
    before: state(key, current),
    after: state(key, null),
    until: null,
    replicas,
    lifted: current !== null,
    graceUntil: byGuard ? now + deps.graceSeconds * 1000 : null,
    incidentId: pardoned ? formatIncidentId(now, randomBytes(4).toString('hex')) : null,
  };
  if (outcome.dryRun) return outcome;

  // Grace before the lift: between the two, a guard poll would otherwise see the key free and
  // still abusive, and penalise it again.
  if (outcome.graceUntil !== null)
    await setPardonGrace(deps.redis, { keyId: key.id, until: outcome.graceUntil, incidentId: current?.incidentId ?? null, at: now }, now);
  outcome.lifted = await liftPenalty(deps.redis, key.id, now);
  if (pardoned && outcome.incidentId) {
    const incident = operatorPardonIncident({
      id: outcome.incidentId,
      at: now,
      actor,
      reason: input.reason ?? null,
      keyId: key.id,
      keyPrefix: key.prefix,
      ownerId: key.userId,
      ownerEmail: key.ownerEmail,
      tier: key.tier,
      pardoned,
    });
    await addIncident(deps.redis, incident, deps.incidentCapacity);
  }
  if (outcome.lifted) {
    await audit(deps, {
      actor,
      action: 'penalty.lifted',
      keyId: key.id,
      userId: key.userId,
      detail: {
        level: current?.level ?? null,
        setBy: current?.setBy ?? null,
        reason: input.reason ?? null,
        incidentId: outcome.incidentId,
        graceUntil: outcome.graceUntil,
      },
    });
  }
  return outcome;
}

/**
 * The guard incident behind a guard penalty: its detector names the operator's incident. When
 * the incident has left the ring buffer, the penalty's own reason still names the detector (the
 * guard writes `<detector> (guard)`).
 */
async function guardIncidentOf(
  redis: Redis,
  penalty: PenaltyRecord | null,
): Promise<{ incidentId: string; detector: DetectorId; level: PenaltyLevel } | null> {
  if (!penalty?.incidentId) return null;
  const incident = await getIncidentRecord(redis, penalty.incidentId);
  const detector = incident?.detector ?? /^([a-z_0-9]+) \(guard\)$/.exec(penalty.reason)?.[1];
  return detector !== undefined && isDetector(detector) ? { incidentId: penalty.incidentId, detector, level: penalty.level } : null;
}
