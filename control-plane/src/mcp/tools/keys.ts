import { getPenalty, incidentSchema, tierLimitsSchema, type Incident, type PenaltyRecord, type TierLimits } from '@fluxgate/contracts';
import { z } from 'zod';
import { penaltyView } from '../actions/views.js';
import { queryIncidents } from '../incident-query.js';
import { allowlistFor, graceOf, type AllowMatch } from '../key-rails.js';
import { resolveKey, type KeyInfo } from '../keys.js';
import { input, iso, notFound, penaltyOutput } from '../schemas.js';
import { tierLimits } from '../tiers.js';
import { defineTool } from '../tool.js';
import { keyUsage, usageTotalsSchema, type UsageTotals } from '../usage.js';

const keyOutput = z.object({
  id: z.string(),
  prefix: z.string().nullable(),
  name: z.string().nullable(),
  status: z.string().nullable().describe('active, revoked or suspended (null without Postgres)'),
  tier: z.string().nullable().describe("the key's own tier: its override, else the owner's"),
  tierOverride: z.string().nullable(),
  createdAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  owner: z.object({ id: z.string(), email: z.string(), role: z.string(), tier: z.string(), disabled: z.boolean() }).nullable(),
});
const allowOutput = z.object({
  kind: z.enum(['key', 'account']),
  value: z.string(),
  source: z.enum(['database', 'config']),
  reason: z.string().nullable(),
  expiresAt: z.string().nullable(),
});
const graceOutput = z.object({ until: z.string(), incidentId: z.string().nullable() });

export const getKeyProfile = defineTool({
  name: 'get_key_profile',
  role: 'reader',
  title: 'Key profile',
  description:
    'One API key by id or display prefix: owner, own tier and its limits, status, penalty, usage over the last hour and day, its recent incidents, allowlist and grace entries.',
  input: { key: input.key },
  output: {
    ...notFound,
    key: keyOutput.optional(),
    tierLimits: tierLimitsSchema.nullable().optional(),
    penalty: penaltyOutput.nullable().optional(),
    usage: z.object({ lastHour: usageTotalsSchema, lastDay: usageTotalsSchema }).optional(),
    incidents: z.array(incidentSchema).optional().describe('newest first, at most 10'),
    allowlist: z.array(allowOutput).optional(),
    grace: graceOutput.nullable().optional(),
  },
  annotations: { readOnlyHint: true },
  async run(args, { ctx }) {
    const lookup = await resolveKey(ctx.sql, args.key);
    if (!lookup.found) return { headline: lookup.message, data: { found: false, message: lookup.message } };
    const key = lookup.key;
    const now = ctx.now();
    const [limits, penalty, lastHour, lastDay, incidents, allowlist, grace] = await Promise.all([
      tierLimits(ctx, key.tier),
      getPenalty(ctx.redis, key.id, now),
      keyUsage(ctx.redis, key.id, '1h', now),
      keyUsage(ctx.redis, key.id, '24h', now),
      queryIncidents(ctx.redis, { keyId: key.id }, 10),
      allowlistFor(ctx, key),
      graceOf(ctx, key.id, now),
    ]);
    return {
      headline: `${key.prefix ?? key.id}: ${key.status ?? 'status unknown'}, tier ${key.tier ?? 'unknown'}${key.owner ? `, owner ${key.owner.email}` : ''}${penalty ? `, in ${penalty.level} until ${iso(penalty.expiresAt)}` : ''}; ${lastHour.requests} requests in the last hour.`,
      data: {
        found: true,
        message: 'found',
        key,
        tierLimits: limits,
        penalty: penalty ? penaltyView(penalty, now) : null,
        usage: { lastHour, lastDay },
        incidents: incidents.items,
        allowlist,
        grace: grace ? { until: iso(grace.until), incidentId: grace.incidentId } : null,
      },
    };
  },
});

