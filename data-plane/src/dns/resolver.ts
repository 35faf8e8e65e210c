/**
 * The data plane's resolver (DESIGN §3): local overrides (and names delegated to the system
 * resolver, system-names.ts), then the cache, then the DoH upstreams; concurrent lookups of one
 * (name, type) share one upstream query; answers for names the operator did not list pass the
 * SSRF guard.
 *
 * Family preference (`family`, default 'ipv4first'): `lookup` asks for the preferred family and
 * only asks for the other when the first has no address, and hands undici one family. undici's
 * DNS interceptor alternates families request by request when given both, and falls back only
 * on ECONNREFUSED/ETIMEDOUT (lib/interceptor/dns.js), so on a host without an IPv6 route every
 * other request would fail with ENETUNREACH. 'ipv6first' is the mirror image; 'ipv4only' and
 * 'ipv6only' never ask for the other family. A caller's `dualStack: false` + `affinity` (undici
 * interceptor options) wins over the preference.
 */
import type { interceptors } from 'undici';
import { createAddressPolicy, type AddressPolicy, type BlockedRange } from './address-policy.js';
import { createQueryAnswerer, type QueryAnswer } from './answer.js';
import { DnsCache } from './cache.js';
import type { DnsUpstream } from './doh-client.js';
import { DnsBlockedError, DnsNotFoundError, DnsTemporaryError } from './errors.js';
import type { DnsMetrics, LookupSource } from './metrics.js';
import type { Overrides } from './overrides.js';
import { createRecordLayer, type Found } from './record-layer.js';
import { addressesIn, canonicalName, type AddressType, type Rcode } from './records.js';
import type { SystemNames } from './system-names.js';

/** The `lookup` option of undici's `interceptors.dns` (same type as proxy/pool.ts DnsLookup). */
export type DnsLookup = NonNullable<NonNullable<Parameters<typeof interceptors.dns>[0]>['lookup']>;

export type FamilyPreference = 'ipv4first' | 'ipv6first' | 'ipv4only' | 'ipv6only';

export interface ResolverOptions {
  overrides: Overrides;
  /** Names delegated to the system resolver (DNS_SYSTEM_NAMES), consulted after the overrides. */
  system?: SystemNames | null;
  /** Null: only overrides answer; every other name is a temporary failure. */
  upstream: DnsUpstream | null;
  cache?: DnsCache;
  /** SSRF guard for names that are not overrides. Default: block every guarded range. */
  policy?: AddressPolicy;
  family?: FamilyPreference;
  metrics?: DnsMetrics | null;
  /** A background (serve-stale) refresh failed; the stale answer keeps being served. */
  onRefreshError?: (err: unknown, name: string, type: string) => void;
}

export interface Resolution {
  addresses: string[];
  /** Seconds the answer may be used. */
  ttl: number;
  /** NOERROR with no addresses is NODATA; REFUSED: an invalid name or a blocked answer. */
  rcode: Rcode;
  source: LookupSource | null;
  blocked?: { address: string; range: BlockedRange };
}

export type { Found } from './record-layer.js';

export interface Resolver {
  resolve(name: string, type: AddressType): Promise<Resolution>;
  /** For `interceptors.dns({ lookup })`: addresses with TTLs in milliseconds, as undici expects. */
  lookup: DnsLookup;
  /**
   * One RFC 1035 message in, one out, answered as the gateway sees names (overrides, system
   * names, the SSRF guard). Not the public /dns-query answer: that is public-resolver.ts.
   */
  answerQuery(packet: Uint8Array): Promise<QueryAnswer>;
  readonly cache: DnsCache;
  close(): Promise<void>;
}

const FAMILY_ORDER: Record<FamilyPreference, readonly AddressType[]> = {
  ipv4first: ['A', 'AAAA'],
  ipv6first: ['AAAA', 'A'],
  ipv4only: ['A'],
  ipv6only: ['AAAA'],
};

