import { redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import { ipCountingKey } from './ip-key.js';

/**
 * Login and register throttles (OWASP Authentication Cheat Sheet, "Protect Against Automated
 * Attacks"), shared by every replica through Redis. Two independent limits:
 *
 * - Per client (IPv4 exact, IPv6 per /64, ip-key.ts): a fixed window of attempts, logins and
 *   registrations together. The window starts at the first attempt and is not extended by
 *   attempts made while blocked.
 * - Per account: growing delays instead of a lock-out. The first `freeFailures` attempts go
 *   through; from then on each attempt must wait `base × 2^k` (capped) after the previous one,
 *   k counting the failures past the free ones. An attacker gets a handful of guesses per hour
 *   at most, and the owner is never locked out: a client that logged in to this account before
 *   (a known-good IP, remembered for `knownIpTtlSeconds`) or that presents a valid session of
 *   the account skips the account delay altogether (the per-client window still applies, and
 *   only attempts from that very client fill it).
 *
 * An attempt is counted atomically *before* the password is checked, so N concurrent guesses
 * cannot all slip through; a success gives the client's attempt back (and clears the account's
 * failures when it was charged to them). Redis unavailable → `service_unavailable` (fail closed): without the counters
 * brute force would be unthrottled.
 */

/** INCR with the window set on the first attempt; returns [count, ms left in the window]. */
const WINDOW_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/** DECR only while the window still exists (a bare DECR would create a key without a TTL). */
const REFUND_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0`;

/**
 * KEYS: delay hash, known-IP set. ARGV: client key, vouched (1: a valid session of this account),
 * free failures, base ms, cap ms, memory ms. Returns {allowed, ms, charged}: when allowed, the
 * delay the next attempt will face; when refused, the ms left to wait. Redis's clock, so every
 * replica agrees.
 */
const ACCOUNT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '1' then return {1, 0, 0} end
local known = redis.call('ZSCORE', KEYS[2], ARGV[1])
if known and tonumber(known) > now then return {1, 0, 0} end
local nextAt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now < nextAt then return {0, nextAt - now, 0} end
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
local free, cap = tonumber(ARGV[3]), tonumber(ARGV[5])
local d = 0
if f >= free then
  d = tonumber(ARGV[4])
  for _ = 1, f - free do
    d = d * 2
    if d >= cap then break end
  end
  if d > cap then d = cap end
end
redis.call('HSET', KEYS[1], 'next', now + d)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, d, 1}`;

/** Undoes one charged account attempt (the password was never checked). */
const ACCOUNT_REFUND_SCRIPT = `
if tonumber(redis.call('HGET', KEYS[1], 'f') or '0') > 0 then return redis.call('HINCRBY', KEYS[1], 'f', -1) end
return 0`;

/** KEYS: known-IP set. ARGV: client key, ttl ms, most kept. Remembers a client that logged in. */
const REMEMBER_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** The commands defineCommand adds (ioredis types cannot know them). */
interface ScriptClient {
  fgLoginWindow(key: string, windowMs: number): Promise<[number, number]>;
  fgLoginRefund(key: string): Promise<number>;
  fgLoginAccount(
    delay: string,
    known: string,
    client: string,
    vouched: string,
    free: number,
    baseMs: number,
    capMs: number,
    memoryMs: number,
  ): Promise<[number, number, number]>;
  fgLoginAccountRefund(delay: string): Promise<number>;
  fgLoginRemember(known: string, client: string, ttlMs: number, keep: number): Promise<number>;
  del(key: string): Promise<number>;
}

export interface ThrottleOptions {
  /** Attempts per client per window (logins and registrations together). */
  maxPerIp: number;
  windowSeconds: number;
  /** Attempts per account that face no delay; each further one waits baseDelayMs × 2^k. */
  freeFailures: number;
  baseDelayMs: number;
  maxDelaySeconds: number;
  /** How long a client that logged in to an account stays known-good for it. */
  knownIpTtlSeconds: number;
  /** An account's failures are forgotten this long after the last attempt. */
  failureMemorySeconds: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  maxPerIp: 30,
  windowSeconds: 900,
  freeFailures: 5,
  baseDelayMs: 1000,
  maxDelaySeconds: 900,
  knownIpTtlSeconds: 30 * 86_400,
  failureMemorySeconds: 86_400,
};

/** Known-good clients kept per account (the most recent ones). */
const KNOWN_IPS_KEPT = 20;

export type ThrottleDecision =
  | {
      allowed: true;
      /** An account attempt was counted (refund it if the password is never checked). */
      accountCharged: boolean;
      /** How long the account's next attempt must wait after this one (0: none). */
      delayAfterMs: number;
    }
  | { allowed: false; scope: 'ip' | 'account'; retryAfterSeconds: number };

export interface LoginThrottle {
  /** A registration: the per-client window only. */
  attemptRegister(ip: string): Promise<ThrottleDecision>;
  /** A login: the per-client window, then the account's delay unless the client is trusted. */
  attemptLogin(ip: string, account: string, opts?: { sessionVouched?: boolean }): Promise<ThrottleDecision>;
  /** The password was never checked (the store failed): gives the attempts back. Best effort. */
  refund(ip: string, account: string | null): Promise<void>;
  /**
   * A login succeeded: gives the client's attempt back and remembers the client as known-good.
   * The account's failures are cleared only when this attempt was charged to them: a trusted
   * owner logging in must not hand an attacker elsewhere a fresh set of free guesses.
   */
  succeeded(ip: string, account: string, accountCharged: boolean): Promise<void>;
  /** Forgets an account's failures (a new account starts clean). Best effort. */
  resetAccount(account: string): Promise<void>;
}

const unavailable = (cause?: unknown) =>
  new GatewayError('service_unavailable', 'The login throttle is unavailable; retry shortly.', { cause });
const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function createLoginThrottle(redis: Redis, options: Partial<ThrottleOptions> = {}): LoginThrottle {
  const opts = { ...DEFAULT_THROTTLE, ...options };
  redis.defineCommand('fgLoginWindow', { numberOfKeys: 1, lua: WINDOW_SCRIPT });
  redis.defineCommand('fgLoginRefund', { numberOfKeys: 1, lua: REFUND_SCRIPT });
  redis.defineCommand('fgLoginAccount', { numberOfKeys: 2, lua: ACCOUNT_SCRIPT });
  redis.defineCommand('fgLoginAccountRefund', { numberOfKeys: 1, lua: ACCOUNT_REFUND_SCRIPT });
  redis.defineCommand('fgLoginRemember', { numberOfKeys: 1, lua: REMEMBER_SCRIPT });
  const r = redis as unknown as ScriptClient;
  const windowMs = opts.windowSeconds * 1000;
  // Account keys use the lower-cased email, as users.email is unique case-insensitively.
  const acct = (account: string) => account.toLowerCase();
  const ipKey = (ip: string) => redisKeys.loginThrottleIp(ipCountingKey(ip));

  async function window(ip: string): Promise<ThrottleDecision> {
    let n: number;
    let ttl: number;
    try {
      [n, ttl] = await r.fgLoginWindow(ipKey(ip), windowMs);
    } catch (err) {
      throw unavailable(err);
    }
    if (Number(n) > opts.maxPerIp) return { allowed: false, scope: 'ip', retryAfterSeconds: seconds(Number(ttl)) };
    return { allowed: true, accountCharged: false, delayAfterMs: 0 };
  }

  return {
    attemptRegister: window,

    async attemptLogin(ip, account, { sessionVouched = false } = {}) {
      const byIp = await window(ip);
      if (!byIp.allowed) return byIp;
      const a = acct(account);
      let result: [number, number, number];
      try {
        result = await r.fgLoginAccount(
          redisKeys.loginDelay(a),
          redisKeys.loginKnownIps(a),
          ipCountingKey(ip),
          sessionVouched ? '1' : '0',
          opts.freeFailures,
          opts.baseDelayMs,
          opts.maxDelaySeconds * 1000,
          opts.failureMemorySeconds * 1000,
        );
      } catch (err) {
        throw unavailable(err);
      }
      const [allowed, ms, charged] = result.map(Number) as [number, number, number];
      if (allowed !== 1) return { allowed: false, scope: 'account', retryAfterSeconds: seconds(ms) };
      return { allowed: true, accountCharged: charged === 1, delayAfterMs: ms };
    },

    async refund(ip, account) {
      await Promise.allSettled([
        r.fgLoginRefund(ipKey(ip)),
        account === null ? null : r.fgLoginAccountRefund(redisKeys.loginDelay(acct(account))),
      ]);
    },

    async succeeded(ip, account, accountCharged) {
      const a = acct(account);
      await Promise.allSettled([
        r.fgLoginRefund(ipKey(ip)),
        accountCharged ? r.del(redisKeys.loginDelay(a)) : null,
        r.fgLoginRemember(redisKeys.loginKnownIps(a), ipCountingKey(ip), opts.knownIpTtlSeconds * 1000, KNOWN_IPS_KEPT),
      ]);
    },

    async resetAccount(account) {
      await r.del(redisKeys.loginDelay(acct(account))).catch(() => undefined);
    },
  };
}
