import { describe, expect, it } from 'vitest';
import { ROUTE_FAMILIES, createGatewayMetrics, type RouteFamily, type UpstreamOutcome } from '../../src/metrics/registry.js';
import { metricsSnapshot } from '../../src/metrics/snapshot.js';
import { createReferenceMetrics } from './reference-registry.js';

/**
 * Issue 17 item 5: the per-request metrics are plain arrays read by prom-client at scrape time.
 * The Grafana dashboard and the control plane read /metrics and the JSON snapshot, so after the
 * same calls both must be exactly what prom-client's own Counter and Histogram produced
 * (reference-registry.ts, the code before): names, help, types, label sets and their order,
 * values, bucket counts and sums to the last bit.
 */
type Metrics = ReturnType<typeof createReferenceMetrics> | ReturnType<typeof createGatewayMetrics>;

const statuses = [200, 201, 204, 101, 302, 400, 401, 404, 429, 499, 500, 502, 504, 0, 999, -1];
const outcomes: UpstreamOutcome[] = ['success', 'http_error', 'connect_error', 'timeout', 'aborted', 'circuit_open', 'retried'];

/** N requests spread over every route family, status class, bucket (and beyond the last bound). */
function drive(m: Metrics, from: number, n: number): void {
  let seed = from * 7919 + 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  for (let i = from; i < from + n; i++) {
    // Families in a shuffled first-use order, so series order is by first use, not declaration.
    const family = ROUTE_FAMILIES[(i * 5 + 3) % ROUTE_FAMILIES.length] as RouteFamily;
    const status = statuses[i % statuses.length]!;
    const duration = rnd() ** 3 * 400; // 0 … 400 s: every bucket, some beyond 300
    const exact = [0.005, 0.1, 300, 0][i % 4]!; // on a bound: lands in that bound's bucket
    m.observeRequest(family, status, i % 5 === 0 ? exact : duration, i % 3 === 0 ? undefined : rnd() * 40);
    if (i % 4 === 0) m.observeUpstream(['ollama-a', 'ollama-b', 'http://10.0.0.9:11434'][i % 3]!, outcomes[i % outcomes.length]!);
    if (i % 6 === 0) m.openStreams.inc();
    if (i % 9 === 0) m.openStreams.dec();
    if (i % 50 === 0) m.authFailures.inc({ reason: 'unknown' });
  }
}

describe('slot metrics against prom-client', () => {
  it('/metrics, the JSON and the snapshot are identical after the same requests, scraped in between', async () => {
    const opts = { defaultMetrics: false, upstreams: ['ollama-a', 'ollama-b'] };
    const reference = createReferenceMetrics(opts);
    const slots = createGatewayMetrics(opts);
    for (const m of [reference, slots]) m.observePendingBuckets(() => 42);

    // Before any request, then after some, then after more: a scrape in between must not change
    // what the next one shows.
    for (const [from, n] of [
      [0, 0],
      [0, 700],
      [700, 3000],
    ] as const) {
      drive(reference, from, n);
      drive(slots, from, n);
      const text = await slots.registry.metrics();
      expect(text).toBe(await reference.registry.metrics());
      expect(await slots.registry.getMetricsAsJSON()).toStrictEqual(await reference.registry.getMetricsAsJSON());
      expect(await metricsSnapshot(slots.registry, () => 1)).toStrictEqual(await metricsSnapshot(reference.registry, () => 1));
    }
    const text = await slots.registry.metrics();
    // The run covered what it claims: every family and status class, the upstream bound, +Inf.
    for (const f of ROUTE_FAMILIES) expect(text).toContain(`fluxgate_request_duration_seconds_count{route_family="${f}"}`);
    for (const c of ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted']) expect(text).toContain(`status_class="${c}"`);
    expect(text).toContain('fluxgate_upstream_requests_total{upstream="other",outcome=');
    expect(text).toMatch(/fluxgate_request_duration_seconds_bucket\{le="\+Inf",route_family="openai"\} \d+/);
    expect(text).toMatch(/fluxgate_http_requests_total\{route_family="openai",status_class="2xx"\} [1-9]/);
  });

  it('a duration that is not a number counts the request and observes nothing, as before (without throwing)', async () => {
    const reference = createReferenceMetrics({ defaultMetrics: false });
    const slots = createGatewayMetrics({ defaultMetrics: false });
    expect(() => reference.observeRequest('openai', 200, Number.NaN, 0.1)).toThrow(TypeError);
    expect(() => slots.observeRequest('openai', 200, Number.NaN, 0.1)).not.toThrow();
    expect(await slots.registry.metrics()).toBe(await reference.registry.metrics());
  });
});
