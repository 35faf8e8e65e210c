import {
  parseJsonSafe,
  redisKeys,
  shadowDecisionSchema,
  STREAM_FIELDS,
  type DetectorId,
  type DetectorMode,
  type Incident,
  type IncidentAction,
  type IncidentSource,
  type IncidentStatus,
  type ShadowDecision,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { merge } from '../incidents/store.js';
import { decodeCursor, encodeCursor } from './cursor.js';

/**
 * Pages over the incident ring buffer (the stream, newest first), filtered in process. A call
 * reads at most SCAN_BUDGET stream entries: when the filter is rare, it answers what it found
 * with a cursor to go on from, so no call is unbounded whatever the buffer's size.
 */
export const SCAN_BUDGET = 5000;
const PAGE = 250;
const STREAM_ID_RE = /^\d{1,15}-\d{1,15}$/;

export interface IncidentFilter {
  keyId?: string;
  detector?: DetectorId;
  mode?: DetectorMode;
  source?: IncidentSource;
  action?: IncidentAction;
  status?: IncidentStatus;
  sinceMs?: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
  scanned: number;
}

const matches = (i: Incident, f: IncidentFilter): boolean =>
  (f.keyId === undefined || i.keyId === f.keyId) &&
  (f.detector === undefined || i.detector === f.detector) &&
  (f.mode === undefined || i.mode === f.mode) &&
  (f.source === undefined || i.source === f.source) &&
  (f.action === undefined || i.action === f.action) &&
  (f.status === undefined || i.status === f.status) &&
  (f.sinceMs === undefined || i.at >= f.sinceMs);

/** Stream entries (id, fields) newest first, page by page, within the budget. */
async function* entries(
  redis: Redis,
  stream: string,
  start: string | null,
  sinceMs: number | undefined,
): AsyncGenerator<Array<[string, string[]]>> {
  let from = start === null ? '+' : `(${start}`;
  const to = sinceMs === undefined ? '-' : String(Math.max(0, Math.floor(sinceMs)));
  for (;;) {
    const page = await redis.xrevrange(stream, from, to, 'COUNT', PAGE);
    if (page.length === 0) return;
    yield page;
    if (page.length < PAGE) return;
    from = `(${page[page.length - 1]![0]}`;
  }
}

async function pageOf<T>(
  redis: Redis,
  stream: string,
  cursorKind: string,
  opts: { limit: number; cursor: string | undefined; sinceMs: number | undefined },
  load: (page: Array<[string, string[]]>) => Promise<Array<T | null>>,
): Promise<Page<T>> {
  const start = decodeCursor(opts.cursor, cursorKind, STREAM_ID_RE);
  const items: T[] = [];
  let scanned = 0;
  for await (const page of entries(redis, stream, start, opts.sinceMs)) {
    const loaded = await load(page);
    for (let n = 0; n < page.length; n++) {
      scanned++;
      const item = loaded[n];
      if (item) items.push(item);
      const id = page[n]![0];
      if (items.length === opts.limit) return { items, nextCursor: encodeCursor(cursorKind, id), scanned };
      if (scanned >= SCAN_BUDGET) return { items, nextCursor: encodeCursor(cursorKind, id), scanned };
    }
  }
  return { items, nextCursor: null, scanned };
}

const field = (fields: string[], name: string): string | null => {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? (fields[i + 1] ?? null) : null;
};

export function queryIncidents(redis: Redis, filter: IncidentFilter, limit: number, cursor?: string): Promise<Page<Incident>> {
  return pageOf(redis, redisKeys.incidents(), 'inc', { limit, cursor, sinceMs: filter.sinceMs }, async (page) => {
    const ids = page.map(([, fields]) => field(fields, STREAM_FIELDS.id) ?? '');
    const [recs, sums] = await Promise.all([
      redis.hmget(redisKeys.incidentRecords(), ...ids),
      redis.hmget(redisKeys.incidentSummaries(), ...ids),
    ]);
    return ids.map((_, n) => {
      const i = merge(recs[n] ?? null, sums[n] ?? null);
      return i && matches(i, filter) ? i : null;
    });
  });
}

export function queryShadowDecisions(
  redis: Redis,
  filter: { detector?: DetectorId; keyId?: string },
  limit: number,
  cursor?: string,
): Promise<Page<ShadowDecision>> {
  return pageOf(redis, redisKeys.shadowDecisions(), 'shadow', { limit, cursor, sinceMs: undefined }, async (page) =>
    page.map(([, fields]) => {
      const d = shadowDecisionSchema.safeParse(parseJsonSafe(field(fields, STREAM_FIELDS.data) ?? ''));
      return d.success &&
        (filter.detector === undefined || d.data.detector === filter.detector) &&
        (filter.keyId === undefined || d.data.keyId === filter.keyId)
        ? d.data
        : null;
    }),
  );
}
