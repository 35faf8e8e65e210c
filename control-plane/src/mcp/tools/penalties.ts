import { listPenalties } from '@fluxgate/contracts';
import { z } from 'zod';
import { pardon } from '../actions/pardon.js';
import { throttle } from '../actions/throttle.js';
import { penaltyView } from '../actions/views.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { prefixesOf } from '../keys.js';
import { durationInput, input, keyRefOutput, notFound, penaltyOutput, replicaOutput } from '../schemas.js';
import { defineTool } from '../tool.js';

const penaltyEntry = penaltyOutput.extend({
  keyPrefix: z.string().nullable(),
  ownerEmail: z.string().nullable(),
  ownTier: z.string().nullable(),
});

export const listPenaltyBox = defineTool({
  name: 'list_penalty_box',
  role: 'reader',
  title: 'Penalty box',
  description:
    'Every key in the penalty box now: level, who set it (guard or operator), why, the incident, when it ends. Soonest expiry first; paged.',
  input: { limit: input.limit(50), cursor: input.cursor },
  output: { total: z.number().int(), penalties: z.array(penaltyEntry), nextCursor: z.string().nullable() },
  annotations: { readOnlyHint: true },
  async run({ limit, cursor }, { ctx }) {
    const now = ctx.now();
    const all = (await listPenalties(ctx.redis, now)).sort((a, b) => a.expiresAt - b.expiresAt || a.keyId.localeCompare(b.keyId));
    const after = decodeCursor(cursor, 'pen', /^\d+:.+$/);
    const [afterAt, afterKey] =
      after === null ? [-1, ''] : [Number(after.slice(0, after.indexOf(':'))), after.slice(after.indexOf(':') + 1)];
    const rest = all.filter((p) => p.expiresAt > afterAt || (p.expiresAt === afterAt && p.keyId > afterKey));
    const page = rest.slice(0, limit);
    const meta = await prefixesOf(
      ctx.sql,
      page.map((p) => p.keyId),
    );
    const last = page[page.length - 1];
    return {
      headline: `${all.length} key(s) in the penalty box; showing ${page.length}.`,
      data: {
        total: all.length,
        penalties: page.map((p) => ({
          ...penaltyView(p, now),
          keyPrefix: meta.get(p.keyId)?.prefix ?? null,
          ownerEmail: meta.get(p.keyId)?.email ?? null,
          ownTier: meta.get(p.keyId)?.tier ?? null,
        })),
        nextCursor: rest.length > limit && last ? encodeCursor('pen', `${last.expiresAt}:${last.keyId}`) : null,
      },
    };
  },
});

const change = {
  ...notFound,
  dryRun: z.boolean().optional(),
  changed: z.boolean().optional().describe('true when something was written'),
  key: keyRefOutput.optional(),
  before: z.object({ effectiveTier: z.string().nullable(), penalty: penaltyOutput.nullable() }).optional(),
  replicas: z
    .array(replicaOutput)
    .optional()
    .describe('live data-plane replicas; each applies the change on the penalties channel within a second'),
  incidentId: z.string().nullable().optional().describe('the operator incident recording this action'),
};

export const throttleKey = defineTool({
  name: 'throttle_key',
  role: 'operator',
  title: 'Throttle a key',
  description:
    "Put an API key in the penalty box at a level for a duration (default: the level's guard duration). Longer than MCP_MAX_PENALTY (default 24h) needs force: true. " +
    'Records an operator incident with your token name and reason; every replica applies it within a second. dryRun: true answers what would change without changing anything.',
  input: {
    key: input.key,
    level: input.level,
    duration: durationInput,
    reason: input.reason,
    force: z.boolean().default(false).describe('Allow a duration beyond MCP_MAX_PENALTY (recorded in the incident).'),
    dryRun: input.dryRun,
    incidentId: input.incidentId.optional().describe('The incident this throttle answers (its detector is recorded).'),
    detector: input.detector
      .optional()
      .describe("Which abuse this answers, when no incident names it (default: the key's latest incident's, else none)."),
  },
  output: {
    ...change,
    after: z.object({ effectiveTier: z.string(), until: z.string(), durationSeconds: z.number().int() }).optional(),
    forced: z.boolean().optional().describe('the duration is beyond MCP_MAX_PENALTY and force was given'),
    maxPenaltySeconds: z.number().int().optional(),
    detector: input.detector.nullable().optional().describe('the detector the throttle answers; null when none does'),
  },
  annotations: { destructiveHint: true, idempotentHint: false },
  async run(args, call) {
    const out = await throttle(args, call);
    return { headline: out.message, data: out };
  },
});

export const pardonKey = defineTool({
  name: 'pardon_key',
  aliases: ['pardon_identity'],
  role: 'operator',
  title: 'Pardon a key',
  description:
    "Lift an API key's penalty on every replica within a second, mark its incident pardoned, reset the escalation for that episode and give the key the guard's grace (no detector re-penalises it meanwhile). " +
    'With incidentId, also pardons a penalty that already ended. Records an operator incident. dryRun: true answers what would change.',
  input: {
    key: input.key,
    reason: input.reason,
    dryRun: input.dryRun,
    incidentId: input.incidentId.optional().describe("The incident to pardon (default: the live penalty's)."),
    detector: input.detector.optional().describe('Which abuse this pardon concerns, when no incident names it.'),
  },
  output: {
    ...change,
    after: z.object({ effectiveTier: z.string().nullable() }).optional(),
    graceUntil: z.string().nullable().optional().describe('until when no detector penalises the key again'),
    pardonedIncidentId: z.string().nullable().optional(),
  },
  annotations: { destructiveHint: false, idempotentHint: true },
  async run(args, call) {
    const out = await pardon(args, call);
    return { headline: out.message, data: out };
  },
});
