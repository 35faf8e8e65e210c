import { z } from 'zod';
import { listTierRows, putTier, TIER_ID_RE, tierLimitsInputSchema, type TierLimitsInput } from '../../operator/tiers.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';

export interface TierFlags {
  requestsPerWindow?: string;
  tokensPerWindow?: string;
  windowSeconds?: string;
  concurrentStreams?: string;
  burst?: string;
  json?: boolean;
}

const FLAG_OF: Record<keyof TierLimitsInput, string> = {
  requestsPerWindow: '--requests-per-window',
  tokensPerWindow: '--tokens-per-window',
  windowSeconds: '--window-seconds',
  concurrentStreams: '--concurrent-streams',
  burst: '--burst',
};

/**
 * `tiers list` and `tiers set <id> [--requests-per-window n] …`: a new tier needs all five limits;
 * for an existing one the flags given replace those limits. Every replica hears of it at once
 * (channels.tiers); exit 4 when Redis could not be told.
 */
export async function tiersCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: TierFlags,
  actor: string,
): Promise<number> {
  if (sub === 'list') {
    if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
    const tiers = await listTierRows(ctx.sql());
    if (flags.json) ctx.out(JSON.stringify(tiers));
    else
      for (const t of tiers)
        ctx.out(
          `${t.id.padEnd(16)}${t.requestsPerWindow} req + ${t.tokensPerWindow} tokens / ${t.windowSeconds} s, burst ${t.burst}, ${t.concurrentStreams} streams${t.isPenalty ? '  (penalty level)' : ''}`,
        );
    return EXIT.ok;
  }
  if (sub !== 'set') throw new UsageError(sub === undefined ? 'missing tiers subcommand' : `unknown tiers subcommand: ${sub}`);
  if (args.length !== 1) throw new UsageError(`expected exactly one tier id, got ${args.length}`);
  const id = args[0]!;
  if (!TIER_ID_RE.test(id)) throw new UsageError('the tier id is 1-64 characters of a-z, 0-9, "_" and "-"');

  const given: Partial<Record<keyof TierLimitsInput, number>> = {};
  for (const [field, flag] of Object.entries(FLAG_OF) as Array<[keyof TierLimitsInput, string]>) {
    const raw = flags[field];
    if (raw === undefined) continue;
    const n = z.coerce.number().int().positive().safeParse(raw);
    if (!n.success || raw.trim() === '') throw new UsageError(`${flag} must be a positive whole number`);
    given[field] = n.data;
  }
  const existing = (await listTierRows(ctx.sql())).find((t) => t.id === id);
  const merged = tierLimitsInputSchema.safeParse({ ...(existing ? pickLimits(existing) : {}), ...given });
  if (!merged.success) {
    const missing = (Object.keys(FLAG_OF) as Array<keyof TierLimitsInput>)
      .filter((f) => (existing ? false : given[f] === undefined))
      .map((f) => FLAG_OF[f]);
    throw new UsageError(
      missing.length > 0
        ? `a new tier needs ${missing.join(', ')}`
        : `${merged.error.issues[0]?.path.join('.')}: ${merged.error.issues[0]?.message}`,
    );
  }
  const change = await putTier({ sql: ctx.sql(), redis: () => ctx.redis() }, id, merged.data, actor);
  ctx.out(`${change.created ? 'created' : 'updated'} tier ${id}`);
  if (!change.notified) {
    ctx.warn(
      'changed in Postgres, but replicas were not told (Redis unreachable): each reloads within TIERS_REFRESH_MS (60 s), and at once when it first meets a new tier id',
    );
    return EXIT.partial;
  }
  return EXIT.ok;
}

const pickLimits = (t: TierLimitsInput): TierLimitsInput => ({
  requestsPerWindow: t.requestsPerWindow,
  tokensPerWindow: t.tokensPerWindow,
  windowSeconds: t.windowSeconds,
  concurrentStreams: t.concurrentStreams,
  burst: t.burst,
});
