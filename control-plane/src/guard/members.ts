import { DETECTORS, type PenaltyLevel } from '@fluxgate/contracts';
import { z } from 'zod';

/**
 * Member names of the guard's sorted sets, shared by apply.ts (writes) and watch.ts (reads).
 *
 * redisKeys.guardWatch: what the guard set and watches for expiry or pardon.
 */
export const watchMemberSchema = z.object({ incidentId: z.string(), subject: z.string().min(1), detector: z.enum(DETECTORS) });
export type WatchMember = z.infer<typeof watchMemberSchema>;
export const watchMember = (m: WatchMember): string =>
  JSON.stringify({ incidentId: m.incidentId, subject: m.subject, detector: m.detector });

/**
 * redisKeys.offences: one member per (incident, level), so an episode that escalates counts each
 * step, and repeating a step after a failed cycle adds nothing. A pardon removes every step of
 * its incident.
 */
export const offenceMember = (incidentId: string, level: PenaltyLevel): string => `${incidentId}#${level}`;
