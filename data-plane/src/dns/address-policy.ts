/**
 * The SSRF guard's address classes. A name the operator did not put in the local overrides may
 * not resolve into these ranges (DESIGN §3 "SSRF guard"), because a gateway that connects
 * wherever public DNS points can be aimed at its own network, its loopback services or the cloud
 * instance-metadata endpoint (credential theft).
 *
 * Cloud metadata is its own class: `allowPrivate` opens loopback, private, link-local and
 * CGNAT space (an operator running models on a private network) but never the metadata
 * addresses; only an explicit allow-list entry covering them does.
 */
import { BlockList, isIP } from 'node:net';
import { embeddedIpv4 } from './embedded-ipv4.js';

export type BlockedRange = 'metadata' | 'loopback' | 'private' | 'link-local' | 'cgnat' | 'unspecified' | 'multicast' | 'reserved';

type Family = 'ipv4' | 'ipv6';
type Rule = readonly [range: BlockedRange, network: string, prefix: number, family: Family];

/**
 * Order matters: the first matching rule names the range (metadata before link-local/ULA).
 * IPv6 addresses that carry an IPv4 address are judged by that IPv4 first (embedded-ipv4.ts).
 */
const RULES: readonly Rule[] = [
  // AWS/GCP/Azure/OpenStack instance metadata; ECS task metadata; AWS IMDS over IPv6 (Nitro).
  ['metadata', '169.254.169.254', 32, 'ipv4'],
  ['metadata', '169.254.170.2', 32, 'ipv4'],
  ['metadata', 'fd00:ec2::254', 128, 'ipv6'],
  // Alibaba Cloud metadata sits in CGNAT space.
  ['metadata', '100.100.100.200', 32, 'ipv4'],

  ['unspecified', '0.0.0.0', 8, 'ipv4'], // RFC 791 "this network"; 0.0.0.0 reaches loopback on Linux
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'], // RFC 1918
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['cgnat', '100.64.0.0', 10, 'ipv4'], // RFC 6598
  ['link-local', '169.254.0.0', 16, 'ipv4'], // RFC 3927
  ['reserved', '192.0.0.0', 24, 'ipv4'], // RFC 6890 IETF protocol assignments
  ['reserved', '198.18.0.0', 15, 'ipv4'], // RFC 2544 benchmarking, often used inside networks
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'], // includes 255.255.255.255

  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', 'fc00::', 7, 'ipv6'], // RFC 4193 ULA
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['private', 'fec0::', 10, 'ipv6'], // deprecated site-local
  ['multicast', 'ff00::', 8, 'ipv6'],
];

const single = (rule: Rule): BlockList => {
  const list = new BlockList();
  list.addSubnet(rule[1], rule[2], rule[3]);
  return list;
};
const ANY_RULE = new BlockList();
for (const r of RULES) ANY_RULE.addSubnet(r[1], r[2], r[3]);
const PER_RULE = RULES.map((r) => [r[0], single(r)] as const);

export interface AddressPolicyOptions {
  /** Open loopback, private, link-local, CGNAT and reserved space (DNS_ALLOW_PRIVATE). Not metadata. */
  allowPrivate?: boolean;
  /** CIDRs or single addresses that are always allowed, metadata included (e.g. "10.20.0.0/16"). */
  allow?: readonly string[];
}

export interface AddressPolicy {
  /** The blocked range `address` falls in, or null when a non-override answer may use it. */
  blocked(address: string): BlockedRange | null;
}

const familyOf = (address: string): Family | null => {
  const v = isIP(address);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : null;
};

/** Parses "a.b.c.d/n", "x::/n" or a bare address; throws on anything else (config time). */
export function parseCidr(text: string): { network: string; prefix: number; family: Family } {
  const [network = '', prefixText, extra] = text.trim().split('/');
  const family = familyOf(network);
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (family === null || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max || prefixText === '') {
    throw new Error(`not an IP address or CIDR: ${JSON.stringify(text)}`);
  }
  return { network, prefix, family };
}

export function createAddressPolicy(opts: AddressPolicyOptions = {}): AddressPolicy {
  const allowed = new BlockList();
  for (const entry of opts.allow ?? []) {
    const c = parseCidr(entry);
    allowed.addSubnet(c.network, c.prefix, c.family);
  }
  const allowPrivate = opts.allowPrivate ?? false;
  const open = (range: BlockedRange): BlockedRange | null => (allowPrivate && range !== 'metadata' ? null : range);
  const classify = (address: string): BlockedRange | null => {
    const family = familyOf(address);
    // Not an address at all: refuse rather than guess (answers are parsed from the wire).
    if (family === null) return 'reserved';
    if (allowed.check(address, family)) return null;
    if (family === 'ipv6') {
      const embedded = embeddedIpv4(address);
      if (embedded !== null) {
        // Traffic to such an address ends up at the IPv4 it carries (a NAT64 translator, a 6to4
        // relay, a Teredo tunnel or the host's own stack takes it there): the IPv4's verdict,
        // the allow-list and DNS_ALLOW_PRIVATE included.
        const verdicts = embedded.ipv4.map(classify);
        if (verdicts.includes('metadata')) return 'metadata';
        // Local-use NAT64 (RFC 8215) is the site's own translator, whose prefix length we
        // cannot know: private space, like a ULA, unless a reading is metadata.
        if (embedded.form === 'nat64-local') return open('private');
        const blocked = verdicts.find((v) => v !== null);
        if (blocked !== undefined) return blocked;
        // Deprecated IPv4-compatible (RFC 4291 §2.5.5.1): no host uses it for a public address.
        return embedded.form === 'compatible' ? open('reserved') : null;
      }
    }
    if (!ANY_RULE.check(address, family)) return null;
    return open(PER_RULE.find(([, list]) => list.check(address, family))?.[0] ?? 'reserved');
  };
  // BlockList checks cost about 2 µs; the same few upstream addresses are checked on every
  // cached lookup, so remember verdicts (bounded: forget them all when full).
  const verdicts = new Map<string, BlockedRange | null>();
  return {
    blocked(address) {
      const known = verdicts.get(address);
      if (known !== undefined) return known;
      const verdict = classify(address);
      if (verdicts.size >= 4096) verdicts.clear();
      verdicts.set(address, verdict);
      return verdict;
    },
  };
}
