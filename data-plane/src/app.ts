import type { DataPlaneConfig } from './config/schema.js';
import { bind, type Method } from './http/bind.js';
import type { TemplatedApp } from './http/uws.js';
import type { ConcurrencyGate } from './limits/concurrency.js';
import type { KeyLimits } from './limits/key-limits.js';
import type { Logger } from './log/logger.js';
import type { AddressSet } from './net/cidr-set.js';
import type { UpstreamPool } from './proxy/types.js';
import { adminRoutes, requireAdmin, type AdminSources } from './routes/admin.js';
import { healthz, readyz, type ReadinessChecks } from './routes/health.js';
import { proxyRoute } from './routes/proxy.js';
import type { ProxyPorts } from './routes/proxy-ports.js';
import { sendError } from './routes/respond.js';
import { withClientAddress } from './routes/client-ip.js';
import { withIpBlock } from './routes/ip-block.js';
import type { IpBlocks } from './auth/ip-blocks.js';
import type { RouteHandler, RouteSpec } from './routes/context.js';
import { GatewayError } from './errors.js';

export interface DataPlaneDeps {
  config: Pick<DataPlaneConfig, 'MAX_BODY_BYTES' | 'PER_KEY_CONCURRENCY' | 'SSE_HEARTBEAT_MS' | 'PROXY_MODEL_MANAGEMENT'>;
  log: Logger;
  /** The TLS public app and the plain admin app, created by http/ in main.ts. */
  publicApp: TemplatedApp;
  adminApp: TemplatedApp;
  adminToken: string;
  pool: UpstreamPool;
  gate: ConcurrencyGate;
  /** Effective tier, rate-limit admission and token budgets per key. */
  limits: KeyLimits;
  ports: ProxyPorts;
  readiness: ReadinessChecks;
  admin: AdminSources;
  /** Portal routes (accounts, sessions, own keys, usage). */
  portal: ReadonlyArray<RouteSpec>;
  /** RFC 8484 endpoint (GET and POST; other methods get 405 from the route itself). */
  dnsQuery: RouteHandler;
  /** Peers whose X-Forwarded-For names the client (TRUSTED_PROXIES: addresses and CIDRs). */
  trustedProxies: AddressSet;
  /** Client addresses the control plane blocked: refused on /v1, /api and /portal before anything else. */
  ipBlocks?: Pick<IpBlocks, 'check'>;
  /** The SPA's files and client-side routes (routes/static.ts); absent: every unknown path is 404. */
  spa?: RouteHandler;
}

/** Wire every route onto the two listeners. No I/O here: main.ts listens and drains. */
export function createDataPlane(deps: DataPlaneDeps): void {
  const { adminApp, log, config } = deps;
  const route = (method: Method, pattern: string, handler: RouteHandler) =>
    bind(deps.publicApp, method, pattern, withClientAddress(deps.trustedProxies, handler), log);
  const unlessBlocked = (handler: RouteHandler): RouteHandler => (deps.ipBlocks ? withIpBlock(deps.ipBlocks, handler) : handler);

  route('get', '/healthz', healthz);
  route('get', '/health', healthz);
  route('get', '/readyz', readyz(deps.readiness, { timeoutMs: 1_000, cacheMs: 1_000 }));
  for (const r of deps.portal) route(r.method, r.pattern, unlessBlocked(r.handler));
  route('any', '/dns-query', deps.dnsQuery);

  const proxy = proxyRoute({
    pool: deps.pool,
    gate: deps.gate,
    limits: deps.limits,
    ports: deps.ports,
    log,
    options: {
      maxBodyBytes: config.MAX_BODY_BYTES,
      perKeyConcurrency: config.PER_KEY_CONCURRENCY,
      heartbeatMs: config.SSE_HEARTBEAT_MS,
      modelManagement: config.PROXY_MODEL_MANAGEMENT,
    },
  });
  route('any', '/v1/*', unlessBlocked(proxy));
  route('any', '/api/*', unlessBlocked(proxy));
  route('any', '/*', deps.spa ?? (({ sink }) => sendError(sink, new GatewayError('not_found'), 'plain')));

  // Liveness of this replica itself, without the token: the public port may be shared by several
  // workers (SO_REUSEPORT), so only the admin port says which process answered (npm start's probe).
  bind(adminApp, 'get', '/healthz', healthz, log);
  for (const r of adminRoutes(deps.admin, log)) bind(adminApp, r.method, r.pattern, requireAdmin(deps.adminToken, r.handler), log);
  bind(
    adminApp,
    'any',
    '/*',
    requireAdmin(deps.adminToken, ({ sink }) => sendError(sink, new GatewayError('not_found'), 'plain')),
    log,
  );
}
