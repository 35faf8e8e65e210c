import { DETECTORS, INCIDENT_ID_RE, PENALTY_LEVELS, penaltyRecordSchema, tierLimitsSchema } from '@fluxgate/contracts';
import { z } from 'zod';
import { ToolInputError } from './errors.js';

/** Input pieces shared by the tools; each says what it expects, so errors can too. */
export const input = {
  key: z
    .string()
    .trim()
    .min(1, 'expected an API key id (UUID) or display prefix (fgk_…)')
    .max(200)
    .describe('API key id (UUID) or display prefix (fgk_ followed by up to 8 characters, e.g. fgk_7Hq2x9Ab). Never the secret.'),
  limit: (def: number) =>
    z
      .number()
      .int()
      .min(1, 'expected 1 to 100')
      .max(100, 'expected at most 100 (use the cursor for more)')
      .default(def)
      .describe('Items per page, 1-100.'),
  cursor: z.string().max(400).optional().describe('nextCursor from the previous page; omit for the first page.'),
  reason: z
    .string()
    .trim()
    .min(3, 'expected a reason of at least 3 characters')
    .max(400, 'expected at most 400 characters')
    .describe('Why (recorded in the incident with your token name).'),
  dryRun: z.boolean().default(false).describe('Answer what would change without changing anything.'),
  window: z.enum(['5m', '15m', '1h', '24h']).default('15m').describe('Time window back from now.'),
  level: z.enum(PENALTY_LEVELS).describe('Penalty tier: penalty-1 (mild) to penalty-3 (nearly blocked).'),
  detector: z.enum(DETECTORS),
  incidentId: z
    .string()
    .trim()
    .regex(INCIDENT_ID_RE, 'expected an incident id like inc_mb3k2x1a_4f2c9d10')
    .describe('Incident id (inc_<time>_<8 hex>).'),
};

export const USAGE_WINDOW_NAMES = ['5m', '15m', '1h', '24h'] as const;
export type UsageWindowName = (typeof USAGE_WINDOW_NAMES)[number];

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `90`, `90s`, `15m`, `2h`, `1d` → seconds; null when absent. */
export function parseDuration(value: number | string | undefined, argument: string): number | null {
  if (value === undefined) return null;
  if (typeof value === 'number') return value;
  const m = /^(\d{1,7})\s*([smhd])$/.exec(value.trim());
  if (!m)
    throw new ToolInputError(`${argument}: expected seconds (a number) or a duration like 90s, 15m, 2h, 1d; got "${value.slice(0, 40)}"`);
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}

/** `since`: an ISO 8601 time, or a duration back from now (30m, 6h, 7d). Epoch ms. */
export function parseSince(value: string | undefined, now: number): number | null {
  if (value === undefined || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d{1,7}\s*[smhd]$/.test(v)) return now - (parseDuration(v, 'since') ?? 0) * 1000;
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(t))
    throw new ToolInputError(
      `since: expected an ISO 8601 time (2026-01-31T12:00:00Z) or a duration back from now (30m, 6h, 7d); got "${v.slice(0, 40)}"`,
    );
  return t;
}

export const durationInput = z
  .union([z.number().int('expected whole seconds').positive('expected a positive duration'), z.string().max(20)])
  .optional()
  .describe("How long: seconds, or 90s / 15m / 2h / 1d. Default: the level's guard duration (15m, 2h, 24h).");

/** Output pieces. */
export const isoTime = z.string().describe('ISO 8601 time (UTC)');
export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : iso(ms));

export const keyRefOutput = z.object({ id: z.string(), prefix: z.string().nullable() });
export const penaltyOutput = penaltyRecordSchema.extend({ expiresAtIso: isoTime, remainingSeconds: z.number().int().nonnegative() });
export const tierOutput = tierLimitsSchema;
export const replicaOutput = z.object({ id: z.string(), address: z.string(), port: z.number().int(), lastHeartbeat: isoTime });

export const notFound = {
  found: z.boolean().describe('false when no such key or incident exists (then only message is set)'),
  message: z.string(),
};
