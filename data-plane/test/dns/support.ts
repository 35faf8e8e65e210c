/** Builders shared by the DNS integration tests. */
import { Registry } from 'prom-client';
import { createAddressPolicy, type AddressPolicyOptions } from '../../src/dns/address-policy.js';
import { DnsCache, type CacheOptions } from '../../src/dns/cache.js';
import { DohClient, type DohClientOptions } from '../../src/dns/doh-client.js';
import { createDnsMetrics, type DnsMetrics } from '../../src/dns/metrics.js';
import { createOverrides, type OverridesOptions } from '../../src/dns/overrides.js';
import { createResolver, type FamilyPreference, type Resolver } from '../../src/dns/resolver.js';
import { createSystemNames } from '../../src/dns/system-names.js';
import type { DohUpstream } from './doh-upstream.js';

export interface Built {
  resolver: Resolver;
  client: DohClient | null;
  metrics: DnsMetrics;
  registry: Registry;
}

export interface BuildOptions {
  upstreams?: readonly DohUpstream[];
  /** Extra server URLs placed before the mock upstreams (e.g. a dead port). */
  leadingUrls?: readonly string[];
  client?: Partial<DohClientOptions>;
  cache?: Partial<CacheOptions>;
  overrides?: OverridesOptions;
  policy?: AddressPolicyOptions;
  family?: FamilyPreference;
  /** DNS_SYSTEM_NAMES patterns (real getaddrinfo). */
  systemNames?: readonly string[];
}

export function buildResolver(o: BuildOptions = {}): Built {
  const registry = new Registry();
  const urls = [...(o.leadingUrls ?? []), ...(o.upstreams ?? []).map((u) => u.url)];
  const cache = new DnsCache(o.cache);
  const metrics = createDnsMetrics(registry, { servers: urls.length, cacheSize: { internal: () => cache.size } }).internal;
  const ca = (o.upstreams ?? []).map((u) => u.ca);
  const client = urls.length === 0 ? null : new DohClient({ servers: urls, tls: { ca }, timeoutMs: 1_000, metrics, ...o.client });
  const resolver = createResolver({
    overrides: createOverrides(o.overrides),
    system: o.systemNames ? createSystemNames(o.systemNames) : null,
    upstream: client,
    cache,
    policy: createAddressPolicy(o.policy),
    metrics,
    ...(o.family ? { family: o.family } : {}),
  });
  return { resolver, client, metrics, registry };
}

/** Value of one counter series (0 when absent). */
export async function counterValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val));
  return match?.value ?? 0;
}
