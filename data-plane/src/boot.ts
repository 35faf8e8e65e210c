/**
 * The data plane's boot: config → clients → createDataPlane(deps) → listen, and the drain that
 * undoes all of it. No process concerns here (env, signals, exit, stdout): main.ts runs this in
 * its own process, tests run it in theirs (test/support/in-process.ts).
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createDataPlane } from './app.js';
import { createAuthenticator } from './auth/authenticate.js';
import { createKeyCache } from './auth/key-cache.js';
import { attachKeyCache } from './auth/key-events.js';
import { createLookupQuota } from './auth/lookup-quota.js';
import { createIpBlocks } from './auth/ip-blocks.js';
import { registerIpBlockMetrics } from './auth/ip-block-metrics.js';
import { createRevocationFeed } from './auth/revocation-feed.js';
import { ensureAdminToken, ensureSecret } from './bootstrap/admin-token.js';
import { createPortalRoutes } from './portal/routes.js';
import { createDnsStack } from './dns/stack.js';
import { randomUUID } from 'node:crypto';
import { ensureCertificate } from './bootstrap/certificate.js';
import { adminTlsEnabled } from './config/admin-listener.js';
import { ConfigError } from './config/load.js';
import type { DataPlaneConfig } from './config/schema.js';
import { closeAll, createPlainApp, createTlsApp, listenOn, loadUws } from './http/uws.js';
import { createConcurrencyGate } from './limits/concurrency.js';
import { createKeyLimits, unlimitedKeyLimits } from './limits/key-limits.js';
import { registerLimitsMetrics } from './limits/metrics.js';
import { createPenaltyCache } from './limits/penalties.js';
import { createRateLimiter } from './limits/rate-limiter.js';
import { createTierRegistry } from './limits/tier-registry.js';
import type { Logger } from './log/logger.js';
import { createCounters } from './metrics/counters.js';
import { createGatewayMetrics } from './metrics/registry.js';
import { metricsSnapshot } from './metrics/snapshot.js';
import { removeReplicaRecords, replicaRecordWriter } from './metrics/replica-records.js';
import { createReplicaStats } from './metrics/replica-stats.js';
import { createCidrSet } from './net/cidr-set.js';
import { createUpstreamPool } from './proxy/pool.js';
import type { UpstreamStatus } from './proxy/types.js';
import { parseUpstreamUrls, readUpstreamsFile } from './proxy/upstreams.js';
import { createProxyPorts } from './routes/proxy-wiring.js';
import { ReadinessFailure } from './routes/health.js';
import { staticRoute } from './routes/static.js';
import { loadSite } from './static/site.js';
import { createSql, pingPostgres } from './store/db.js';
import { createSubscriber } from './store/redis-subscriber.js';
import { findKeyByHash } from './store/keys.js';
import { createLastUsedTracker } from './store/last-used.js';
import { applySchema } from './store/migrate.js';

export interface RunningDataPlane {
  publicPort: number;
  adminPort: number;
  adminTls: boolean;
  /** One id per boot: the DNS replica registry and the replica's records (health, metrics) name it. */
  replicaId: string;
  /** Requests in flight (the concurrency gate's count). */
  readonly open: number;
  /**
   * Drain and release everything: stop accepting, wait for open requests up to DRAIN_TIMEOUT_MS,
   * close every connection, timer and client. Idempotent; resolves when nothing is left open.
   */
  stop(reason?: string): Promise<void>;
}

export async function startDataPlane(config: DataPlaneConfig, log: Logger): Promise<RunningDataPlane> {
  // A boot that fails half way (a port taken, Postgres refusing the schema) releases what it had
  // opened, newest first: a process would exit anyway, a test process must not keep it.
  const undo: Array<() => unknown> = [];
  try {
    return await boot(config, log, undo);
  } catch (err) {
    for (const step of undo.reverse())
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
    throw err;
  }
}

