import { getPenalty, listPenalties, operatorActors, redisKeys, type PenaltyRecord } from '@fluxgate/contracts';
import { z } from 'zod';
import { pardonKey } from '../operator/penalty.js';
import { getKey, isUuid, StoreError, type KeyInfo } from '../store/keys.js';
import { PortalError } from './errors.js';
import { parseInput, parseJson, sendPortalJson, withSession, type PortalHandler, type SessionHandler } from './http.js';
import { mergeIncident, parseIncidentQuery, readIncidents } from './incidents.js';
import type { Portal } from './runtime.js';

/**
 * Operator-only portal routes (DESIGN §6): the incidents the control plane wrote and the penalty
 * box, read and written through the contracts protocols the guard uses. A session whose
 * account's role (read fresh from Postgres on every request) is not operator or admin gets 403.
 *
 *   GET  /portal/operator/incidents?key=&limit=&before=   newest first, filtered by key id or prefix
 *   GET  /portal/operator/penalties                       live penalties with key, owner and incident
 *   POST /portal/operator/penalties/:keyId/pardon {reason} lift it (grace + operator incident)
 */
export const OPERATOR_ROLES: ReadonlySet<string> = new Set(['operator', 'admin']);
/** The penalty box page shows at most this many (soonest to end first). */
export const MAX_PENALTIES = 200;
const PARDON_PREFIX = '/portal/operator/penalties/';

export const withOperator = (p: Portal, handler: SessionHandler): PortalHandler =>
  withSession(p, async (ctx, body, s) => {
    if (!OPERATOR_ROLES.has(s.user.role)) throw new PortalError('forbidden', 'This needs an operator account.');
    await handler(ctx, body, s);
  });

/** Redis is the only store of incidents and penalties: when it cannot answer, say so (503), never 500. */
async function fromRedis<T>(p: Portal, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    if (cause instanceof PortalError) throw cause;
    p.log.warn({ err: (cause as Error).message }, `${what} failed`);
    throw new PortalError('service_unavailable', 'Redis is unavailable; retry shortly.', { cause });
  }
}

export const listIncidents = (p: Portal): PortalHandler =>
  withOperator(p, async (ctx) => {
    const q = parseIncidentQuery(ctx.req.query);
    const page = await fromRedis(p, 'reading incidents', () => readIncidents(p.redis, q));
    sendPortalJson(ctx.sink, 200, page);
  });

const keyView = (k: KeyInfo | null) =>
  k === null ? null : { id: k.id, name: k.name, prefix: k.prefix, tier: k.tier, status: k.status, ownerEmail: k.ownerEmail };

export const listPenaltyBox = (p: Portal): PortalHandler =>
  withOperator(p, async (ctx) => {
    const now = p.now();
    const all = await fromRedis(p, 'reading the penalty box', () => listPenalties(p.redis, now));
    const shown = all.sort((a, b) => a.expiresAt - b.expiresAt).slice(0, MAX_PENALTIES);
    const incidentIds = [...new Set(shown.map((r) => r.incidentId).filter((id): id is string => id !== null))];
    const [keys, recs, sums] = await Promise.all([
      Promise.all(shown.map((r) => getKey(p.sql, r.keyId))),
      incidentIds.length === 0 ? [] : fromRedis(p, 'reading incidents', () => p.redis.hmget(redisKeys.incidentRecords(), ...incidentIds)),
      incidentIds.length === 0 ? [] : fromRedis(p, 'reading incidents', () => p.redis.hmget(redisKeys.incidentSummaries(), ...incidentIds)),
    ]);
    const incidents = new Map(incidentIds.map((id, n) => [id, mergeIncident(recs[n] ?? null, sums[n] ?? null)]));
    const penalties = shown.map((r: PenaltyRecord, n) => {
      const i = r.incidentId === null ? null : (incidents.get(r.incidentId) ?? null);
      return {
        ...r,
        key: keyView(keys[n] ?? null),
        incident: i && { id: i.id, detector: i.detector, status: i.status, summary: i.summary, at: i.at },
      };
    });
    sendPortalJson(ctx.sink, 200, { penalties, total: all.length });
  });

// Shown back to operators and kept in incidents: printable text only.
const pardonInput = z.object({
  reason: z
    .string()
    .trim()
    .min(3, 'say why (at least 3 characters)')
    .max(500)
    .regex(/^[^\p{Cc}\p{Cf}]*$/u, 'must not contain control characters'),
});

export function keyIdOfPardonPath(path: string): string | null {
  if (!path.startsWith(PARDON_PREFIX) || !path.endsWith('/pardon')) return null;
  const id = path.slice(PARDON_PREFIX.length, -'/pardon'.length);
  return isUuid(id) ? id.toLowerCase() : null;
}

export const pardon = (p: Portal): PortalHandler =>
  withOperator(p, async (ctx, body, s) => {
    const keyId = keyIdOfPardonPath(ctx.req.path);
    const input = parseInput(pardonInput, parseJson(await body));
    if (keyId === null) throw new PortalError('not_found', 'This key has no penalty.');
    // The same pardon as the admin route, the CLI and MCP (operator/penalty.ts): grace for a
    // guard penalty, the lift every replica hears, an operator incident as portal:<email>, an audit row.
    const before = await fromRedis(p, 'reading a penalty', () => getPenalty(p.redis, keyId, p.now()));
    if (before === null) throw new PortalError('not_found', 'This key has no penalty (it may have ended or been pardoned already).');
    let outcome;
    try {
      outcome = await pardonKey(p.operator, { keyId, reason: input.reason }, operatorActors.portal(s.user.email));
    } catch (e) {
      if (e instanceof StoreError && e.code === 'not_found') throw new PortalError('not_found', 'This key has no penalty.');
      p.log.warn({ err: (e as Error).message, keyId }, 'pardon failed');
      throw new PortalError('service_unavailable', 'The penalty store is unavailable; retry shortly.', { cause: e });
    }
    if (!outcome.lifted) throw new PortalError('not_found', 'This key has no penalty (it may have ended or been pardoned already).');
    p.log.info({ keyId, level: before.level, operatorId: s.user.id, incidentId: outcome.incidentId }, 'penalty pardoned by an operator');
    sendPortalJson(ctx.sink, 200, {
      keyId,
      lifted: true,
      level: before.level,
      setBy: before.setBy,
      graceUntil: outcome.graceUntil,
      incidentId: outcome.incidentId,
    });
  });