export function createResolver(opts: ResolverOptions): Resolver {
  const cache = opts.cache ?? new DnsCache();
  const policy = opts.policy ?? createAddressPolicy();
  const metrics = opts.metrics ?? null;
  const upstream = opts.upstream;
  const system = opts.system ?? null;
  const records = createRecordLayer({ upstream, cache, metrics, onRefreshError: opts.onRefreshError });

  const resolve = async (rawName: string, type: AddressType): Promise<Resolution> => {
    const name = canonicalName(rawName);
    if (name === null) return { addresses: [], ttl: 0, rcode: 'REFUSED', source: null };
    const local = opts.overrides.match(name);
    if (local !== null) {
      if (local.kind === 'unavailable') return { addresses: [], ttl: 0, rcode: 'SERVFAIL', source: null };
      metrics?.lookups.labels('override').inc();
      if (local.kind === 'nxdomain') return { addresses: [], ttl: local.ttl, rcode: 'NXDOMAIN', source: 'override' };
      return { addresses: [...(type === 'A' ? local.v4 : local.v6)], ttl: local.ttl, rcode: 'NOERROR', source: 'override' };
    }
    if (system?.matches(name)) {
      const r = await system.resolve(name, type);
      if (r.rcode === 'SERVFAIL') return { ...r, source: null };
      metrics?.lookups.labels('system').inc();
      return { ...r, source: 'system' };
    }
    let found: Found;
    try {
      found = await records(name, type);
    } catch {
      return { addresses: [], ttl: 0, rcode: 'SERVFAIL', source: null };
    }
    metrics?.lookups.labels(found.source).inc();
    const addresses = addressesIn(found.set.answers, name, type).map((a) => a.address);
    for (const address of addresses) {
      const range = policy.blocked(address);
      if (range !== null) {
        metrics?.blockedAnswers.labels(range).inc();
        return { addresses: [], ttl: found.ttl, rcode: 'REFUSED', source: found.source, blocked: { address, range } };
      }
    }
    return { addresses, ttl: found.ttl, rcode: found.set.rcode, source: found.source };
  };

  const order = (o: { dualStack?: boolean; affinity?: 4 | 6 | null }): readonly AddressType[] => {
    if (o.dualStack === false) return [o.affinity === 6 ? 'AAAA' : 'A'];
    const preferred = FAMILY_ORDER[opts.family ?? 'ipv4first'];
    if (o.affinity === 4 || o.affinity === 6) {
      const first: AddressType = o.affinity === 4 ? 'A' : 'AAAA';
      return [first, ...preferred.filter((t) => t !== first)];
    }
    return preferred;
  };

  const lookupAll = async (hostname: string, types: readonly AddressType[]) => {
    let failure: Error | null = null;
    for (const type of types) {
      const r = await resolve(hostname, type);
      if (r.blocked) throw new DnsBlockedError(hostname, r.blocked.address, r.blocked.range);
      if (r.addresses.length > 0) {
        const family: 4 | 6 = type === 'A' ? 4 : 6;
        // Fresh objects every time: undici stamps `timestamp` and clamps `ttl` on them in place.
        return r.addresses.map((address) => ({ address, family, ttl: r.ttl * 1000 }));
      }
      if (r.rcode === 'NXDOMAIN' || r.rcode === 'REFUSED') throw new DnsNotFoundError(hostname, r.rcode);
      failure ??= r.rcode === 'NOERROR' ? new DnsNotFoundError(hostname, 'NOERROR') : new DnsTemporaryError(hostname, r.rcode);
    }
    throw failure ?? new DnsNotFoundError(hostname, 'NOERROR');
  };

  const lookup: DnsLookup = (origin, options, cb) => {
    const o = options as { dualStack?: boolean; affinity?: 4 | 6 | null };
    lookupAll(origin.hostname, order(o)).then(
      (addresses) => cb(null, addresses),
      (err: Error) => cb(err, []),
    );
  };

  const answerQuery = createQueryAnswerer({ overrides: opts.overrides, system, policy, metrics, records });

  return {
    resolve,
    lookup,
    answerQuery,
    cache,
    async close() {
      await upstream?.close();
    },
  };
}
