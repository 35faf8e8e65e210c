import {
  INCIDENT_ADD_SCRIPT,
  incidentSchema,
  incidentSummarySchema,
  parseJsonSafe,
  redisKeys,
  shadowDecisionSchema,
  type Incident,
  type IncidentSummary,
  type ShadowDecision,
} from '@fluxgate/contracts';
import type { Redis } from 'ioredis';

/**
 * The incident ring buffer in Redis (contracts redisKeys.incidents / incidentRecords /
 * incidentSummaries, one hash tag so one script touches all three):
 * - add: once per incident, idempotent by id — XADD to the stream and the record into the
 *   records hash; when the stream passes INCIDENT_CAPACITY the oldest entries go, and their
 *   records and summaries with them (the buffer is bounded as a whole, summaries included);
 * - update: the record only (the stream keeps the incident as first stored), and only while the
 *   incident is still in the buffer, so a late update never resurrects a trimmed one;
 * - summaries: a separate hash, written after the incident (stored first, summarised after).
 * Readers merge record and summary (`readIncident`).
 */
/** Adding is the shared write protocol in contracts (incident-protocol.ts), which the data plane's operator surfaces use too. */
const ADD = INCIDENT_ADD_SCRIPT;
const UPDATE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`;
/** A summary only for an incident still in the buffer. */
const SUMMARY = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0`;

type Commands = {
  fgIncidentAdd(stream: string, records: string, summaries: string, id: string, json: string, capacity: number): Promise<number>;
  fgIncidentUpdate(records: string, id: string, json: string): Promise<number>;
  fgIncidentSummary(records: string, summaries: string, id: string, json: string): Promise<number>;
};

export function defineIncidentScripts(redis: Redis): void {
  redis.defineCommand('fgIncidentAdd', { numberOfKeys: 3, lua: ADD });
  redis.defineCommand('fgIncidentUpdate', { numberOfKeys: 1, lua: UPDATE });
  redis.defineCommand('fgIncidentSummary', { numberOfKeys: 2, lua: SUMMARY });
}

export interface IncidentStore {
  /** True when it was new (appended to the stream). */
  add(incident: Incident): Promise<boolean>;
  /** False when the incident has left the buffer. */
  update(incident: Incident): Promise<boolean>;
  saveSummary(summary: IncidentSummary): Promise<boolean>;
  exists(id: string): Promise<boolean>;
  get(id: string): Promise<Incident | null>;
  /** Newest first, merged with summaries; malformed or old-format entries skipped (and counted). */
  list(limit: number): Promise<{ incidents: Incident[]; skipped: number }>;
  addShadowDecision(d: ShadowDecision): Promise<void>;
}

export function createIncidentStore(redis: Redis, capacity: number): IncidentStore {
  defineIncidentScripts(redis);
  const cmd = redis as unknown as Commands;
  const stream = redisKeys.incidents();
  const records = redisKeys.incidentRecords();
  const summaries = redisKeys.incidentSummaries();
  const store: IncidentStore = {
    async add(i) {
      const rec = incidentSchema.parse(i);
      return (await cmd.fgIncidentAdd(stream, records, summaries, rec.id, JSON.stringify(rec), capacity)) === 1;
    },
    async update(i) {
      const rec = incidentSchema.parse(i);
      return (await cmd.fgIncidentUpdate(records, rec.id, JSON.stringify(rec))) === 1;
    },
    async saveSummary(s) {
      const rec = incidentSummarySchema.parse(s);
      return (await cmd.fgIncidentSummary(records, summaries, rec.id, JSON.stringify(rec))) === 1;
    },
    exists: async (id) => (await redis.hexists(records, id)) === 1,
    async get(id) {
      const [rec, sum] = await Promise.all([redis.hget(records, id), redis.hget(summaries, id)]);
      return merge(rec, sum);
    },
    async list(limit) {
      const entries = await redis.xrevrange(stream, '+', '-', 'COUNT', limit);
      const ids = entries.map(([, fields]) => fields[fields.indexOf('id') + 1] ?? '');
      if (ids.length === 0) return { incidents: [], skipped: 0 };
      const [recs, sums] = await Promise.all([redis.hmget(records, ...ids), redis.hmget(summaries, ...ids)]);
      const incidents: Incident[] = [];
      let skipped = 0;
      ids.forEach((_, n) => {
        const i = merge(recs[n] ?? null, sums[n] ?? null);
        if (i) incidents.push(i);
        else skipped++;
      });
      return { incidents, skipped };
    },
    async addShadowDecision(d) {
      const rec = shadowDecisionSchema.parse(d);
      await redis.xadd(redisKeys.shadowDecisions(), 'MAXLEN', '~', capacity, '*', 'data', JSON.stringify(rec));
    },
  };
  return store;
}

/** A stored record with its summary (if any); null when the record is missing, malformed or of another version. */
export function merge(recordText: string | null, summaryText: string | null): Incident | null {
  if (recordText === null) return null;
  const rec = incidentSchema.safeParse(parseJsonSafe(recordText));
  if (!rec.success) return null;
  const sum = summaryText === null ? null : incidentSummarySchema.safeParse(parseJsonSafe(summaryText));
  if (sum?.success) return { ...rec.data, summary: sum.data.summary, summarySource: sum.data.source };
  return rec.data;
}
