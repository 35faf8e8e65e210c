import { networkInterfaces } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { RouteHandler } from '../routes/context.js';
import { createAddressPolicy } from './address-policy.js';
import { DnsCache } from './cache.js';
import { DohClient, parseDohUpstreams, type DohClientOptions } from './doh-client.js';
import { dnsQueryRoute } from './endpoint.js';
import { createDnsMetrics, type DnsMetrics } from './metrics.js';
import { createOverrides, readHostsFile } from './overrides.js';
import { createPublicResolver, internalNames, type PublicResolver } from './public-resolver.js';
import { registerReplica, watchReplicas } from './replica-registry.js';
import { createResolver, type FamilyPreference, type Resolver } from './resolver.js';
import { createSystemNames } from './system-names.js';

export interface DnsSettings {
  dohUpstreams: string;
  dohTimeoutMs: number;
  overrides: string;
  hostsFile: string | undefined;
  allowPrivate: boolean;
  allowCidrs: readonly string[];
  systemNames: readonly string[];
  family: FamilyPreference;
  rateLimitRps: number;
  rateLimitBurst: number;
  clusterDomain: string;
  heartbeatMs: number;
  /** This replica's address for CLUSTER_DOMAIN answers. */
  replicaAddress: string | undefined;
  replicaId: string;
  publicHost: string;
}

export interface DnsStackDeps {
  redis: Redis;
  registry: Registry;
  log: Logger;
  /** Extra trust for the DoH upstreams' certificates (tests: a throwaway CA). */
  dohTls?: DohClientOptions['tls'];
}

export interface DnsStack {
  /** The gateway's own resolver: every upstream connection (overrides, system names, SSRF guard). */
  resolver: Resolver;
  /** Public names only, for /dns-query (public-resolver.ts). */
  publicResolver: PublicResolver;
  /** GET/POST /dns-query, answered by `publicResolver`, rate-limited per client IP. */
  route: RouteHandler;
  /** Start announcing this replica once its public listener is up. */
  announce(port: number): void;
  stop(): Promise<void>;
}

/** The address other replicas can reach this one on: configured, the bind address, or the first external IPv4. */
function replicaAddress(s: DnsSettings): string {
  if (s.replicaAddress) return s.replicaAddress;
  if (s.publicHost !== '0.0.0.0' && s.publicHost !== '::') return s.publicHost;
  for (const list of Object.values(networkInterfaces())) {
    const v4 = list?.find((i) => i.family === 'IPv4' && !i.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}

/** Runs `build`; a failure is a configuration error whose message starts with `setting`. */
function configured<T>(setting: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    const message = (err as Error).message;
    throw new ConfigError(message.startsWith(setting) ? message : `${setting}: ${message}`, { cause: err });
  }
}

async function readConfiguredHostsFile(path: string): Promise<{ path: string; text: string }> {
  try {
    return await readHostsFile(path);
  } catch (err) {
    throw new ConfigError(`DNS_HOSTS_FILE ${path}: cannot be read (${(err as { code?: string }).code ?? (err as Error).message})`, {
      cause: err,
    });
  }
}

/**
 * Builds the two resolvers, which share only configuration: the gateway's own (every upstream
 * connection) and the public one behind /dns-query, each with its own cache and DoH client;
 * plus the /dns-query route and the replica heartbeat. Bad DNS settings throw ConfigError.
 */
export async function createDnsStack(s: DnsSettings, deps: DnsStackDeps): Promise<DnsStack> {
  const { redis, registry, log } = deps;
  const servers = parseDohUpstreams(s.dohUpstreams);
  const doh = (metrics: DnsMetrics): DohClient | null =>
    servers.length === 0
      ? null
      : configured(
          'DOH_UPSTREAMS',
          () => new DohClient({ servers, timeoutMs: s.dohTimeoutMs, metrics, ...(deps.dohTls ? { tls: deps.dohTls } : {}) }),
        );
  const hostsFile = s.hostsFile ? await readConfiguredHostsFile(s.hostsFile) : null;
  const system = configured('DNS_SYSTEM_NAMES', () => createSystemNames(s.systemNames));
  const policy = configured('DNS_ALLOW_CIDRS', () => createAddressPolicy({ allowPrivate: s.allowPrivate, allow: s.allowCidrs }));
  const internalCache = new DnsCache();
  const publicCache = new DnsCache();
  const metrics = createDnsMetrics(registry, {
    servers: servers.length,
    cacheSize: { internal: () => internalCache.size, public: () => publicCache.size },
  });
  const internalUpstream = doh(metrics.internal);
  const publicUpstream = doh(metrics.public);

  let lastWatchError = 0;
  const replicas = watchReplicas(redis, {
    // Fires every refresh while Redis is away: log at most once a minute.
    onError: (err) => {
      if (Date.now() - lastWatchError < 60_000) return;
      lastWatchError = Date.now();
      log.warn({ err: (err as Error).message }, 'cannot read the replica registry; serving the last known replicas');
    },
  });
  let overrides;
  try {
    overrides = createOverrides({ hosts: s.overrides, hostsFile, clusterDomain: s.clusterDomain, replicas });
  } catch (err) {
    replicas.stop();
    await Promise.all([internalUpstream?.close(), publicUpstream?.close()]);
    // The message names its setting: DNS_OVERRIDES (entry), DNS_HOSTS_FILE (path, line) or CLUSTER_DOMAIN.
    throw new ConfigError((err as Error).message, { cause: err });
  }
  const onRefreshError = (err: unknown, name: string): void =>
    log.debug({ err: (err as Error).message, name }, 'dns refresh failed; serving stale');
  const resolver = createResolver({
    overrides,
    system,
    upstream: internalUpstream,
    cache: internalCache,
    policy,
    family: s.family,
    metrics: metrics.internal,
    onRefreshError,
  });
  const publicResolver = createPublicResolver({
    isInternal: internalNames(overrides, system),
    upstream: publicUpstream,
    cache: publicCache,
    metrics: metrics.public,
    onRefreshError,
  });
  let stopBeat: ((opts?: { deregister?: boolean }) => Promise<void>) | null = null;
  return {
    resolver,
    publicResolver,
    route: dnsQueryRoute(publicResolver, { rateLimit: { ratePerSec: s.rateLimitRps, burst: s.rateLimitBurst }, metrics: metrics.public }),
    announce(port) {
      stopBeat = registerReplica(redis, { id: s.replicaId, address: replicaAddress(s), port }, s.heartbeatMs, {
        onError: (err) => log.debug({ err: (err as Error).message }, 'replica heartbeat failed'),
      });
    },
    async stop() {
      await stopBeat?.();
      replicas.stop();
      await Promise.all([resolver.close(), publicResolver.close()]);
    },
  };
}
