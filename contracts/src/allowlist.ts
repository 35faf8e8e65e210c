import { z } from 'zod';

/**
 * Issue 18's allowlist: keys, accounts and client addresses the guard never penalises (it still
 * records what it would have done, as shadow incidents). Rows live in Postgres (init.sql
 * guard_allowlist, unique per kind and value), written by the admin route, the CLI and MCP, and
 * re-read by the guard every poll. The same validation for every writer:
 *   key      an API key id (uuid)
 *   account  a user id (uuid) or an account's email (matched case-insensitively)
 *   cidr     one IPv4/IPv6 address or a CIDR block
 */
export const ALLOWLIST_KINDS = ['key', 'account', 'cidr'] as const;
export type AllowlistKind = (typeof ALLOWLIST_KINDS)[number];

const uuid = z.uuid({ error: 'expected an API key id (a uuid)' });
const account = z.union([z.uuid(), z.email()], { error: 'expected a user id (uuid) or an email address' });
const cidr = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
  error: 'expected an IP address or a CIDR such as 10.0.0.0/8 or 2001:db8::/32',
});

/** A new entry: `{kind, value, reason?, expiresInSeconds?}` (no expiry = until removed). */
export const allowlistInputSchema = z
  .strictObject({
    kind: z.enum(ALLOWLIST_KINDS),
    value: z.string().trim().min(1).max(320),
    reason: z.string().max(500).default(''),
    expiresInSeconds: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .optional(),
  })
  .superRefine((e, ctx) => {
    const check = e.kind === 'key' ? uuid : e.kind === 'account' ? account : cidr;
    const r = check.safeParse(e.value);
    if (!r.success) ctx.addIssue({ code: 'custom', path: ['value'], message: `${e.kind}: ${r.error.issues[0]?.message ?? 'invalid'}` });
  })
  .transform((e) => ({ ...e, value: e.value.toLowerCase() }));
export type AllowlistInput = z.infer<typeof allowlistInputSchema>;

/** A stored entry as the operator surfaces show it. */
export const allowlistEntrySchema = z.object({
  id: z.number().int().positive(),
  kind: z.enum(ALLOWLIST_KINDS),
  value: z.string(),
  reason: z.string(),
  createdBy: z.string(),
  createdAt: z.number().int(),
  expiresAt: z.number().int().nullable(),
});
export type AllowlistEntry = z.infer<typeof allowlistEntrySchema>;

/** `kind:value` as the CLI and GUARD_ALLOWLIST spell an entry. */
export function parseAllowlistSpec(spec: string): { kind: string; value: string } | null {
  const m = /^(key|account|cidr):(.+)$/.exec(spec.trim());
  return m ? { kind: m[1]!, value: m[2]!.trim() } : null;
}
