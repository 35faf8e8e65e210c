/**
 * The record layer under both resolvers: the cache (stale while refreshing, RFC 8767), then
 * the DoH upstreams; concurrent lookups of one (type, name) share one upstream query. Each
 * resolver has its own layer, so its own cache and its own upstream connections.
 */
import { DnsCache, cacheTtl } from './cache.js';
import type { DnsUpstream } from './doh-client.js';
import { DnsTemporaryError } from './errors.js';
import type { DnsMetrics } from './metrics.js';
import type { RecordSet } from './records.js';

/** An answer from the record layer (cache or upstream), TTL in seconds. */
export interface Found {
  set: RecordSet;
  ttl: number;
  source: 'cache' | 'stale' | 'upstream';
}

/** `name` is canonical (records.ts). Throws DnsTemporaryError when no upstream answered. */
export type RecordLookup = (name: string, type: string) => Promise<Found> | Found;

export interface RecordLayerOptions {
  /** Null: nothing to ask; every lookup is a temporary failure. */
  upstream: DnsUpstream | null;
  cache: DnsCache;
  metrics?: DnsMetrics | null;
  /** A background (serve-stale) refresh failed; the stale answer keeps being served. */
  onRefreshError?: ((err: unknown, name: string, type: string) => void) | undefined;
}

export function createRecordLayer(opts: RecordLayerOptions): RecordLookup {
  const { upstream, cache } = opts;
  const metrics = opts.metrics ?? null;
  const inflight = new Map<string, Promise<Found>>();

  /** One upstream query per (type, name) at a time; the answer goes into the cache. */
  const ask = (name: string, type: string, key: string): Promise<Found> => {
    const running = inflight.get(key);
    if (running !== undefined) return running;
    if (upstream === null)
      return Promise.reject(new DnsTemporaryError(name, 'SERVFAIL', { cause: new Error('no DoH upstream configured') }));
    const p = upstream.query(name, type).then(
      ({ set, bytes }) => {
        inflight.delete(key);
        const ttl = cacheTtl(set, type, cache.options);
        // An uncacheable answer (negative without SOA) still replaces a stale entry: put(…, 0) drops it.
        cache.put(key, set, ttl ?? 0, bytes);
        return { set, ttl: ttl ?? 0, source: 'upstream' as const };
      },
      (err: unknown) => {
        inflight.delete(key);
        cache.refreshFailed(key);
        throw new DnsTemporaryError(name, (err as { rcode?: string }).rcode ?? 'SERVFAIL', { cause: err });
      },
    );
    inflight.set(key, p);
    return p;
  };

  return (name, type) => {
    const key = `${type} ${name}`;
    const hit = cache.get(key);
    if (hit === null) {
      metrics?.cacheMisses.inc();
      return ask(name, type, key);
    }
    metrics?.cacheHits.labels(hit.stale ? 'stale' : 'fresh').inc();
    if (hit.refresh) ask(name, type, key).catch((err: unknown) => opts.onRefreshError?.(err, name, type));
    return { set: hit.set, ttl: hit.ttl, source: hit.stale ? 'stale' : 'cache' };
  };
}
