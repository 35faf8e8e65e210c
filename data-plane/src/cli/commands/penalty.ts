import { listPenalties, PENALTY_LEVELS, type PenaltyLevel } from '@fluxgate/contracts';
import { pardonKey, throttleKey, type PenaltyOutcome } from '../../operator/penalty.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';
import { iso, operatorDeps, parseDurationFlag } from './operator-deps.js';

export interface PenaltyFlags {
  level?: string;
  duration?: string;
  reason?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

const MAX_DURATION_SECONDS = 30 * 86_400;

/**
 * `penalty set|lift|list`: the operator's throttle and pardon, with the same rails as the admin
 * routes (operator/penalty.ts): past MCP_MAX_PENALTY only with --force, a pardon of a guard
 * penalty gives grace, each change leaves an operator incident, --dry-run changes nothing.
 */
export async function penaltyCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: PenaltyFlags,
  actor: string,
): Promise<number> {
  switch (sub) {
    case 'set':
      return set(ctx, oneKeyId(args), flags, actor);
    case 'lift':
      return lift(ctx, oneKeyId(args), flags, actor);
    case 'list':
      return list(ctx, args, flags);
    default:
      throw new UsageError(sub === undefined ? 'missing penalty subcommand' : `unknown penalty subcommand: ${sub}`);
  }
}

function oneKeyId(args: string[]): string {
  if (args.length !== 1) throw new UsageError(`expected exactly one key id, got ${args.length}`);
  return args[0]!;
}

async function set(ctx: CliContext, keyId: string, flags: PenaltyFlags, actor: string): Promise<number> {
  if (!flags.level || !(PENALTY_LEVELS as readonly string[]).includes(flags.level))
    throw new UsageError(`--level must be one of ${PENALTY_LEVELS.join(', ')}`);
  let durationSeconds: number | undefined;
  if (flags.duration !== undefined) {
    const d = parseDurationFlag(flags.duration);
    if (d === null || d > MAX_DURATION_SECONDS)
      throw new UsageError('--duration must be a duration such as 900, 90m, 24h or 7d (at most 30 days)');
    durationSeconds = d;
  }
  if (flags.reason !== undefined && flags.reason.length > 500) throw new UsageError('--reason is at most 500 characters');
  const outcome = await throttleKey(
    await operatorDeps(ctx),
    { keyId, level: flags.level as PenaltyLevel, durationSeconds, reason: flags.reason, force: flags.force, dryRun: flags.dryRun },
    actor,
  );
  if (flags.json) ctx.out(JSON.stringify(outcome));
  else
    ctx.out(
      `${describe(outcome)}${outcome.forced ? ' (forced past MCP_MAX_PENALTY)' : ''}${outcome.incidentId ? `; incident ${outcome.incidentId}` : ''}`,
    );
  return EXIT.ok;
}

async function lift(ctx: CliContext, keyId: string, flags: PenaltyFlags, actor: string): Promise<number> {
  if (flags.reason !== undefined && flags.reason.length > 500) throw new UsageError('--reason is at most 500 characters');
  const outcome = await pardonKey(await operatorDeps(ctx), { keyId, reason: flags.reason, dryRun: flags.dryRun }, actor);
  if (flags.json) ctx.out(JSON.stringify(outcome));
  else if (!outcome.lifted) ctx.out(`${outcome.keyId} (${outcome.keyPrefix}) has no penalty: nothing to lift`);
  else {
    const extra = [
      outcome.graceUntil === null ? '' : `; grace from the guard until ${iso(outcome.graceUntil)}`,
      outcome.incidentId === null ? '' : `; incident ${outcome.incidentId}`,
    ].join('');
    ctx.out(`${describe(outcome)}${extra}`);
  }
  return EXIT.ok;
}

async function list(ctx: CliContext, args: string[], flags: PenaltyFlags): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  const penalties = await listPenalties(await ctx.redis());
  if (flags.json) ctx.out(JSON.stringify(penalties));
  else if (penalties.length === 0) ctx.out('no penalties');
  else
    for (const p of penalties)
      ctx.out(
        `${p.keyId}  ${p.level}  until ${iso(p.expiresAt)}  by ${p.setBy}${p.actor ? ` (${p.actor})` : ''}${p.forced ? ' forced' : ''}  ${p.reason}`,
      );
  return EXIT.ok;
}

function describe(o: PenaltyOutcome): string {
  const change = `${o.before.effectiveTier} → ${o.after.effectiveTier}${o.until === null ? '' : ` until ${iso(o.until)}`}`;
  const seen = `${o.replicas.length} live replica${o.replicas.length === 1 ? '' : 's'}`;
  return o.dryRun
    ? `dry run, nothing changed: ${o.keyId} (${o.keyPrefix}) would go ${change}, seen by ${seen}`
    : `${o.keyId} (${o.keyPrefix}): ${change}, seen by ${seen}`;
}
