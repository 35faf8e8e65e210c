import { PENALTY_LEVELS, type PenaltyRecord } from '@fluxgate/contracts';
import { z } from 'zod';
import { GatewayError, isGatewayError } from '../errors.js';
import { parseInput, parseJson } from '../http/json-input.js';
import { buildPenaltyRecord } from '../limits/penalty-store.js';
import type { Logger } from '../log/logger.js';
import type { RouteContext, RouteHandler, RouteSpec } from './context.js';
import { sendError, sendJson } from './respond.js';

/**
 * The operator's hand on the penalty box (DESIGN §4): the same Redis records and pub/sub event
 * the control plane's guard writes (limits/penalty-store.ts), so a penalty set here reaches
 * every replica within a second and ends by expiry or by DELETE (pardon).
 *
 *   GET    /admin/penalty           every live penalty
 *   GET    /admin/penalty/:keyId    the key's own tier, its penalty (or null) and effective tier
 *   POST   /admin/penalty/:keyId    {level, durationSeconds?, reason?, incidentId?} → 201 record
 *   DELETE /admin/penalty/:keyId    pardon → {lifted: true|false}
 * Unknown or malformed key ids are 404; a bad body 400; Redis or Postgres down 503.
 */
export interface PenaltyAdminSources {
  /** The key's own tier id, or null when there is no such key. */
  keyTier(keyId: string): Promise<string | null>;
  get(keyId: string): Promise<PenaltyRecord | null>;
  set(record: PenaltyRecord): Promise<void>;
  lift(keyId: string): Promise<boolean>;
  list(): Promise<PenaltyRecord[]>;
}

const MAX_BODY = 16 * 1024;
const PREFIX = '/admin/penalty/';

export const penaltyInputSchema = z.strictObject({
  level: z.enum(PENALTY_LEVELS),
  /** Default: the level's own duration (PENALTY_DURATION_SECONDS). At most 30 days. */
  durationSeconds: z.number().int().min(1).max(30 * 86_400).optional(),
  reason: z.string().max(500).optional(),
  incidentId: z.string().min(1).max(128).nullable().optional(),
});

const keyIdOf = (path: string): string => {
  try {
    return decodeURIComponent(path.slice(PREFIX.length));
  } catch {
    return '';
  }
};

export function penaltyAdminRoutes(src: PenaltyAdminSources, log: Logger): RouteSpec[] {
  /** Store failures are the backing service being down, never a 500 with its detail. */
  const guarded =
    (fn: (ctx: RouteContext) => Promise<void>): RouteHandler =>
    async (ctx) => {
      try {
        await fn(ctx);
      } catch (e) {
        if (isGatewayError(e)) return sendError(ctx.sink, e, 'plain');
        log.warn({ err: (e as Error).message, path: ctx.req.path }, 'penalty admin call failed');
        sendError(ctx.sink, new GatewayError('service_unavailable', 'Redis or Postgres is unavailable; retry shortly.', { cause: e }), 'plain');
      }
    };
  const knownKey = async (path: string): Promise<{ keyId: string; tier: string }> => {
    const keyId = keyIdOf(path);
    const tier = keyId === '' ? null : await src.keyTier(keyId);
    if (tier === null) throw new GatewayError('not_found', 'No API key with this id.');
    return { keyId, tier };
  };
  return [
    {
      method: 'get',
      pattern: '/admin/penalty',
      handler: guarded(async ({ sink }) => sendJson(sink, 200, { penalties: await src.list() })),
    },
    {
      method: 'get',
      pattern: `${PREFIX}:keyId`,
      handler: guarded(async ({ req, sink }) => {
        const { keyId, tier } = await knownKey(req.path);
        const penalty = await src.get(keyId);
        sendJson(sink, 200, { keyId, tier, penalty, effectiveTier: penalty ? penalty.level : tier });
      }),
    },
    {
      method: 'post',
      pattern: `${PREFIX}:keyId`,
      handler: (ctx) => {
        // Started before any await: uWS hands body bytes only to a reader that already exists.
        const body = ctx.readBody(MAX_BODY);
        body.catch(() => undefined);
        return guarded(async ({ req, sink }) => {
          const input = parseInput(penaltyInputSchema, parseJson(await body));
          const { keyId } = await knownKey(req.path);
          const record = buildPenaltyRecord({ keyId, level: input.level, setBy: 'operator', reason: input.reason ?? 'set by an operator', incidentId: input.incidentId ?? null, durationSeconds: input.durationSeconds });
          await src.set(record);
          log.info({ keyId, level: record.level, expiresAt: record.expiresAt }, 'penalty set by an operator');
          sendJson(sink, 201, { penalty: record });
        })(ctx);
      },
    },
    {
      method: 'del',
      pattern: `${PREFIX}:keyId`,
      handler: guarded(async ({ req, sink }) => {
        const { keyId } = await knownKey(req.path);
        const lifted = await src.lift(keyId);
        if (lifted) log.info({ keyId }, 'penalty lifted by an operator');
        sendJson(sink, 200, { keyId, lifted });
      }),
    },
  ];
}
