import {
  buildPenaltyRecord,
  getPenalty,
  incidentIdSchema,
  setPenalty,
  type DetectorId,
  type Incident,
  type PenaltyLevel,
  type PenaltyRecord,
} from '@fluxgate/contracts';
import { ToolInputError } from '../errors.js';
import { resolveKey } from '../keys.js';
import { markNotDone, mcpActor, recordOperatorIncident } from '../operator-incident.js';
import { liveReplicas } from '../replicas.js';
import { iso, parseDuration } from '../schemas.js';
import type { ToolCall } from '../tool.js';
import { detectorFor } from './resolve-detector.js';
import { penaltyView, type PenaltyView } from './views.js';

/** No penalty, forced or not, lasts longer than this (a record's PX must stay sane). */
export const HARD_MAX_PENALTY_SECONDS = 30 * 86_400;

export interface ThrottleArgs {
  key: string;
  level: PenaltyLevel;
  duration?: number | string;
  reason: string;
  force: boolean;
  dryRun: boolean;
  incidentId?: string;
  detector?: DetectorId;
}

export interface ThrottleOutcome {
  found: boolean;
  message: string;
  dryRun?: boolean;
  changed?: boolean;
  key?: { id: string; prefix: string | null };
  before?: { effectiveTier: string | null; penalty: PenaltyView | null };
  after?: { effectiveTier: string; until: string; durationSeconds: number };
  forced?: boolean;
  maxPenaltySeconds?: number;
  detector?: DetectorId | null;
  replicas?: Array<{ id: string; address: string; port: number; lastHeartbeat: string }>;
  incidentId?: string | null;
}

/** 90s, 15m, 48h; days only from a week up (the cap reads 24h, as it is documented). */
const human = (s: number): string =>
  s % 86_400 === 0 && s >= 7 * 86_400 ? `${s / 86_400}d` : s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`;

/**
 * throttle_key: puts a key in the penalty box through the shared protocol (contracts
 * penalty-protocol: every replica hears of it on channels.penalties at once). Longer than
 * MCP_MAX_PENALTY needs force, and the incident says it was forced (issue 18's cap).
 */
export async function throttle(args: ThrottleArgs, { ctx, identity }: ToolCall): Promise<ThrottleOutcome> {
  const max = ctx.config.MCP_MAX_PENALTY;
  const seconds = parseDuration(args.duration, 'duration') ?? ctx.config.GUARD_PENALTY_SECONDS[args.level];
  if (seconds > HARD_MAX_PENALTY_SECONDS)
    throw new ToolInputError(`duration: at most ${human(HARD_MAX_PENALTY_SECONDS)}, even with force; got ${human(seconds)}`);
  const forced = seconds > max;
  if (forced && !args.force) {
    throw new ToolInputError(
      `duration: ${human(seconds)} is longer than MCP_MAX_PENALTY (${human(max)}); pass force: true to set it anyway (the incident records that it was forced), or a shorter duration`,
    );
  }
  let linked: Incident | null = null;
  if (args.incidentId !== undefined) {
    if (!incidentIdSchema.safeParse(args.incidentId).success)
      throw new ToolInputError('incidentId: expected an incident id like inc_<time>_<8 hex>');
    linked = await ctx.store.get(args.incidentId);
    if (!linked) throw new ToolInputError(`incidentId: no incident ${args.incidentId} in the buffer`);
  }
  const lookup = await resolveKey(ctx.sql, args.key);
  if (!lookup.found) return { found: false, message: lookup.message };
  const key = lookup.key;
  if (linked && linked.keyId !== key.id) throw new ToolInputError(`incidentId: incident ${linked.id} is about another key`);

  const now = ctx.now();
  const current = await getPenalty(ctx.redis, key.id, now);
  const currentIncident = !linked && current?.incidentId ? await ctx.store.get(current.incidentId) : null;
  const detector = await detectorFor(ctx, key.id, args.detector, linked ?? currentIncident);
  const until = now + seconds * 1000;
  const replicas = await liveReplicas(ctx.redis, now);
  const plan = {
    found: true,
    key: { id: key.id, prefix: key.prefix },
    before: { effectiveTier: current?.level ?? key.tier, penalty: current ? penaltyView(current, now) : null },
    after: { effectiveTier: args.level, until: iso(until), durationSeconds: seconds },
    forced,
    maxPenaltySeconds: max,
    detector,
    replicas,
  };
  const who = key.prefix ?? key.id;
  if (args.dryRun) {
    return {
      ...plan,
      dryRun: true,
      changed: false,
      incidentId: null,
      message: `dry run: ${who} would go from ${plan.before.effectiveTier ?? 'its own tier'} to ${args.level} until ${plan.after.until}${forced ? ' (forced beyond MCP_MAX_PENALTY)' : ''}; ${replicas.length} live replica(s) would apply it at once. Nothing was changed.`,
    };
  }

  const what = `Operator throttled API key ${who} to ${args.level} for ${human(seconds)} (until ${iso(until)})${forced ? `, forced beyond MCP_MAX_PENALTY (${human(max)})` : ''}${current ? `, replacing ${current.level} set by ${current.setBy}` : ''}.`;
  // Stored first: an action is never taken without its incident. The penalty names it.
  const incident = await recordOperatorIncident(ctx, identity, {
    action: 'operator_throttle',
    reason: args.reason,
    key,
    detector,
    level: args.level,
    expiresAt: until,
    evidence: { durationSeconds: seconds, forced: forced ? 1 : 0 },
    thresholds: { maxPenaltySeconds: max },
    relatesTo: linked?.id ?? currentIncident?.id ?? null,
    what,
  });
  const record: PenaltyRecord = buildPenaltyRecord({
    keyId: key.id,
    level: args.level,
    setBy: 'operator',
    reason: args.reason.slice(0, 500),
    incidentId: incident.id,
    durationSeconds: seconds,
    actor: mcpActor(identity),
    forced,
    now,
  });
  try {
    await setPenalty(ctx.redis, record, now);
  } catch (err) {
    // A failed step of the protocol may still have written the record (the truth): the incident
    // says "not done" only when no penalty of its own is live.
    const live = await getPenalty(ctx.redis, key.id).catch(() => null);
    if (live?.incidentId !== incident.id) await markNotDone(ctx, incident, ctx.now());
    throw err;
  }
  return {
    ...plan,
    dryRun: false,
    changed: true,
    incidentId: incident.id,
    message: `${who} is now ${args.level} until ${plan.after.until} on every replica (${replicas.length} live); incident ${incident.id}.`,
  };
}
