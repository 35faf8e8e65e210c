/**
 * Shared vocabulary of the DNS modules: record sets as the cache keeps them, RCODEs, names.
 */
import type { Answer, SoaAnswer } from 'dns-packet';

/** RCODEs this resolver produces (RFC 1035 §4.1.1; BADVERS is an extended RCODE, RFC 6891). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

/** What one upstream answer (or a local override) says about one (name, type). */
export interface RecordSet {
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  /** Answer section as received (CNAME chain included), TTLs as received. */
  readonly answers: readonly Answer[];
  /** The SOA of a negative answer (RFC 2308 §3), empty otherwise. */
  readonly authority: readonly SoaAnswer[];
}

export type AddressType = 'A' | 'AAAA';

const LABEL = /^[a-z0-9_*](?:[a-z0-9_-]{0,61}[a-z0-9_])?$|^[a-z0-9_*]$/;

/**
 * Canonical form used as cache and override key: lower-case (RFC 4343), no trailing dot.
 * Null for anything that is not a plausible host or service name (LDH plus `_` and a leading
 * `*` label, RFC 1035 §2.3.4 lengths): such names are never sent upstream.
 */
export function canonicalName(name: string): string | null {
  const n = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (n.length === 0 || n.length > 253) return null;
  for (const label of n.split('.')) if (!LABEL.test(label)) return null;
  return n;
}

/** A/AAAA addresses of `name` in an answer section, following its CNAME chain. */
export function addressesIn(answers: readonly Answer[], name: string, type: AddressType): { address: string; ttl: number }[] {
  const owners = new Set([name.toLowerCase()]);
  // A chain is at most as long as the section; each pass adds at most one target.
  for (let grew = true; grew;) {
    grew = false;
    for (const a of answers) {
      if (a.type === 'CNAME' && owners.has(a.name.toLowerCase()) && !owners.has(a.data.toLowerCase())) {
        owners.add(a.data.toLowerCase());
        grew = true;
      }
    }
  }
  const out: { address: string; ttl: number }[] = [];
  for (const a of answers) {
    if (a.type === type && owners.has(a.name.toLowerCase())) out.push({ address: a.data, ttl: a.ttl ?? 0 });
  }
  return out;
}

/** Negative-answer TTL of a SOA: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5). */
export const negativeTtl = (soa: SoaAnswer): number => Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0);

/** A copy of `records` whose TTLs are at most `cap` seconds (the entry's remaining lifetime). */
export function capTtl<T extends { name: string; ttl?: number | undefined }>(records: readonly T[], cap: number): T[] {
  return records.map((r) => ({ ...r, ttl: Math.max(0, Math.min(r.ttl ?? 0, cap)) }));
}
