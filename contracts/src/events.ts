import { z } from 'zod';

/** Message on channels.keys: drop cached state of these keys (by id and/or by hash). */
export const keyEventSchema = z.object({
  type: z.enum(['revoked', 'suspended', 'activated', 'tier_changed', 'deleted']),
  keyId: z.string().min(1),
  /** Hex SHA-256 of the secret, so caches keyed by hash can drop the entry without a lookup. */
  keyHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
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