async function boot(config: DataPlaneConfig, log: Logger, undo: Array<() => unknown>): Promise<RunningDataPlane> {
  if (!config.DATABASE_URL)
    throw new ConfigError('invalid DATABASE_URL: not set (use `npm start`, which provides an embedded Postgres, or set postgres://…)');
  // Fail at boot, never fall back to uWS's slow JS implementation.
  const uws = loadUws();
  const warn = (message: string) => log.warn(message);
  const tls = await ensureCertificate({
    certPath: config.TLS_CERT_PATH,
    keyPath: config.TLS_KEY_PATH,
    stateDir: config.FLUXGATE_STATE_DIR,
    warn,
  });
  // A non-loopback ADMIN_HOST was refused at parse unless this is on (config/admin-listener.ts).
  const adminTls = !adminTlsEnabled(config)
    ? null
    : config.ADMIN_TLS_CERT_PATH
      ? await ensureCertificate({
          certPath: config.ADMIN_TLS_CERT_PATH,
          keyPath: config.ADMIN_TLS_KEY_PATH,
          stateDir: config.FLUXGATE_STATE_DIR,
          warn,
          variables: { cert: 'ADMIN_TLS_CERT_PATH', key: 'ADMIN_TLS_KEY_PATH' },
        })
      : tls;
  const admin = await ensureAdminToken(config.ADMIN_TOKEN, config.FLUXGATE_STATE_DIR, warn);
  if (admin.path) log.info({ path: admin.path }, 'admin token generated (read it from this file)');
  // Every replica must share JWT_SECRET; a generated one is only for a single local process.
  if (!config.JWT_SECRET && config.NODE_ENV === 'production')
    throw new ConfigError('invalid JWT_SECRET: required in production (at least 32 bytes, shared by every replica)');
  const jwtSecret = await ensureSecret(config.JWT_SECRET, config.FLUXGATE_STATE_DIR, 'jwt-secret', 32, warn);
  if (jwtSecret.path)
    log.warn({ path: jwtSecret.path }, 'JWT_SECRET not set: using a generated one (set JWT_SECRET when running more than one replica)');

  const sql = createSql(config.DATABASE_URL, { logger: log, applicationName: 'fluxgate-data-plane' });
  undo.push(() => sql.end({ timeout: 5 }));
  await applySchema(sql, config.INIT_SQL_PATH ?? fileURLToPath(new URL('../../init.sql', import.meta.url)));

  const redisUrl = config.REDIS_URL ?? 'redis://127.0.0.1:6379';
  // Hot-path client: no offline queue, so a Redis outage fails fast instead of piling up.
  const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
  const subscriber = createSubscriber(redisUrl);
  undo.push(
    () => redis.disconnect(),
    () => subscriber.disconnect(),
  );
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis error'));
  subscriber.on('error', (err: Error) => log.debug({ err: err.message }, 'redis subscriber error'));

  const upstreams = config.UPSTREAMS_FILE ? await readUpstreamsFile(config.UPSTREAMS_FILE) : parseUpstreamUrls(config.DOWNSTREAM_AI_URLS);
  const metrics = createGatewayMetrics({ upstreams: upstreams.map((u) => u.name) });
  // One id per process: the DNS replica registry and the replica's records (health, metrics) name it.
  const replicaId = randomUUID();
  const replicaStats = createReplicaStats();
  // The pool exists only further down; the first flush runs an interval after start.
  let upstreamStatus: () => UpstreamStatus[] = () => [];
  const counters = createCounters({
    redis,
    intervalMs: config.COUNTER_FLUSH_MS,
    maxPendingBuckets: config.COUNTER_MAX_PENDING_BUCKETS,
    metrics,
    logger: log,
    extraWrites: replicaRecordWriter(redis, { replicaId, startedAt: Date.now(), stats: replicaStats, upstreams: () => upstreamStatus() }),
  });
  counters.start();
  // Undone newest first: the last flush, then the replica's records that flush may have written.
  undo.push(
    () => removeReplicaRecords(redis, replicaId),
    () => counters.stop(),
  );
  const lastUsed = createLastUsedTracker(sql, { logger: log });
  lastUsed.start();
  undo.push(() => lastUsed.stop());
  const cache = createKeyCache({
    lookup: (hash) => findKeyByHash(sql, hash),
    maxEntries: config.KEY_CACHE_SIZE,
    ttlMs: config.KEY_CACHE_TTL_MS,
    negativeTtlMs: config.KEY_NEGATIVE_TTL_MS,
    staleIfErrorMs: config.KEY_CACHE_STALE_MAX_MS,
  });
  const keyEvents = await attachKeyCache(subscriber, cache, log);
  undo.push(() => keyEvents.close());
  const revocations = createRevocationFeed({ redis, cache, intervalMs: config.KEY_REVOCATION_POLL_MS, logger: log });
  undo.push(() => revocations.stop());
  await revocations.start();
  const lookupQuota = createLookupQuota({ perSecond: config.KEY_LOOKUPS_PER_IP_PER_SECOND, burst: config.KEY_LOOKUPS_PER_IP_BURST });
  const authenticate = createAuthenticator({ cache, counters, metrics, lastUsed, lookupQuota });

  // Every upstream name resolves through the gateway's own resolver, never the system's.
  const dns = await createDnsStack(
    {
      dohUpstreams: config.DOH_UPSTREAMS,
      dohTimeoutMs: config.DOH_TIMEOUT_MS,
      overrides: config.DNS_OVERRIDES,
      hostsFile: config.DNS_HOSTS_FILE,
      allowPrivate: config.DNS_ALLOW_PRIVATE,
      allowCidrs: config.DNS_ALLOW_CIDRS,
      systemNames: config.DNS_SYSTEM_NAMES,
      family: config.DNS_FAMILY,
      rateLimitRps: config.DNS_RATE_LIMIT_RPS,
      rateLimitBurst: config.DNS_RATE_LIMIT_BURST,
      clusterDomain: config.CLUSTER_DOMAIN,
      heartbeatMs: config.REPLICA_HEARTBEAT_MS,
      replicaAddress: config.REPLICA_ADDRESS,
      replicaId,
      publicHost: config.PUBLIC_HOST,
    },
    { redis, registry: metrics.registry, log },
  );
  undo.push(() => dns.stop());
  const pool = createUpstreamPool(upstreams, {
    lookup: dns.resolver.lookup,
    connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
    headersTimeoutMs: config.UPSTREAM_HEADERS_TIMEOUT_MS,
    idleTimeoutMs: config.UPSTREAM_IDLE_TIMEOUT_MS,
    totalTimeoutMs: config.UPSTREAM_TOTAL_TIMEOUT_MS,
    maxRetries: config.UPSTREAM_MAX_RETRIES,
    probe: { path: config.UPSTREAM_PROBE_PATH, intervalMs: config.UPSTREAM_PROBE_INTERVAL_MS },
    onStateChange: (upstream, from, to) => log.warn({ upstream, from, to }, 'upstream state changed'),
  });
  undo.push(() => pool.close());
  upstreamStatus = () => pool.status();
  // Probe at once so readiness reflects the upstreams from the start, not after one interval.
  void pool.probeNow();
  const gate = createConcurrencyGate(config.MAX_CONCURRENT_REQUESTS);

  // Rate tiers: tiers from Postgres, the penalty box from Redis (both held in process and kept
  // current over pub/sub), and the shared request/token buckets with local leases.
  const tiers = createTierRegistry({ sql, subscriber, refreshIntervalMs: config.TIERS_REFRESH_MS, logger: log });
  undo.push(() => tiers.close());
  await tiers.start();
  const penalties = createPenaltyCache({
    redis,
    subscriber,
    tierOf: (id) => tiers.get(id),
    resyncIntervalMs: config.PENALTY_RESYNC_MS,
    logger: log,
  });
  undo.push(() => penalties.close());
  await penalties.start();
  const limiter = createRateLimiter({
    redis,
    redisDownPolicy: config.LIMITS_REDIS_DOWN_POLICY,
    assumedReplicas: config.LIMITS_ASSUMED_REPLICAS,
    leaseFraction: config.LIMITS_LEASE_FRACTION,
    leaseTtlMs: config.LIMITS_LEASE_TTL_MS,
    redisTimeoutMs: config.LIMITS_REDIS_TIMEOUT_MS,
    logger: log,
  });
  undo.push(() => limiter.close());
  registerLimitsMetrics(metrics.registry, { limiter, penalties });
  // IP blocks from the control plane (credential abuse), enforced before authentication.
  const ipBlocks = createIpBlocks({ redis, subscriber, resyncIntervalMs: config.IP_BLOCK_RESYNC_MS, logger: log });
  undo.push(() => ipBlocks.close());
  await ipBlocks.start();
  registerIpBlockMetrics(metrics.registry, ipBlocks);
  const limits = config.LIMITS_ENABLED
    ? createKeyLimits({ tiers, penalties, limiter, defaultMaxTokens: config.LIMITS_DEFAULT_MAX_TOKENS })
    : unlimitedKeyLimits(tiers);

  // The SPA is served from memory; without a build (or in compose, where nginx serves it) unknown paths stay 404.
  const spaDir = config.SPA_DIR ?? fileURLToPath(new URL('../../frontend/dist', import.meta.url));
  const site = await loadSite(spaDir);
  if (!site) log.info({ spaDir }, 'no SPA build found: the public listener serves the API only');

  const publicApp = createTlsApp(uws, { certPath: tls.certPath, keyPath: tls.keyPath });
  const adminApp = adminTls ? createTlsApp(uws, { certPath: adminTls.certPath, keyPath: adminTls.keyPath }) : createPlainApp(uws);
  undo.push(
    () => closeAll(publicApp),
    () => closeAll(adminApp),
  );
  createDataPlane({
    config,
    log,
    publicApp,
    adminApp,
    adminToken: admin.token,
    pool,
    gate,
    limits,
    ports: createProxyPorts({ authenticate, counters, metrics, stats: replicaStats }),
    portal: createPortalRoutes({
      sql,
      redis,
      jwtSecret: jwtSecret.token,
      log,
      counters,
      config: {
        sessionTtlSeconds: config.SESSION_TTL_SECONDS,
        loginMaxPerIp: config.LOGIN_MAX_ATTEMPTS_PER_IP,
        loginWindowSeconds: config.LOGIN_THROTTLE_WINDOW_SECONDS,
        loginFreeFailures: config.LOGIN_FREE_FAILURES,
        loginMaxDelaySeconds: config.LOGIN_MAX_DELAY_SECONDS,
        loginKnownIpTtlSeconds: config.LOGIN_KNOWN_IP_TTL_DAYS * 86_400,
        maxKeysPerUser: config.PORTAL_MAX_KEYS_PER_USER,
      },
      operator: {
        capSeconds: config.MCP_MAX_PENALTY,
        graceSeconds: config.GUARD_PARDON_GRACE_SECONDS,
        incidentCapacity: config.INCIDENT_CAPACITY,
      },
    }),
    trustedProxies: createCidrSet(config.TRUSTED_PROXIES),
    ipBlocks,
    spa: staticRoute(site),
    dnsQuery: dns.route,
    readiness: {
      redis: async () => {
        // Without an offline queue a command on a lost connection fails with a message, not a code: say the state.
        if (redis.status !== 'ready') throw new ReadinessFailure(`not connected (${redis.status})`);
        return (await redis.ping()) === 'PONG';
      },
      postgres: () => pingPostgres(sql),
      upstreams: () => pool.availability(),
      details: () => ({
        rateLimits: !config.LIMITS_ENABLED
          ? 'off'
          : limiter.degraded
            ? `local (Redis down, policy ${config.LIMITS_REDIS_DOWN_POLICY})`
            : 'shared',
      }),
    },
    admin: {
      prometheus: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      snapshot: async () => ({
        replicaId,
        metrics: await metricsSnapshot(metrics.registry),
        counters: counters.stats(),
        keyCache: cache.stats(),
        revocationFeed: revocations.stats(),
        openRequests: gate.open,
        upstreams: pool.status(),
        rateLimits: { enabled: config.LIMITS_ENABLED, policy: config.LIMITS_REDIS_DOWN_POLICY, ...limiter.stats() },
        penaltyBox: penalties.stats(),
        ipBlocks: ipBlocks.stats(),
        tiersLoadedAt: tiers.loadedAt,
      }),
      upstreams: () => pool.status(),
      operator: {
        sql,
        redis,
        capSeconds: config.MCP_MAX_PENALTY,
        graceSeconds: config.GUARD_PARDON_GRACE_SECONDS,
        incidentCapacity: config.INCIDENT_CAPACITY,
        warn: (message) => log.warn(message),
      },
    },
  });

  const publicListener = await listenOn(publicApp, config.PUBLIC_HOST, config.PUBLIC_PORT);
  // Exclusive: an admin port is one replica's own (npm start gives worker i ADMIN_PORT + i), so a
  // scrape can never land on another process that happens to hold it.
  const adminListener = await listenOn(adminApp, config.ADMIN_HOST, config.ADMIN_PORT, { exclusive: true });
  dns.announce(publicListener.port);
  log.info(
    {
      publicPort: publicListener.port,
      adminPort: adminListener.port,
      adminTls: adminTls !== null,
      upstreams: upstreams.map((u) => u.name),
    },
    'data plane listening',
  );
  let stopped: Promise<void> | null = null;
  const drain = async (reason: string): Promise<void> => {
    log.info({ signal: reason, open: gate.open }, 'draining');
    publicListener.close();
    const deadline = Date.now() + config.DRAIN_TIMEOUT_MS;
    while (gate.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    adminListener.close();
    revocations.stop();
    await Promise.allSettled([
      counters.stop(),
      lastUsed.stop(),
      keyEvents.close(),
      pool.close(),
      dns.stop(),
      limiter.close(),
      penalties.close(),
      ipBlocks.close(),
      tiers.close(),
    ]);
    await removeReplicaRecords(redis, replicaId).catch(() => undefined);
    await Promise.allSettled([redis.quit(), subscriber.quit(), sql.end({ timeout: 5 })]);
    // Last, as the process's exit used to: whatever is still open (idle keep-alive connections,
    // a stream that outlived DRAIN_TIMEOUT_MS) is closed, so no socket keeps a process or a test
    // alive, and the bytes of answers that just ended have had the steps above to flush.
    closeAll(publicApp);
    closeAll(adminApp);
    log.info('stopped');
  };
  return {
    publicPort: publicListener.port,
    adminPort: adminListener.port,
    adminTls: adminTls !== null,
    replicaId,
    get open() {
      return gate.open;
    },
    stop: (reason = 'stop') => (stopped ??= drain(reason)),
  };
}
