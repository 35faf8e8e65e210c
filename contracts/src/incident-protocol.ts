import { incidentSchema, type Incident } from './incident.js';
import { redisKeys } from './redis-keys.js';
import { asString, parseJsonSafe, type RedisLike } from './redis-client.js';

/**
 * Adding an incident to the ring buffer, as every writer does it (the guard, and the operator
 * surfaces of both planes: admin routes, CLI, MCP). One script over the three `{incidents}` keys,
 * so it is atomic and runs on Redis Cluster:
 *   - an id already in the records hash is only updated (adding is idempotent by id);
 *   - otherwise XADD (fields `id`, `data`) and the record into the records hash;
 *   - past `capacity` the oldest stream entries go, with their records and summaries.
 * KEYS: stream, records, summaries. ARGV: id, json, capacity. Returns 1 when new, 0 when updated.
 */
export const INCIDENT_ADD_SCRIPT = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 0
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'data', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local cap = tonumber(ARGV[3])
local len = redis.call('XLEN', KEYS[1])
if len > cap then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - cap)
  for _, e in ipairs(old) do
    local f = e[2]
    for i = 1, #f - 1, 2 do
      if f[i] == 'id' then
        redis.call('HDEL', KEYS[2], f[i + 1])
        redis.call('HDEL', KEYS[3], f[i + 1])
      end
    end
    redis.call('XDEL', KEYS[1], e[1])
  end
end
return 1`;

/** Adds an incident (validated against the schema first). True when it was new. */
export async function addIncident(redis: RedisLike, incident: Incident, capacity: number): Promise<boolean> {
  const rec = incidentSchema.parse(incident);
  const added = await redis.call(
    'EVAL',
    INCIDENT_ADD_SCRIPT,
    3,
    redisKeys.incidents(),
    redisKeys.incidentRecords(),
    redisKeys.incidentSummaries(),
    rec.id,
    JSON.stringify(rec),
    Math.max(1, Math.floor(capacity)),
  );
  return added === 1;
}

/** The stored record of an incident (without its summary); null when absent, malformed or of another version. */
export async function getIncidentRecord(redis: RedisLike, id: string): Promise<Incident | null> {
  const text = asString(await redis.call('HGET', redisKeys.incidentRecords(), id));
  if (text === null) return null;
  const parsed = incidentSchema.safeParse(parseJsonSafe(text));
  return parsed.success ? parsed.data : null;
}
