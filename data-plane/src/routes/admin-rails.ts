import { ALLOWLIST_KINDS, DETECTOR_MODES, isDetector } from '@fluxgate/contracts';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { addAllowlistEntry, allowlistInputSchema, listAllowlistEntries, removeAllowlistEntry } from '../operator/allowlist.js';
import { ADMIN_ACTOR } from '../operator/audit.js';
import { changeDetectorMode, listDetectorModes, type DetectorModesDeps } from '../operator/detector-modes.js';
import { adminHandler, jsonBody, pathTail, queryParam } from './admin-handler.js';
import type { RouteSpec } from './context.js';
import { sendJson } from './respond.js';

/**
 * Issue 18's rails on the guard, for operators with the admin token:
 *
 *   GET    /admin/allowlist                 live entries
 *   POST   /admin/allowlist                 {kind: key|account|cidr, value, reason?, expiresInSeconds?} → 201 (200 when it replaced one)
 *   DELETE /admin/allowlist/:id             ?reason= → {removed: entry, incidentId}; 404 when there is none
 *   DELETE /admin/allowlist/:kind/:value    the same, by what it names (value URL-encoded)
 *   GET    /admin/detector-modes            every detector with its run-time mode (null: configured)
 *   PUT    /admin/detector-modes/:detector  {mode: enforce|shadow, reason?} → the guard applies it at its next poll
 *   DELETE /admin/detector-modes/:detector  ?reason= → back to the configured mode
 * Every change is audited as actor `admin-token` and leaves an operator incident (its id in the
 * answer as `incidentId`); setting a mode already set changes nothing and records nothing.
 */
const ALLOW = '/admin/allowlist/';
const MODES = '/admin/detector-modes/';
const modeInputSchema = z.strictObject({ mode: z.enum(DETECTOR_MODES), reason: z.string().max(500).optional() });

function reasonOf(query: string): string | null {
  const reason = queryParam(query, 'reason');
  if (reason !== null && reason.length > 500) throw new GatewayError('bad_request', 'reason: at most 500 characters');
  return reason;
}

export function railsAdminRoutes(deps: DetectorModesDeps, log: Logger): RouteSpec[] {
  const handler = (fn: Parameters<typeof adminHandler>[2]) => adminHandler(log, 'rails admin call', fn);
  const detectorOf = (path: string) => {
    const d = pathTail(path, MODES);
    if (!isDetector(d)) throw new GatewayError('not_found', `No detector named ${JSON.stringify(d.slice(0, 64))}.`);
    return d;
  };
  const removed = (done: Awaited<ReturnType<typeof removeAllowlistEntry>>) => {
    if (!done) throw new GatewayError('not_found', 'No allowlist entry like this.');
    return done;
  };
  return [
    {
      method: 'get',
      pattern: '/admin/allowlist',
      handler: handler(async ({ sink }) => sendJson(sink, 200, { entries: await listAllowlistEntries(deps) })),
    },
    {
      method: 'post',
      pattern: '/admin/allowlist',
      handler: (ctx) => {
        const body = jsonBody(ctx, allowlistInputSchema);
        return handler(async ({ sink }) => {
          const { entry, created, incidentId } = await addAllowlistEntry(deps, await body, ADMIN_ACTOR);
          log.info({ kind: entry.kind, id: entry.id, incidentId }, 'allowlist entry added by an operator');
          sendJson(sink, created ? 201 : 200, { entry, created, incidentId });
        })(ctx);
      },
    },
    {
      method: 'del',
      pattern: `${ALLOW}:id`,
      handler: handler(async ({ req, sink }) => {
        const id = Number(pathTail(req.path, ALLOW));
        if (!Number.isSafeInteger(id) || id < 1) throw new GatewayError('not_found', 'No allowlist entry like this.');
        sendJson(sink, 200, removed(await removeAllowlistEntry(deps, { id }, ADMIN_ACTOR, reasonOf(req.query))));
      }),
    },
    {
      method: 'del',
      pattern: `${ALLOW}:kind/:value`,
      handler: handler(async ({ req, sink }) => {
        const [kind = '', ...rest] = req.path.slice(ALLOW.length).split('/');
        const value = pathTail(`/${rest.join('/')}`, '/');
        if (!(ALLOWLIST_KINDS as readonly string[]).includes(kind))
          throw new GatewayError('not_found', `No allowlist kind ${JSON.stringify(kind.slice(0, 32))} (expected key, account or cidr).`);
        sendJson(
          sink,
          200,
          removed(
            await removeAllowlistEntry(deps, { kind: kind as (typeof ALLOWLIST_KINDS)[number], value }, ADMIN_ACTOR, reasonOf(req.query)),
          ),
        );
      }),
    },
    {
      method: 'get',
      pattern: '/admin/detector-modes',
      handler: handler(async ({ sink }) => sendJson(sink, 200, { modes: await listDetectorModes(deps) })),
    },
    {
      method: 'put',
      pattern: `${MODES}:detector`,
      handler: (ctx) => {
        const body = jsonBody(ctx, modeInputSchema);
        return handler(async ({ req, sink }) => {
          const detector = detectorOf(req.path);
          const { mode, reason } = await body;
          const change = await changeDetectorMode(deps, detector, mode, ADMIN_ACTOR, reason ?? null);
          log.info(change, 'detector mode set by an operator');
          sendJson(sink, 200, change);
        })(ctx);
      },
    },
    {
      method: 'del',
      pattern: `${MODES}:detector`,
      handler: handler(async ({ req, sink }) => {
        const change = await changeDetectorMode(deps, detectorOf(req.path), null, ADMIN_ACTOR, reasonOf(req.query));
        log.info(change, 'detector mode cleared by an operator');
        sendJson(sink, 200, change);
      }),
    },
  ];
}
