import { bucketOf, redisKeys, USAGE_FIELDS, WINDOWS, type WindowName } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { UsageWindowName } from './schemas.js';

/**
 * Usage over a window back from now, from the data plane's counter buckets (contracts/usage.ts):
 * 5m, 15m and 1h from the minute buckets, 24h from the hour buckets; the current bucket counts
 * (it is partial), so "1h" is the last 60 minute buckets including this one.
 */
export const USAGE_WINDOWS: Record<UsageWindowName, { resolution: WindowName; buckets: number }> = {
  '5m': { resolution: 'm1', buckets: 5 },
  '15m': { resolution: 'm1', buckets: 15 },
  '1h': { resolution: 'm1', buckets: 60 },
  '24h': { resolution: 'h1', buckets: 24 },
};
/** Keys read at most per scan; beyond it the answer says it is truncated. */
export const SCAN_MAX_KEYS = 20_000;
const PIPELINE_CHUNK = 2000;

const F = USAGE_FIELDS;
const FIELDS = [
  F.requests,
  F.status2xx,
  F.status4xx,
  F.status5xx,
  F.rateLimited,
  F.promptTokens,
  F.completionTokens,
  F.streams,
  F.cutStreams,
  F.upstreamErrors,
  F.ttfbMsSum,
  F.ttfbCount,
  F.durationMsSum,
  F.lastUsedMs,
] as const;

export const usageTotalsSchema = z.object({
  requests: z.number(),
  status2xx: z.number(),
  status4xx: z.number(),
  status5xx: z.number(),
  rateLimited: z.number().describe('requests answered 429'),
  promptTokens: z.number(),
  completionTokens: z.number(),
  streams: z.number(),
  cutStreams: z.number(),
  upstreamErrors: z.number(),
  avgTtfbMs: z.number().nullable(),
  avgDurationMs: z.number().nullable(),
  lastUsed: z.string().nullable(),
});
export type UsageTotals = z.infer<typeof usageTotalsSchema>;

/** Raw sums in FIELDS order. */
type Sums = number[];
const emptySums = (): Sums => FIELDS.map(() => 0);

function addRow(into: Sums, row: ReadonlyArray<string | null>): void {
  FIELDS.forEach((f, i) => {
    const n = Number(row[i] ?? 0);
    if (!Number.isFinite(n)) return;
    into[i] = f === F.lastUsedMs ? Math.max(into[i]!, n) : into[i]! + n;
  });
}

export function totalsOf(s: Sums): UsageTotals {
  const at = (f: (typeof FIELDS)[number]): number => s[FIELDS.indexOf(f)] ?? 0;
  const ttfbN = at(F.ttfbCount);
  const req = at(F.requests);
  return {
    requests: req,
    status2xx: at(F.status2xx),
    status4xx: at(F.status4xx),
    status5xx: at(F.status5xx),
    rateLimited: at(F.rateLimited),
    promptTokens: at(F.promptTokens),
    completionTokens: at(F.completionTokens),
    streams: at(F.streams),
    cutStreams: at(F.cutStreams),
    upstreamErrors: at(F.upstreamErrors),
    avgTtfbMs: ttfbN > 0 ? Math.round(at(F.ttfbMsSum) / ttfbN) : null,
    avgDurationMs: req > 0 ? Math.round(at(F.durationMsSum) / req) : null,
    lastUsed: at(F.lastUsedMs) > 0 ? new Date(at(F.lastUsedMs)).toISOString() : null,
  };
}

export function windowBuckets(window: UsageWindowName, now: number): { resolution: WindowName; buckets: number[]; fromMs: number } {
  const { resolution, buckets } = USAGE_WINDOWS[window];
  const last = bucketOf(resolution, now);
  const list = Array.from({ length: buckets }, (_, i) => last - i);
  return { resolution, buckets: list, fromMs: (last - buckets + 1) * WINDOWS[resolution].seconds * 1000 };
}

/** One key's usage over the window (one pipelined HMGET per bucket). */
export async function keyUsage(redis: Redis, keyId: string, window: UsageWindowName, now: number): Promise<UsageTotals> {
  const { resolution, buckets } = windowBuckets(window, now);
  const p = redis.pipeline();
  for (const b of buckets) p.hmget(redisKeys.usage(keyId, resolution, b), ...FIELDS);
  const sums = emptySums();
  for (const [err, row] of (await p.exec()) ?? []) if (!err) addRow(sums, row as Array<string | null>);
  return totalsOf(sums);
}

export interface UsageScan {
  perKey: Map<string, Sums>;
  total: Sums;
  keysSeen: number;
  truncated: boolean;
  fromMs: number;
}

/** Every key active in the window (the active-key sets, never SCAN), with its sums. */
export async function scanUsage(redis: Redis, window: UsageWindowName, now: number, maxKeys = SCAN_MAX_KEYS): Promise<UsageScan> {
  const { resolution, buckets, fromMs } = windowBuckets(window, now);
  const p = redis.pipeline();
  for (const b of buckets) p.smembers(redisKeys.activeKeys(resolution, b));
  const active = new Set<string>();
  for (const [err, members] of (await p.exec()) ?? []) if (!err) for (const m of members as string[]) active.add(m);
  const ids = [...active].sort().slice(0, maxKeys);
  const perKey = new Map<string, Sums>(ids.map((id) => [id, emptySums()]));
  const total = emptySums();
  const pairs = ids.flatMap((id) => buckets.map((b) => [id, b] as const));
  for (let i = 0; i < pairs.length; i += PIPELINE_CHUNK) {
    const chunk = pairs.slice(i, i + PIPELINE_CHUNK);
    const q = redis.pipeline();
    for (const [id, b] of chunk) q.hmget(redisKeys.usage(id, resolution, b), ...FIELDS);
    const rows = (await q.exec()) ?? [];
    rows.forEach(([err, row], n) => {
      if (err) return;
      addRow(perKey.get(chunk[n]![0])!, row as Array<string | null>);
      addRow(total, row as Array<string | null>);
    });
  }
  return { perKey, total, keysSeen: active.size, truncated: active.size > ids.length, fromMs };
}

export const sumOf = (s: Sums, field: (typeof FIELDS)[number]): number => s[FIELDS.indexOf(field)] ?? 0;
