import { z } from 'zod';
import { issueKey } from '../../auth/issue.js';
import { announceKeyChange } from '../../auth/revocation-feed.js';
import { recordAudit, type AuditEntry } from '../../store/audit.js';
import { listKeys, setKeyStatus, type KeyInfo, type KeyStatus } from '../../store/keys.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';

export interface KeysFlags {
  email?: string;
  name?: string;
  tier?: string;
  json?: boolean;
}

const createSchema = z.object({
  email: z.email({ error: '--email must be an email address' }),
  name: z.string().max(100, { error: '--name is at most 100 characters' }).optional(),
  tier: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, { error: '--tier must be a tier id such as free, pro' })
    .optional(),
});

export async function keysCommand(ctx: CliContext, sub: string | undefined, args: string[], flags: KeysFlags): Promise<number> {
  switch (sub) {
    case 'create':
      return create(ctx, args, flags);
    case 'list':
      return list(ctx, args, flags);
    case 'revoke':
      return changeStatus(ctx, args, 'revoked');
    case 'suspend':
      return changeStatus(ctx, args, 'suspended');
    case 'activate':
      return changeStatus(ctx, args, 'active');
    default:
      throw new UsageError(sub === undefined ? 'missing keys subcommand' : `unknown keys subcommand: ${sub}`);
  }
}

async function create(ctx: CliContext, args: string[], flags: KeysFlags): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  if (flags.email === undefined) throw new UsageError('keys create needs --email');
  const parsed = createSchema.safeParse({ email: flags.email, name: flags.name, tier: flags.tier });
  if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? 'invalid arguments');
  const issued = await issueKey(ctx.sql(), parsed.data);
  // The key exists now: whatever happens next, its secret must be printed.
  if (flags.json) {
    ctx.out(
      JSON.stringify({
        id: issued.key.id,
        prefix: issued.key.prefix,
        tier: issued.key.tier,
        userId: issued.key.userId,
        secret: issued.secret,
      }),
    );
  } else {
    ctx.out(`id:     ${issued.key.id}`);
    ctx.out(`prefix: ${issued.key.prefix}`);
    ctx.out(`secret: ${issued.secret}`);
  }
  ctx.warn('store the secret now: it is shown once and cannot be recovered');
  await audit(ctx, {
    action: 'key.created',
    userId: issued.key.userId,
    keyId: issued.key.id,
    detail: { tier: issued.key.tier, userCreated: issued.userCreated },
  });
  return EXIT.ok;
}

async function list(ctx: CliContext, args: string[], flags: KeysFlags): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  const keys = await listKeys(ctx.sql(), { email: flags.email });
  if (flags.json) {
    ctx.out(JSON.stringify(keys));
    return EXIT.ok;
  }
  if (keys.length === 0) {
    ctx.out(flags.email === undefined ? 'no keys' : `no keys for ${flags.email}`);
    return EXIT.ok;
  }
  const rows = [
    ['ID', 'PREFIX', 'STATUS', 'TIER', 'OWNER', 'NAME', 'CREATED', 'LAST USED'],
    ...keys.map((k: KeyInfo) => [
      k.id,
      k.prefix,
      k.status,
      k.tier,
      k.ownerEmail,
      k.name || '-',
      iso(k.createdAt),
      k.lastUsedAt ? iso(k.lastUsedAt) : 'never',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) ctx.out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return EXIT.ok;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

const EVENT_TYPE = { revoked: 'revoked', suspended: 'suspended', active: 'activated' } as const;
const VERB = { revoked: 'revoked', suspended: 'suspended', active: 'activated' } as const;

async function changeStatus(ctx: CliContext, args: string[], status: KeyStatus): Promise<number> {
  if (args.length !== 1) throw new UsageError(`expected exactly one key id, got ${args.length}`);
  const id = args[0]!;
  const change = await setKeyStatus(ctx.sql(), id, status);
  if (!change.changed) {
    ctx.out(`${id} (${change.key.prefix}) already ${VERB[status]}`);
  } else {
    await audit(ctx, { action: `key.${VERB[status]}`, userId: change.key.userId, keyId: id });
    ctx.out(`${VERB[status]} ${id} (${change.key.prefix})`);
  }
  // Announced even when unchanged: a retry after a failed notification must still reach replicas.
  try {
    await announceKeyChange(await ctx.redis(), { type: EVENT_TYPE[status], keyId: id, keyHash: change.keyHash });
  } catch (err) {
    // The bound the key cache guarantees (key-cache.ts; tested with the defaults in key-cache.test.ts).
    ctx.warn(
      `${VERB[status]} in Postgres, but replicas were not notified (${(err as Error).message}); each replica applies it when its cached copy expires: ` +
        'within 60 s (KEY_CACHE_TTL_MS), or 65 s on a replica that cannot reach Postgres either (+ KEY_CACHE_STALE_MAX_MS, after which it answers 503)',
    );
    return EXIT.partial;
  }
  return EXIT.ok;
}

/** The audit row follows a committed change; failing to write it must not hide the change. */
async function audit(ctx: CliContext, entry: Omit<AuditEntry, 'actor'>): Promise<void> {
  try {
    await recordAudit(ctx.sql(), { actor: 'cli', ...entry });
  } catch (err) {
    ctx.warn(`audit log not written (${(err as Error).message})`);
  }
}
