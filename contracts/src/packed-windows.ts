import { z } from 'zod';
import { IP_FIELDS, USAGE_FIELDS } from './usage.js';

/**
 * The guard's windows packed for bulk reading (issue 13's cycle aim: 100k active keys in
 * ≤ 250 ms). Besides each key's own hash (redisKeys.usage, kept for everything else), the data
 * plane's counter flush adds every key's s10 counters that the detectors read into one hash per
 * window and shard (redisKeys.packedUsage): field = key id, value = those counters as decimal
 * integers joined by commas, in PACKED_KEY_FIELDS order. Client IPs the same way
 * (redisKeys.packedIpUsage, PACKED_IP_FIELDS). A cycle then reads a window with PACKED_SHARDS
 * HGETALLs instead of one HMGET per key.
 *
 * Writes go through PACKED_ADD_SCRIPT (one call per window and shard per flush, atomic, so
 * replicas never lose each other's increments), before the flush's SADD to the active sets: a
 * member of an active set has its packed entry already, and a reader that finds fewer packed
 * entries than active members (an older writer, a failed script) reads that window the old way.
 */
export const PACKED_WINDOW = 's10' as const;
export const PACKED_SHARDS = 16;

/** Field order of a key's packed value; the last one is max-merged, the others summed. */
export const PACKED_KEY_FIELDS = [
  USAGE_FIELDS.requests,
  USAGE_FIELDS.status4xx,
  USAGE_FIELDS.rateLimited,
  USAGE_FIELDS.promptTokens,
  USAGE_FIELDS.completionTokens,
  USAGE_FIELDS.maxPromptTokens,
] as const;
/** Index in PACKED_KEY_FIELDS from which fields are max-merged. */
export const PACKED_KEY_MAX_FROM = 5;
/** Field order of a client IP's packed value (all summed). */
export const PACKED_IP_FIELDS = [IP_FIELDS.failedCredentials, IP_FIELDS.failedLogins, IP_FIELDS.requests] as const;

/** The shard of a member: FNV-1a (32 bit) of its UTF-16 code units, modulo PACKED_SHARDS. */
export function packedShardOf(member: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < member.length; i++) {
    h ^= member.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % PACKED_SHARDS;
}

/** A packed value as stored: non-negative decimal integers joined by commas. */
export const packedValueSchema = z.string().regex(/^\d{1,15}(,\d{1,15})*$/);

export const encodePacked = (values: readonly number[]): string => values.map((v) => String(Math.max(0, Math.round(v)))).join(',');

/** The values of a packed field, or null when it is not `width` non-negative integers. */
export function decodePacked(text: string, width: number): number[] | null {
  if (!packedValueSchema.safeParse(text).success) return null;
  const parts = text.split(',').map(Number);
  return parts.length === width ? parts : null;
}

/**
 * KEYS[1]: a packed window hash. ARGV: ttl seconds, width, maxFrom, then for each member its id
 * followed by `width` integers: fields below maxFrom are added to the stored ones, the others
 * max-merged. A stored value that does not decode counts as zeros (it is replaced).
 */
export const PACKED_ADD_SCRIPT = `
local width = tonumber(ARGV[2])
local maxFrom = tonumber(ARGV[3])
local i = 4
while i <= #ARGV do
  local id = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], id)
  local v = {}
  local n = 0
  if cur then
    for part in string.gmatch(cur, '[^,]+') do
      n = n + 1
      v[n] = tonumber(part)
    end
  end
  if n ~= width then
    for k = 1, width do v[k] = 0 end
  end
  local out = {}
  for k = 1, width do
    local x = tonumber(ARGV[i + k]) or 0
    local s = v[k] or 0
    if k > maxFrom then
      if x > s then s = x end
    else
      s = s + x
    end
    out[k] = string.format('%d', s)
  end
  redis.call('HSET', KEYS[1], id, table.concat(out, ','))
  i = i + width + 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;
