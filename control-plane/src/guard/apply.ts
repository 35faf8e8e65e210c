import { randomBytes } from 'node:crypto';
import {
  buildPenaltyRecord,
  episodeRecordSchema,
  formatIncidentId,
  getIpBlock,
  getPenalty,
  graceRecordSchema,
  ipSubject,
  parseJsonSafe,
  redisKeys,
  setIpBlock,
  setPenalty,
  type EpisodeRecord,
  type Incident,
  type IncidentAction,
  type IpBlockRecord,
  type PenaltyLevel,
  type PenaltyRecord,
  type Suppression,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { IncidentStore } from '../incidents/store.js';
import type { Logger } from '../log/logger.js';
import type { GuardMetrics } from '../metrics/registry.js';
import type { KeyMeta } from '../store/keys.js';
import type { Allowlist } from './allowlist.js';
import { levelFor, levelIndex } from './escalation.js';
import { openIncident, seenAgain, union } from './incident-record.js';
import type { Decision } from './policy.js';
import { offenceMember, watchMember } from './members.js';

/**
 * Carries out the policy's decisions, idempotently — one incident per episode, updated, never
 * one per poll:
 *   1. the episode marker (redisKeys.episode) is claimed first (SET NX) with a new incident id;
 *      an existing marker means this episode already has its incident: it is updated;
 *   2. the action, through the shared protocols (penalty box, IP blocks), naming the incident;
 *   3. the incident is stored (ring buffer; archive and summary after);
 *   4. the marker records what was done; offences and the expiry/pardon watch are updated.
 * A failure between steps (Redis gone mid-cycle) leaves a marker whose incident or action is
 * missing; the next poll finds the marker, recreates the incident under the same id and adopts
 * a penalty that already names it, so nothing is lost or duplicated.
 * Rails (issue 18): shadow mode, the allowlist and a grace after a pardon record the would-be
 * action (shadow incident + shadow decision) without acting; GUARD_MAX_LEVEL caps escalation.
 */
export interface ApplySettings {
  maxLevel: number;
  penaltySeconds: Record<PenaltyLevel, number>;
  ipBlockSeconds: number;
  episodeQuietSeconds: number;
  offenceMemorySeconds: number;
}

export interface ApplierDeps {
  redis: Redis;
  store: IncidentStore;
  settings: ApplySettings;
  metrics: GuardMetrics;
  /** The incident changed: archive it (by id, read back merged). */
  archive: (id: string) => void;
  /** A new incident or a new action in it: summarise it. */
  summarise: (incident: Incident) => void;
  log?: Logger;
  newId?: (at: number) => string;
}

export interface Applier {
  apply(decisions: readonly Decision[], metaOf: (keyId: string) => KeyMeta | null, allowlist: Allowlist, now: number): Promise<void>;
}

const parseWith = <T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  text: string | null,
): T | null | 'malformed' => {
  if (text === null) return null;
  const r = schema.safeParse(parseJsonSafe(text));
  return r.success ? r.data : 'malformed';
};

