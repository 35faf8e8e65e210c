import { quantile } from './snapshot.js';

/**
 * What this replica has served, for its replica metrics record (contracts health.ts): totals of
 * proxied requests (`/v1`, `/api`) since start, open streams now, and latency quantiles of the
 * requests finished since the previous record. Fed from the proxy's own observe hook, so the hot
 * path pays a few integer increments and one bucket search per request; quantiles are computed
 * once per flush, Prometheus-style (linear within a bucket), from fixed buckets that are reset.
 */
const BOUNDS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000];

class IntervalHistogram {
  readonly #counts = new Float64Array(BOUNDS_MS.length + 1);
  #n = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    this.#counts[i]!++;
    this.#n++;
  }

  /** The quantiles asked for (null when nothing was observed), then a reset. */
  take<Q extends string>(qs: Record<Q, number>): Record<Q, number> | null {
    if (this.#n === 0) return null;
    const cumulative: Array<[number, number]> = [];
    let sum = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      sum += this.#counts[i]!;
      cumulative.push([BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY, sum]);
    }
    const out = {} as Record<Q, number>;
    for (const q of Object.keys(qs) as Q[]) out[q] = Math.round((quantile(cumulative, this.#n, qs[q]) ?? 0) * 100) / 100;
    this.#counts.fill(0);
    this.#n = 0;
    return out;
  }
}

export interface ReplicaStatsSnapshot {
  requests: number;
  errors: number;
  rateLimited: number;
  openStreams: number;
  latencyMs: { p50: number; p90: number; p99: number } | null;
  ttfbMs: { p50: number; p99: number } | null;
}

export interface ReplicaStats {
  /** One finished proxied request (status 0: the client went away before any). */
  observe(status: number, durationMs: number, ttfbMs: number | null): void;
  streamOpened(delta: 1 | -1): void;
  /** Totals and gauges now, and the interval's quantiles (which start over). */
  take(): ReplicaStatsSnapshot;
}

export function createReplicaStats(): ReplicaStats {
  let requests = 0;
  let errors = 0;
  let rateLimited = 0;
  let openStreams = 0;
  const latency = new IntervalHistogram();
  const ttfb = new IntervalHistogram();
  return {
    observe(status, durationMs, ttfbMs) {
      requests++;
      // contracts: errors are 5xx answers and requests that ended with no status at all.
      if (status >= 500 || status < 100) errors++;
      else if (status === 429) rateLimited++;
      latency.observe(durationMs);
      if (ttfbMs !== null) ttfb.observe(ttfbMs);
    },
    streamOpened(delta) {
      openStreams = Math.max(0, openStreams + delta);
    },
    take: () => ({
      requests,
      errors,
      rateLimited,
      openStreams,
      latencyMs: latency.take({ p50: 0.5, p90: 0.9, p99: 0.99 }),
      ttfbMs: ttfb.take({ p50: 0.5, p99: 0.99 }),
    }),
  };
}
