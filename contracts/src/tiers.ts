import { z } from 'zod';

/**
 * Rate tiers. The authoritative rows live in Postgres (`tiers`, seeded by init.sql with these
 * same numbers); these defaults are what a replica uses before it has read them and what
 * init.sql seeds. Penalty levels are tiers too, applied as an override by the control plane.
 */
export const tierLimitsSchema = z.object({
  id: z.string().min(1).max(64),
  /** Sustained request rate: the request bucket refills by this much per window. */
  requestsPerWindow: z.number().int().positive(),
  /**
   * Tokens (prompt + completion): the token bucket's capacity — the most reserved at once and
   * x-ratelimit-limit-tokens — refilled by this much per window.
   */
  tokensPerWindow: z.number().int().positive(),
  windowSeconds: z.number().int().positive(),
  /** Open streams at once (per replica). */
  concurrentStreams: z.number().int().positive(),
  /**
   * The request bucket's capacity: the most requests admitted at once, and exactly what
   * x-ratelimit-limit-requests reports (issue 12: not nginx's `burst + 1`).
   */
  burst: z.number().int().positive(),
});
export type TierLimits = z.infer<typeof tierLimitsSchema>;

export const TIER_IDS = ['free', 'pro', 'enterprise'] as const;
export type TierId = (typeof TIER_IDS)[number];

export const PENALTY_LEVELS = ['penalty-1', 'penalty-2', 'penalty-3'] as const;
export type PenaltyLevel = (typeof PENALTY_LEVELS)[number];

export const DEFAULT_TIERS: Record<TierId | PenaltyLevel, TierLimits> = {
  free: { id: 'free', requestsPerWindow: 60, tokensPerWindow: 100_000, windowSeconds: 60, concurrentStreams: 4, burst: 10 },
  pro: { id: 'pro', requestsPerWindow: 600, tokensPerWindow: 2_000_000, windowSeconds: 60, concurrentStreams: 32, burst: 100 },
  enterprise: {
    id: 'enterprise',
    requestsPerWindow: 6000,
    tokensPerWindow: 20_000_000,
    windowSeconds: 60,
    concurrentStreams: 256,
    burst: 1000,
  },
  'penalty-1': { id: 'penalty-1', requestsPerWindow: 10, tokensPerWindow: 10_000, windowSeconds: 60, concurrentStreams: 2, burst: 1 },
  'penalty-2': { id: 'penalty-2', requestsPerWindow: 2, tokensPerWindow: 2_000, windowSeconds: 60, concurrentStreams: 1, burst: 1 },
  'penalty-3': { id: 'penalty-3', requestsPerWindow: 1, tokensPerWindow: 1, windowSeconds: 3600, concurrentStreams: 1, burst: 1 },
};

/** How long each penalty level lasts before it expires by itself. */
export const PENALTY_DURATION_SECONDS: Record<PenaltyLevel, number> = {
  'penalty-1': 15 * 60,
  'penalty-2': 2 * 3600,
  'penalty-3': 24 * 3600,
};

/** Penalty override written by the control plane (or an operator) under redisKeys.penalty. */
export const penaltyRecordSchema = z.object({
  keyId: z.string().min(1),
  level: z.enum(PENALTY_LEVELS),
  /** Epoch ms when it ends by itself. */
  expiresAt: z.number().int().positive(),
  reason: z.string().max(500),
  incidentId: z.string().nullable(),
  setBy: z.enum(['guard', 'operator']),
  setAt: z.number().int().positive(),
  /** Operator penalties: who set it (`admin-token`, `cli:<os user>`, an MCP token's name). Optional, so older records parse. */
  actor: z.string().max(200).optional(),
  /** True when an operator set it beyond MCP_MAX_PENALTY with force (operator-rails.ts). */
  forced: z.boolean().optional(),
});
export type PenaltyRecord = z.infer<typeof penaltyRecordSchema>;