/** The sentence explain_key leads with: why the key is (or is not) limited right now. */
export function explain(a: {
  key: KeyInfo;
  penalty: PenaltyRecord | null;
  incident: Incident | null;
  own: TierLimits | null;
  recent: UsageTotals;
  allowlist: AllowMatch[];
  grace: { until: number } | null;
}): string {
  const who = a.key.prefix ?? a.key.id;
  const parts: string[] = [];
  if (a.key.status && a.key.status !== 'active')
    parts.push(`${who} is ${a.key.status}: every request is refused (401/403) before any rate limit.`);
  if (a.key.owner?.disabled) parts.push(`Its owner's account is disabled.`);
  if (a.penalty) {
    const by =
      a.penalty.setBy === 'guard'
        ? `the guard${a.incident ? ` (${a.incident.detector})` : ''}`
        : `an operator${a.incident?.actor ? ` (${a.incident.actor})` : ''}`;
    parts.push(
      `${who} is limited by ${a.penalty.level} instead of its own tier ${a.key.tier ?? '(unknown)'}, set by ${by} until ${iso(a.penalty.expiresAt)}${a.penalty.incidentId ? `, incident ${a.penalty.incidentId}` : ''}.`,
    );
    if (a.incident?.source === 'operator') parts.push(`Reason given: ${a.incident.reason ?? '(none)'}.`);
    else if (a.incident) {
      const ev = Object.entries(a.incident.evidence).map(
        ([k, v]) => `${k} ${v}${a.incident!.thresholds[k] !== undefined ? ` (threshold ${a.incident!.thresholds[k]})` : ''}`,
      );
      if (ev.length > 0) parts.push(`Evidence: ${ev.join(', ')}.`);
    }
  } else if (a.own) {
    parts.push(
      `${who} has no penalty; it is on its own tier ${a.own.id}: ${a.own.requestsPerWindow} requests and ${a.own.tokensPerWindow} tokens per ${a.own.windowSeconds} s, burst ${a.own.burst}, ${a.own.concurrentStreams} streams at once (per key and summed over its owner's keys).`,
    );
  } else parts.push(`${who} has no penalty.`);
  if (a.recent.requests > 0) parts.push(`Last 5 minutes: ${a.recent.requests} requests, ${a.recent.rateLimited} refused with 429.`);
  if (!a.penalty && a.recent.rateLimited > 0)
    parts.push(`Those 429s come from the tier's own limits (this key's, or its owner's keys together), not from a penalty.`);
  if (a.allowlist.length > 0)
    parts.push(
      `Allowlisted (${a.allowlist.map((e) => `${e.kind}:${e.value}`).join(', ')}): the guard never penalises it, it records shadow incidents instead.`,
    );
  if (a.grace) parts.push(`In grace after a pardon until ${iso(a.grace.until)}: no detector penalises it meanwhile.`);
  return parts.join(' ');
}

export const explainKey = defineTool({
  name: 'explain_key',
  aliases: ['debug_guard_state'],
  role: 'reader',
  title: 'Why is this key limited?',
  description:
    'Why an API key is limited right now: its own tier and limits, its penalty (level, who set it, when it ends), the incident behind it with the detector and the evidence, ' +
    'recent requests and 429s, and the allowlist and grace entries that keep the guard off it.',
  input: { key: input.key },
  output: {
    ...notFound,
    explanation: z.string().optional(),
    key: keyOutput.optional(),
    limited: z.boolean().optional().describe('true while a penalty applies or the key is not active'),
    ownTier: tierLimitsSchema.nullable().optional(),
    effectiveTier: tierLimitsSchema.nullable().optional().describe('what applies now: the penalty level, else the own tier'),
    penalty: penaltyOutput.nullable().optional(),
    incident: incidentSchema.nullable().optional().describe("the penalty's incident: detector, evidence, thresholds, summary"),
    recentUsage: usageTotalsSchema.optional().describe('last 5 minutes'),
    allowlist: z.array(allowOutput).optional(),
    grace: graceOutput.nullable().optional(),
  },
  annotations: { readOnlyHint: true },
  async run(args, { ctx }) {
    const lookup = await resolveKey(ctx.sql, args.key);
    if (!lookup.found) return { headline: lookup.message, data: { found: false, message: lookup.message } };
    const key = lookup.key;
    const now = ctx.now();
    const [penalty, own, recent, allowlist, grace] = await Promise.all([
      getPenalty(ctx.redis, key.id, now),
      tierLimits(ctx, key.tier),
      keyUsage(ctx.redis, key.id, '5m', now),
      allowlistFor(ctx, key),
      graceOf(ctx, key.id, now),
    ]);
    const [incident, effective] = await Promise.all([
      penalty?.incidentId ? ctx.store.get(penalty.incidentId) : null,
      penalty ? tierLimits(ctx, penalty.level) : own,
    ]);
    const explanation = explain({ key, penalty, incident, own, recent, allowlist, grace });
    return {
      headline: explanation,
      data: {
        found: true,
        message: 'found',
        explanation,
        key,
        limited: penalty !== null || (key.status !== null && key.status !== 'active'),
        ownTier: own,
        effectiveTier: effective,
        penalty: penalty ? penaltyView(penalty, now) : null,
        incident,
        recentUsage: recent,
        allowlist,
        grace: grace ? { until: iso(grace.until), incidentId: grace.incidentId } : null,
      },
    };
  },
});
