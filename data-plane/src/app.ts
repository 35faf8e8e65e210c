import type { TemplatedApp } from 'uWebSockets.js';
import type { DataPlaneConfig } from './config/schema.js';
import { bind } from './http/bind.js';
import type { ConcurrencyGate } from './limits/concurrency.js';
import type { Logger } from './log/logger.js';
import type { UpstreamPool } from './proxy/types.js';
import { adminRoutes, requireAdmin, type AdminSources } from './routes/admin.js';
import { healthz, readyz, type ReadinessChecks } from './routes/health.js';
import { proxyRoute } from './routes/proxy.js';
import type { ProxyPorts } from './routes/proxy-ports.js';
import { sendError } from './routes/respond.js';
import { GatewayError } from './errors.js';

export interface DataPlaneDeps {
  config: Pick<
    DataPlaneConfig,
    'MAX_BODY_BYTES' | 'PER_KEY_CONCURRENCY' | 'SSE_HEARTBEAT_MS'
  >;
  log: Logger;
  /** The TLS public app and the plain admin app, created by http/ in main.ts. */
  publicApp: TemplatedApp;
  adminApp: TemplatedApp;
  adminToken: string;
  pool: UpstreamPool;
  gate: ConcurrencyGate;
  ports: ProxyPorts;
  readiness: ReadinessChecks;
  admin: AdminSources;
}

/** Wire every route onto the two listeners. No I/O here: main.ts listens and drains. */
export function createDataPlane(deps: DataPlaneDeps): void {
  const { publicApp, adminApp, log, config } = deps;

  bind(publicApp, 'get', '/healthz', healthz, log);
  bind(publicApp, 'get', '/health', healthz, log);
  bind(publicApp, 'get', '/readyz', readyz(deps.readiness, { timeoutMs: 1_000, cacheMs: 1_000 }), log);

  const proxy = proxyRoute({
    pool: deps.pool,
    gate: deps.gate,
    ports: deps.ports,
    log,
    options: {
      maxBodyBytes: config.MAX_BODY_BYTES,
      perKeyConcurrency: config.PER_KEY_CONCURRENCY,
      heartbeatMs: config.SSE_HEARTBEAT_MS,
    },
  });
  bind(publicApp, 'any', '/v1/*', proxy, log);
  bind(publicApp, 'any', '/api/*', proxy, log);
  bind(publicApp, 'any', '/*', ({ sink }) => sendError(sink, new GatewayError('not_found'), 'plain'), log);

  for (const [path, handler] of Object.entries(adminRoutes(deps.admin))) {
    bind(adminApp, 'get', path, requireAdmin(deps.adminToken, handler), log);
  }
  bind(adminApp, 'any', '/*', requireAdmin(deps.adminToken, ({ sink }) => sendError(sink, new GatewayError('not_found'), 'plain')), log);
}
