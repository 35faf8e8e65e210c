/**
 * Per-client budget for Postgres lookups of API keys this replica has never seen. A made-up key
 * with a valid checksum passes the format check and costs one query; the negative cache only
 * helps when it repeats, and the global lookup limit (lookup-limit.ts) lets one client take
 * every slot. So each client (ip-key.ts: IPv4 exact, IPv6 by /64) gets a token bucket, kept in
 * process: no Redis round trip, and the only cost on a cache hit is none at all.
 *
 * Clients are tracked least recently used first, at most `maxClients`; one that churns through
 * more addresses than that (an IPv6 attacker with a large prefix) falls back to the global limit.
 */
export interface LookupQuota {
  /** Spends one lookup for this client: 0 when allowed, else the seconds to wait (≥ 1). */
  take(clientKey: string): number;
  readonly trackedClients: number;
}

export interface LookupQuotaOptions {
  /** Sustained lookups per second per client. */
  perSecond: number;
  /** Lookups a client may make at once before the rate applies. */
  burst: number;
  maxClients?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createLookupQuota(opts: LookupQuotaOptions): LookupQuota {
  const maxClients = opts.maxClients ?? 50_000;
  const now = opts.now ?? Date.now;
  const perMs = opts.perSecond / 1000;
  const buckets = new Map<string, Bucket>();

  return {
    take(clientKey) {
      const t = now();
      let b = buckets.get(clientKey);
      if (b === undefined) {
        b = { tokens: opts.burst, at: t };
        while (buckets.size >= maxClients) buckets.delete(buckets.keys().next().value!);
      } else {
        buckets.delete(clientKey);
        b.tokens = Math.min(opts.burst, b.tokens + (t - b.at) * perMs);
        b.at = t;
      }
      // Re-inserted on every use: the Map's first entry is the least recently used client.
      buckets.set(clientKey, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
    },
    get trackedClients() {
      return buckets.size;
    },
  };
}
