/**
 * Prometheus metrics of the DNS resolvers and the /dns-query endpoint, registered on the
 * process's own Registry (STYLE practice 6). Labels are bounded: `server` is the configured
 * index of a DoH upstream ("0", "1", …), never a URL or a queried name; `resolver` is
 * `internal` (the gateway's own lookups) or `public` (/dns-query, public-resolver.ts), which
 * have separate caches and upstream connections and so separate numbers.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BlockedRange } from './address-policy.js';

/** `system`: a DNS_SYSTEM_NAMES name, answered by the platform resolver (system-names.ts). */
export const LOOKUP_SOURCES = ['override', 'system', 'cache', 'upstream', 'stale'] as const;
export type LookupSource = (typeof LOOKUP_SOURCES)[number];

export const ENDPOINT_OUTCOMES = [
  'answered',
  'rate_limited',
  'bad_request',
  'unsupported_media_type',
  'not_acceptable',
  'too_large',
] as const;
export type EndpointOutcome = (typeof ENDPOINT_OUTCOMES)[number];

export const RESOLVER_KINDS = ['internal', 'public'] as const;
export type ResolverKind = (typeof RESOLVER_KINDS)[number];

interface Inc {
  inc(): void;
}
interface Labelled<L extends string, T = Inc> {
  labels(value: L): T;
}

/** One resolver's view: the `resolver` label is already applied. */
export interface DnsMetrics {
  lookups: Labelled<LookupSource>;
  cacheHits: Labelled<'fresh' | 'stale'>;
  cacheMisses: Inc;
  upstreamLatency: Labelled<string, { observe(seconds: number): void }>;
  upstreamFailures: Labelled<string>;
  /** Only the internal resolver guards addresses. */
  blockedAnswers: Labelled<BlockedRange>;
  /** Only the public resolver has an endpoint. */
  endpointRequests: Labelled<EndpointOutcome>;
}

export type DnsMetricsSet = Record<ResolverKind, DnsMetrics>;

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface DnsMetricsOptions {
  servers: number;
  /** Entries in each resolver's cache, read at scrape time. */
  cacheSize?: Partial<Record<ResolverKind, () => number>>;
}

export function createDnsMetrics(registry: Registry, opts: DnsMetricsOptions): DnsMetricsSet {
  const lookups = new Counter({
    name: 'fluxgate_dns_lookups_total',
    help: "Answered name lookups (the gateway's own and /dns-query) by resolver and where the answer came from.",
    labelNames: ['resolver', 'source'] as const,
    registers: [registry],
  });
  const cacheHits = new Counter({
    name: 'fluxgate_dns_cache_hits_total',
    help: 'DNS cache hits; state=stale means served past expiry while refreshing (RFC 8767).',
    labelNames: ['resolver', 'state'] as const,
    registers: [registry],
  });
  const cacheMisses = new Counter({
    name: 'fluxgate_dns_cache_misses_total',
    help: 'DNS cache misses.',
    labelNames: ['resolver'] as const,
    registers: [registry],
  });
  const upstreamLatency = new Histogram({
    name: 'fluxgate_dns_upstream_duration_seconds',
    help: 'Time for one DoH upstream exchange that produced a DNS answer, by resolver and configured server index.',
    labelNames: ['resolver', 'server'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstreamFailures = new Counter({
    name: 'fluxgate_dns_upstream_failures_total',
    help: 'DoH upstream exchanges that failed (timeout, connection, HTTP status, malformed answer), by resolver and configured server index.',
    labelNames: ['resolver', 'server'] as const,
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
  const sizes = opts.cacheSize ?? {};
  if (Object.keys(sizes).length > 0) {
    new Gauge({
      name: 'fluxgate_dns_cache_entries',
      help: "Entries in each resolver's DNS cache (fresh and stale).",
      labelNames: ['resolver'] as const,
      registers: [registry],
      collect() {
        for (const r of RESOLVER_KINDS) {
          const size = sizes[r];
          if (size) this.labels(r).set(size());
        }
      },
    });
  }

  const view = (resolver: ResolverKind): DnsMetrics => ({
    lookups: { labels: (source) => lookups.labels(resolver, source) },
    cacheHits: { labels: (state) => cacheHits.labels(resolver, state) },
    cacheMisses: cacheMisses.labels(resolver),
    upstreamLatency: { labels: (server) => upstreamLatency.labels(resolver, server) },
    upstreamFailures: { labels: (server) => upstreamFailures.labels(resolver, server) },
    blockedAnswers: { labels: (range) => blockedAnswers.labels(range) },
    endpointRequests: { labels: (outcome) => endpointRequests.labels(outcome) },
  });
  // Pre-create the bounded series so dashboards see zeros instead of gaps (internal first, so
  // a lookup by partial labels finds the gateway's own series).
  for (const r of RESOLVER_KINDS) {
    for (const s of LOOKUP_SOURCES) lookups.labels(r, s);
    for (let i = 0; i < opts.servers; i++) upstreamFailures.labels(r, String(i));
    cacheMisses.labels(r);
  }
  for (const o of ENDPOINT_OUTCOMES) endpointRequests.labels(o);
  return { internal: view('internal'), public: view('public') };
}
