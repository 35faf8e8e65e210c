import { randomBytes } from 'node:crypto';
import {
  DEFAULT_PARDON_GRACE_SECONDS,
  INCIDENT_SCHEMA_VERSION,
  formatIncidentId,
  graceRecordSchema,
  incidentSchema,
  liftPenalty,
  redisKeys,
  runSteps,
  STREAM_FIELDS,
  type Incident,
  type PenaltyRecord,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { KeyInfo } from '../store/keys.js';
import { mergeIncident } from './incidents.js';

/**
 * An operator's pardon from the portal, through the protocols both planes share:
 * 1. a penalty the guard set puts the key on the guard's grace list first (contracts
 *    redisKeys.pardonGrace + graceRecordSchema, the record the guard reads before penalising),
 *    so no detector re-penalises it at the next poll; the guard itself later rewrites it with
 *    its configured GUARD_PARDON_GRACE_SECONDS when it notices the pardon;
 * 2. the penalty is lifted (contracts liftPenalty: record, index, then the event every replica
 *    hears within a second);
 * 3. an operator incident records who pardoned what and why.
 * The guard closes its own incident as `pardoned` and takes the offence back when it next sees
 * the penalty gone (control-plane guard/watch.ts); the portal does not touch that incident, so
 * the guard's update (and its archive in Postgres) stays the one source of that change.
 */

export interface PardonInput {
  penalty: PenaltyRecord;
  /** The key's row, when it still exists (prefix, owner and tier for the incident). */
  key: KeyInfo | null;
  actor: string;
  reason: string;
  now: number;
}

export interface PardonResult {
  keyId: string;
  lifted: boolean;
  level: PenaltyRecord['level'];
  setBy: PenaltyRecord['setBy'];
  /** Grace until (epoch ms), for a guard penalty; null for an operator's own penalty. */
  graceUntil: number | null;
  /** The operator incident written, or null when there was no incident to name a detector from. */
  incidentId: string | null;
}

async function linkedIncident(redis: Redis, id: string | null): Promise<Incident | null> {
  if (id === null) return null;
  const [rec, sum] = await Promise.all([redis.hget(redisKeys.incidentRecords(), id), redis.hget(redisKeys.incidentSummaries(), id)]);
  return mergeIncident(rec, sum);
}

/**
 * The operator incident. The record schema requires a detector: it is the pardoned incident's.
 * A penalty an operator set without an incident has none, and gets no incident (the audit log
 * in Postgres still records the pardon). Summary written with the record (source `template`),
 * so the guard's summariser does not ask the model about an action that has no evidence.
 */
function operatorIncident(input: PardonInput, linked: Incident): Incident {
  const { penalty, key, now } = input;
  const summary = `${input.actor} pardoned key ${key?.prefix ?? penalty.keyId} (${penalty.level}, set by the ${penalty.setBy} for incident ${linked.id}, ${linked.detector}): ${input.reason}`;
  return incidentSchema.parse({
    v: INCIDENT_SCHEMA_VERSION,
    id: formatIncidentId(now, randomBytes(4).toString('hex')),
    at: now,
    updatedAt: now,
    source: 'operator',
    keyId: penalty.keyId,
    keyPrefix: key?.prefix ?? linked.keyPrefix,
    ownerId: key?.userId ?? linked.ownerId,
    ownerEmail: key?.ownerEmail ?? linked.ownerEmail,
    tier: key?.tier ?? linked.tier,
    clientIp: null,
    detector: linked.detector,
    mode: 'enforce',
    evidence: {},
    thresholds: {},
    alsoTripped: [],
    action: 'pardon',
    level: penalty.level,
    expiresAt: null,
    wouldAction: null,
    wouldLevel: null,
    suppressedBy: null,
    cappedFrom: null,
    priorOffences: linked.priorOffences,
    status: 'closed',
    endedAt: now,
    polls: 1,
    lastSeenAt: now,
    actor: input.actor.slice(0, 200),
    reason: input.reason,
    summary: summary.slice(0, 4000),
    summarySource: 'template',
  });
}

/**
 * Appended like the guard's own add (stream entry + current record, one hash tag) but without
 * trimming: the capacity is the control plane's setting (INCIDENT_CAPACITY), and its next add
 * trims the buffer, this entry included, to it.
 */
async function appendIncident(redis: Redis, incident: Incident): Promise<void> {
  const json = JSON.stringify(incident);
  await runSteps(redis, [
    ['XADD', redisKeys.incidents(), '*', STREAM_FIELDS.id, incident.id, STREAM_FIELDS.data, json],
    ['HSET', redisKeys.incidentRecords(), incident.id, json],
  ]);
}

export async function pardonPenalty(redis: Redis, input: PardonInput): Promise<PardonResult> {
  const { penalty, now } = input;
  let graceUntil: number | null = null;
  if (penalty.setBy === 'guard') {
    graceUntil = now + DEFAULT_PARDON_GRACE_SECONDS * 1000;
    const grace = graceRecordSchema.parse({ keyId: penalty.keyId, until: graceUntil, incidentId: penalty.incidentId, at: now });
    await redis.set(redisKeys.pardonGrace(penalty.keyId), JSON.stringify(grace), 'PX', DEFAULT_PARDON_GRACE_SECONDS * 1000);
  }
  const lifted = await liftPenalty(redis, penalty.keyId, now);
  const linked = await linkedIncident(redis, penalty.incidentId);
  let incidentId: string | null = null;
  if (linked) {
    const incident = operatorIncident(input, linked);
    await appendIncident(redis, incident);
    incidentId = incident.id;
  }
  return { keyId: penalty.keyId, lifted, level: penalty.level, setBy: penalty.setBy, graceUntil, incidentId };
}
