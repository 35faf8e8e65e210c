/**
 * A set of addresses and CIDR ranges (IPv4 and IPv6) answering "is this address in it?".
 * Entries are parsed with the SSRF guard's parseCidr, so the configuration language is the same
 * for DNS_ALLOW_CIDRS and TRUSTED_PROXIES; matching is node:net's BlockList, which also matches
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) against IPv4 ranges.
 */
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../dns/address-policy.js';

export interface AddressSet {
  /** True when `address` (textual IPv4 or IPv6) falls in one of the entries; false for non-addresses. */
  has(address: string): boolean;
  /** Number of configured entries (0: nothing is ever a member). */
  readonly size: number;
}

/** Builds the set; throws on the first entry that is not an address or CIDR (config time). */
export function createCidrSet(entries: readonly string[]): AddressSet {
  const list = new BlockList();
  for (const entry of entries) {
    const c = parseCidr(entry);
    list.addSubnet(c.network, c.prefix, c.family);
  }
  const size = entries.length;
  return {
    size,
    has(address) {
      if (size === 0) return false;
      const v = isIP(address);
      return v !== 0 && list.check(address, v === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** True when `text` is an address or CIDR that createCidrSet accepts. */
export function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}
