import {
  allowlistInputSchema,
  DETECTORS,
  DETECTOR_MODES,
  getDetectorModes as readDetectorModes,
  setDetectorMode as writeDetectorMode,
  type DetectorMode,
} from '@fluxgate/contracts';
import { z } from 'zod';
import { parseAllowlistConfig } from '../../guard/allowlist.js';
import { configuredModes } from '../../guard/modes.js';
import { deleteAllowRow, findAllowRow, listAllowRows, upsertAllowRow } from '../../store/allowlist-admin.js';
import { writeAudit } from '../../store/audit.js';
import type { Sql } from '../../store/db.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { ToolInputError } from '../errors.js';
import { resolveKey, type KeyInfo } from '../keys.js';
import { markNotDone, recordOperatorIncident, type McpOperatorAction } from '../operator-incident.js';
import { durationInput, input, parseDuration } from '../schemas.js';
import { defineTool, type ToolCall } from '../tool.js';

const KINDS = ['key', 'account', 'cidr'] as const;
const entryOutput = z.object({
  id: z.number().int().nullable().describe('null for GUARD_ALLOWLIST entries (config, read-only here)'),
  kind: z.enum(KINDS),
  value: z.string(),
  reason: z.string(),
  createdBy: z.string(),
  createdAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  source: z.enum(['database', 'config']),
});

const needSql = (sql: Sql | null): Sql => {
  if (!sql)
    throw new ToolInputError(
      'the allowlist lives in Postgres and DATABASE_URL is not set on this control plane; set it (GUARD_ALLOWLIST entries are read-only)',
    );
  return sql;
};

/** The stored value of an entry: a key id (from an id or prefix), an account id or email, an IP or CIDR. */
async function normalise(
  call: ToolCall,
  kind: (typeof KINDS)[number],
  value: string,
): Promise<{ value: string; keyId: string | null; subject: Pick<McpOperatorAction, 'key' | 'owner'> }> {
  const v = value.trim();
  if (kind === 'key') {
    const k = await resolveKey(call.ctx.sql, v, 'value');
    if (!k.found) throw new ToolInputError(`value: ${k.message}`);
    return { value: k.key.id, keyId: k.key.id, subject: { key: k.key } };
  }
  // Accounts and CIDRs are validated as every operator surface validates them (contracts).
  const parsed = allowlistInputSchema.safeParse({ kind, value: v });
  if (!parsed.success) throw new ToolInputError(`value: ${parsed.error.issues[0]?.message ?? `not a valid ${kind}`}`);
  const lower = v.toLowerCase();
  const owner = kind !== 'account' ? null : lower.includes('@') ? { id: null, email: lower } : { id: lower, email: null };
  return { value: lower, keyId: null, subject: { key: null as KeyInfo | null, owner } };
}

/** Records the operator incident first, then does the write; a failed write marks the incident not done. */
async function recorded<T>(call: ToolCall, a: McpOperatorAction, write: () => Promise<T>): Promise<{ result: T; incidentId: string }> {
  const incident = await recordOperatorIncident(call.ctx, call.identity, a);
  try {
    return { result: await write(), incidentId: incident.id };
  } catch (err) {
    await markNotDone(call.ctx, incident, call.ctx.now());
    throw err;
  }
}

export const listAllowlist = defineTool({
  name: 'list_allowlist',
  role: 'reader',
  title: 'Allowlist',
  description:
    'Keys, accounts and CIDRs the guard never penalises (it records shadow incidents for them instead): the guard_allowlist table and GUARD_ALLOWLIST. Paged.',
  input: { kind: z.enum(KINDS).optional(), limit: input.limit(50), cursor: input.cursor },
  output: { entries: z.array(entryOutput), nextCursor: z.string().nullable() },
  annotations: { readOnlyHint: true },
  async run({ kind, limit, cursor }, { ctx }) {
    const after = decodeCursor(cursor, 'allow', /^\d{1,18}$/);
    const fromConfig =
      after === null
        ? parseAllowlistConfig(ctx.config.GUARD_ALLOWLIST)
            .entries.filter((e) => !kind || e.kind === kind)
            .map((e) => ({
              id: null,
              kind: e.kind,
              value: e.value,
              reason: 'GUARD_ALLOWLIST',
              createdBy: 'config',
              createdAt: null,
              expiresAt: null,
              source: 'config' as const,
            }))
        : [];
    const rows = ctx.sql ? await listAllowRows(ctx.sql, { kind, afterId: after === null ? 0 : Number(after), limit: limit + 1 }) : [];
    const page = rows.slice(0, limit).map((r) => ({ ...r, source: 'database' as const }));
    const last = page[page.length - 1];
    return {
      headline: `${fromConfig.length + page.length} allowlist entr${fromConfig.length + page.length === 1 ? 'y' : 'ies'}${ctx.sql ? '' : ' (config only: DATABASE_URL is not set)'}.`,
      data: { entries: [...fromConfig, ...page], nextCursor: rows.length > limit && last ? encodeCursor('allow', String(last.id)) : null },
    };
  },
});

