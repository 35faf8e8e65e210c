/**
 * What one guard cycle knows: the counters of every active key and client IP over the lookback
 * (the last few 10-second windows, contracts/src/usage.ts), summed; and for the keys heavy enough
 * to matter, the details that cost extra reads (distinct IPs and models, repeated prompts).
 * Plain data: the detectors (guard/policy.ts) are pure functions of it. Valid until the next
 * collect(), which reuses the per-key objects.
 */

/** Sums over the lookback; `maxPromptTokens` is the maximum. */
export interface KeyCounters {
  requests: number;
  status4xx: number;
  rateLimited: number;
  promptTokens: number;
  completionTokens: number;
  maxPromptTokens: number;
}

export interface KeyDetail {
  /** Distinct client IPs over the lookback (HyperLogLog union: ±0.81 %). */
  distinctIps: number;
  distinctModels: number;
  /** Requests with the most frequent prompt fingerprint (summed over the lookback's buckets). */
  topPromptCount: number;
}

export interface KeySnapshot {
  keyId: string;
  totals: KeyCounters;
  /** Requests in the last complete window (the rate-spike detector's sample), null when not yet final. */
  lastWindowRequests: number | null;
  detail: KeyDetail | null;
}

export interface IpSnapshot {
  ip: string;
  failedCredentials: number;
  failedLogins: number;
  requests: number;
}

export interface Snapshot {
  /** Epoch ms the snapshot was taken. */
  at: number;
  /** The current (partial) 10 s bucket and how many buckets the lookback spans. */
  bucket: number;
  lookbackBuckets: number;
  /** The last complete bucket whose counters are final (read after the flush lag), or null. */
  lastCompleteBucket: number | null;
  keys: KeySnapshot[];
  ips: IpSnapshot[];
}
