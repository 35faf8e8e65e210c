import { z } from 'zod';

/** Message on channels.keys: drop cached state of these keys (by id and/or by hash). */
export const keyEventSchema = z.object({
  type: z.enum(['revoked', 'suspended', 'activated', 'tier_changed', 'deleted']),
  keyId: z.string().min(1),
  /** Hex SHA-256 of the secret, so caches keyed by hash can drop the entry without a lookup. */
  keyHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  at: z.number().int().positive(),
});
export type KeyEvent = z.infer<typeof keyEventSchema>;

/** Message on channels.penalties. */
export const penaltyEventSchema = z.object({
  type: z.enum(['set', 'lifted']),
  keyId: z.string().min(1),
  at: z.number().int().positive(),
});
export type PenaltyEvent = z.infer<typeof penaltyEventSchema>;

/** A data-plane replica's registration (member of redisKeys.replicas). */
export const replicaRecordSchema = z.object({
  id: z.string().min(1),
  address: z.string().min(1),
  port: z.number().int().positive(),
});
export type ReplicaRecord = z.infer<typeof replicaRecordSchema>;
/** A replica is live while its heartbeat is younger than this. */
export const REPLICA_TTL_MS = 15_000;

/**
 * Message on channels.tiers: reload the tiers table (tierId names the changed row; null = any).
 * Replicas reload on any message, so an unparsable one still triggers a reload.
 */
export const tiersEventSchema = z.object({
  tierId: z.string().min(1).nullable(),
  at: z.number().int().positive(),
});
export type TiersEvent = z.infer<typeof tiersEventSchema>;

/** Message on channels.ipBlocks. */
export const ipBlockEventSchema = z.object({
  type: z.enum(['set', 'lifted']),
  ip: z.string().min(1).max(64),
  at: z.number().int().positive(),
});
export type IpBlockEvent = z.infer<typeof ipBlockEventSchema>;
