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

export const DETECTOR_MODES = ['enforce', 'shadow'] as const;

/** One incident as stored in the ring buffer (a Redis stream entry with a single `data` field). */
export const incidentSchema = z.object({
  id: z.string().min(1),
  /** Epoch ms. */
  at: z.number().int().positive(),
  /** API key id, or null for per-IP incidents (credential stuffing). */
  keyId: z.string().nullable(),
  ownerId: z.string().nullable(),
  clientIp: z.string().nullable(),
  detector: z.enum(DETECTORS),
  mode: z.enum(DETECTOR_MODES),
  /** The numbers that tripped the detector, by name. */
  evidence: z.record(z.string(), z.number()),
  action: z.enum(['penalty', 'escalate', 'none', 'pardon', 'operator_throttle']),
  level: z.enum(PENALTY_LEVELS).nullable(),
  expiresAt: z.number().int().positive().nullable(),
  summary: z.string().nullable(),
  summarySource: z.enum(['model', 'template']).nullable(),
});
export type Incident = z.infer<typeof incidentSchema>;

export const incidentSummarySchema = z.object({
  id: z.string(),
  summary: z.string(),
  source: z.enum(['model', 'template']),
  model: z.string().nullable(),
  at: z.number().int().positive(),
});
export type IncidentSummary = z.infer<typeof incidentSummarySchema>;
