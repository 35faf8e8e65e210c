import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  AUTH_FAILURE_LABELS,
  statusClass,
  type GatewayMetricsOptions,
  type RouteFamily,
  type UpstreamOutcome,
} from '../../src/metrics/registry.js';

// Inference requests run from milliseconds (models list) to minutes (long generations).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The gateway metrics as they were before the slot metrics (issue 17): prom-client's own Counter
 * and Histogram, labels hashed on every request. Kept unchanged as the reference the slot
 * metrics must match in /metrics and JSON (metrics-equivalence.test.ts).
 */
export interface ReferenceMetrics {
  registry: Registry;
  openStreams: Gauge;
  authFailures: Counter<'reason'>;
  counterFlushFailures: Counter;
  counterDroppedSamples: Counter;
  observeRequest(family: RouteFamily, status: number, durationSeconds: number, ttfbSeconds?: number): void;
  observeUpstream(upstream: string, outcome: UpstreamOutcome): void;
  observePendingBuckets(probe: () => number): void;
}

export function createReferenceMetrics(opts: GatewayMetricsOptions = {}): ReferenceMetrics {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  let pendingProbe: () => number = () => 0;
  const knownUpstreams = opts.upstreams ? new Set(opts.upstreams) : null;

  const httpRequests = new Counter({
    name: 'fluxgate_http_requests_total',
    help: 'Requests answered on the public listener, by route family and status class.',
    labelNames: ['route_family', 'status_class'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: 'fluxgate_request_duration_seconds',
    help: 'Time from receiving a request to the end of its response.',
    labelNames: ['route_family'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const ttfb = new Histogram({
    name: 'fluxgate_ttfb_seconds',
    help: 'Time from receiving a request to the first response body byte sent.',
    labelNames: ['route_family'] as const,
    buckets: TTFB_BUCKETS,
    registers,
  });
  const upstreamRequests = new Counter({
    name: 'fluxgate_upstream_requests_total',
    help: 'Attempts against upstream model servers, by upstream and outcome.',
    labelNames: ['upstream', 'outcome'] as const,
    registers,
  });
  const openStreams = new Gauge({ name: 'fluxgate_open_streams', help: 'Responses being streamed right now.', registers });
  const authFailures = new Counter({
    name: 'fluxgate_auth_failures_total',
    help: 'Requests refused at API key authentication, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const counterFlushFailures = new Counter({
    name: 'fluxgate_counter_flush_failures_total',
    help: 'Usage counter flushes to Redis that failed (the aggregates are kept for the next flush).',
    registers,
  });
  const counterDroppedSamples = new Counter({
    name: 'fluxgate_counter_dropped_samples_total',
    help: 'Usage samples dropped because too many buckets were pending while Redis was unavailable.',
    registers,
  });
  new Gauge({
    name: 'fluxgate_counter_pending_buckets',
    help: 'Usage counter buckets aggregated in memory and not yet written to Redis.',
    registers,
    collect() {
      this.set(pendingProbe());
    },
  });

  // Zero-initialise the bounded label sets so rates exist before the first event.
  for (const reason of AUTH_FAILURE_LABELS) authFailures.inc({ reason }, 0);

  return {
    registry,
    openStreams,
    authFailures,
    counterFlushFailures,
    counterDroppedSamples,
    observeRequest(family, status, durationSeconds, ttfbSeconds) {
      httpRequests.inc({ route_family: family, status_class: statusClass(status) });
      requestDuration.observe({ route_family: family }, durationSeconds);
      if (ttfbSeconds !== undefined) ttfb.observe({ route_family: family }, ttfbSeconds);
    },
    observeUpstream(upstream, outcome) {
      const name = knownUpstreams === null || knownUpstreams.has(upstream) ? upstream : 'other';
      upstreamRequests.inc({ upstream: name, outcome });
    },
    observePendingBuckets(probe) {
      pendingProbe = probe;
    },
  };
}
