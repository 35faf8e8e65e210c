/**
 * Prometheus metrics of the DNS resolver and the /dns-query endpoint, registered on the
 * process's own Registry (STYLE practice 6). Labels are bounded: `server` is the configured
 * index of a DoH upstream ("0", "1", …), never a URL or a queried name.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** `system`: a DNS_SYSTEM_NAMES name, answered by the platform resolver (system-names.ts). */
export const LOOKUP_SOURCES = ['override', 'system', 'cache', 'upstream', 'stale'] as const;
export type LookupSource = (typeof LOOKUP_SOURCES)[number];

export const ENDPOINT_OUTCOMES = ['answered', 'rate_limited', 'bad_request', 'unsupported_media_type', 'not_acceptable', 'too_large'] as const;
export type EndpointOutcome = (typeof ENDPOINT_OUTCOMES)[number];

export interface DnsMetrics {
  lookups: Counter<'source'>;
  cacheHits: Counter<'state'>;
  cacheMisses: Counter;
  upstreamLatency: Histogram<'server'>;
  upstreamFailures: Counter<'server'>;
  blockedAnswers: Counter<'range'>;
  endpointRequests: Counter<'outcome'>;
}

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createDnsMetrics(registry: Registry, opts: { servers: number; cacheSize?: () => number }): DnsMetrics {
  const lookups = new Counter({
    name: 'fluxgate_dns_lookups_total',
    help: 'Answered name lookups (resolver and /dns-query) by where the answer came from.',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const cacheHits = new Counter({
    name: 'fluxgate_dns_cache_hits_total',
    help: 'DNS cache hits; state=stale means served past expiry while refreshing (RFC 8767).',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const cacheMisses = new Counter({ name: 'fluxgate_dns_cache_misses_total', help: 'DNS cache misses.', registers: [registry] });
  const upstreamLatency = new Histogram({
    name: 'fluxgate_dns_upstream_duration_seconds',
    help: 'Time for one DoH upstream exchange that produced a DNS answer, by configured server index.',
    labelNames: ['server'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstreamFailures = new Counter({
    name: 'fluxgate_dns_upstream_failures_total',
    help: 'DoH upstream exchanges that failed (timeout, connection, HTTP status, malformed answer), by configured server index.',
    labelNames: ['server'] as const,
    registers: [registry],
  });
  const blockedAnswers = new Counter({
    name: 'fluxgate_dns_blocked_answers_total',
    help: 'Answers refused by the SSRF guard, by address range.',
    labelNames: ['range'] as const,
    registers: [registry],
  });
  const endpointRequests = new Counter({
    name: 'fluxgate_dns_endpoint_requests_total',
    help: 'Requests to /dns-query by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  // Pre-create the bounded series so dashboards see zeros instead of gaps.
  for (const s of LOOKUP_SOURCES) lookups.labels(s);
  for (let i = 0; i < opts.servers; i++) upstreamFailures.labels(String(i));
  for (const o of ENDPOINT_OUTCOMES) endpointRequests.labels(o);
  const cacheSize = opts.cacheSize;
  if (cacheSize) {
    new Gauge({
      name: 'fluxgate_dns_cache_entries',
      help: 'Entries in the DNS cache (fresh and stale).',
      registers: [registry],
      collect() {
        this.set(cacheSize());
      },
    });
  }
  return { lookups, cacheHits, cacheMisses, upstreamLatency, upstreamFailures, blockedAnswers, endpointRequests };
}
