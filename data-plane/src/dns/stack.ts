import { networkInterfaces } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { RouteHandler } from '../routes/context.js';
import { createAddressPolicy } from './address-policy.js';
import { DnsCache } from './cache.js';
import { DohClient, parseDohUpstreams } from './doh-client.js';
import { dnsQueryRoute } from './endpoint.js';
import { createDnsMetrics } from './metrics.js';
import { createOverrides, readHostsFile } from './overrides.js';
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

export interface DnsStack {
  resolver: Resolver;
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

async function readConfiguredHostsFile(path: string): Promise<{ path: string; text: string }> {
  try {
    return await readHostsFile(path);
  } catch (err) {
    throw new ConfigError(`DNS_HOSTS_FILE ${path}: cannot be read (${(err as { code?: string }).code ?? (err as Error).message})`, { cause: err });
  }
}

/** Builds the resolver every upstream connection uses, the /dns-query route and the replica heartbeat. */
export async function createDnsStack(s: DnsSettings, deps: { redis: Redis; registry: Registry; log: Logger }): Promise<DnsStack> {
  const { redis, registry, log } = deps;
  const servers = parseDohUpstreams(s.dohUpstreams);
  const hostsFile = s.hostsFile ? await readConfiguredHostsFile(s.hostsFile) : null;
  const cache = new DnsCache();
  const metrics = createDnsMetrics(registry, { servers: servers.length, cacheSize: () => cache.size });
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
    // The message names its setting: DNS_OVERRIDES (entry), DNS_HOSTS_FILE (path, line) or CLUSTER_DOMAIN.
    throw new ConfigError((err as Error).message, { cause: err });
  }
  const resolver = createResolver({
    overrides,
    system: createSystemNames(s.systemNames),
    upstream: servers.length > 0 ? new DohClient({ servers, timeoutMs: s.dohTimeoutMs, metrics }) : null,
    cache,
    policy: createAddressPolicy({ allowPrivate: s.allowPrivate, allow: s.allowCidrs }),
    family: s.family,
    metrics,
    onRefreshError: (err, name) => log.debug({ err: (err as Error).message, name }, 'dns refresh failed; serving stale'),
  });
  let stopBeat: ((opts?: { deregister?: boolean }) => Promise<void>) | null = null;
  return {
    resolver,
    route: dnsQueryRoute(resolver, { rateLimit: { ratePerSec: s.rateLimitRps, burst: s.rateLimitBurst }, metrics }),
    announce(port) {
      stopBeat = registerReplica(redis, { id: s.replicaId, address: replicaAddress(s), port }, s.heartbeatMs, {
        onError: (err) => log.debug({ err: (err as Error).message }, 'replica heartbeat failed'),
      });
    },
    async stop() {
      await stopBeat?.();
      replicas.stop();
      await resolver.close();
    },
  };
}
