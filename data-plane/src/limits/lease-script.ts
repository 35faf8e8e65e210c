import type { Redis } from 'ioredis';
import type { BucketLimits, Units } from './bucket.js';

/**
 * The one Redis script of the rate limiter: atomically refill a key's two buckets and its
 * ACCOUNT's two (bucket.ts), apply to both what a replica gives back (unused lease, unused
 * reservation) or owes (a stream that ran past its reservation), then grant a lease if the
 * head-of-line request fits in both.
 *
 * Every unit granted is taken from the key's bucket AND the account's, and every unit given back
 * returns to both, so a lease is always paid in full at both levels: Σ admitted over an account's
 * keys never exceeds what its account bucket allows, however many keys and replicas draw on it.
 * KEYS[1] is redisKeys.rateLimit(account, key, tier), KEYS[2] redisKeys.rateLimitAccount(account,
 * tier); both carry the account's `{a:<id>}` hash tag, so the script runs unchanged on Redis
 * Cluster. The clock is Redis's own TIME, so replicas with skewed clocks still refill the shared
 * buckets consistently (scripts replicate by effects since Redis 5, so a non-deterministic TIME
 * is allowed).
 *
 * Grant rule, per dimension and bucket: refuse everything unless `need` (the oldest waiting
 * request) fits; otherwise grant what the queued requests demand (as much as is there), plus a
 * lease `extra` for requests not yet arrived, but never more than `share` of what is left after
 * the demand — so one busy replica (or key) cannot hoard the last units another one needs. The
 * grant is the smaller of the two buckets' answers.
 *
 * Levels are fractional, so the reply returns them as strings (Lua numbers become integers in
 * a Redis reply). A bucket expires once it would be full again: an absent key means "full", so
 * idle keys and accounts cost no memory.
 */
const LEASE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local giveR, giveT = tonumber(ARGV[9]), tonumber(ARGV[10])
local share = tonumber(ARGV[17])
local function level(key, rCap, rRate, tCap, tRate)
  local s = redis.call('HMGET', key, 'r', 't', 'ts')
  local dt = now - (tonumber(s[3]) or now)
  if dt < 0 then dt = 0 end
  local r = math.min(rCap, (tonumber(s[1]) or rCap) + dt * rRate)
  local k = math.min(tCap, (tonumber(s[2]) or tCap) + dt * tRate)
  return math.max(-rCap, math.min(rCap, r + giveR)), math.max(-tCap, math.min(tCap, k + giveT))
end
local function grant(level, need, demand, extra)
  if level < need then return -1 end
  local avail = math.floor(level)
  if avail < 0 then avail = 0 end
  local g = math.max(need, math.min(demand, avail))
  local e = math.min(extra, math.floor((avail - g) * share))
  if e < 0 then e = 0 end
  return g + e
end
local function save(key, r, k, rCap, rRate, tCap, tRate)
  redis.call('HSET', key, 'r', tostring(r), 't', tostring(k), 'ts', tostring(now))
  local full = math.max((rCap - r) / rRate, (tCap - k) / tRate)
  redis.call('PEXPIRE', key, math.ceil(full) + 1000)
end
local kc = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local ac = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
local kr, kt = level(KEYS[1], kc[1], kc[2], kc[3], kc[4])
local ar, at = level(KEYS[2], ac[1], ac[2], ac[3], ac[4])
local needR, demandR, extraR = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local needT, demandT, extraT = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local gr = math.min(grant(kr, needR, demandR, extraR), grant(ar, needR, demandR, extraR))
local gt = math.min(grant(kt, needT, demandT, extraT), grant(at, needT, demandT, extraT))
local ok = 1
if gr < 0 or gt < 0 then
  ok = 0
  gr = 0
  gt = 0
end
if gr > 0 or gt > 0 or giveR ~= 0 or giveT ~= 0 then
  kr, kt, ar, at = kr - gr, kt - gt, ar - gr, at - gt
  save(KEYS[1], kr, kt, kc[1], kc[2], kc[3], kc[4])
  save(KEYS[2], ar, at, ac[1], ac[2], ac[3], ac[4])
end
return {ok, gr, gt, tostring(kr), tostring(kt), tostring(ar), tostring(at)}
`;

const COMMAND = 'fluxgateRateLease';

export interface LeaseCall {
  /** The key's buckets (its effective tier) and its account's (see rate-limiter.ts). */
  limits: BucketLimits;
  accountLimits: BucketLimits;
  /** Units returned (positive) or owed (negative), applied to both before the grant. */
  give: Units;
  /** Must fit or nothing is granted (0 for a pure give-back or a background top-up). */
  need: Units;
  /** What the queued requests want in total (≥ need). */
  demand: Units;
  /** Lease wish on top of the demand. */
  extra: Units;
  /** Largest fraction of what is left after the demand that may go into the lease. */
  share: number;
}

export interface LeaseReply {
  ok: boolean;
  granted: Units;
  /** Levels left in the key's shared buckets after this call. */
  level: Units;
  /** Levels left in the account's shared buckets after this call. */
  accountLevel: Units;
}

type LeaseCommand = (key: string, account: string, ...args: string[]) => Promise<[number, number, number, string, string, string, string]>;

/** Registers the script on this client (ioredis runs it with EVALSHA, falling back to EVAL). */
export function defineLeaseCommand(redis: Redis): void {
  if (typeof (redis as unknown as Record<string, unknown>)[COMMAND] === 'function') return;
  redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: LEASE_LUA });
}

const n = (x: number): string => String(Math.max(0, Math.ceil(x)));

export async function callLease(redis: Redis, keyBucket: string, accountBucket: string, c: LeaseCall): Promise<LeaseReply> {
  const cmd = (redis as unknown as Record<string, LeaseCommand>)[COMMAND];
  if (!cmd) throw new Error('rate-limit lease script not defined on this client (call defineLeaseCommand)');
  const { requests: rq, tokens: tk } = c.limits;
  const { requests: arq, tokens: atk } = c.accountLimits;
  const reply = await cmd.call(
    redis,
    keyBucket,
    accountBucket,
    String(rq.capacity),
    String(rq.ratePerMs),
    String(tk.capacity),
    String(tk.ratePerMs),
    String(arq.capacity),
    String(arq.ratePerMs),
    String(atk.capacity),
    String(atk.ratePerMs),
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
    accountLevel: { requests: Number(reply[5]), tokens: Number(reply[6]) },
  };
}
