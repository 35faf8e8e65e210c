/**
 * The resolver's answer cache, keyed by (type, name).
 *
 * - Positive answers live for the smallest TTL in the answer section (RFC 1035 §3.2.1, RFC 2181
 *   §5.2), clamped to [minTtlSec, maxTtlSec].
 * - Negative answers (NXDOMAIN, NODATA) live for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5),
 *   clamped to [negativeMinTtlSec, negativeMaxTtlSec]; without a SOA they are not cached
 *   (RFC 2308 §5: "SHOULD NOT be cached").
 * - Expired entries are kept for maxStaleSec more and served stale with a 30 s TTL while one
 *   refresh runs (RFC 8767 §4, §5); a failed refresh is not retried for failureRecheckSec
 *   (RFC 8767 §5 "failure recheck timer"), the stale answer keeps being served meanwhile.
 * - Bounded by entry count and by the bytes of the upstream answers; least recently used first.
 */
import { negativeTtl, type RecordSet } from './records.js';

export interface CacheOptions {
  maxEntries: number;
  /** Sum of the wire sizes of the cached answers. */
  maxBytes: number;
  minTtlSec: number;
  maxTtlSec: number;
  negativeMinTtlSec: number;
  negativeMaxTtlSec: number;
  /** TTL given to stale answers (RFC 8767 §4 recommends 30 s). */
  staleTtlSec: number;
  /** How long past expiry an entry may still be served (RFC 8767 §5 suggests 1 to 3 days). */
  maxStaleSec: number;
  failureRecheckSec: number;
}

export const DEFAULT_CACHE: CacheOptions = {
  maxEntries: 10_000,
  maxBytes: 16 * 1024 * 1024,
  minTtlSec: 5,
  maxTtlSec: 3_600,
  negativeMinTtlSec: 5,
  negativeMaxTtlSec: 300,
  staleTtlSec: 30,
  maxStaleSec: 86_400,
  failureRecheckSec: 30,
};

export interface CacheHit {
  readonly set: RecordSet;
  /** Seconds a consumer may keep this answer: the remaining lifetime, or staleTtlSec when stale. */
  readonly ttl: number;
  readonly stale: boolean;
  /** Stale and no refresh failed within the recheck period: the caller should refresh now. */
  readonly refresh: boolean;
}

interface Entry {
  set: RecordSet;
  bytes: number;
  expiresAt: number;
  staleUntil: number;
  recheckAfter: number;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * How long `set`, the answer to a `type` question, may be cached (seconds), or null when it
 * must not be. Positive: it holds records of `type`; otherwise it is negative (a CNAME chain
 * that ends without `type` is NODATA for the target, RFC 2308 §2.2).
 */
export function cacheTtl(set: RecordSet, type: string, o: CacheOptions): number | null {
  const minAnswer = set.answers.reduce((m, a) => Math.min(m, a.type === 'OPT' ? m : (a.ttl ?? 0)), Infinity);
  if (set.rcode === 'NOERROR' && set.answers.some((a) => a.type === type)) return clamp(minAnswer, o.minTtlSec, o.maxTtlSec);
  const soa = set.authority[0];
  if (soa === undefined) return null;
  return clamp(Math.min(negativeTtl(soa), minAnswer), o.negativeMinTtlSec, o.negativeMaxTtlSec);
}

export class DnsCache {
  readonly options: CacheOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(opts: Partial<CacheOptions> = {}, now: () => number = () => Date.now()) {
    this.options = { ...DEFAULT_CACHE, ...opts };
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): CacheHit | null {
    const e = this.#entries.get(key);
    if (e === undefined) return null;
    const t = this.#now();
    if (t >= e.staleUntil) {
      this.#remove(key, e);
      return null;
    }
    // Least recently used goes first: re-inserting moves the key to the end of the Map's order.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    if (t < e.expiresAt) return { set: e.set, ttl: Math.ceil((e.expiresAt - t) / 1000), stale: false, refresh: false };
    return { set: e.set, ttl: this.options.staleTtlSec, stale: true, refresh: t >= e.recheckAfter };
  }

  /** Stores `set` for `ttlSec` seconds; `bytes` is its wire size (for the byte bound). */
  put(key: string, set: RecordSet, ttlSec: number, bytes: number): void {
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(key, old);
    if (ttlSec <= 0 || bytes > this.options.maxBytes) return;
    const expiresAt = this.#now() + ttlSec * 1000;
    this.#entries.set(key, { set, bytes, expiresAt, staleUntil: expiresAt + this.options.maxStaleSec * 1000, recheckAfter: 0 });
    this.#bytes += bytes;
    while (this.#entries.size > this.options.maxEntries || this.#bytes > this.options.maxBytes) {
      const first = this.#entries.entries().next().value;
      if (first === undefined) break;
      this.#remove(first[0], first[1]);
    }
  }

  /** A refresh of a stale entry failed: keep serving it, do not retry for failureRecheckSec. */
  refreshFailed(key: string): void {
    const e = this.#entries.get(key);
    if (e !== undefined) e.recheckAfter = this.#now() + this.options.failureRecheckSec * 1000;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #remove(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
  }
}
