import type { Registry } from 'prom-client';

export type Labels = Record<string, string | number>;

export interface ScalarSeries {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  count: number;
  sum: number;
  /** Estimated from the buckets (linear within a bucket); null when there are no observations. */
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export type SnapshotMetric =
  { type: 'counter' | 'gauge'; help: string; series: ScalarSeries[] } | { type: 'histogram'; help: string; series: HistogramSeries[] };

export interface MetricsSnapshot {
  /** Epoch ms. */
  at: number;
  metrics: Record<string, SnapshotMetric>;
}

/**
 * The registry as JSON for `GET /admin/metrics` and the replica snapshot the control plane
 * reads: counters and gauges as label/value series, histograms reduced to count, sum and
 * estimated quantiles (bucket lists are what /metrics is for).
 */
export async function metricsSnapshot(registry: Registry, now: () => number = Date.now): Promise<MetricsSnapshot> {
  const out: Record<string, SnapshotMetric> = {};
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    if (type === 'histogram') {
      out[m.name] = { type: 'histogram', help: m.help, series: reduceHistogram(m.name, m.values) };
    } else if (type === 'counter' || type === 'gauge') {
      out[m.name] = { type, help: m.help, series: m.values.map((v) => ({ labels: cleanLabels(v.labels), value: v.value })) };
    }
    // Summaries (none registered by Fluxgate) are left to /metrics.
  }
  return { at: now(), metrics: out };
}

type RawValue = { value: number; labels: Partial<Record<string, string | number>>; metricName?: string };

function cleanLabels(labels: Partial<Record<string, string | number>>, drop?: string): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined && k !== drop) out[k] = v;
  return out;
}

function reduceHistogram(name: string, values: RawValue[]): HistogramSeries[] {
  const groups = new Map<string, { labels: Labels; buckets: Array<[number, number]>; count: number; sum: number }>();
  for (const v of values) {
    const labels = cleanLabels(v.labels, 'le');
    const id = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { labels, buckets: [], count: 0, sum: 0 }));
    if (v.metricName === `${name}_bucket`) {
      const le = v.labels.le;
      g.buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v.value]);
    } else if (v.metricName === `${name}_count`) g.count = v.value;
    else if (v.metricName === `${name}_sum`) g.sum = v.value;
  }
  return [...groups.values()].map((g) => {
    g.buckets.sort((a, b) => a[0] - b[0]);
    return {
      labels: g.labels,
      count: g.count,
      sum: g.sum,
      p50: quantile(g.buckets, g.count, 0.5),
      p90: quantile(g.buckets, g.count, 0.9),
      p99: quantile(g.buckets, g.count, 0.99),
    };
  });
}

/** Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank. */
export function quantile(buckets: ReadonlyArray<readonly [le: number, cumulative: number]>, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (le === Number.POSITIVE_INFINITY) return prevLe;
      const inBucket = cumulative - prevCount;
      return inBucket === 0 ? le : prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = le;
    prevCount = cumulative;
  }
  return prevLe;
}
