import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PlainGauge, SlotCounter, SlotHistogram } from './slot-metrics.js';

/**
 * Prometheus metrics of one data-plane process, on a Registry of its own (never prom-client's
 * global one). Labels are bounded sets only: no key ids, users or IPs — per-key numbers live in
 * the Redis counters (metrics/counters.ts).
 */

export const ROUTE_FAMILIES = ['openai', 'ollama', 'portal', 'dns', 'health', 'static', 'admin', 'other'] as const;
export type RouteFamily = (typeof ROUTE_FAMILIES)[number];

/** `aborted`: the client went away before a status was sent. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export const UPSTREAM_OUTCOMES = ['success', 'http_error', 'connect_error', 'timeout', 'aborted', 'circuit_open', 'retried'] as const;
export type UpstreamOutcome = (typeof UPSTREAM_OUTCOMES)[number];

export const AUTH_FAILURE_LABELS = ['missing', 'malformed', 'unknown', 'revoked', 'suspended', 'store_unavailable', 'throttled'] as const;
export type AuthFailureLabel = (typeof AUTH_FAILURE_LABELS)[number];

export function statusClass(status: number): StatusClass {
  if (status >= 100 && status < 600) return `${Math.floor(status / 100)}xx` as StatusClass;
  return 'aborted';
}

/** Index of statusClass(status) in STATUS_CLASSES, without building the label. */
function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : STATUS_CLASSES.length - 1;
}

export function routeFamilyOf(path: string): RouteFamily {
  if (path.startsWith('/v1/') || path === '/v1') return 'openai';
  if (path.startsWith('/api/')) return 'ollama';
  if (path.startsWith('/portal/')) return 'portal';
  if (path === '/dns-query') return 'dns';
  if (path === '/healthz' || path === '/health' || path === '/readyz') return 'health';
  if (path.startsWith('/admin/') || path === '/metrics') return 'admin';
  if (path === '/' || /^\/[\w./-]*$/.test(path)) return 'static';
  return 'other';
}

// Inference requests run from milliseconds (models list) to minutes (long generations).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface GatewayMetrics {
  registry: Registry;
  httpRequests: Counter<'route_family' | 'status_class'>;
  /** Observed through observeRequest (plain arrays; prom-client reads them at scrape time). */
  requestDuration: SlotHistogram<'route_family'>;
  ttfb: SlotHistogram<'route_family'>;
  upstreamRequests: Counter<'upstream' | 'outcome'>;
  openStreams: Gauge;
  authFailures: Counter<'reason'>;
  counterFlushFailures: Counter;
  counterDroppedSamples: Counter;
  counterPendingBuckets: Gauge;
  /** One finished request: counts it and observes its duration (and TTFB when known). */
  observeRequest(family: RouteFamily, status: number, durationSeconds: number, ttfbSeconds?: number): void;
  /** Upstream attempt outcome; names outside the configured upstreams are reported as `other`. */
  observeUpstream(upstream: string, outcome: UpstreamOutcome): void;
  /** Sets where fluxgate_counter_pending_buckets reads its value at scrape time. */
  observePendingBuckets(probe: () => number): void;
}

export interface GatewayMetricsOptions {
  registry?: Registry;
  /** Default process / Node.js metrics (process_cpu_seconds_total, nodejs_heap_*, …). */
  defaultMetrics?: boolean;
  /** Configured upstream names: the only values the `upstream` label takes (plus `other`). */
  upstreams?: readonly string[];
}

export function createGatewayMetrics(opts: GatewayMetricsOptions = {}): GatewayMetrics {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  let pendingProbe: () => number = () => 0;
  const knownUpstreams = opts.upstreams ? new Set(opts.upstreams) : null;

  // The per-request metrics are slot metrics (slot-metrics.ts): a request adds to arrays indexed
  // by small integers, and the registry sees the same series and values at scrape time.
  const httpRequestSlots = new SlotCounter({
    name: 'fluxgate_http_requests_total',
    help: 'Requests answered on the public listener, by route family and status class.',
    labelNames: ['route_family', 'status_class'] as const,
    registers,
  });
  const httpRequests = httpRequestSlots.metric;
  const requestDuration = new SlotHistogram({
    name: 'fluxgate_request_duration_seconds',
    help: 'Time from receiving a request to the end of its response.',
    labelNames: ['route_family'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const ttfb = new SlotHistogram({
    name: 'fluxgate_ttfb_seconds',
    help: 'Time from receiving a request to the first response body byte sent.',
    labelNames: ['route_family'] as const,
    buckets: TTFB_BUCKETS,
    registers,
  });
  const upstreamSlots = new SlotCounter({
    name: 'fluxgate_upstream_requests_total',
    help: 'Attempts against upstream model servers, by upstream and outcome.',
    labelNames: ['upstream', 'outcome'] as const,
    registers,
  });
  const upstreamRequests = upstreamSlots.metric;
  const openStreams = new PlainGauge({ name: 'fluxgate_open_streams', help: 'Responses being streamed right now.', registers });
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
  const counterPendingBuckets = new Gauge({
    name: 'fluxgate_counter_pending_buckets',
    help: 'Usage counter buckets aggregated in memory and not yet written to Redis.',
    registers,
    collect() {
      this.set(pendingProbe());
    },
  });

  /** A route family's slots: requests by status class (STATUS_CLASSES order), the histograms. */
  const familySlots = (family: string) => ({
    requests: STATUS_CLASSES.map((c) => httpRequestSlots.slot({ route_family: family, status_class: c })),
    duration: requestDuration.slot({ route_family: family }),
    ttfb: ttfb.slot({ route_family: family }),
  });
  const families = new Map(ROUTE_FAMILIES.map((f) => [f as string, familySlots(f)]));
  const upstreamSlotIds = new Map<string, Map<string, number>>();

  // Zero-initialise the bounded label sets so rates exist before the first event.
  for (const reason of AUTH_FAILURE_LABELS) authFailures.inc({ reason }, 0);

  return {
    registry,
    httpRequests,
    requestDuration,
    ttfb,
    upstreamRequests,
    openStreams,
    authFailures,
    counterFlushFailures,
    counterDroppedSamples,
    counterPendingBuckets,
    observeRequest(family, status, durationSeconds, ttfbSeconds) {
      let f = families.get(family);
      if (f === undefined) families.set(family, (f = familySlots(family)));
      httpRequestSlots.inc(f.requests[statusClassIndex(status)]!);
      // prom-client threw on a duration that is not a finite number, before the TTFB.
      if (!Number.isFinite(durationSeconds)) return;
      requestDuration.observe(f.duration, durationSeconds);
      if (ttfbSeconds !== undefined) ttfb.observe(f.ttfb, ttfbSeconds);
    },
    observeUpstream(upstream, outcome) {
      const name = knownUpstreams === null || knownUpstreams.has(upstream) ? upstream : 'other';
      let byOutcome = upstreamSlotIds.get(name);
      if (!byOutcome) upstreamSlotIds.set(name, (byOutcome = new Map()));
      let slot = byOutcome.get(outcome);
      if (slot === undefined) byOutcome.set(outcome, (slot = upstreamSlots.slot({ upstream: name, outcome })));
      upstreamSlots.inc(slot);
    },
    observePendingBuckets(probe) {
      pendingProbe = probe;
    },
  };
}
