import { incidentSchema, incidentSummarySchema, parseJsonSafe, redisKeys, STREAM_FIELDS, type Incident } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { isUuid } from '../store/keys.js';
import { PortalError } from './errors.js';

/**
 * Reads the control plane's incident ring buffer (contracts redisKeys.incidents: a stream whose
 * entries name the incident, redisKeys.incidentRecords: its current JSON, incidentSummaries: the
 * summary written after it), newest first, exactly as the guard's own reader merges them.
 * Records that do not parse (another schema version, junk) are skipped and counted.
 */

export interface IncidentQuery {
  limit: number;
  /** Stream entry id to continue after (the previous page's `next`). */
  before: string | null;
  /** An API key id, or the start of a display prefix (`fgk_…`, at least 6 characters). */
  key: string | null;
}

export interface IncidentPage {
  incidents: Incident[];
  /** Pass as `before` for older incidents; null when the buffer has no more. */
  next: string | null;
  skipped: number;
}

export const MAX_PAGE = 100;
/** A filtered read examines at most this many entries per request (the default buffer holds 10,000). */
export const MAX_SCAN = 20_000;
const SCAN_BATCH = 500;
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const KEY_PREFIX = /^[A-Za-z0-9_]{6,64}$/;

/** `?limit=&before=&key=`; 400 for a value out of range. */
export function parseIncidentQuery(query: string): IncidentQuery {
  const q = new URLSearchParams(query);
  const limitRaw = q.get('limit');
  const limit = limitRaw === null ? 50 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new PortalError('bad_request', `limit must be an integer from 1 to ${MAX_PAGE}`);
  const before = q.get('before');
  if (before !== null && !STREAM_ID.test(before))
    throw new PortalError('bad_request', 'before must be the `next` value of a previous page');
  const key = q.get('key')?.trim() || null;
  if (key !== null && !isUuid(key) && !KEY_PREFIX.test(key))
    throw new PortalError('bad_request', 'key must be an API key id or the start of its prefix (at least 6 characters, e.g. fgk_Ab12)');
  return { limit, before, key: key !== null && isUuid(key) ? key.toLowerCase() : key };
}

/** A record with its summary (when one was written); null when missing or malformed. */
export function mergeIncident(recordText: string | null, summaryText: string | null): Incident | null {
  if (recordText === null) return null;
  const rec = incidentSchema.safeParse(parseJsonSafe(recordText));
  if (!rec.success) return null;
  const sum = summaryText === null ? null : incidentSummarySchema.safeParse(parseJsonSafe(summaryText));
  return sum?.success ? { ...rec.data, summary: sum.data.summary, summarySource: sum.data.source } : rec.data;
}

const matches = (i: Incident, key: string | null): boolean =>
  key === null || (isUuid(key) ? i.keyId === key : i.keyPrefix !== null && i.keyPrefix.startsWith(key));

export async function readIncidents(redis: Redis, q: IncidentQuery): Promise<IncidentPage> {
  const stream = redisKeys.incidents();
  const out: Incident[] = [];
  let skipped = 0;
  let scanned = 0;
  let end = q.before === null ? '+' : `(${q.before}`;
  for (;;) {
    const count = q.key === null ? q.limit - out.length : SCAN_BATCH;
    const entries = await redis.xrevrange(stream, end, '-', 'COUNT', count);
    const ids = entries.map(([, fields]) => fields[fields.indexOf(STREAM_FIELDS.id) + 1] ?? '');
    const [recs, sums] =
      ids.length === 0
        ? [[], []]
        : await Promise.all([redis.hmget(redisKeys.incidentRecords(), ...ids), redis.hmget(redisKeys.incidentSummaries(), ...ids)]);
    for (let n = 0; n < entries.length; n++) {
      scanned++;
      const incident = mergeIncident(recs[n] ?? null, sums[n] ?? null);
      if (incident === null) skipped++;
      else if (matches(incident, q.key)) out.push(incident);
      const entryId = entries[n]![0];
      // Full page, or enough examined for one request: the caller continues from this entry.
      if (out.length >= q.limit || scanned >= MAX_SCAN)
        return { incidents: out, next: n === entries.length - 1 && entries.length < count ? null : entryId, skipped };
    }
    if (entries.length < count) return { incidents: out, next: null, skipped };
    end = `(${entries[entries.length - 1]![0]}`;
  }
}
