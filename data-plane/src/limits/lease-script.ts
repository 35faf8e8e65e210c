import type { Redis } from 'ioredis';
import type { BucketLimits } from './bucket.js';

/**
 * The one Redis script of the rate limiter: atomically refill a key's two buckets (bucket.ts),
 * apply what a replica gives back (unused lease, unused reservation) or owes (a stream that ran
 * past its reservation), then grant a lease if the head-of-line request fits.
 *
 * It touches a single key, redisKeys.rateLimit(keyId, tierId), which carries the key's `{k:<id>}` hash
 * tag, so it runs unchanged on Redis Cluster. The clock is Redis's own TIME, so replicas with
 * skewed clocks still refill one shared bucket consistently (scripts replicate by effects since
 * Redis 5, so a non-deterministic TIME is allowed).
 *
 * Grant rule, per dimension: refuse everything unless `need` (the oldest waiting request) fits;
 * otherwise grant what the queued requests demand (as much as is there), plus a lease `extra`
 * for requests not yet arrived, but never more than `share` of what is left after the demand —
 * so one busy replica cannot hoard the last units that another replica needs.
 *
 * Levels are fractional, so the reply returns them as strings (Lua numbers become integers in
 * a Redis reply). The key expires once the buckets would be full again: an absent key means
 * "full", so idle keys cost no memory.
 */
const LEASE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rCap, rRate, tCap, tRate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local giveR, giveT = tonumber(ARGV[5]), tonumber(ARGV[6])
local share = tonumber(ARGV[13])
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local ts = tonumber(s[3]) or now
local dt = now - ts
if dt < 0 then dt = 0 end
local r = math.min(rCap, (tonumber(s[1]) or rCap) + dt * rRate)
local k = math.min(tCap, (tonumber(s[2]) or tCap) + dt * tRate)
r = math.max(-rCap, math.min(rCap, r + giveR))
k = math.max(-tCap, math.min(tCap, k + giveT))
local function grant(level, need, demand, extra)
  if level < need then return -1 end
  local avail = math.floor(level)
  if avail < 0 then avail = 0 end
  local g = math.max(need, math.min(demand, avail))
  local e = math.min(extra, math.floor((avail - g) * share))
  if e < 0 then e = 0 end
  return g + e
end
local gr = grant(r, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
local gt = grant(k, tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]))
local ok = 1
if gr < 0 or gt < 0 then
  ok = 0
  gr = 0
  gt = 0
end
if gr > 0 or gt > 0 or giveR ~= 0 or giveT ~= 0 then
  r = r - gr
  k = k - gt
  redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(k), 'ts', tostring(now))
  local full = math.max((rCap - r) / rRate, (tCap - k) / tRate)
  redis.call('PEXPIRE', KEYS[1], math.ceil(full) + 1000)
end
return {ok, gr, gt, tostring(r), tostring(k)}
`;

const COMMAND = 'fluxgateRateLease';

export interface LeaseCall {
  limits: BucketLimits;
  /** Units returned (positive) or owed (negative), applied before the grant. */
  give: { requests: number; tokens: number };
  /** Must fit or nothing is granted (0 for a pure give-back or a background top-up). */
  need: { requests: number; tokens: number };
  /** What the queued requests want in total (≥ need). */
  demand: { requests: number; tokens: number };
  /** Lease wish on top of the demand. */
  extra: { requests: number; tokens: number };
  /** Largest fraction of what is left after the demand that may go into the lease. */
  share: number;
}

export interface LeaseReply {
  ok: boolean;
  granted: { requests: number; tokens: number };
  /** Levels left in the shared buckets after this call. */
  level: { requests: number; tokens: number };
}

type LeaseCommand = (key: string, ...args: string[]) => Promise<[number, number, number, string, string]>;

/** Registers the script on this client (ioredis runs it with EVALSHA, falling back to EVAL). */
export function defineLeaseCommand(redis: Redis): void {
  if (typeof (redis as unknown as Record<string, unknown>)[COMMAND] === 'function') return;
  redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: LEASE_LUA });
}

const n = (x: number): string => String(Math.max(0, Math.ceil(x)));

export async function callLease(redis: Redis, key: string, c: LeaseCall): Promise<LeaseReply> {
  const cmd = (redis as unknown as Record<string, LeaseCommand>)[COMMAND];
  if (!cmd) throw new Error('rate-limit lease script not defined on this client (call defineLeaseCommand)');
  const { requests: rq, tokens: tk } = c.limits;
  const reply = await cmd.call(
    redis,
    key,
    String(rq.capacity),
    String(rq.ratePerMs),
    String(tk.capacity),
    String(tk.ratePerMs),
    String(Math.trunc(c.give.requests)),
    String(Math.trunc(c.give.tokens)),
    n(c.need.requests),
    n(c.demand.requests),
    n(c.extra.requests),
    n(c.need.tokens),
    n(c.demand.tokens),
    n(c.extra.tokens),
    String(c.share),
  );
  return {
    ok: reply[0] === 1,
    granted: { requests: reply[1], tokens: reply[2] },
    level: { requests: Number(reply[3]), tokens: Number(reply[4]) },
  };
}
