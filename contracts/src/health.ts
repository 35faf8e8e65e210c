import { z } from 'zod';

/**
 * Records the data plane writes every counter flush for the control plane (and MCP's
 * get_upstream_health / get_gateway_metrics) to read. Each replica writes its own hash field, so
 * replicas never overwrite each other; a reader ignores fields older than REPLICA_RECORD_STALE_MS
 * (a replica that died leaves its last record behind).
 * Bounded lifetime: every write also deletes the fields older than REPLICA_RECORD_STALE_MS (and
 * any that are not records) and sets the hash's TTL to REPLICA_RECORD_STALE_MS, so a dead
 * replica's record is gone at the next flush of a live one once stale, and all of them that long
 * after the last replica stopped; a replica that stops gracefully deletes its own fields.
 */
export const REPLICA_RECORD_STALE_MS = 30_000;

export const UPSTREAM_STATES = ['healthy', 'ejected', 'open', 'half_open'] as const;

/** One upstream as one replica sees it. URLs carry no credential (the injected one is never written). */
export const upstreamHealthSchema = z.object({
  name: z.string().min(1).max(200),
  url: z.string().max(2000),
  state: z.enum(UPSTREAM_STATES),
  outstanding: z.number().int().nonnegative(),
  consecutiveFailures: z.number().int().nonnegative(),
  ejectedUntil: z.number().int().nonnegative().nullable(),
  lastError: z.string().max(500).nullable(),
  requests: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
});
export type UpstreamHealth = z.infer<typeof upstreamHealthSchema>;

/** redisKeys.upstreamHealth field replicaId → this. */
export const upstreamHealthReportSchema = z.object({
  replicaId: z.string().min(1),
  at: z.number().int().positive(),
  upstreams: z.array(upstreamHealthSchema).max(1000),
});
export type UpstreamHealthReport = z.infer<typeof upstreamHealthReportSchema>;

/** redisKeys.replicaMetrics field replicaId → this: totals since the replica started, plus gauges now. */
export const replicaMetricsSchema = z.object({
  replicaId: z.string().min(1),
  at: z.number().int().positive(),
  startedAt: z.number().int().positive(),
  requests: z.number().int().nonnegative(),
  /** Responses with status ≥ 500 or no status (aborted by the gateway). */
  errors: z.number().int().nonnegative(),
  rateLimited: z.number().int().nonnegative(),
  openStreams: z.number().int().nonnegative(),
  /** Latency of finished requests since the previous record (ms; null when there were none). */
  latencyMs: z.object({ p50: z.number().nonnegative(), p90: z.number().nonnegative(), p99: z.number().nonnegative() }).nullable(),
  ttfbMs: z.object({ p50: z.number().nonnegative(), p99: z.number().nonnegative() }).nullable(),
});
export type ReplicaMetrics = z.infer<typeof replicaMetricsSchema>;
