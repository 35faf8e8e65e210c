import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGatewayMetrics, routeFamilyOf, statusClass } from './registry.js';
import { metricsSnapshot, quantile } from './snapshot.js';

describe('gateway metrics', () => {
  it('registers the conventional names on its own registry, never the global one', async () => {
    const m = createGatewayMetrics();
    const text = await m.registry.metrics();
    for (const name of [
      'fluxgate_http_requests_total',
      'fluxgate_request_duration_seconds',
      'fluxgate_ttfb_seconds',
      'fluxgate_upstream_requests_total',
      'fluxgate_open_streams',
      'fluxgate_auth_failures_total',
      'fluxgate_counter_flush_failures_total',
      'fluxgate_counter_dropped_samples_total',
      'fluxgate_counter_pending_buckets',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(await globalRegistry.metrics()).not.toContain('fluxgate_');
    // Two instances side by side (tests, several planes in one process) do not clash.
    expect(() => createGatewayMetrics({ defaultMetrics: false })).not.toThrow();
  });

  it('counts requests by route family and status class', async () => {
    const m = createGatewayMetrics({ defaultMetrics: false });
    m.observeRequest('openai', 200, 0.5, 0.01);
    m.observeRequest('openai', 201, 0.1);
    m.observeRequest('ollama', 503, 1);
    m.observeRequest('openai', 0, 0.2);
    const text = await m.registry.metrics();
    expect(text).toContain('fluxgate_http_requests_total{route_family="openai",status_class="2xx"} 2');
    expect(text).toContain('fluxgate_http_requests_total{route_family="ollama",status_class="5xx"} 1');
    expect(text).toContain('fluxgate_http_requests_total{route_family="openai",status_class="aborted"} 1');
    expect(text).toContain('fluxgate_ttfb_seconds_count{route_family="openai"} 1');
    expect(text).toContain('fluxgate_request_duration_seconds_count{route_family="openai"} 3');
  });

  it('bounds the upstream label to the configured names', async () => {
    const m = createGatewayMetrics({ defaultMetrics: false, upstreams: ['ollama-a'] });
    m.observeUpstream('ollama-a', 'success');
    m.observeUpstream('http://attacker.example', 'connect_error');
    const text = await m.registry.metrics();
    expect(text).toContain('fluxgate_upstream_requests_total{upstream="ollama-a",outcome="success"} 1');
    expect(text).toContain('fluxgate_upstream_requests_total{upstream="other",outcome="connect_error"} 1');
    expect(text).not.toContain('attacker');
  });

  it('computes the pending-buckets gauge at scrape time', async () => {
    const m = createGatewayMetrics({ defaultMetrics: false });
    let pending = 7;
    m.observePendingBuckets(() => pending);
    expect(await m.registry.metrics()).toContain('fluxgate_counter_pending_buckets 7');
    pending = 3;
    expect(await m.registry.metrics()).toContain('fluxgate_counter_pending_buckets 3');
  });

  it('zero-initialises every auth failure reason', async () => {
    const text = await createGatewayMetrics({ defaultMetrics: false }).registry.metrics();
    for (const reason of ['missing', 'malformed', 'unknown', 'revoked', 'suspended', 'store_unavailable']) {
      expect(text).toContain(`fluxgate_auth_failures_total{reason="${reason}"} 0`);
    }
  });
});

describe('labels', () => {
  it('maps statuses and paths to bounded sets', () => {
    expect([100, 204, 302, 429, 599, 0, 999].map(statusClass)).toEqual(['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted', 'aborted']);
    expect(routeFamilyOf('/v1/chat/completions')).toBe('openai');
    expect(routeFamilyOf('/api/chat')).toBe('ollama');
    expect(routeFamilyOf('/portal/login')).toBe('portal');
    expect(routeFamilyOf('/dns-query')).toBe('dns');
    expect(routeFamilyOf('/readyz')).toBe('health');
    expect(routeFamilyOf('/assets/app.js')).toBe('static');
    expect(routeFamilyOf('/%00weird?x')).toBe('other');
  });
});

describe('JSON snapshot', () => {
  it('gives counters as series and histograms as count, sum and quantiles', async () => {
    const m = createGatewayMetrics({ defaultMetrics: false });
    for (let i = 0; i < 100; i++) m.observeRequest('openai', 200, i < 90 ? 0.05 : 4);
    m.openStreams.set(3);
    const snap = await metricsSnapshot(m.registry, () => 1234);
    expect(snap.at).toBe(1234);
    expect(snap.metrics.fluxgate_open_streams).toEqual({ type: 'gauge', help: expect.any(String), series: [{ labels: {}, value: 3 }] });
    expect(snap.metrics.fluxgate_http_requests_total?.series).toContainEqual({
      labels: { route_family: 'openai', status_class: '2xx' },
      value: 100,
    });
    const h = snap.metrics.fluxgate_request_duration_seconds;
    expect(h?.type).toBe('histogram');
    const series = h?.type === 'histogram' ? h.series : [];
    expect(series).toHaveLength(1);
    expect(series[0]).toMatchObject({ labels: { route_family: 'openai' }, count: 100 });
    expect(series[0]!.sum).toBeCloseTo(90 * 0.05 + 10 * 4);
    expect(series[0]!.p50).toBeGreaterThan(0.025);
    expect(series[0]!.p50).toBeLessThanOrEqual(0.05);
    expect(series[0]!.p99).toBeGreaterThan(2.5);
    expect(series[0]!.p99).toBeLessThanOrEqual(5);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it('estimates quantiles like histogram_quantile', () => {
    const buckets = [
      [1, 50],
      [2, 100],
      [Number.POSITIVE_INFINITY, 100],
    ] as const;
    expect(quantile(buckets, 100, 0.5)).toBe(1);
    expect(quantile(buckets, 100, 0.75)).toBe(1.5);
    expect(
      quantile(
        [
          [1, 0],
          [Number.POSITIVE_INFINITY, 10],
        ],
        10,
        0.5,
      ),
    ).toBe(1);
    expect(quantile(buckets, 0, 0.5)).toBeNull();
  });
});