export const addAllowlistEntry = defineTool({
  name: 'add_allowlist_entry',
  role: 'operator',
  title: 'Allowlist a key, account or CIDR',
  description:
    'Add (or renew) an allowlist entry: the guard stops penalising it from its next poll and records shadow incidents instead. Records an operator incident with your token name and reason, and an audit row. dryRun: true answers what would change.',
  input: {
    kind: z.enum(KINDS).describe('key (id or display prefix), account (user id or email) or cidr (IP or CIDR).'),
    value: z.string().trim().min(1).max(320),
    reason: input.reason,
    expiresIn: durationInput.describe('Remove it by itself after this long (90s, 15m, 2h, 7d); default never.'),
    dryRun: input.dryRun,
  },
  output: {
    changed: z.boolean(),
    dryRun: z.boolean(),
    existed: z.boolean(),
    entry: entryOutput,
    incidentId: z.string().nullable().optional(),
    message: z.string(),
  },
  annotations: { destructiveHint: false, idempotentHint: true },
  async run(args, call) {
    const sql = needSql(call.ctx.sql);
    const { value, keyId, subject } = await normalise(call, args.kind, args.value);
    const seconds = parseDuration(args.expiresIn, 'expiresIn');
    const expiresAt = seconds === null ? null : new Date(call.ctx.now() + seconds * 1000);
    const existing = await findAllowRow(sql, args.kind, value);
    const createdBy = `mcp:${call.identity.name}`;
    if (args.dryRun) {
      const entry = {
        id: existing?.id ?? null,
        kind: args.kind,
        value,
        reason: args.reason,
        createdBy,
        createdAt: null,
        expiresAt: expiresAt?.toISOString() ?? null,
        source: 'database' as const,
      };
      const message = `dry run: would ${existing ? 'renew' : 'add'} ${args.kind}:${value}; the guard would stop penalising it at its next poll. Nothing was changed.`;
      return { headline: message, data: { changed: false, dryRun: true, existed: existing !== null, entry, message } };
    }
    const until = expiresAt ? ` until ${expiresAt.toISOString()}` : '';
    const { result: row, incidentId } = await recorded(
      call,
      {
        ...subject,
        action: 'allowlist_add',
        reason: args.reason,
        expiresAt: expiresAt?.getTime() ?? null,
        what: `Operator ${existing ? 'renewed the allowlist entry' : 'allowlisted'} ${args.kind}:${value}${until}: the guard stops penalising it from its next poll.`,
      },
      () => upsertAllowRow(sql, { kind: args.kind, value, reason: args.reason, createdBy, expiresAt }),
    );
    await writeAudit(sql, {
      actor: createdBy,
      action: 'allowlist.add',
      keyId,
      detail: { kind: args.kind, value, reason: args.reason, expiresAt: row.expiresAt, incidentId },
    });
    const message = `${existing ? 'Renewed' : 'Added'} ${args.kind}:${value}${row.expiresAt ? ` until ${row.expiresAt}` : ''}; the guard stops penalising it from its next poll; incident ${incidentId}.`;
    return {
      headline: message,
      data: {
        changed: true,
        dryRun: false,
        existed: existing !== null,
        entry: { ...row, source: 'database' as const },
        incidentId,
        message,
      },
    };
  },
});

export const removeAllowlistEntry = defineTool({
  name: 'remove_allowlist_entry',
  role: 'operator',
  title: 'Remove an allowlist entry',
  description:
    'Remove an allowlist entry: from its next poll the guard may penalise it again. Records an operator incident with your token name and reason, and an audit row. dryRun: true answers what would change.',
  input: { kind: z.enum(KINDS), value: z.string().trim().min(1).max(320), reason: input.reason, dryRun: input.dryRun },
  output: {
    changed: z.boolean(),
    dryRun: z.boolean(),
    removed: entryOutput.nullable(),
    incidentId: z.string().nullable().optional(),
    message: z.string(),
  },
  annotations: { destructiveHint: true, idempotentHint: true },
  async run(args, call) {
    const sql = needSql(call.ctx.sql);
    const { value, keyId, subject } = await normalise(call, args.kind, args.value);
    const existing = await findAllowRow(sql, args.kind, value);
    if (!existing || args.dryRun) {
      const message = !existing
        ? `No allowlist entry ${args.kind}:${value} in the table${parseAllowlistConfig(call.ctx.config.GUARD_ALLOWLIST).entries.some((e) => e.kind === args.kind && e.value.toLowerCase() === value) ? ' (it is in GUARD_ALLOWLIST, which only the config can change)' : ''}; nothing to remove.`
        : `dry run: would remove ${args.kind}:${value}. Nothing was changed.`;
      return {
        headline: message,
        data: { changed: false, dryRun: args.dryRun, removed: existing ? { ...existing, source: 'database' as const } : null, message },
      };
    }
    const { result: removed, incidentId } = await recorded(
      call,
      {
        ...subject,
        action: 'allowlist_remove',
        reason: args.reason,
        what: `Operator removed ${args.kind}:${value} from the allowlist: the guard may penalise it again from its next poll.`,
      },
      () => deleteAllowRow(sql, args.kind, value),
    );
    await writeAudit(sql, {
      actor: `mcp:${call.identity.name}`,
      action: 'allowlist.remove',
      keyId,
      detail: { kind: args.kind, value, reason: args.reason, incidentId },
    });
    const message = removed
      ? `Removed ${args.kind}:${value}; the guard may penalise it again from its next poll; incident ${incidentId}.`
      : `${args.kind}:${value} was already gone.`;
    return {
      headline: message,
      data: {
        changed: removed !== null,
        dryRun: false,
        removed: removed ? { ...removed, source: 'database' as const } : null,
        incidentId,
        message,
      },
    };
  },
});

