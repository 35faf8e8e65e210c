/**
 * Per-client token buckets for /dns-query, in process (DESIGN §3: "rate-limited per IP"). DNS
 * answers are cheap and must stay cheap, so no Redis round trip: each replica limits on its own.
 * IPv6 clients are bucketed by /64, the usual allocation to one host or site (RFC 6177), so a
 * client cannot escape its limit by rotating through its own prefix. Memory is bounded by
 * `maxClients`: the least recently seen client is forgotten first (it returns with a full bucket).
 */
export interface RateLimitOptions {
  /** Sustained requests per second per client. */
  ratePerSec: number;
  /** Bucket size: the burst a client may send at once. */
  burst: number;
  /** Clients tracked at once. Default 100,000. */
  maxClients?: number;
  now?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterSec: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class ClientRateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(opts: RateLimitOptions) {
    if (!(opts.ratePerSec > 0) || !(opts.burst >= 1)) throw new Error('rate limit: ratePerSec must be > 0 and burst >= 1');
    this.#rate = opts.ratePerSec;
    this.#burst = opts.burst;
    this.#max = opts.maxClients ?? 100_000;
    this.#now = opts.now ?? (() => Date.now());
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(address: string): TakeResult {
    const key = clientKey(address);
    const t = this.#now();
    const b = this.#buckets.get(key);
    let tokens = this.#burst;
    if (b !== undefined) {
      tokens = Math.min(this.#burst, b.tokens + ((t - b.at) / 1000) * this.#rate);
      this.#buckets.delete(key); // re-inserted below: Map order is recency order
    } else if (this.#buckets.size >= this.#max) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    const ok = tokens >= 1;
    this.#buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: t });
    // Retry-After is whole seconds (RFC 9110 §10.2.3); round up so a polite client succeeds.
    return ok ? { ok: true } : { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - tokens) / this.#rate)) };
  }
}

/** IPv4 as is; IPv6 reduced to its /64. */
export function clientKey(address: string): string {
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
