import type { ConcurrencyGate } from '../limits/concurrency.js';
import type { KeyLimits } from '../limits/key-limits.js';
import type { Logger } from '../log/logger.js';
import { createSurface } from '../proxy/surface.js';
import type { UpstreamPool } from '../proxy/types.js';
import type { RouteHandler } from './context.js';
import { ProxyExchange, type ProxyOptions, type ProxyShared } from './proxy-exchange.js';
import type { ProxyPorts } from './proxy-ports.js';

export type { ProxyOptions };

export interface ProxyDeps {
  pool: UpstreamPool;
  gate: ConcurrencyGate;
  limits: KeyLimits;
  ports: ProxyPorts;
  log: Logger;
  options: ProxyOptions;
}

/**
 * `/v1/*` and `/api/*`: each request is one ProxyExchange (routes/proxy-exchange.ts), which
 * holds its state, runs its pipeline and writes its response; the route only makes it.
 */
export function proxyRoute(deps: ProxyDeps): RouteHandler {
  const shared: ProxyShared = { ...deps, surface: createSurface({ modelManagement: deps.options.modelManagement }) };
  return (ctx) => new ProxyExchange(shared, ctx).run(ctx);
}
