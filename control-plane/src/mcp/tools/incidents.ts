import {
  DETECTOR_MODES,
  INCIDENT_ACTIONS,
  incidentSchema,
  INCIDENT_SOURCES,
  INCIDENT_STATUSES,
  shadowDecisionSchema,
  type Incident,
} from '@fluxgate/contracts';
import { z } from 'zod';
import { queryIncidents, queryShadowDecisions } from '../incident-query.js';
import { resolveKey } from '../keys.js';
import { input, notFound, parseSince } from '../schemas.js';
import { defineTool } from '../tool.js';

const page = {
  nextCursor: z.string().nullable().describe('pass as cursor for the next page; null at the end'),
  scanned: z.number().int().describe('ring-buffer entries read for this page'),
};

export const listIncidents = defineTool({
  name: 'list_incidents',
  aliases: ['get_security_incidents'],
  role: 'reader',
  title: 'Incidents',
  description:
    'Incidents from the ring buffer, newest first, with evidence (numbers and thresholds), action, level, expiry, status and summary. ' +
    'Operator actions (throttle, pardon, allowlist_add/remove, mode_change) are incidents of source operator with actor (who) and reason; their detector is null when they answer none. ' +
    'Filters: since (ISO time or 30m/6h/7d back), key (id or display prefix), detector, mode (enforce|shadow), source (guard|operator), action, status. Paged with cursor.',
  input: {
    limit: input.limit(20),
    since: z
      .string()
      .max(40)
      .optional()
      .describe('Only incidents since then: an ISO 8601 time, or a duration back from now (30m, 6h, 7d).'),
    key: input.key.optional(),
    detector: input.detector.optional(),
    mode: z.enum(DETECTOR_MODES).optional(),
    source: z.enum(INCIDENT_SOURCES).optional(),
    action: z.enum(INCIDENT_ACTIONS).optional(),
    status: z.enum(INCIDENT_STATUSES).optional(),
    cursor: input.cursor,
  },
  output: { incidents: z.array(incidentSchema), ...page },
  annotations: { readOnlyHint: true },
  async run(args, { ctx }) {
    const sinceMs = parseSince(args.since, ctx.now()) ?? undefined;
    let keyId: string | undefined;
    if (args.key !== undefined) {
      const k = await resolveKey(ctx.sql, args.key);
      if (!k.found) return { headline: k.message, data: { incidents: [], nextCursor: null, scanned: 0 } };
      keyId = k.key.id;
    }
    const filter = {
      keyId,
      detector: args.detector,
      mode: args.mode,
      source: args.source,
      action: args.action,
      status: args.status,
      sinceMs,
    };
    const p = await queryIncidents(ctx.redis, filter, args.limit, args.cursor);
    return {
      headline: `${p.items.length} incident(s)${p.nextCursor ? '; more with the cursor' : ''}.`,
      data: { incidents: p.items, nextCursor: p.nextCursor, scanned: p.scanned },
    };
  },
});

export const getIncident = defineTool({
  name: 'get_incident',
  role: 'reader',
  title: 'One incident',
  description:
    'One incident by id: who (key prefix, owner, tier), which detector and mode, the evidence and thresholds crossed, what was done (action, level, expiry), status, summary.',
  input: { id: input.incidentId },
  output: { ...notFound, incident: incidentSchema.optional() },
  annotations: { readOnlyHint: true },
  async run({ id }, { ctx }) {
    const incident = await ctx.store.get(id);
    if (!incident)
      return {
        headline: `No incident ${id}.`,
        data: { found: false, message: `no incident ${id} in the ring buffer (it may have been trimmed; the Postgres archive keeps all)` },
      };
    return {
      headline: headlineOf(incident),
      data: { found: true, message: 'found', incident },
    };
  },
});

export const summariseIncident = defineTool({
  name: 'summarise_incident',
  role: 'reader',
  title: 'Summarise an incident',
  description:
    "An incident's summary. With regenerate: true the local model (LLM_MODEL) writes it again now from the evidence (no user text is ever sent); a template is used if the model is down.",
  input: { id: input.incidentId, regenerate: z.boolean().default(false).describe('Ask the model again even if a summary exists.') },
  output: {
    ...notFound,
    id: z.string().optional(),
    summary: z.string().nullable().optional(),
    source: z.enum(['model', 'template']).nullable().optional(),
    regenerated: z.boolean().optional().describe('a new summary was written by this call'),
  },
  annotations: { readOnlyHint: false, idempotentHint: true },
  async run({ id, regenerate }, { ctx }) {
    const incident = await ctx.store.get(id);
    if (!incident) return { headline: `No incident ${id}.`, data: { found: false, message: `no incident ${id} in the ring buffer` } };
    // Operator incidents are summarised from the operator's own words when recorded.
    const ask = incident.source === 'guard' && (regenerate || incident.summary === null);
    if (ask) await ctx.summarise({ ...incident, summary: null, summarySource: null });
    const after = (await ctx.store.get(id)) ?? incident;
    const changed = after.summary !== incident.summary || after.summarySource !== incident.summarySource;
    const message = !ask
      ? 'the stored summary'
      : changed
        ? `written now (${after.summarySource})`
        : 'the model did not answer; the stored summary is unchanged';
    return {
      headline: after.summary ?? 'No summary yet.',
      data: { found: true, message, id, summary: after.summary, source: after.summarySource, regenerated: ask && changed },
    };
  },
});

export const listShadowDecisions = defineTool({
  name: 'list_shadow_decisions',
  role: 'reader',
  title: 'Shadow decisions',
  description:
    'What detectors would have done but did not (shadow mode, allowlist, grace), with their evidence: compare a shadow detector before enforcing it. Newest first; paged.',
  input: { detector: input.detector.optional(), key: input.key.optional(), limit: input.limit(20), cursor: input.cursor },
  output: { decisions: z.array(shadowDecisionSchema), ...page },
  annotations: { readOnlyHint: true },
  async run(args, { ctx }) {
    let keyId: string | undefined;
    if (args.key !== undefined) {
      const k = await resolveKey(ctx.sql, args.key);
      if (!k.found) return { headline: k.message, data: { decisions: [], nextCursor: null, scanned: 0 } };
      keyId = k.key.id;
    }
    const p = await queryShadowDecisions(ctx.redis, { detector: args.detector, keyId }, args.limit, args.cursor);
    return {
      headline: `${p.items.length} shadow decision(s).`,
      data: { decisions: p.items, nextCursor: p.nextCursor, scanned: p.scanned },
    };
  },
});

/** One line on an incident: the guard's names its detector and subject, an operator's who did what. */
export function headlineOf(i: Incident): string {
  const subject = i.keyPrefix ?? i.clientIp ?? i.keyId;
  if (i.source === 'operator')
    return `Operator action by ${i.actor ?? 'unknown'}: ${i.action}${i.level ? ` ${i.level}` : ''}${subject ? ` on ${subject}` : ''}${i.detector ? ` (${i.detector})` : ''}, ${i.status}.`;
  return `${i.detector} on ${subject ?? 'unknown'}: ${i.action}${i.level ? ` ${i.level}` : ''}, ${i.status}.`;
}