export function createApplier(deps: ApplierDeps): Applier {
  const { redis, store, settings, metrics } = deps;
  const newId = deps.newId ?? ((at: number) => formatIncidentId(at, randomBytes(4).toString('hex')));

  async function priorOffences(keyId: string, now: number): Promise<number> {
    return redis.zcount(redisKeys.offences(keyId), `(${now - settings.offenceMemorySeconds * 1000}`, '+inf');
  }

  async function recordOffence(keyId: string, incidentId: string, level: PenaltyLevel, now: number): Promise<void> {
    const k = redisKeys.offences(keyId);
    await redis
      .multi()
      .zadd(k, now, offenceMember(incidentId, level))
      .zremrangebyscore(k, '-inf', now - settings.offenceMemorySeconds * 1000)
      .pexpire(k, settings.offenceMemorySeconds * 1000)
      .exec();
  }

  async function applyOne(d: Decision, meta: KeyMeta | null, allowlist: Allowlist, now: number): Promise<void> {
    const keyId = d.subject.kind === 'key' ? d.subject.keyId : null;
    const ip = d.subject.kind === 'ip' ? d.subject.ip : null;
    const subject = keyId ?? ipSubject(ip!);
    const epKey = redisKeys.episode(subject, d.trip.detector);
    const [epText, prior, graceText, live] = await Promise.all([
      redis.get(epKey),
      keyId ? priorOffences(keyId, now) : Promise.resolve(0),
      keyId ? redis.get(redisKeys.pardonGrace(keyId)) : Promise.resolve(null),
      keyId ? getPenalty(redis, keyId, now) : getIpBlock(redis, ip!, now),
    ]);
    const grace = parseWith(graceRecordSchema, graceText);
    if (grace === 'malformed') metrics.countMalformed('episode');
    const allowlisted = keyId
      ? allowlist.key(keyId) || allowlist.account(meta?.ownerId ?? null, meta?.ownerEmail ?? null)
      : allowlist.ip(ip!);
    const suppressedBy: Suppression | null =
      d.mode === 'shadow'
        ? 'shadow_mode'
        : allowlisted
          ? 'allowlist'
          : grace && grace !== 'malformed' && grace.until > now
            ? 'grace'
            : null;

    // Already in the box for another episode of the guard's: one abuse, one incident. The trip is
    // folded into that incident (no new offence, no escalation while the penalty lasts; abuse that
    // goes on after it ends is an episode that climbs).
    const livePenalty = keyId ? (live as PenaltyRecord | null) : null;
    const parsedEp = parseWith(episodeRecordSchema, epText);
    const epIncident = parsedEp && parsedEp !== 'malformed' ? parsedEp.incidentId : null;
    if (livePenalty?.setBy === 'guard' && livePenalty.incidentId && livePenalty.incidentId !== epIncident) {
      const host = await store.get(livePenalty.incidentId);
      if (host && host.status === 'open') {
        const alsoTripped = union(
          host.alsoTripped,
          [d.trip.detector, ...d.alsoTripped].filter((x) => x !== host.detector),
        );
        await store.update({ ...host, alsoTripped, lastSeenAt: now, updatedAt: now });
        deps.archive(host.id);
        metrics.actions.inc({ action: 'update' });
        return;
      }
    }

    let ep = parsedEp;
    if (ep === 'malformed') {
      // Junk (or an older format) under the marker's name: replaced by a fresh episode.
      metrics.countMalformed('episode');
      await redis.del(epKey);
      ep = null;
    }
    // Offences in memory now (an episode whose penalty expired counts its own offence: it escalates).
    const { level: wanted, cappedFrom } = levelFor(prior, settings.maxLevel);
    let isNew = false;
    if (!ep) {
      const fresh: EpisodeRecord = {
        incidentId: newId(now),
        openedAt: now,
        lastSeenAt: now,
        mode: d.mode,
        level: null,
        expiresAt: null,
        priorOffences: prior,
      };
      const claimed = await redis.set(epKey, JSON.stringify(fresh), 'PX', settings.episodeQuietSeconds * 1000, 'NX');
      if (claimed !== 'OK') return; // another writer holds this episode now; the next poll updates it
      ep = fresh;
      isNew = true;
    }

    const existing = isNew ? null : await store.get(ep.incidentId);
    let incident = existing
      ? seenAgain(existing, d, now)
      : openIncident(d, {
          id: ep.incidentId,
          at: ep.openedAt,
          meta,
          priorOffences: ep.priorOffences,
          suppressedBy,
          wouldLevel: d.action === 'penalty' ? wanted : null,
          cappedFrom,
        });
    if (!existing && !isNew) incident = { ...incident, polls: 1, lastSeenAt: now, updatedAt: now };

    // What to do this poll.
    let acted: { action: IncidentAction; level: PenaltyLevel | null; expiresAt: number } | null = null;
    let adopted = false;
    const liveIsOurs = live !== null && live.incidentId === ep.incidentId;
    if (suppressedBy === null && !liveIsOurs) {
      if (keyId) {
        const current = live as PenaltyRecord | null;
        if (!current || levelIndex(current.level) < levelIndex(wanted)) {
          const rec = buildPenaltyRecord({
            keyId,
            level: wanted,
            setBy: 'guard',
            reason: `${d.trip.detector} (guard)`,
            incidentId: ep.incidentId,
            durationSeconds: settings.penaltySeconds[wanted],
            now,
          });
          await setPenalty(redis, rec, now);
          const escalation = ep.level !== null || current !== null;
          acted = { action: escalation ? 'escalate' : 'penalty', level: wanted, expiresAt: rec.expiresAt };
        }
      } else if (!live) {
        const expiresAt = now + settings.ipBlockSeconds * 1000;
        const rec: IpBlockRecord = {
          ip: ip!,
          expiresAt,
          reason: `${d.trip.detector} (guard)`,
          incidentId: ep.incidentId,
          setBy: 'guard',
          setAt: now,
        };
        await setIpBlock(redis, rec, now);
        acted = { action: 'ip_block', level: null, expiresAt };
      }
    } else if (liveIsOurs && ep.expiresAt === null) {
      // A previous poll acted but failed before recording it: adopt what it did.
      const level = keyId ? (live as PenaltyRecord).level : null;
      ep = { ...ep, level, expiresAt: live.expiresAt };
      adopted = true;
      incident = {
        ...incident,
        action: keyId ? 'penalty' : 'ip_block',
        level,
        expiresAt: live.expiresAt,
        suppressedBy: null,
        wouldAction: null,
        wouldLevel: null,
      };
    }

    if (acted) {
      incident = {
        ...incident,
        mode: d.mode,
        action: acted.action,
        level: acted.level,
        expiresAt: acted.expiresAt,
        status: 'open',
        endedAt: null,
        suppressedBy: null,
        wouldAction: null,
        wouldLevel: null,
        cappedFrom,
      };
      ep = { ...ep, mode: d.mode, level: acted.level, expiresAt: acted.expiresAt };
    } else if (suppressedBy && existing && existing.suppressedBy === null && existing.action === 'none') {
      incident = { ...incident, suppressedBy, mode: d.mode };
    }

    // Stored first; the marker then says what was done. The marker outlives the penalty by the
    // quiet period, so abuse resumed right after an expiry is the same episode (and escalates).
    if (existing) await store.update(incident);
    else await store.add(incident);
    const remaining = ep.expiresAt ? Math.max(0, ep.expiresAt - now) : 0;
    ep = { ...ep, lastSeenAt: now };
    await redis.set(epKey, JSON.stringify(ep), 'PX', settings.episodeQuietSeconds * 1000 + remaining);

    if (acted || adopted) {
      // Both idempotent (ZADD of the same member), so a repeat after a failure changes nothing.
      if (keyId && ep.level) await recordOffence(keyId, ep.incidentId, ep.level, now);
      await redis.zadd(
        redisKeys.guardWatch(),
        ep.expiresAt!,
        watchMember({ incidentId: ep.incidentId, subject, detector: d.trip.detector }),
      );
      if (acted) metrics.actions.inc({ action: acted.action });
    } else if (suppressedBy) {
      metrics.actions.inc({ action: suppressedBy === 'shadow_mode' ? 'shadow' : 'suppressed' });
      if (!existing) {
        await store.addShadowDecision({
          at: now,
          incidentId: ep.incidentId,
          detector: d.trip.detector,
          keyId,
          clientIp: ip,
          wouldAction: d.action === 'ip_block' ? 'ip_block' : 'penalty',
          wouldLevel: d.action === 'penalty' ? wanted : null,
          suppressedBy,
          evidence: d.trip.evidence,
          thresholds: d.trip.thresholds,
        });
      }
    } else metrics.actions.inc({ action: 'update' });

    deps.archive(incident.id);
    if (!existing || acted) deps.summarise(incident);
  }

  return {
    async apply(decisions, metaOf, allowlist, now) {
      for (const d of decisions) {
        metrics.detections.inc({ detector: d.trip.detector, mode: d.mode });
        for (const other of d.alsoTripped) metrics.detections.inc({ detector: other, mode: d.mode });
      }
      // Sequential: a handful per poll, and each is a few round trips; a failure stops the rest
      // of this cycle (retried at the next poll, idempotently).
      for (const d of decisions) await applyOne(d, d.subject.kind === 'key' ? metaOf(d.subject.keyId) : null, allowlist, now);
    },
  };
}