const modeRow = z.object({
  detector: z.enum(DETECTORS),
  mode: z.enum(DETECTOR_MODES).describe('what the guard applies from its next poll'),
  configured: z.enum(DETECTOR_MODES).describe('GUARD_DEFAULT_MODE / GUARD_MODES'),
  override: z.enum(DETECTOR_MODES).nullable().describe("an operator's run-time mode, if any"),
});

export const getDetectorModes = defineTool({
  name: 'get_detector_modes',
  role: 'reader',
  title: 'Detector modes',
  description: "Each detector's mode: enforce (acts) or shadow (records what it would do); the configured mode and any run-time override.",
  input: {},
  output: { detectors: z.array(modeRow) },
  annotations: { readOnlyHint: true },
  async run(_args, { ctx }) {
    const configured = configuredModes(ctx.config.GUARD_DEFAULT_MODE, ctx.config.GUARD_MODES);
    const overrides = await readDetectorModes(ctx.redis);
    const detectors = DETECTORS.map((d) => ({
      detector: d,
      mode: overrides[d] ?? configured.get(d)!,
      configured: configured.get(d)!,
      override: overrides[d] ?? null,
    }));
    return {
      headline: `Shadow: ${
        detectors
          .filter((d) => d.mode === 'shadow')
          .map((d) => d.detector)
          .join(', ') || 'none'
      }.`,
      data: { detectors },
    };
  },
});

export const setDetectorMode = defineTool({
  name: 'set_detector_mode',
  role: 'operator',
  title: 'Set a detector mode',
  description:
    'Switch a detector to enforce or shadow at run time (default: back to the configured mode). The guard applies it from its next poll and reports it in /metrics. Records an operator incident. dryRun: true answers what would change.',
  input: {
    detector: input.detector,
    mode: z.enum(['enforce', 'shadow', 'default']).describe('default removes the run-time override.'),
    reason: input.reason,
    dryRun: input.dryRun,
  },
  output: {
    detector: z.enum(DETECTORS),
    before: z.enum(DETECTOR_MODES),
    after: z.enum(DETECTOR_MODES),
    changed: z.boolean(),
    dryRun: z.boolean(),
    incidentId: z.string().nullable(),
    message: z.string(),
  },
  annotations: { destructiveHint: false, idempotentHint: true },
  async run(args, { ctx, identity }) {
    const configured = configuredModes(ctx.config.GUARD_DEFAULT_MODE, ctx.config.GUARD_MODES).get(args.detector)!;
    const overrides = await readDetectorModes(ctx.redis);
    const before = overrides[args.detector] ?? configured;
    const override: DetectorMode | null = args.mode === 'default' ? null : args.mode;
    const after = override ?? configured;
    const changed = (overrides[args.detector] ?? null) !== override;
    const base = { detector: args.detector, before, after, dryRun: args.dryRun };
    if (args.dryRun || !changed) {
      const message = !changed
        ? `${args.detector} already ${override ? `has the override ${override}` : 'follows its configured mode'} (${after}); nothing changed.`
        : `dry run: ${args.detector} would go from ${before} to ${after}. Nothing was changed.`;
      return { headline: message, data: { ...base, changed: false, incidentId: null, message } };
    }
    const now = ctx.now();
    const previous = overrides[args.detector] ?? null;
    const what = `Operator set detector ${args.detector} from ${before} to ${after}${override === null ? ' (back to its configured mode)' : ''}.`;
    const incident = await recordOperatorIncident(ctx, identity, {
      action: 'mode_change',
      reason: args.reason,
      key: null,
      detector: args.detector,
      // The run-time mode set, or for a clear the one removed (as every surface records it).
      mode: override ?? previous ?? after,
      evidence: override === null ? { cleared: 1 } : {},
      what,
    });
    try {
      await writeDetectorMode(ctx.redis, args.detector, override, now);
    } catch (err) {
      await markNotDone(ctx, incident, ctx.now());
      throw err;
    }
    const message = `${what} The guard applies it from its next poll; incident ${incident.id}.`;
    return { headline: message, data: { ...base, changed: true, incidentId: incident.id, message } };
  },
});
