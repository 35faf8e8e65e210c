import { redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';

/**
 * Login and register throttles (OWASP Authentication Cheat Sheet, "Protect Against Automated
 * Attacks"): fixed-window counters in Redis, one per client IP and one per account (email),
 * shared by every replica.
 *
 * An attempt is consumed atomically *before* the password is checked, so N concurrent guesses
 * cannot all slip under the limit; a successful login then gives its attempt back. What stays
 * counted is failures (and registrations, per IP). The window starts at the first attempt and
 * is not extended by attempts made while blocked, so a blocked client is free again after at
 * most one window.
 *
 * Redis unavailable → `service_unavailable` (fail closed): without the counters brute force
 * would be unthrottled, and sessions cannot be checked for revocation anyway.
 */

/** INCR with the window set on the first attempt; returns [count, ms left in the window]. */
const ATTEMPT_SCRIPT = `
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

/** The commands defineCommand adds (ioredis types cannot know them). */
interface ScriptClient {
  fgLoginRefund(key: string): Promise<number>;
  del(key: string): Promise<number>;
  pipeline(): { fgLoginAttempt(key: string, windowMs: number): unknown; exec(): Promise<Array<[Error | null, unknown]> | null> };
}

export interface ThrottleOptions {
  /** Attempts per IP per window (logins and registrations together). */
  maxPerIp: number;
  /** Attempts per account per window. */
  maxPerAccount: number;
  windowSeconds: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { maxPerIp: 30, maxPerAccount: 10, windowSeconds: 900 };

export type ThrottleDecision =
  | { allowed: true }
  | { allowed: false; scope: 'ip' | 'account'; retryAfterSeconds: number };

export interface LoginThrottle {
  /** Consumes one attempt for the IP and one for the account. */
  attempt(ip: string, account: string): Promise<ThrottleDecision>;
  /** Gives an attempt back (best effort, never throws). */
  refund(ip: string | null, account: string | null): Promise<void>;
  /** Clears the account's counter (after a successful login; best effort). */
  resetAccount(account: string): Promise<void>;
}

export function createLoginThrottle(redis: Redis, opts: ThrottleOptions = DEFAULT_THROTTLE): LoginThrottle {
  redis.defineCommand('fgLoginAttempt', { numberOfKeys: 1, lua: ATTEMPT_SCRIPT });
  redis.defineCommand('fgLoginRefund', { numberOfKeys: 1, lua: REFUND_SCRIPT });
  const r = redis as unknown as ScriptClient;
  const windowMs = opts.windowSeconds * 1000;
  // Account keys use the lower-cased email, as users.email is unique case-insensitively.
  const accountKey = (account: string) => redisKeys.loginThrottleAccount(account.toLowerCase());

  return {
    async attempt(ip, account) {
      // Two keys in two cluster slots: two script calls, sent in one round trip.
      const p = r.pipeline();
      p.fgLoginAttempt(redisKeys.loginThrottleIp(ip), windowMs);
      p.fgLoginAttempt(accountKey(account), windowMs);
      let results;
      try {
        results = await p.exec();
      } catch (cause) {
        throw new GatewayError('service_unavailable', 'The login throttle is unavailable; retry shortly.', { cause });
      }
      const counts: Array<[number, number]> = [];
      for (const [err, value] of results ?? []) {
        if (err || !Array.isArray(value)) throw new GatewayError('service_unavailable', 'The login throttle is unavailable; retry shortly.', { cause: err });
        counts.push([Number(value[0]), Number(value[1])]);
      }
      const [ipCount, accountCount] = counts;
      if (!ipCount || !accountCount) throw new GatewayError('service_unavailable', 'The login throttle is unavailable; retry shortly.');
      const retry = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
      if (ipCount[0] > opts.maxPerIp) return { allowed: false, scope: 'ip', retryAfterSeconds: retry(ipCount[1]) };
      if (accountCount[0] > opts.maxPerAccount) return { allowed: false, scope: 'account', retryAfterSeconds: retry(accountCount[1]) };
      return { allowed: true };
    },
    async refund(ip, account) {
      await Promise.allSettled([
        ip === null ? null : r.fgLoginRefund(redisKeys.loginThrottleIp(ip)),
        account === null ? null : r.fgLoginRefund(accountKey(account)),
      ]);
    },
    async resetAccount(account) {
      await r.del(accountKey(account)).catch(() => undefined);
    },
  };
}
