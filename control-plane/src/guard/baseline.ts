/**
 * A key's own request-rate baseline: an exponentially weighted moving average of its requests
 * per completed 10 s window (α = 2 / (N + 1), N = 30 windows ≈ 5 minutes). Windows the key was
 * idle in count as zeros (applied lazily when it shows up again). `before` keeps the average as
 * it was before the latest window, which is the sample the rate-spike detector compares with it.
 */
export const BASELINE_WINDOWS = 30;
const ALPHA = 2 / (BASELINE_WINDOWS + 1);

export interface Baseline {
  ewma: number;
  /** Windows observed (idle ones included). */
  n: number;
  lastBucket: number;
  before: { ewma: number; n: number };
}

export function updateBaseline(prev: Baseline | undefined, bucket: number, requests: number): Baseline {
  if (!prev) return { ewma: requests, n: 1, lastBucket: bucket, before: { ewma: 0, n: 0 } };
  if (bucket <= prev.lastBucket) return prev;
  const idle = bucket - prev.lastBucket - 1;
  const decayed = prev.ewma * Math.pow(1 - ALPHA, Math.min(idle, 10_000));
  return {
    ewma: ALPHA * requests + (1 - ALPHA) * decayed,
    n: prev.n + idle + 1,
    lastBucket: bucket,
    before: { ewma: decayed, n: prev.n + idle },
  };
}

/** The baseline to compare window `bucket` with: as it stood before that window was added. */
export function baselineFor(b: Baseline | undefined, bucket: number): { ewma: number; n: number } | null {
  if (!b) return null;
  if (b.lastBucket === bucket) return b.before;
  if (b.lastBucket < bucket) {
    const idle = bucket - b.lastBucket - 1;
    return { ewma: b.ewma * Math.pow(1 - ALPHA, Math.min(idle, 10_000)), n: b.n + idle };
  }
  return null;
}
