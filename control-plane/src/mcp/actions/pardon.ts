import { getPenalty, incidentIdSchema, liftPenalty, type DetectorId, type Incident } from '@fluxgate/contracts';
import { ToolInputError } from '../errors.js';
import { applyPardon } from '../../guard/pardon.js';
import { resolveKey } from '../keys.js';
import { markNotDone, recordOperatorIncident } from '../operator-incident.js';
import { liveReplicas } from '../replicas.js';
import { iso } from '../schemas.js';
import type { ToolCall } from '../tool.js';
import { detectorFor } from './resolve-detector.js';
import { penaltyView, type PenaltyView } from './views.js';

export interface PardonArgs {
  key: string;
  reason: string;
  dryRun: boolean;
  detector?: DetectorId;
  incidentId?: string;
}

export interface PardonOutcome {
  found: boolean;
  message: string;
  dryRun?: boolean;
  changed?: boolean;
  key?: { id: string; prefix: string | null };
  before?: { effectiveTier: string | null; penalty: PenaltyView | null };
  after?: { effectiveTier: string | null };
  graceUntil?: string | null;
  pardonedIncidentId?: string | null;
  replicas?: Array<{ id: string; address: string; port: number; lastHeartbeat: string }>;
  incidentId?: string | null;
}

/**
 * pardon_key: lifts the key's penalty through the shared protocol (the record goes, then the
 * index, then the `lifted` event every replica listens to: back on its own tier within a second),
 * closes the pardoned incident as `pardoned`, takes back its offences (the escalation resets for
 * that episode) and gives the key the guard's grace (GUARD_PARDON_GRACE_SECONDS), so the same
 * detector does not penalise it again at the next poll (guard/pardon.ts, shared with the guard).
 * With `incidentId`, a penalty that already expired can be pardoned too ("the false positive
 * from this morning"): its offences are taken back and the incident is marked pardoned.
 */
export async function pardon(args: PardonArgs, { ctx, identity }: ToolCall): Promise<PardonOutcome> {
  let named: Incident | null = null;
  if (args.incidentId !== undefined) {
    if (!incidentIdSchema.safeParse(args.incidentId).success)
      throw new ToolInputError('incidentId: expected an incident id like inc_<time>_<8 hex>');
    named = await ctx.store.get(args.incidentId);
    if (!named) throw new ToolInputError(`incidentId: no incident ${args.incidentId} in the buffer`);
  }
  const lookup = await resolveKey(ctx.sql, args.key);
  if (!lookup.found) return { found: false, message: lookup.message };
  const key = lookup.key;
  if (named && named.keyId !== key.id) throw new ToolInputError(`incidentId: incident ${named.id} is about another key`);
  const who = key.prefix ?? key.id;
  const now = ctx.now();
  const current = await getPenalty(ctx.redis, key.id, now);
  const replicas = await liveReplicas(ctx.redis, now);
  const base = { found: true, key: { id: key.id, prefix: key.prefix }, replicas };
  if (!current && !named) {
    return {
      ...base,
      dryRun: args.dryRun,
      changed: false,
      before: { effectiveTier: key.tier, penalty: null },
      after: { effectiveTier: key.tier },
      graceUntil: null,
      pardonedIncidentId: null,
      incidentId: null,
      message: `${who} has no live penalty: nothing to pardon (name an incidentId to pardon one that already ended).`,
    };
  }
  const pardoned = named ?? (current?.incidentId ? await ctx.store.get(current.incidentId) : null);
  const pardonedId = named?.id ?? current?.incidentId ?? null;
  const detector = await detectorFor(ctx, key.id, args.detector, pardoned);
  const graceSeconds = ctx.config.GUARD_PARDON_GRACE_SECONDS;
  const remaining = current ? penaltyView(current, now).remainingSeconds : 0;
  const plan = {
    ...base,
    before: { effectiveTier: current?.level ?? key.tier, penalty: current ? penaltyView(current, now) : null },
    after: { effectiveTier: key.tier },
    graceUntil: iso(now + graceSeconds * 1000),
    pardonedIncidentId: pardonedId,
  };
  const lifting = current
    ? `leave ${current.level} (set by ${current.setBy}, ${remaining}s left) for ${key.tier ?? 'its own tier'} on ${replicas.length} live replica(s)`
    : `keep ${key.tier ?? 'its own tier'} (no live penalty)`;
  if (args.dryRun) {
    return {
      ...plan,
      dryRun: true,
      changed: false,
      incidentId: null,
      message: `dry run: ${who} would ${lifting}${pardonedId ? `, incident ${pardonedId} would be pardoned and its offences taken back` : ''}, with grace until ${plan.graceUntil}. Nothing was changed.`,
    };
  }

  const lifted = current ? `lifted ${current.level} set by ${current.setBy} with ${remaining}s left` : 'no live penalty';
  const what = `Operator pardoned API key ${who}: ${lifted}${pardonedId ? `; incident ${pardonedId} pardoned and its offences taken back` : ''}; grace until ${plan.graceUntil}.`;
  const incident = await recordOperatorIncident(ctx, identity, {
    action: 'pardon',
    reason: args.reason,
    key,
    detector,
    level: current?.level ?? null,
    evidence: { remainingSeconds: remaining, graceSeconds },
    relatesTo: pardonedId,
    what,
  });
  try {
    if (current) await liftPenalty(ctx.redis, key.id, now);
  } catch (err) {
    if (await getPenalty(ctx.redis, key.id).catch(() => current)) {
      await markNotDone(ctx, incident, ctx.now());
      throw err;
    }
    // The record (the truth) is gone; only a later step (index hint, event) failed: the replicas'
    // resync ignores index members without a record, so the pardon goes on.
    ctx.log.warn({ err: (err as Error).message, keyId: key.id }, 'pardon: penalty lifted, a later protocol step failed');
  }
  await applyPardon(ctx.redis, { keyId: key.id, incidentId: pardonedId, detector: pardoned?.detector ?? null, graceSeconds, now });
  if (pardoned && pardoned.id !== incident.id && (pardoned.status === 'open' || pardoned.status === 'expired')) {
    await ctx.store.update({ ...pardoned, status: 'pardoned', endedAt: pardoned.endedAt ?? now, updatedAt: now });
    await ctx.archive(pardoned.id);
  }
  return {
    ...plan,
    dryRun: false,
    changed: true,
    incidentId: incident.id,
    message: `${who} is back on ${key.tier ?? 'its own tier'} on every replica (${replicas.length} live), with grace until ${plan.graceUntil}; incident ${incident.id}.`,
  };
}
