/**
 * The resolver behind the public, unauthenticated /dns-query endpoint (DESIGN §3): public
 * resolution only.
 *
 * - Every name the gateway answers itself is internal and does not exist here: DNS_OVERRIDES,
 *   DNS_HOSTS_FILE, DNS_SYSTEM_NAMES (exact and `*.suffix`), `localhost` and the names under it,
 *   `.invalid`, and CLUSTER_DOMAIN with its replicas. They answer NXDOMAIN at once, the question
 *   echoed, with a SOA of the root zone for the negative TTL (RFC 2308 §3, §5): we speak for no
 *   zone in between, and Google Public DNS answers `localhost.` the same way. Never forwarded:
 *   the public upstreams would learn the gateway's internal names. (RFC 6761 §6.3 lets a caching
 *   server answer `localhost` with the loopback addresses instead; a hosts entry can redefine
 *   localhost names, so they stay internal like the rest.) Zones are internal whole (the
 *   cluster domain, `*.suffix` system names, localhost); a name below an exact hosts entry is
 *   not, and resolves publicly like any other (RFC 8020 lets a client infer otherwise from our
 *   NXDOMAIN; an operator who overrides a public apex accepts that).
 * - Its own cache and its own DoH client (own connections, own server backoff), sharing only
 *   configuration with the gateway's resolver: a client can neither read what the gateway
 *   resolved (cache snooping through TTLs and timing) nor evict or fill the gateway's cache,
 *   nor put the gateway's DoH servers into backoff.
 * - No SSRF guard: the answers are public DNS data and the gateway connects to none of them.
 *   A public name may legitimately point at a private or loopback address (split-horizon
 *   records, `localtest.me`-style names); public resolvers answer those, and so does this one.
 *   The guard stays on the gateway's own connections (resolver.ts).
 */
import { createQueryAnswerer, type QueryAnswer } from './answer.js';
import { DnsCache } from './cache.js';
import type { DnsUpstream } from './doh-client.js';
import type { DnsMetrics } from './metrics.js';
import type { Overrides } from './overrides.js';
import { createRecordLayer } from './record-layer.js';
import type { SystemNames } from './system-names.js';

export interface PublicResolverOptions {
  /** True for a (canonical) name the gateway answers itself; see `internalNames`. */
  isInternal(name: string): boolean;
  /** Null: only internal names have an answer; every other name is SERVFAIL. */
  upstream: DnsUpstream | null;
  cache?: DnsCache;
  metrics?: DnsMetrics | null;
  /** How long clients may cache the NXDOMAIN of an internal name. Default 60 s. */
  negativeTtlSec?: number;
  onRefreshError?: (err: unknown, name: string, type: string) => void;
}

export interface PublicResolver {
  /** One RFC 1035 message in, one out. */
  answerQuery(packet: Uint8Array): Promise<QueryAnswer>;
  readonly cache: DnsCache;
  close(): Promise<void>;
}

/** The gateway's internal names: whatever its overrides or DNS_SYSTEM_NAMES answer. */
export function internalNames(overrides: Overrides, system: SystemNames | null): (name: string) => boolean {
  return (name) => overrides.match(name) !== null || (system?.matches(name) ?? false);
}

export function createPublicResolver(opts: PublicResolverOptions): PublicResolver {
  const cache = opts.cache ?? new DnsCache();
  const ttl = opts.negativeTtlSec ?? 60;
  const metrics = opts.metrics ?? null;
  const records = createRecordLayer({ upstream: opts.upstream, cache, metrics, onRefreshError: opts.onRefreshError });
  const hidden: Overrides = { match: (name) => (opts.isInternal(name) ? { kind: 'nxdomain', ttl, zone: '' } : null) };
  return {
    answerQuery: createQueryAnswerer({ overrides: hidden, system: null, policy: null, metrics, records }),
    cache,
    async close() {
      await opts.upstream?.close();
    },
  };
}
