import { BlockList, isIP } from 'node:net';

/**
 * Issue 18's allowlist: keys, accounts and client addresses the guard never penalises (it still
 * records what it would have done, as a shadow incident). Entries come from Postgres
 * (guard_allowlist, re-read every poll) and from GUARD_ALLOWLIST (`key:<id>`, `account:<user id
 * or email>`, `cidr:<ip or cidr>`).
 */
export interface Allowlist {
  key(keyId: string): boolean;
  account(ownerId: string | null, ownerEmail: string | null): boolean;
  ip(ip: string): boolean;
  readonly size: number;
}

export type AllowEntry = { kind: 'key' | 'account' | 'cidr'; value: string };

export function parseAllowlistConfig(text: string): { entries: AllowEntry[]; invalid: string[] } {
  const entries: AllowEntry[] = [];
  const invalid: string[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(key|account|cidr):(.+)$/.exec(part);
    if (m) entries.push({ kind: m[1] as AllowEntry['kind'], value: m[2]!.trim() });
    else invalid.push(part);
  }
  return { entries, invalid };
}

export function buildAllowlist(entries: readonly AllowEntry[]): { allowlist: Allowlist; invalid: AllowEntry[] } {
  const keys = new Set<string>();
  const accounts = new Set<string>();
  const blocks = new BlockList();
  const invalid: AllowEntry[] = [];
  for (const e of entries) {
    if (e.kind === 'key') keys.add(e.value);
    else if (e.kind === 'account') accounts.add(e.value.toLowerCase());
    else if (!addCidr(blocks, e.value)) invalid.push(e);
  }
  return {
    invalid,
    allowlist: {
      size: entries.length - invalid.length,
      key: (id) => keys.has(id),
      account: (ownerId, email) =>
        (ownerId !== null && accounts.has(ownerId.toLowerCase())) || (email !== null && accounts.has(email.toLowerCase())),
      ip(ip) {
        const v = isIP(ip);
        return v !== 0 && blocks.check(ip, v === 4 ? 'ipv4' : 'ipv6');
      },
    },
  };
}

function addCidr(blocks: BlockList, value: string): boolean {
  const [addr, bits] = value.split('/');
  const v = isIP(addr ?? '');
  if (v === 0) return false;
  const type = v === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) {
    blocks.addAddress(addr!, type);
    return true;
  }
  const n = Number(bits);
  if (!Number.isInteger(n) || n < 0 || n > (v === 4 ? 32 : 128)) return false;
  blocks.addSubnet(addr!, n, type);
  return true;
}
