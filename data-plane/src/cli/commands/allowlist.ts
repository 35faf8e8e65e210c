import { ALLOWLIST_KINDS, allowlistInputSchema, parseAllowlistSpec, type AllowlistEntry, type AllowlistKind } from '@fluxgate/contracts';
import { addAllowlistEntry, listAllowlistEntries, removeAllowlistEntry } from '../../operator/allowlist.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';
import { iso, operatorDeps, parseDurationFlag } from './operator-deps.js';

export interface AllowlistFlags {
  reason?: string;
  expiresIn?: string;
  json?: boolean;
}

/**
 * `allowlist add|list|remove`: keys, accounts and CIDRs the guard never penalises (it records a
 * shadow incident instead). Entries are written as `key:<id>`, `account:<user id or email>`,
 * `cidr:<ip or cidr>`; the guard sees a change at its next poll. Each change leaves an operator
 * incident (as `cli:<user>`, with --reason), so Redis is needed too.
 */
export async function allowlistCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: AllowlistFlags,
  actor: string,
): Promise<number> {
  switch (sub) {
    case 'add': {
      const spec = parseAllowlistSpec(one(args, 'add'));
      if (!spec) throw new UsageError('expected <kind>:<value>, kind one of key, account, cidr (e.g. cidr:10.0.0.0/8)');
      let expiresInSeconds: number | undefined;
      if (flags.expiresIn !== undefined) {
        const d = parseDurationFlag(flags.expiresIn);
        if (d === null) throw new UsageError('--expires-in must be a duration such as 3600, 90m, 24h or 30d');
        expiresInSeconds = d;
      }
      const input = allowlistInputSchema.safeParse({ ...spec, reason: flags.reason, expiresInSeconds });
      if (!input.success) {
        const issue = input.error.issues[0];
        throw new UsageError(`${issue?.path.join('.') || 'entry'}: ${issue?.message ?? 'invalid'}`);
      }
      const { entry, created, incidentId } = await addAllowlistEntry(await operatorDeps(ctx), input.data, actor);
      if (flags.json) ctx.out(JSON.stringify({ entry, created, incidentId }));
      else
        ctx.out(
          `${created ? 'added' : 'updated'} #${entry.id} ${entry.kind}:${entry.value}${entry.expiresAt ? ` until ${iso(entry.expiresAt)}` : ''}${incidentId ? `; incident ${incidentId}` : ''}`,
        );
      return EXIT.ok;
    }
    case 'list': {
      if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
      const entries = await listAllowlistEntries({ sql: ctx.sql() });
      if (flags.json) ctx.out(JSON.stringify(entries));
      else if (entries.length === 0) ctx.out('the allowlist is empty');
      else for (const e of entries) ctx.out(line(e));
      return EXIT.ok;
    }
    case 'remove': {
      const what = one(args, 'remove');
      const spec = parseAllowlistSpec(what);
      const by = /^\d+$/.test(what)
        ? { id: Number(what) }
        : spec && (ALLOWLIST_KINDS as readonly string[]).includes(spec.kind)
          ? { kind: spec.kind as AllowlistKind, value: spec.value }
          : null;
      if (!by) throw new UsageError('expected an entry id or <kind>:<value>');
      if (flags.reason !== undefined && flags.reason.length > 500) throw new UsageError('--reason is at most 500 characters');
      const done = await removeAllowlistEntry(await operatorDeps(ctx), by, actor, flags.reason ?? null);
      if (!done) {
        ctx.warn(`no allowlist entry ${what}`);
        return EXIT.refused;
      }
      const { removed, incidentId } = done;
      if (flags.json) ctx.out(JSON.stringify(done));
      else ctx.out(`removed #${removed.id} ${removed.kind}:${removed.value}${incidentId ? `; incident ${incidentId}` : ''}`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(sub === undefined ? 'missing allowlist subcommand' : `unknown allowlist subcommand: ${sub}`);
  }
}

function one(args: string[], sub: string): string {
  if (args.length !== 1) throw new UsageError(`allowlist ${sub} takes exactly one argument, got ${args.length}`);
  return args[0]!;
}

const line = (e: AllowlistEntry): string =>
  `#${e.id}  ${e.kind}:${e.value}  by ${e.createdBy || '-'}  ${e.expiresAt ? `until ${iso(e.expiresAt)}` : 'no expiry'}${e.reason ? `  ${e.reason}` : ''}`;
