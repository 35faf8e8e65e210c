import {
  buildPenaltyRecord,
  checkPenaltyCap,
  getIncidentRecord,
  getPenalty,
  INCIDENT_ID_RE,
  isDetector,
  liftPenalty,
  newIncidentId,
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
import { keyRef, recordAction } from './record.js';
import { liveReplicaIds } from './replicas.js';

/**
 * An operator's throttle and pardon of one key, shared by the admin routes and the CLI, through
 * the same contracts protocols the guard and MCP use (penalty box, grace list, incident ring):
 * - throttle: a penalty longer than MCP_MAX_PENALTY needs `force`, and the record says it was
 *   forced and who set it;
 * - pardon: lifting a penalty the guard set first puts the key on the guard's grace list (so its
 *   next poll cannot re-penalise it), then lifts it on every replica;
 * - dry run: the same answer (effective tier before and after, until when, the live replicas
 *   that would see it), with nothing written and no incident.
 * Every change leaves one operator incident (who, why; a pardon's names the incident behind the
 * penalty it lifted, a throttle's is the penalty's own incident) and an audit row, after it
 * happened. A pardon of a key with no penalty changes nothing and records nothing.
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
  /** The operator incident recorded: null in a dry run, when nothing was lifted, or when it could not be written. */
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
): Promise<PenaltyOutcome & { penalty: PenaltyRecord; forced: boolean; incidentId: string | null }> {
  const now = (deps.now ?? Date.now)();
  const key = await knownKey(deps.sql, input.keyId);
  const seconds = input.durationSeconds ?? PENALTY_DURATION_SECONDS[input.level];
  const cap = checkPenaltyCap(seconds, deps.capSeconds, input.force === true);
  if (!cap.ok) throw new StoreError('penalty_over_cap', cap.message);
  const dryRun = input.dryRun === true;
  // The penalty names the operator's incident (as the guard's names its own); that incident
  // names the one the throttle answers, whose detector it takes.
  const answers = input.incidentId && INCIDENT_ID_RE.test(input.incidentId) ? input.incidentId : null;
  const incidentId = dryRun ? null : newIncidentId(now);
  const record = buildPenaltyRecord({
    keyId: key.id,
    level: input.level,
    setBy: 'operator',
    reason: input.reason ?? 'set by an operator',
    incidentId: incidentId ?? input.incidentId ?? null,
    durationSeconds: seconds,
    actor,
    forced: cap.forced,
    now,
  });
  const [current, replicas] = await Promise.all([getPenalty(deps.redis, key.id, now), liveReplicaIds(deps.redis, now)]);
  const outcome = {
    dryRun,
    keyId: key.id,
    keyPrefix: key.prefix,
    tier: key.tier,
    before: state(key, current),
    after: state(key, record),
    until: record.expiresAt,
    replicas,
    penalty: record,
    forced: cap.forced,
    incidentId,
  };
  if (incidentId === null) return outcome;
  await setPenalty(deps.redis, record, now);
  const answered = answers ? await getIncidentRecord(deps.redis, answers).catch(() => null) : null;
  outcome.incidentId = await recordAction(deps, {
    id: incidentId,
    action: 'operator_throttle',
    actor,
    reason: input.reason ?? null,
    at: now,
    key: keyRef(key),
    detector: answered?.detector ?? null,
    level: record.level,
    expiresAt: record.expiresAt,
    evidence: { durationSeconds: seconds, forced: cap.forced ? 1 : 0 },
    thresholds: { maxPenaltySeconds: deps.capSeconds },
    relatesTo: answers,
    what: `Operator throttled API key ${key.prefix} to ${record.level} until ${new Date(record.expiresAt).toISOString()}${cap.forced ? `, forced past MCP_MAX_PENALTY (${deps.capSeconds} s)` : ''}${current ? `, replacing ${current.level} set by ${current.setBy}` : ''}.`,
  });
  await audit(deps, {
    actor,
    action: 'penalty.set',
    keyId: key.id,
    userId: key.userId,
    detail: {
      level: record.level,
      durationSeconds: seconds,
      forced: cap.forced,
      reason: record.reason,
      expiresAt: record.expiresAt,
      incidentId: outcome.incidentId,
    },
  });
  return outcome;
}

export async function pardonKey(deps: OperatorDeps, input: PardonInput, actor: string): Promise<PardonOutcome> {
  const now = (deps.now ?? Date.now)();
  const key = await knownKey(deps.sql, input.keyId);
  const [current, replicas] = await Promise.all([getPenalty(deps.redis, key.id, now), liveReplicaIds(deps.redis, now)]);
  const byGuard = current?.setBy === 'guard';
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
    incidentId: null,
  };
  if (outcome.dryRun || current === null) return outcome;

  // Grace before the lift: between the two, a guard poll would otherwise see the key free and
  // still abusive, and penalise it again.
  if (outcome.graceUntil !== null)
    await setPardonGrace(deps.redis, { keyId: key.id, until: outcome.graceUntil, incidentId: current.incidentId, at: now }, now);
  outcome.lifted = await liftPenalty(deps.redis, key.id, now);
  if (!outcome.lifted) return outcome;
  const behind = await incidentBehind(deps.redis, current);
  const remaining = Math.max(0, Math.ceil((current.expiresAt - now) / 1000));
  outcome.incidentId = await recordAction(deps, {
    action: 'pardon',
    actor,
    reason: input.reason ?? null,
    at: now,
    key: keyRef(key),
    detector: behind.detector,
    level: current.level,
    evidence: { remainingSeconds: remaining, ...(outcome.graceUntil === null ? {} : { graceSeconds: deps.graceSeconds }) },
    relatesTo: behind.incidentId,
    what: `Operator pardoned API key ${key.prefix}: lifted ${current.level} set by ${current.setBy} with ${remaining}s left${behind.incidentId ? ` (incident ${behind.incidentId})` : ''}${outcome.graceUntil === null ? '' : `; grace from the guard until ${new Date(outcome.graceUntil).toISOString()}`}.`,
  });
  await audit(deps, {
    actor,
    action: 'penalty.lifted',
    keyId: key.id,
    userId: key.userId,
    detail: {
      level: current.level,
      setBy: current.setBy,
      reason: input.reason ?? null,
      incidentId: outcome.incidentId,
      graceUntil: outcome.graceUntil,
    },
  });
  return outcome;
}

/**
 * The incident behind a penalty (the guard's, or an operator throttle's) and its detector. When
 * the incident has left the ring buffer, a guard penalty's own reason still names the detector
 * (the guard writes `<detector> (guard)`).
 */
async function incidentBehind(redis: Redis, penalty: PenaltyRecord): Promise<{ incidentId: string | null; detector: DetectorId | null }> {
  const incidentId = penalty.incidentId !== null && INCIDENT_ID_RE.test(penalty.incidentId) ? penalty.incidentId : null;
  const incident = incidentId ? await getIncidentRecord(redis, incidentId).catch(() => null) : null;
  const named = penalty.setBy === 'guard' ? /^([a-z_0-9]+) \(guard\)$/.exec(penalty.reason)?.[1] : undefined;
  const detector = incident?.detector ?? (named !== undefined && isDetector(named) ? named : null);
  return { incidentId, detector };
}
