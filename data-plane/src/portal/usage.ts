import { MAX_MERGED_FIELDS, USAGE_FIELDS, WINDOWS, bucketOf, redisKeys, usageBucketSchema, type UsageField } from '@fluxgate/contracts';
import { isUuid, listKeys, type KeyInfo } from '../store/keys.js';
import { PortalError } from './errors.js';
import { sendPortalJson, withSession, type PortalHandler } from './http.js';
import type { Portal } from './runtime.js';

/** Windows the SPA charts (s10 is detector resolution, kept only 15 minutes). */
export const CHART_WINDOWS = ['m1', 'h1'] as const;
export type ChartWindow = (typeof CHART_WINDOWS)[number];

/** Longest range per request: a day of minutes; for hours, everything Redis keeps (35 days). */
export const MAX_BUCKETS: Record<ChartWindow, number> = { m1: 24 * 60, h1: WINDOWS.h1.ttlSeconds / 3600 };
const DEFAULT_SPAN_MS: Record<ChartWindow, number> = { m1: 3600_000, h1: 24 * 3600_000 };
/** Hash reads per request at most (keys × buckets), so one request cannot stall Redis. */
export const MAX_CELLS = 20_000;

export type UsagePoint = { t: number } & Record<UsageField, number>;

export interface UsageQuery {
  window: ChartWindow;
  /** Unix ms, inclusive, snapped to bucket starts. */
  since: number;
  until: number;
  firstBucket: number;
  buckets: number;
  keyId: string | null;
}

const parseTime = (s: string, name: string): number => {
  const ms = /^\d{1,15}$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(ms)) throw new PortalError('bad_request', `${name} must be unix milliseconds or an ISO 8601 date`);
  return ms;
};

/** `?window=m1|h1&since=…&until=…&key=…` (times: unix ms or ISO 8601). Throws 400 when out of bounds. */
export function parseUsageQuery(query: string, nowMs: number): UsageQuery {
  const q = new URLSearchParams(query);
  const w = q.get('window') ?? 'm1';
  if (!(CHART_WINDOWS as readonly string[]).includes(w)) throw new PortalError('bad_request', 'window must be m1 or h1');
  const window = w as ChartWindow;
  const untilRaw = q.get('until');
  const until = Math.min(untilRaw === null ? nowMs : parseTime(untilRaw, 'until'), nowMs);
  const sinceRaw = q.get('since');
  const since = sinceRaw === null ? until - DEFAULT_SPAN_MS[window] : parseTime(sinceRaw, 'since');
  if (since > until) throw new PortalError('bad_request', 'since must not be after until');
  const firstBucket = bucketOf(window, since);
  const buckets = bucketOf(window, until) - firstBucket + 1;
  if (buckets > MAX_BUCKETS[window]) {
    throw new PortalError('bad_request', `the range spans ${buckets} ${window} buckets; at most ${MAX_BUCKETS[window]} per request`);
  }
  const key = q.get('key');
  if (key !== null && !isUuid(key)) throw new PortalError('not_found', 'No such key.');
  const ms = WINDOWS[window].seconds * 1000;
  return {
    window,
    since: firstBucket * ms,
    until: (firstBucket + buckets) * ms - 1,
    firstBucket,
    buckets,
    keyId: key?.toLowerCase() ?? null,
  };
}

const FIELDS = Object.entries(USAGE_FIELDS) as Array<[UsageField, string]>;
const MAXED = new Set<UsageField>(MAX_MERGED_FIELDS);

function toPoint(t: number, hash: Record<string, string>): UsagePoint {
  const parsed = usageBucketSchema.parse(hash) as Record<string, number>;
  const point = { t } as UsagePoint;
  for (const [name, field] of FIELDS) point[name] = parsed[field] ?? 0;
  return point;
}

function totalsOf(points: readonly UsagePoint[]): Record<UsageField, number> {
  const totals = Object.fromEntries(FIELDS.map(([name]) => [name, 0])) as Record<UsageField, number>;
  for (const pt of points) {
    for (const [name] of FIELDS) totals[name] = MAXED.has(name) ? Math.max(totals[name], pt[name]) : totals[name] + pt[name];
  }
  return totals;
}

/**
 * Reads the usage hashes of these keys over the range in one pipeline (one HGETALL per key and
 * bucket). Buckets without traffic have no hash and are left out of `points`.
 */
export async function readUsage(p: Portal, keys: readonly KeyInfo[], q: UsageQuery) {
  const pipe = p.redis.pipeline();
  for (const k of keys) for (let i = 0; i < q.buckets; i++) pipe.hgetall(redisKeys.usage(k.id, q.window, q.firstBucket + i));
  let results;
  try {
    results = keys.length === 0 ? [] : await pipe.exec();
  } catch (cause) {
    throw new PortalError('service_unavailable', 'The usage store is unavailable; retry shortly.', { cause });
  }
  const bucketMs = WINDOWS[q.window].seconds * 1000;
  return keys.map((k, ki) => {
    const points: UsagePoint[] = [];
    for (let i = 0; i < q.buckets; i++) {
      const [err, hash] = results?.[ki * q.buckets + i] ?? [new Error('missing reply'), null];
      if (err) throw new PortalError('service_unavailable', 'The usage store is unavailable; retry shortly.', { cause: err });
      const h = hash as Record<string, string>;
      if (Object.keys(h).length > 0) points.push(toPoint((q.firstBucket + i) * bucketMs, h));
    }
    return { id: k.id, name: k.name, prefix: k.prefix, status: k.status, totals: totalsOf(points), points };
  });
}

/** GET /portal/usage → {window, bucketSeconds, since, until, keys: [{id, …, totals, points}]}. */
export const usage = (p: Portal): PortalHandler =>
  withSession(p, async (ctx, _body, s) => {
    const q = parseUsageQuery(ctx.req.query, p.now());
    let keys = await listKeys(p.sql, { userId: s.user.id, limit: 1000 });
    if (q.keyId !== null) {
      keys = keys.filter((k) => k.id === q.keyId);
      if (keys.length === 0) throw new PortalError('not_found', 'No such key.');
    }
    if (keys.length * q.buckets > MAX_CELLS) {
      throw new PortalError(
        'bad_request',
        `${keys.length} keys × ${q.buckets} buckets is too much at once; narrow the range or pass key=<id>`,
      );
    }
    const series = await readUsage(p, keys, q);
    sendPortalJson(ctx.sink, 200, {
      window: q.window,
      bucketSeconds: WINDOWS[q.window].seconds,
      since: q.since,
      until: q.until,
      keys: series,
    });
  });
