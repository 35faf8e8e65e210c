import { WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import type { PendingBucket } from './buckets.js';

/**
 * One bucket's whole write in one script call (issue 17): the per-field commands the flush sent
 * before (HINCRBY per sum, a max-merge per maximum, PFADD, HINCRBY per prompt fingerprint, EXPIRE
 * with the window's TTL on every key written), in the same order with the same arguments, so the
 * same contents in Redis — from one command instead of ~25, which is what the flush's Node CPU
 * was spent on (encoding commands, parsing replies).
 *
 * KEYS: usage hash (or the IP's usage hash), then for a key's bucket: ips HLL, models HLL,
 * prompts hash (one hash tag, so one slot). ARGV: ttl, then counted groups — nSums field n …,
 * nMaxes field n …, nIps ip …, nModels model …, nPrompts fp n … — a missing group is empty.
 * A PFADD takes its group in one unpack(), which Redis's Lua allows up to 8,000 values; a bucket
 * keeps at most MAX_DISTINCT_PER_BUCKET (1,024) of each (buckets.ts).
 *
 * Every write goes through redis.pcall, so one failing write does not stop the rest (as one
 * failing command in the pipeline did not), and the reply says what happened: 0 when every write
 * succeeded; an error reply when every write failed (nothing written: safe to retry whole); and
 * {failed, first error} when some failed (partly written: not retried, its sums would count
 * twice). A maximum whose read fails (or that is not a number) counts as a failed write, so no
 * Lua error can stop the script halfway.
 */
export const BUCKET_SCRIPT = `
local ttl = ARGV[1]
local writes, failed, first = 0, 0, nil
local function fail(e)
  failed = failed + 1
  if not first then first = e end
end
local function w(...)
  writes = writes + 1
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then fail(r.err) end
end
local i = 2
local n = tonumber(ARGV[i]) or 0
for j = i + 1, i + 2 * n, 2 do w('HINCRBY', KEYS[1], ARGV[j], ARGV[j + 1]) end
i = i + 2 * n + 1
n = tonumber(ARGV[i]) or 0
for j = i + 1, i + 2 * n, 2 do
  local r = redis.pcall('HGET', KEYS[1], ARGV[j])
  local v = tonumber(ARGV[j + 1])
  if type(r) == 'table' and r.err then
    writes = writes + 1
    fail(r.err)
  elseif v == nil then
    writes = writes + 1
    fail('ERR maximum is not a number')
  else
    local cur = tonumber(r or '-1')
    if cur == nil or v > cur then w('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
  end
end
w('EXPIRE', KEYS[1], ttl)
i = i + 2 * n + 1
for k = 2, 3 do
  n = tonumber(ARGV[i]) or 0
  if n > 0 then
    w('PFADD', KEYS[k], unpack(ARGV, i + 1, i + n))
    w('EXPIRE', KEYS[k], ttl)
  end
  i = i + n + 1
end
n = tonumber(ARGV[i]) or 0
if n > 0 then
  for j = i + 1, i + 2 * n, 2 do w('HINCRBY', KEYS[4], ARGV[j], ARGV[j + 1]) end
  w('EXPIRE', KEYS[4], ttl)
end
if failed == 0 then return 0 end
if failed == writes then return redis.error_reply(first) end
return {failed, first}`;

type BucketArg = string | number;
type WithBucket = {
  fgBucket(usage: string, ips: string, models: string, prompts: string, ...args: BucketArg[]): unknown;
  fgIpBucket(ipUsage: string, ...args: BucketArg[]): unknown;
};

export function defineBucketScript(redis: Redis): void {
  // Both are EVALSHA of the same script (ioredis: EVAL on a connection's first use, re-sent on NOSCRIPT).
  redis.defineCommand('fgBucket', { numberOfKeys: 4, lua: BUCKET_SCRIPT });
  redis.defineCommand('fgIpBucket', { numberOfKeys: 1, lua: BUCKET_SCRIPT });
}

function pushPairs(args: BucketArg[], m: ReadonlyMap<string, number>): void {
  args.push(m.size);
  for (const [f, n] of m) args.push(f, n);
}

function pushValues(args: BucketArg[], s: ReadonlySet<string>): void {
  args.push(s.size);
  for (const v of s) args.push(v);
}

/** Appends one bucket's script call to `p`. */
export function appendBucket(p: ChainableCommander, b: PendingBucket): void {
  const args: BucketArg[] = [WINDOWS[b.window].ttlSeconds];
  pushPairs(args, b.sums);
  const s = p as unknown as WithBucket;
  if (b.kind === 'ip') {
    s.fgIpBucket(redisKeys.ipUsage(b.owner, b.window, b.bucket), ...args);
    return;
  }
  pushPairs(args, b.maxes);
  pushValues(args, b.ips);
  pushValues(args, b.models);
  pushPairs(args, b.fingerprints);
  s.fgBucket(
    redisKeys.usage(b.owner, b.window, b.bucket),
    redisKeys.usageIps(b.owner, b.window, b.bucket),
    redisKeys.usageModels(b.owner, b.window, b.bucket),
    redisKeys.usagePrompts(b.owner, b.window, b.bucket),
    ...args,
  );
}

/** A script reply that says the bucket was partly written: its first error, else undefined. */
export function partialError(reply: unknown): string | undefined {
  return Array.isArray(reply) ? String(reply[1]) : undefined;
}
