import { z } from 'zod';
import { DETECTORS, DETECTOR_MODES, incidentIdSchema } from './incident.js';
import { PENALTY_LEVELS } from './tiers.js';

/** Default ring-buffer size (INCIDENT_CAPACITY): the stream, its records and summaries keep this many incidents. */
export const DEFAULT_INCIDENT_CAPACITY = 10_000;

/**
 * The leader lease (redisKeys.guardLease): SET NX PX with this JSON, renewed by a script that
 * extends the TTL only while the value is still the holder's own (compare-and-extend), deleted
 * the same way on shutdown. With TTL = one poll interval and renewal every third of it, a
 * standby that retries every third of it takes over within 4/3 of a poll interval of the
 * leader's death (the issue asks for two).
 */
export const guardLeaseSchema = z.object({
  holder: z.string().min(1).max(200),
  pid: z.number().int().nonnegative(),
  host: z.string().max(255),
  since: z.number().int().positive(),
});
export type GuardLease = z.infer<typeof guardLeaseSchema>;

export function guardLeaseTiming(pollIntervalMs: number): { ttlMs: number; renewEveryMs: number } {
  const ttlMs = Math.max(1000, Math.round(pollIntervalMs));
  return { ttlMs, renewEveryMs: Math.max(100, Math.floor(ttlMs / 3)) };
}

/** An episode stays open while the detector keeps tripping, and this long after it last did. */
export const EPISODE_QUIET_SECONDS = 10 * 60;
/** Offences older than this no longer raise the next penalty's level. */
export const OFFENCE_MEMORY_SECONDS = 7 * 24 * 3600;
/** Default grace after a pardon of a guard penalty: no detector penalises the key again meanwhile. */
export const DEFAULT_PARDON_GRACE_SECONDS = 30 * 60;

/** redisKeys.episode: which incident this episode of (subject, detector) belongs to, and what was done. */
export const episodeRecordSchema = z.object({
  incidentId: incidentIdSchema,
  openedAt: z.number().int().positive(),
  lastSeenAt: z.number().int().positive(),
  mode: z.enum(DETECTOR_MODES),
  /** Level of the penalty this episode set (null: none, e.g. shadow or an IP block). */
  level: z.enum(PENALTY_LEVELS).nullable(),
  /** When what it set ends (penalty or IP block); null when nothing was set. */
  expiresAt: z.number().int().positive().nullable(),
  /** Offences before this episode, restored when a pardon says this one was a false positive. */
  priorOffences: z.number().int().nonnegative(),
});
export type EpisodeRecord = z.infer<typeof episodeRecordSchema>;

/** redisKeys.pardonGrace: set by the guard when it sees its penalty lifted early, or by a pardon surface. */
export const graceRecordSchema = z.object({
  keyId: z.string().min(1),
  until: z.number().int().positive(),
  incidentId: incidentIdSchema.nullable(),
  at: z.number().int().positive(),
});
export type GraceRecord = z.infer<typeof graceRecordSchema>;

/** A value of redisKeys.detectorModes (hash field = detector id). */
export const detectorModeOverrideSchema = z.object({ detector: z.enum(DETECTORS), mode: z.enum(DETECTOR_MODES) });

/** Message on channels.detectorModes. */
export const detectorModeEventSchema = z.object({
  detector: z.enum(DETECTORS),
  mode: z.enum(DETECTOR_MODES).nullable(),
  at: z.number().int().positive(),
});
export type DetectorModeEvent = z.infer<typeof detectorModeEventSchema>;
