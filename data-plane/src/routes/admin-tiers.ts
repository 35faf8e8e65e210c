import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { ADMIN_ACTOR } from '../operator/audit.js';
import { listTierRows, putTier, TIER_ID_RE, tierLimitsInputSchema } from '../operator/tiers.js';
import type { Sql } from '../store/db.js';
import { adminHandler, jsonBody, pathTail } from './admin-handler.js';
import type { RouteSpec } from './context.js';
import { sendJson } from './respond.js';

/**
 *   GET /admin/tiers        every tier (penalty levels included) as Postgres has it
 *   PUT /admin/tiers/:id    {requestsPerWindow, tokensPerWindow, windowSeconds, concurrentStreams, burst}
 *                           creates the tier (201) or replaces its limits (200), audited, and
 *                           tells every replica on channels.tiers (`notified: false` when Redis
 *                           could not be told: replicas then reload within TIERS_REFRESH_MS, or
 *                           when they first meet the new id)
 */
const PREFIX = '/admin/tiers/';

export function tierAdminRoutes(deps: { sql: Sql; redis: Redis }, log: Logger): RouteSpec[] {
  const handler = (fn: Parameters<typeof adminHandler>[2]) => adminHandler(log, 'tier admin call', fn);
  return [
    {
      method: 'get',
      pattern: '/admin/tiers',
      handler: handler(async ({ sink }) => sendJson(sink, 200, { tiers: await listTierRows(deps.sql) })),
    },
    {
      method: 'put',
      pattern: `${PREFIX}:id`,
      handler: (ctx) => {
        const body = jsonBody(ctx, tierLimitsInputSchema);
        return handler(async ({ req, sink }) => {
          const id = pathTail(req.path, PREFIX);
          if (!TIER_ID_RE.test(id))
            throw new GatewayError('bad_request', 'tier id: 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit');
          const change = await putTier({ sql: deps.sql, redis: async () => deps.redis }, id, await body, ADMIN_ACTOR);
          log.info({ tier: id, created: change.created, notified: change.notified }, 'tier changed by an operator');
          sendJson(sink, change.created ? 201 : 200, change);
        })(ctx);
      },
    },
  ];
}
