import { timingSafeEqual, createHash } from 'node:crypto';
import type { RouteContext, RouteHandler, RouteSpec } from './context.js';
import { sendError, sendJson } from './respond.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { OperatorDeps } from '../operator/penalty.js';
import { penaltyAdminRoutes } from './admin-penalty.js';
import { railsAdminRoutes } from './admin-rails.js';
import { tierAdminRoutes } from './admin-tiers.js';

/** Constant-time bearer check: hash both sides so lengths never leak through timing. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m?.[1]) return false;
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** Wrap an admin route: 401 without the right bearer ADMIN_TOKEN. */
export function requireAdmin(token: string, handler: RouteHandler): RouteHandler {
  return (ctx: RouteContext) => {
    if (!bearerMatches(ctx.req.headers.get('authorization'), token)) {
      return sendError(ctx.sink, new GatewayError('unauthorized', 'Admin bearer token required.'), 'plain', [
        ['www-authenticate', 'Bearer'],
      ]);
    }
    return handler(ctx);
  };
}

export interface AdminSources {
  /** Prometheus text exposition and its content type. */
  prometheus(): Promise<{ contentType: string; body: string }>;
  snapshot(): Promise<unknown>;
  upstreams(): unknown;
  /** The penalty box, the guard's rails and the tiers (Redis, Postgres and the operator caps). */
  operator: OperatorDeps;
}

export function adminRoutes(sources: AdminSources, log: Logger): RouteSpec[] {
  return [
    {
      method: 'get',
      pattern: '/metrics',
      handler: async ({ sink }) => {
        const { contentType, body } = await sources.prometheus();
        if (!sink.finished) sink.send(200, [['content-type', contentType]], body);
      },
    },
    { method: 'get', pattern: '/admin/metrics', handler: async ({ sink }) => sendJson(sink, 200, await sources.snapshot()) },
    { method: 'get', pattern: '/admin/upstreams', handler: ({ sink }) => sendJson(sink, 200, { upstreams: sources.upstreams() }) },
    ...penaltyAdminRoutes(sources.operator, log),
    ...railsAdminRoutes(sources.operator, log),
    ...tierAdminRoutes(sources.operator, log),
  ];
}
