import { getPenalty, listPenalties, PENALTY_LEVELS } from '@fluxgate/contracts';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { ADMIN_ACTOR } from '../operator/audit.js';
import { pardonKey, throttleKey, type OperatorDeps } from '../operator/penalty.js';
import { StoreError } from '../store/errors.js';
import { getKey } from '../store/keys.js';
import { adminHandler, jsonBody, pathTail, queryFlag, queryParam } from './admin-handler.js';
import type { RouteSpec } from './context.js';
import { sendJson } from './respond.js';

/**
 * The operator's hand on the penalty box (DESIGN §4), through the same Redis records and pub/sub
 * event the guard writes (contracts penalty-protocol.ts), so a change reaches every replica
 * within a second; the rails of issue 18 are in operator/penalty.ts.
 *
 *   GET    /admin/penalty           every live penalty
 *   GET    /admin/penalty/:keyId    the key's own tier, its penalty (or null) and effective tier
 *   POST   /admin/penalty/:keyId    {level, durationSeconds?, reason?, incidentId?, force?} → 201
 *                                   (past MCP_MAX_PENALTY only with force: true, and then the
 *                                   record says forced); ?dryRun=true → 200, nothing written
 *   DELETE /admin/penalty/:keyId    pardon (?reason=…); a guard penalty also puts the key on the
 *                                   guard's grace list and records an operator incident;
 *                                   ?dryRun=true → what it would do
 * Unknown or malformed key ids are 404; a bad body 400; Redis or Postgres down 503.
 */
const PREFIX = '/admin/penalty/';

export const penaltyInputSchema = z.strictObject({
  level: z.enum(PENALTY_LEVELS),
  /** Default: the level's own duration (PENALTY_DURATION_SECONDS). At most 30 days. */
  durationSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
  reason: z.string().max(500).optional(),
  incidentId: z.string().min(1).max(128).nullable().optional(),
  force: z.boolean().optional(),
});

export function penaltyAdminRoutes(deps: OperatorDeps, log: Logger): RouteSpec[] {
  const handler = (fn: Parameters<typeof adminHandler>[2]) => adminHandler(log, 'penalty admin call', fn);
  return [
    {
      method: 'get',
      pattern: '/admin/penalty',
      handler: handler(async ({ sink }) => sendJson(sink, 200, { penalties: await listPenalties(deps.redis) })),
    },
    {
      method: 'get',
      pattern: `${PREFIX}:keyId`,
      handler: handler(async ({ req, sink }) => {
        const key = await getKey(deps.sql, pathTail(req.path, PREFIX));
        if (!key) throw new StoreError('not_found', 'No API key with this id.');
        const penalty = await getPenalty(deps.redis, key.id);
        sendJson(sink, 200, { keyId: key.id, tier: key.tier, penalty, effectiveTier: penalty ? penalty.level : key.tier });
      }),
    },
    {
      method: 'post',
      pattern: `${PREFIX}:keyId`,
      handler: (ctx) => {
        const body = jsonBody(ctx, penaltyInputSchema);
        return handler(async ({ req, sink }) => {
          const dryRun = queryFlag(req.query, 'dryRun');
          const input = await body;
          const outcome = await throttleKey(deps, { ...input, keyId: pathTail(req.path, PREFIX), dryRun }, ADMIN_ACTOR);
          if (!dryRun)
            log.info(
              { keyId: outcome.keyId, level: outcome.penalty.level, expiresAt: outcome.until, forced: outcome.forced },
              'penalty set by an operator',
            );
          sendJson(sink, dryRun ? 200 : 201, outcome);
        })(ctx);
      },
    },
    {
      method: 'del',
      pattern: `${PREFIX}:keyId`,
      handler: handler(async ({ req, sink }) => {
        const dryRun = queryFlag(req.query, 'dryRun');
        const reason = queryParam(req.query, 'reason');
        if (reason !== null && reason.length > 500) throw new GatewayError('bad_request', 'reason: at most 500 characters');
        const outcome = await pardonKey(deps, { keyId: pathTail(req.path, PREFIX), reason: reason ?? undefined, dryRun }, ADMIN_ACTOR);
        if (!dryRun && outcome.lifted) log.info({ keyId: outcome.keyId, incidentId: outcome.incidentId }, 'penalty lifted by an operator');
        sendJson(sink, 200, outcome);
      }),
    },
  ];
}
